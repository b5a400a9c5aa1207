"""The one place that chooses between the NumPy reference and compiled kernels.

Backends: ``"auto"`` (kernels for NumPy float32/float64 arrays above the size where they pay),
``"reference"`` (never kernels) and ``"compiled"`` (kernels whenever they apply, whatever the size; the
test-suite runs against both paths). ``"numba"``, the old name of ``"compiled"``, still works with a
``DeprecationWarning``.

:func:`lookup` is the one way from an operation and an array to a compiled kernel: the table
``_REGISTRY`` names, for each operation, the extension module and function that compute it and the
size below which the reference is as fast. The environment variable ``LUCE_BACKEND`` sets the
default. Each ``softmax``/``logsumexp`` here returns ``None`` when the reference must handle the call:
other dtypes (float16 input arrives as float32: it is computed in float32 upstream), 0-d arrays or
axes that are not consecutive.

An extension module is imported on the first call that uses it, never at ``import luce``.

Threads: :func:`use_backend` is local to the thread (and asyncio task) that enters it, a
``contextvars.ContextVar``; :func:`set_backend` sets the process-wide default the others follow. The
kernels release the GIL and run on OpenMP threads; concurrent calls from Python threads are safe. Every
parallel kernel takes its thread count from :func:`kernel_threads`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading

import numpy as np

__all__ = [
    "MIN_KERNEL_SIZE",
    "MIN_SOFTMAX_SIZE",
    "kernel_threads",
    "lookup",
    "serial_kernels",
    "MIN_ROWWISE_SIZE",
    "get_backend",
    "logsumexp",
    "set_backend",
    "softmax",
    "use_backend",
]

_BACKENDS = ("auto", "reference", "compiled")


def _initial_backend() -> str:
    name = os.environ.get("LUCE_BACKEND", "auto")
    name = "compiled" if name == "numba" else name
    if name not in _BACKENDS:
        raise ValueError(f"LUCE_BACKEND must be one of {_BACKENDS}, got {name!r}")
    return name


_default_backend = _initial_backend()
# The backend chosen by use_backend in this thread / task; None: the process-wide default.
_local_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar("luce_backend", default=None)

# The fit engine's dense head kernels pay from a few hundred elements (the softmax kernels' old
# threshold, measured with `python benchmarks/softmax.py --crossover`: a tie at 256 elements, kernels
# 1.1-1.3x faster at 1024).
MIN_KERNEL_SIZE = 512
# softmax, log_softmax, logsumexp: the compiled call costs about 25 µs in all (validation included),
# the reference about 35 µs at 64 elements (float64 4x16 rows, 2x64 rows, 16x16 columns), measured
# with min-of-2000 timings of luce.softmax on both backends (2-core machine, under load).
MIN_SOFTMAX_SIZE = 64
# The row-wise maps and losses (sparsemax, entmax, top-k softmax, cross-entropy) keep the threshold
# measured for them when they were written (for the Numba kernels).
MIN_ROWWISE_SIZE = 8192

# operation -> (extension module in luce._kernels, function, size threshold): the whole dispatch table.
# The size is counted by the caller's ``size`` argument of lookup (default: the array's elements).
_REGISTRY: dict[str, tuple[str, str, int]] = {
    "softmax": ("_softmax", "softmax", MIN_SOFTMAX_SIZE),  # softmax and log_softmax
    "logsumexp": ("_softmax", "logsumexp", MIN_SOFTMAX_SIZE),
    # The row-wise maps and losses: size = the elements of the (n_rows, n) rows.
    "cross_entropy": ("_losses", "ce_rows", MIN_ROWWISE_SIZE),
    "topk_softmax": ("_losses", "topk_rows", MIN_ROWWISE_SIZE),
    "sparsemax": ("_sparse", "sparsemax_rows", MIN_ROWWISE_SIZE),
    "entmax15": ("_sparse", "entmax15_rows", MIN_ROWWISE_SIZE),
    "entmax_bisect": ("_sparse", "entmax_bisect_rows", MIN_ROWWISE_SIZE),
    # The label tree (luce.models._hierarchical): a kernel scores only the nodes on the paths it needs, the
    # reference every node (O(d·K) per row instead of O(d·L)), so the kernels run at every size.
    "tree_loss_grad": ("_heads", "loss_grad", 0),
    "tree_sgd_epoch": ("_heads", "sgd_epoch", 0),
    "tree_log_proba": ("_heads", "log_proba_from_scores", 0),
    "tree_topk": ("_heads", "topk_best_first", 0),
    "tree_topk_beam": ("_heads", "topk_beam", 0),
    # The fit engine's block kernels (models/_objective.py; csrc/linear.h). The size is the block's
    # rows × classes (CSR: nonzeros × classes). CSR: always (SciPy's products hold the GIL and make the
    # logits and the gradient in separate passes). Dense: the fused head replaces about six NumPy passes
    # over the logits, so it pays from a few hundred elements as the softmax kernels do.
    "linear_csr_softmax": ("_linear", "csr_softmax", 0),
    "linear_csr_softmax_hessp": ("_linear", "csr_softmax_hessp", 0),
    "linear_dense_softmax": ("_linear", "dense_softmax", MIN_KERNEL_SIZE),
    "linear_dense_curvature_product": ("_linear", "dense_curvature_product", MIN_KERNEL_SIZE),
    # The fused dense kernels (csrc/linear_dense.h: logits, head and gradient in one pass over the
    # block, instead of two BLAS GEMMs around the head); size: the block's rows × classes.
    "linear_dense_sums": ("_linear", "dense_sums", MIN_KERNEL_SIZE),
    "linear_dense_hessp": ("_linear", "dense_hessp", MIN_KERNEL_SIZE),
    "linear_transpose_scale_add": ("_linear", "transpose_scale_add", 1 << 16),
    "linear_csr_softmax_rows": ("_linear", "csr_softmax_rows", 0),
    # Newton-CG's vector updates (csrc/cg.h), float64: two fused passes instead of about nine NumPy ones.
    "cg_update": ("_linear", "cg_update", 1 << 16),
    "cg_direction": ("_linear", "cg_direction", 1 << 16),
}

_modules: dict[str, object] = {}


_thread_state = threading.local()


def kernel_threads() -> int:
    """How many threads a parallel kernel started from this thread may use: 1 inside
    :func:`serial_kernels` (the fit engine's block workers), else OpenMP's budget (``OMP_NUM_THREADS``
    and threadpoolctl's ``openmp`` limits apply). Every parallel kernel takes it as ``n_threads``."""
    if getattr(_thread_state, "serial", False):
        return 1
    from . import _runtime

    return _runtime.max_threads()


@contextlib.contextmanager
def serial_kernels():
    """Run the kernels called from this thread on one thread (other threads keep theirs): for workers
    that are themselves one of several threads working in parallel."""
    previous = getattr(_thread_state, "serial", False)
    _thread_state.serial = True
    try:
        yield
    finally:
        _thread_state.serial = previous


def lookup(op: str, x: np.ndarray, size: int | None = None):
    """The compiled kernel for ``op`` on ``x``, or None when the NumPy reference must run.

    None when the backend is ``"reference"``, ``x`` is not a float32/float64 NumPy array, or (backend
    ``"auto"``) ``size`` (default ``x.size``) is below the operation's threshold. The extension module
    is imported on the first lookup that returns its kernel, never at ``import luce``.
    """
    backend = get_backend()
    if backend == "reference" or not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        return None
    module, function, threshold = _REGISTRY[op]
    if backend == "auto" and (x.size if size is None else size) < threshold:
        return None
    compiled = _modules.get(module)
    if compiled is None:
        import importlib

        compiled = _modules[module] = importlib.import_module(f"{__package__}.{module}")
    return getattr(compiled, function)


def _check_name(name) -> str:
    if name == "numba":
        import warnings

        warnings.warn(
            'the backend "numba" is now called "compiled" (the kernels are compiled at install)',
            DeprecationWarning,
            stacklevel=4,
        )
        return "compiled"
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    return name


def get_backend() -> str:
    """The active backend name in this thread: ``"auto"``, ``"reference"`` or ``"compiled"``."""
    local = _local_backend.get()
    return _default_backend if local is None else local


def set_backend(name: str) -> None:
    """Choose ``"auto"``, ``"reference"`` or ``"compiled"`` as the process-wide default for later calls
    (threads inside a :func:`use_backend` block keep theirs)."""
    global _default_backend
    _default_backend = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str):
    """Use ``name`` in this thread (or asyncio task) for the duration of the block; other threads
    are not affected. The previous choice is restored on exit."""
    token = _local_backend.set(_check_name(name))
    try:
        yield
    finally:
        _local_backend.reset(token)


def _consecutive(x: np.ndarray, axes: tuple[int, ...]) -> bool:
    # The kernels view the reduced axes as one: they must be consecutive (0-d arrays: the reference).
    return x.ndim > 0 and tuple(axes) == tuple(range(axes[0], axes[-1] + 1))


def softmax(x: np.ndarray, axes: tuple[int, ...], temperature: float, where, *, log: bool, out=None):
    """Kernel softmax/log_softmax of a float32/float64 array, or None to use the reference.

    ``axes`` sorted non-negative axes, ``where`` None or a boolean array broadcast to ``x``, ``out``
    None or a writeable array of x's shape and dtype, which is filled and returned.
    """
    kernel = lookup("softmax", x)
    if kernel is None or not _consecutive(x, axes):
        return None
    return kernel(x, axes, temperature, where, log, out, kernel_threads())


def logsumexp(x: np.ndarray, axes: tuple[int, ...], where, out=None):
    """Kernel logsumexp in keepdims shape (the reduced axes kept with length one), or None.

    ``out``: None or a writeable array of the result's size and x's dtype, keepdims shape or not.
    """
    kernel = lookup("logsumexp", x)
    if kernel is None or not _consecutive(x, axes):
        return None
    return kernel(x, axes, where, out, kernel_threads())
