"""Argument checks shared by every public function: dtypes, axes, temperature and masks.

The conventions these enforce are written once in docs/conventions.md.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "array_namespace",
    "as_float_array",
    "check_out",
    "check_temperature",
    "normalize_axes",
    "prepare_where",
]


def _is_numpy_like(x) -> bool:
    return isinstance(x, np.ndarray | np.generic | numbers.Number | list | tuple) or x is None


def array_namespace(*arrays):
    """The array-API namespace of the inputs: ``numpy`` for NumPy input, lists and scalars."""
    others = [a for a in arrays if not _is_numpy_like(a)]
    if not others:
        return np
    import array_api_compat  # loaded only for non-NumPy arrays

    return array_api_compat.array_namespace(*others)


def as_float_array(x, xp=np, name: str = "x"):
    """Return ``(array_in_compute_dtype, result_dtype)`` following the dtype rule.

    float32/float64 are kept; float16 computes in float32 and returns float16; ints and bools become
    float64; complex and non-numeric input raise TypeError.
    """
    if xp is np:
        arr = np.asarray(x)
        kind = arr.dtype.kind
        if kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
        if kind not in "fiub":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        if kind != "f":
            arr = arr.astype(np.float64)
        if arr.dtype == np.float16:
            return arr.astype(np.float32), np.dtype(np.float16)
        if arr.dtype not in (np.float32, np.float64):  # longdouble
            arr = arr.astype(np.float64)
        return arr, arr.dtype
    arr = xp.asarray(x)
    dtype = arr.dtype
    if xp.isdtype(dtype, "complex floating"):
        raise TypeError(f"{name} must be real, got complex dtype {dtype}")
    if xp.isdtype(dtype, "real floating"):
        if dtype == getattr(xp, "float16", None):
            return xp.astype(arr, xp.float32), dtype
        return arr, dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        return xp.astype(arr, xp.float64), xp.float64
    raise TypeError(f"{name} must be a real numeric array, got dtype {dtype}")


def normalize_axes(axis, shape: tuple[int, ...], name: str = "x") -> tuple[int, ...]:
    """Turn ``axis`` (int, negative int or tuple) into a sorted tuple of non-negative axes."""
    ndim = len(shape)
    items = axis if isinstance(axis, tuple | list) else (axis,)
    axes = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for {name} of shape {tuple(shape)}")
        axes.append(a % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis!r} repeats an axis for {name} of shape {tuple(shape)}")
    if not axes:
        raise ValueError(f"axis must name at least one axis of {name} of shape {tuple(shape)}")
    return tuple(sorted(axes))


def check_temperature(temperature) -> float:
    """Temperature must be a real number > 0; ``inf`` is allowed (the uniform limit)."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a real number > 0, got {temperature!r}") from None
    if math.isnan(t) or t <= 0:
        raise ValueError(f"temperature must be > 0 (inf allowed), got {temperature!r}")
    return t


def prepare_where(where, x, xp=np):
    """Broadcast the boolean mask ``where`` to the shape of ``x`` (None stays None)."""
    if where is None:
        return None
    w = xp.asarray(where) if xp is not np else np.asarray(where)
    if (xp is np and w.dtype != np.bool_) or (xp is not np and w.dtype != xp.bool):
        raise TypeError(f"where must be a boolean array, got dtype {w.dtype}")
    shape = tuple(x.shape)
    try:
        return xp.broadcast_to(w, shape)
    except (ValueError, RuntimeError):
        raise ValueError(
            f"where of shape {tuple(w.shape)} does not broadcast to x of shape {shape}"
        ) from None


def check_out(out, shape: tuple[int, ...], dtype, xp=np) -> np.ndarray | None:
    """``out=``: a writeable NumPy array of exactly the result's shape and dtype (None stays None).

    No broadcasting and no casting: a result written into the wrong dtype would silently lose
    precision, so the error names the dtype to allocate instead.
    """
    if out is None:
        return None
    if xp is not np:
        raise TypeError("out= is supported for NumPy input only; array-API inputs return a new array")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, the result has dtype {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out
