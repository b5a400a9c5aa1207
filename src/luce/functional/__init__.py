"""The softmax family: softmax, log_softmax, logsumexp, their gradients, and the comparisons."""

from ._activations import hardmax, log_sigmoid, sigmoid
from ._softmax import log_softmax, logsumexp, softmax
from ._vjp import log_softmax_vjp, softmax_jacobian, softmax_vjp

__all__ = [
    "hardmax",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
]
