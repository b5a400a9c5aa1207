"""luce — the softmax toolkit for Python.

The softmax family exact and fast (``luce.functional``), losses, large-output heads, and the
softmax-regression classifier with the scikit-learn API. The whole public API is ``__all__`` below
(documented in docs/api.md). ``import luce`` loads only NumPy: every heavier module (scikit-learn,
Numba, Dask, ONNX, matplotlib) is imported on first use of a name that needs it.
"""

from importlib import import_module

from .functional import (
    OnlineSoftmax,
    entmax15,
    entmax15_vjp,
    entmax_bisect,
    entmax_bisect_vjp,
    gumbel_softmax,
    hardmax,
    log_sigmoid,
    log_softmax,
    log_softmax_vjp,
    logsumexp,
    sample,
    sigmoid,
    softmax,
    softmax_jacobian,
    softmax_vjp,
    sparsemax,
    sparsemax_vjp,
    topk_softmax,
)
from .heads import linear_cross_entropy
from .losses import binary_cross_entropy_with_logits, cross_entropy, entmax15_loss, sparsemax_loss
from .metrics import expected_calibration_error, reliability_curve

__version__ = "0.1.0"

# Public names that live in modules too heavy to import eagerly: name -> module.
_LAZY = {
    # heads: large output spaces (scikit-learn, Numba load on first use)
    "HierarchicalSoftmaxClassifier": "luce.models._hierarchical",
    # io: model files and ONNX export (safetensors/onnx load on first save/load/export)
    "ModelFormatError": "luce.io",
    "export_onnx": "luce.io",
    "load": "luce.io",
    "save": "luce.io",
    # models: the softmax-regression classifier and the embedded default data (scikit-learn loads on first use)
    "SoftmaxRegression": "luce.models._softmax_regression",
    "load_digits": "luce.datasets",
    "load_digits_split": "luce.datasets",
    # models: calibration and multi-label (scikit-learn loads on first use)
    "SigmoidRegression": "luce.models._sigmoid",
    "TemperatureScaling": "luce.models._calibration",
}

__all__ = [
    "OnlineSoftmax",
    "__version__",
    # heads: large output spaces
    "HierarchicalSoftmaxClassifier",
    "linear_cross_entropy",
    # models: the softmax-regression classifier and the embedded default data
    "SoftmaxRegression",
    "load_digits",
    "load_digits_split",
    # functional: the softmax family
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "entmax15",
    "entmax15_loss",
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
    "sparsemax_loss",
    "sparsemax_vjp",
    "topk_softmax",
    # io: model files and ONNX export
    "ModelFormatError",
    "export_onnx",
    "load",
    "save",
    # calibration and multi-label
    "SigmoidRegression",
    "TemperatureScaling",
    "expected_calibration_error",
    "reliability_curve",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'luce' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
