"""The one place that chooses between the NumPy reference and compiled kernels.

Backends: ``"auto"`` (kernels for NumPy float32/float64 arrays above a size where they pay),
``"reference"`` (never kernels) and ``"numba"`` (kernels whenever they apply, whatever the size;
used by the tests to run the whole suite against both paths). Each ``softmax``/``logsumexp`` here
returns ``None`` when the reference must handle the call.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = ["get_backend", "logsumexp", "set_backend", "softmax", "use_backend"]

_BACKENDS = ("auto", "reference", "numba")
_backend = os.environ.get("LUCE_BACKEND", "auto")
# Below this many elements the compiled call's fixed cost outweighs the gain.
MIN_KERNEL_SIZE = 4096


def get_backend() -> str:
    """The active backend name."""
    return _backend


def set_backend(name: str) -> None:
    """Choose ``"auto"``, ``"reference"`` or ``"numba"`` for every later call."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    _backend = name


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager form of :func:`set_backend`."""
    previous = _backend
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def _kernels_apply(x: np.ndarray) -> bool:
    if _backend == "reference" or x.dtype not in (np.float32, np.float64) or x.ndim == 0:
        return False
    return _backend == "numba" or x.size >= MIN_KERNEL_SIZE


def _numba():
    try:
        from . import _numba_softmax
    except ImportError:  # the kernels module has not landed yet
        return None
    return _numba_softmax


def softmax(x: np.ndarray, axes: tuple[int, ...], temperature: float, where, *, log: bool):
    """Kernel softmax/log_softmax of a float32/float64 array, or None to use the reference."""
    if not _kernels_apply(x) or len(axes) != 1:
        return None
    kernels = _numba()
    return None if kernels is None else kernels.softmax(x, axes[0], temperature, where, log)


def logsumexp(x: np.ndarray, axes: tuple[int, ...], where):
    """Kernel logsumexp (keepdims shape or any shape of the same size), or None."""
    if not _kernels_apply(x) or len(axes) != 1:
        return None
    kernels = _numba()
    return None if kernels is None else kernels.logsumexp(x, axes[0], where)
