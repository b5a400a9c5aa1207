"""Shared plumbing for the row-wise maps (sparse maps, sampling, losses): the reduced axes are moved to
the end and flattened, so every algorithm sees a C-contiguous ``(n_rows, n)`` array.
Whether a row-wise map runs a compiled kernel is decided by ``luce._kernels._dispatch.lookup``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validation as v

__all__ = ["Rows", "from_numpy", "prepare", "to_numpy"]


def to_numpy(xp, *arrays):
    """NumPy views of array-API inputs (torch, array-api-strict); NumPy input passes through."""
    if xp is np:
        return arrays
    out = []
    for a in arrays:
        if a is None or isinstance(a, np.ndarray | list | tuple | int | float | bool):
            out.append(a)
            continue
        detach = getattr(a, "detach", None)  # torch tensors that require grad refuse export otherwise
        if callable(detach):
            a = detach()
        try:
            out.append(np.from_dlpack(a))
        except (TypeError, AttributeError, RuntimeError, BufferError):
            out.append(np.asarray(a))
    return tuple(out)


def from_numpy(xp, result):
    """Return ``result`` as the caller's kind of array (a no-op for NumPy)."""
    if xp is np or result is None:
        return result
    # np.asarray(order="C"), not np.ascontiguousarray: that one turns a 0-d result into shape (1,).
    return xp.asarray(np.asarray(result, order="C"))


class Rows:
    """``x`` with ``axes`` moved last and flattened to ``(n_rows, n)``, and the way back.

    Parameters
    ----------
    arr : ndarray
        Float array (already in the compute dtype).
    axes : tuple of int
        Normalised (non-negative, sorted) axes that form one row.
    """

    def __init__(self, arr: np.ndarray, axes: tuple[int, ...]):
        self.shape = arr.shape
        self.axes = axes
        nd = arr.ndim
        self.rest = tuple(a for a in range(nd) if a not in axes)
        self.perm = self.rest + tuple(axes)
        moved = arr.transpose(self.perm)
        self.moved_shape = moved.shape
        self.batch_shape = tuple(arr.shape[a] for a in self.rest)
        self.n = math.prod(arr.shape[a] for a in axes)
        self.n_rows = math.prod(self.batch_shape)
        rows = np.ascontiguousarray(moved.reshape(self.n_rows, self.n))
        self.rows = rows

    def take(self, other: np.ndarray) -> np.ndarray:
        """Another array of the same shape (a mask, a target) laid out like ``rows``."""
        moved = np.broadcast_to(other, self.shape).transpose(self.perm)
        return np.array(moved, order="C", copy=True).reshape(self.n_rows, self.n)  # writeable, C order

    def back(self, rows_out: np.ndarray) -> np.ndarray:
        """Undo the layout change: ``(n_rows, n)`` back to the input's shape."""
        moved = rows_out.reshape(self.moved_shape)
        return moved.transpose(np.argsort(self.perm))


def prepare(x, axis, where=None, name="x"):
    """Validate ``x``/``axis``/``where`` the way the softmax family does.

    Returns ``(xp, arr, out_dtype, axes, mask)`` with ``arr`` a NumPy float32/float64 array (a 0-d input
    becomes shape ``(1,)``; ``axes`` is then ``(0,)``) and ``mask`` None or a broadcast boolean array.
    """
    xp = v.array_namespace(x, where)
    x, where = to_numpy(xp, x, where)
    arr, out_dtype = v.as_float_array(x, np, name=name)
    scalar = arr.ndim == 0
    if scalar:
        arr = arr.reshape(1)
        where = None if where is None else np.reshape(np.asarray(where), (1,))
    axes = (0,) if scalar else v.normalize_axes(axis, tuple(arr.shape), name=name)
    mask = v.prepare_where(where, arr)
    return xp, arr, out_dtype, axes, mask, scalar
