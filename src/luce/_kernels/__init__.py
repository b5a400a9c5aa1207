"""Kernel dispatch: the NumPy reference, or the kernels compiled at install where they pay (_dispatch.py)."""

from ._dispatch import get_backend, set_backend, use_backend

__all__ = ["get_backend", "set_backend", "use_backend"]
