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
``contextvars.ContextVar``; :func:`set_backend` sets the process-wide default the others follow. Every
parallel kernel launch goes through :func:`kernel_launch`, which serialises launches when Numba's
threading layer is not thread-safe (``workqueue``, the fallback where TBB and OpenMP are missing aborts
the process on concurrent launches).
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
    "kernel_launch",
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

# Below this many elements the reference is about as fast: a softmax kernel call has a fixed cost of
# about 15 µs (views, argument unboxing, the kernel launch), as much as the reference's NumPy calls on
# a few hundred elements. Measured with `python benchmarks/softmax.py --crossover` on the 2-core
# machine: a tie at 256 elements, kernels 1.1-1.3x faster at 1024, 1.4-1.7x at 4096.
MIN_KERNEL_SIZE = 512
# softmax, log_softmax, logsumexp: the compiled call costs about 25 µs in all (validation included),
# the reference about 35 µs at 64 elements (float64 4x16 rows, 2x64 rows, 16x16 columns), measured
# with min-of-2000 timings of luce.softmax on both backends (2-core machine, under load).
MIN_SOFTMAX_SIZE = 64
# The row-wise maps (luce.functional._rowwise: sparsemax, entmax, ...) keep the threshold measured for
# them when they were written.
MIN_ROWWISE_SIZE = 8192

# operation -> (extension module in luce._kernels, function, size threshold): the whole dispatch table.
# The size is counted by the caller's ``size`` argument of lookup (default: the array's elements).
_REGISTRY: dict[str, tuple[str, str, int]] = {
    "softmax": ("_softmax", "softmax", MIN_SOFTMAX_SIZE),  # softmax and log_softmax
    "logsumexp": ("_softmax", "logsumexp", MIN_SOFTMAX_SIZE),
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


# Serialises parallel kernel launches until the threading layer is known to be thread-safe.
_launch_lock = threading.RLock()
_layer_is_safe: bool | None = None  # None: no parallel launch yet, the layer is not chosen


def _threading_layer_is_safe() -> bool | None:
    import numba

    try:
        return numba.threading_layer() in ("tbb", "omp")  # workqueue is not thread-safe
    except ValueError:  # no parallel region has run yet
        return None


@contextlib.contextmanager
def kernel_launch():
    """Hold this around every call of a parallel (``prange``) kernel.

    Numba's ``workqueue`` threading layer aborts the interpreter when two threads launch parallel
    kernels at once ("Terminating: ... workqueue threading layer is not threadsafe"), so launches are
    serialised until the layer in use is known to be TBB or OpenMP; then the lock is skipped.
    """
    global _layer_is_safe
    if _layer_is_safe:
        yield
        return
    with _launch_lock:
        yield
        if _layer_is_safe is None:
            _layer_is_safe = _threading_layer_is_safe()


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
