"""Argument checks shared by every public function: dtypes, axes, temperature and masks.

The conventions these enforce are written once in docs/conventions.md.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

__all__ = [
    "array_namespace",
    "as_float_array",
    "check_bool",
    "check_int",
    "check_out",
    "check_real",
    "check_temperature",
    "normalize_axes",
    "own_errstate",
    "prepare_where",
]


def own_errstate(func):
    """Run ``func`` under ``np.errstate(all="ignore")``, whatever the caller's ``np.seterr``.

    The family computes 0/0, inf - inf and underflowing exponentials on purpose and overwrites them by
    the edge rules (docs/conventions.md: no case warns), so a result never depends on the global
    floating-point error state: ``np.seterr(all="raise")`` must not turn a valid call into a
    ``FloatingPointError``, nor array-API input (array-api-strict computes with NumPy) into warnings.
    """

    @functools.wraps(func)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return quiet


def _is_numpy_like(x) -> bool:
    return isinstance(x, np.ndarray | np.generic | numbers.Number | list | tuple) or x is None


def _is_array_api(x) -> bool:
    import array_api_compat  # loaded only for non-NumPy arrays

    return array_api_compat.is_array_api_obj(x)


def array_namespace(*arrays):
    """The array-API namespace of the inputs: ``numpy`` for NumPy input, lists and scalars.

    Objects that convert to NumPy without being array-API arrays (pandas DataFrame and Series, NumPy
    subclasses, anything with ``__array__``) are NumPy input too: the result is a NumPy array, as
    ``scipy.special`` returns for them.
    """
    others = [a for a in arrays if not _is_numpy_like(a)]
    others = [a for a in others if not (hasattr(a, "__array__") and not _is_array_api(a))]
    if not others:
        return np
    import array_api_compat

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
        if not arr.dtype.isnative:  # big-endian float32 stays float32, in native byte order
            arr = arr.astype(arr.dtype.newbyteorder("="))
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
    """Turn ``axis`` (int, negative int, tuple, or None for all axes) into a sorted tuple of
    non-negative axes."""
    ndim = len(shape)
    if axis is None:  # every axis, as an explicit axis=None means in NumPy and SciPy
        axis = tuple(range(ndim))
    items = axis if isinstance(axis, tuple | list) else (axis,)
    axes = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for {name} of shape {tuple(shape)}")
        axes.append(a % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis!r} repeats an axis for {name} of shape {tuple(shape)}")
    if not axes:
        raise ValueError(f"axis must name at least one axis of {name} of shape {tuple(shape)}")
    return tuple(sorted(axes))


def _is_real(value) -> bool:
    """A real number: Python or NumPy int/float (or a 0-d real array), never a bool or a string."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def check_bool(value, name: str) -> bool:
    """A flag must be a bool (``True``/``False`` or a NumPy bool): ``"no"`` would be truthy."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r}")
    return bool(value)


def check_real(value, name: str, *, low=-math.inf, high=math.inf, what: str = "") -> float:
    """A real number (not a bool or a string) in ``[low, high]``; NaN is refused."""
    what = what or f"a real number in [{low:g}, {high:g}]"
    if not _is_real(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    x = float(value)
    if math.isnan(x) or not low <= x <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return x


def check_int(value, name: str, *, low: int | None = None, allow_none: bool = False):
    """An integer (Python or NumPy, not a bool) ``>= low``; ``None`` passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    what = {None: "an int", 1: "a positive int"}.get(low, f"an int >= {low}")
    what += " or None" if allow_none else ""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_temperature(temperature, name: str = "temperature") -> float:
    """Temperature must be a real number > 0 (not a bool or a string); ``inf`` is allowed (the uniform
    limit)."""
    if not _is_real(temperature):
        raise TypeError(f"{name} must be a real number > 0, got {temperature!r}")
    t = float(temperature)
    if math.isnan(t) or t <= 0:
        raise ValueError(f"{name} must be > 0 (inf allowed), got {temperature!r}")
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
