"""luce — the softmax toolkit for Python.

The softmax family exact and fast (``luce.functional``), losses, large-output heads, and the
softmax-regression classifier with the scikit-learn API. The whole public API is ``__all__`` below
(documented in docs/api.md). ``import luce`` loads only NumPy: every heavier module (scikit-learn,
the compiled kernels, Dask, ONNX, matplotlib) is imported on first use of a name that needs it.
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

# Public names that live in modules too heavy to import eagerly (scikit-learn, safetensors, onnx load
# on first use): name -> module.
_LAZY = {
    "SoftmaxRegression": "luce.models._softmax_regression",
    "SigmoidRegression": "luce.models._sigmoid",
    "HierarchicalSoftmaxClassifier": "luce.models._hierarchical",
    "TemperatureScaling": "luce.models._calibration",
    "load_digits": "luce.datasets",
    "load_digits_split": "luce.datasets",
    "ModelFormatError": "luce.io",
    "export_onnx": "luce.io",
    "load": "luce.io",
    "save": "luce.io",
    "read_table": "luce.tables",
    "table_pipeline": "luce.tables",
    "read_metadata": "luce.io",
}

# One section per section of docs/api.md.
__all__ = [
    "__version__",
    # the softmax family
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
    "sigmoid",
    "log_sigmoid",
    "hardmax",
    # losses
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "sparsemax_loss",
    "entmax15_loss",
    # sparse maps
    "sparsemax",
    "entmax15",
    "entmax_bisect",
    "sparsemax_vjp",
    "entmax15_vjp",
    "entmax_bisect_vjp",
    # sampling and streaming
    "gumbel_softmax",
    "sample",
    "topk_softmax",
    "OnlineSoftmax",
    # large output spaces
    "linear_cross_entropy",
    "HierarchicalSoftmaxClassifier",
    # models and the embedded data
    "SoftmaxRegression",
    "load_digits",
    "load_digits_split",
    # calibration and multi-label
    "TemperatureScaling",
    "SigmoidRegression",
    "expected_calibration_error",
    "reliability_curve",
    # model files and export
    "save",
    "load",
    "read_metadata",
    "ModelFormatError",
    "export_onnx",
    # tables
    "read_table",
    "table_pipeline",
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
