"""The softmax family: softmax, log_softmax, logsumexp, their gradients, and the comparisons."""

from ._activations import hardmax, log_sigmoid, sigmoid
from ._online import OnlineSoftmax
from ._sampling import gumbel_softmax, sample, topk_softmax
from ._softmax import log_softmax, logsumexp, softmax
from ._sparse import entmax15, entmax15_vjp, entmax_bisect, entmax_bisect_vjp, sparsemax, sparsemax_vjp
from ._vjp import log_softmax_vjp, softmax_jacobian, softmax_vjp

__all__ = [
    "OnlineSoftmax",
    "entmax15",
    "entmax15_vjp",
    "entmax_bisect",
    "entmax_bisect_vjp",
    "gumbel_softmax",
    "hardmax",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "sample",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "sparsemax",
    "sparsemax_vjp",
    "topk_softmax",
]
