"""Kernel dispatch: the NumPy reference, or Numba CPU kernels where they pay (see _dispatch.py)."""

from ._dispatch import get_backend, set_backend, use_backend

__all__ = ["get_backend", "set_backend", "use_backend"]
