"""The comparisons drawn with softmax: sigmoid and log-sigmoid (binary / multi-label) and hardmax."""

from __future__ import annotations

import math

from .. import _validation as v
from ._softmax import _finish, _prepare

__all__ = ["hardmax", "log_sigmoid", "sigmoid"]


def _elementwise_input(x):
    xp = v.array_namespace(x)
    arr, out_dtype = v.as_float_array(x, xp)
    return xp, arr, out_dtype


@v.own_errstate
def sigmoid(x):
    r"""Logistic sigmoid ``1 / (1 + exp(-x))``, elementwise, stable for large ``|x|``.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}} = \frac{e^{x}}{1 + e^{x}}

    The first form is used for ``x >= 0`` and the second for ``x < 0``, so ``exp`` only ever sees
    ``-|x|`` and never overflows. ``sigmoid(x) == softmax([x, 0])[0]``: the two-class softmax.

    Parameters
    ----------
    x : array_like
        Any shape; dtypes follow docs/conventions.md.

    Returns
    -------
    ndarray, same shape as x
        Values in ``[0, 1]``.

    Examples
    --------
    >>> import luce
    >>> luce.sigmoid([-1000.0, 0.0, 2.0])
    array([0.        , 0.5       , 0.88079708])
    """
    xp, arr, out_dtype = _elementwise_input(x)
    e = xp.exp(-xp.abs(arr))
    out = xp.where(arr >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    out = xp.where(xp.isnan(arr), arr, out)
    return _finish(xp, out, out_dtype)


@v.own_errstate
def log_sigmoid(x):
    r"""``log(sigmoid(x))``, elementwise, accurate for large ``|x|``.

    .. math:: \log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})

    The ``log1p`` form keeps full relative accuracy where ``sigmoid`` rounds to 1 (large positive x)
    and never takes ``log(0)`` (large negative x).

    Parameters
    ----------
    x : array_like
        Any shape; dtypes follow docs/conventions.md.

    Returns
    -------
    ndarray, same shape as x
        Values ``<= 0``.

    Examples
    --------
    >>> import luce
    >>> luce.log_sigmoid([-1000.0, 0.0, 40.0])
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    xp, arr, out_dtype = _elementwise_input(x)
    out = xp.minimum(arr, xp.zeros_like(arr)) - xp.log1p(xp.exp(-xp.abs(arr)))
    return _finish(xp, out, out_dtype)


@v.own_errstate
def hardmax(x, axis=-1, *, where=None):
    r"""One-hot of the arg-max along ``axis``, ties sharing the mass equally.

    .. math:: \mathrm{hardmax}(x)_i = \frac{[x_i = \max x]}{\#\{j : x_j = \max x\}}

    The limit of :func:`softmax` as the temperature goes to 0.

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores.
    axis : int or tuple of ints, default -1
        The axis (or axes) over which the maximum is taken.
    where : array_like of bool, optional
        Mask broadcastable to ``x``; masked entries get 0.

    Returns
    -------
    ndarray, same shape as x
        Same edge semantics as :func:`softmax` (docs/conventions.md).

    Examples
    --------
    >>> import luce
    >>> luce.hardmax([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0]])
    array([[0. , 1. , 0. ],
           [0.5, 0.5, 0. ]])
    """
    xp, arr, out_dtype, axes, mask, _ = _prepare(x, axis, where)
    if arr.ndim == 0:
        arr = xp.reshape(arr, (1,))
        return _finish(xp, xp.reshape(hardmax(arr, where=where), ()), out_dtype)
    if any(arr.shape[a] == 0 for a in axes):
        return _finish(xp, xp.asarray(arr, copy=True), out_dtype)
    xm = arr if mask is None else xp.where(mask, arr, xp.full_like(arr, -math.inf))
    m = xp.max(xm, axis=axes, keepdims=True)
    top = xp.astype((xm == m) & (m > -math.inf), arr.dtype)
    n_top = xp.sum(top, axis=axes, keepdims=True)
    out = top / xp.where(n_top > 0, n_top, xp.ones_like(n_top))
    out = xp.where(xp.isnan(m), xp.full_like(out, math.nan), out)
    return _finish(xp, out, out_dtype)
