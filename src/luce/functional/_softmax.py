"""softmax, log_softmax and logsumexp: the exact reference, dispatching to fast kernels when they pay.

The reference below is written once against the array-API namespace ``xp``, so NumPy, torch and
array-api-strict inputs all follow the same code and the same edge rules (docs/conventions.md).
Special slices are detected from the slice maximum alone: NaN max means the slice has a NaN,
``+inf`` means some entries are ``+inf``, ``-inf`` means every entry is masked or ``-inf``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validation as v
from .._kernels import _dispatch

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _prepare(x, axis, where, temperature=1.0):
    xp = v.array_namespace(x, where)
    arr, out_dtype = v.as_float_array(x, xp)
    axes = v.normalize_axes(axis, tuple(arr.shape)) if arr.ndim else ()
    mask = v.prepare_where(where, arr, xp)
    t = v.check_temperature(temperature)
    return xp, arr, out_dtype, axes, mask, t


def _finish(xp, out, out_dtype):
    if out.dtype != out_dtype:
        out = xp.astype(out, out_dtype)
    return out


def _neg_inf_like(xp, x):
    return xp.full_like(x, -math.inf)


def _shifted(xp, x, axes, mask, t):
    """The pieces every member of the family needs.

    Returns ``(xm, m, d, e, special)``: x with masked entries at -inf, the slice max of the unmasked
    entries (keepdims), the shifted and scaled values ``d = (x - m) / t`` (shift first, then divide:
    the error then scales with |x - max|), ``e = exp(d)`` with masked entries 0, and the boolean of
    slices whose max is not finite.
    """
    if math.isinf(t):
        # The T -> inf limit: finite entries tie at 0, +inf still dominates, -inf stays excluded.
        x = xp.where(xp.isfinite(x), xp.zeros_like(x), x)
        t = 1.0
    xm = x if mask is None else xp.where(mask, x, _neg_inf_like(xp, x))
    m = xp.max(xm, axis=axes, keepdims=True)
    special = ~xp.isfinite(m)
    m_safe = xp.where(special, xp.zeros_like(m), m)
    # Max shift (the standard overflow guard): every exponent is <= 0, the largest is exactly 0.
    d = xm - m_safe
    if t != 1.0:
        d = d / t
    e = xp.exp(d)
    return xm, m, d, e, special


def _log1p_tail(xp, xm, m, e, axes):
    """``t = sum(exp(x - m)) - 1`` computed without cancellation.

    log-sum-exp = m + log1p(t) (Blanchard, Higham & Higham 2021, "Accurately computing the log-sum-exp
    and softmax functions", IMA J. Numer. Anal.): the entries equal to the max contribute exactly 1 each,
    so t is the sum over the others plus (count of maxima - 1), an exact integer.
    """
    at_max = xm == m
    rest = xp.sum(xp.where(at_max, xp.zeros_like(e), e), axis=axes, keepdims=True)
    n_max = xp.sum(xp.astype(at_max, e.dtype), axis=axes, keepdims=True)
    return rest + (n_max - 1)


def _is_empty(arr, axes) -> bool:
    return any(arr.shape[a] == 0 for a in axes)


def _into(out, result):
    """``result``, or ``out`` holding it (the kernels may have written it there already).

    A 0-d NumPy result becomes a NumPy scalar, as NumPy's reductions and ``scipy.special`` return.
    """
    if out is None:
        return result[()] if isinstance(result, np.ndarray) and result.ndim == 0 else result
    if result is not out:
        np.copyto(out, result)
    return out


def _softmax_like(x, axis, temperature, where, log, out):
    xp, arr, out_dtype, axes, mask, t = _prepare(x, axis, where, temperature)
    out = v.check_out(out, tuple(arr.shape), out_dtype, xp)
    if xp is np:
        direct = out if out is not None and out.dtype == arr.dtype else None
        fast = _dispatch.softmax(arr, axes, t, mask, log=log, out=direct)
        if fast is not None:
            return _into(out, _finish(xp, fast, out_dtype))
    if arr.ndim == 0:
        arr = xp.reshape(arr, (1,))
        mask = None if mask is None else xp.reshape(mask, (1,))
        result = xp.reshape(_reference(xp, arr, (0,), t, mask, log), ())
    elif _is_empty(arr, axes):
        result = xp.asarray(arr, copy=True)
    else:
        result = _reference(xp, arr, axes, t, mask, log)
    return _into(out, _finish(xp, result, out_dtype))


def _reference(xp, arr, axes, t, mask, log):
    xm, m, d, e, special = _shifted(xp, arr, axes, mask, t)
    if log:
        out = d - xp.log1p(_log1p_tail(xp, xm, m, e, axes))
    else:
        out = e / xp.sum(e, axis=axes, keepdims=True)
    if not xp.any(special):
        return out
    # +inf slices: the +inf entries share the mass equally; -inf slices: all zero; NaN slices: NaN.
    top = xp.astype((xm == m) & (m > 0), out.dtype)
    n_top = xp.sum(top, axis=axes, keepdims=True)
    share = top / xp.where(n_top > 0, n_top, xp.ones_like(n_top))
    special_out = xp.log(share) if log else share
    special_out = xp.where(xp.isnan(m), xp.full_like(out, math.nan), special_out)
    return xp.where(special, special_out, out)


@v.own_errstate
def softmax(x, axis=-1, *, temperature=1.0, where=None, out=None):
    r"""Softmax: exponentials normalised to sum to one along ``axis``.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{(x_i - m)/T}}{\sum_j e^{(x_j - m)/T}},
              \quad m = \max_j x_j

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores (logits). Lists, scalars, NumPy arrays and array-API arrays (torch, array-api-strict)
        are accepted; the result is the same kind of array.
    axis : int or tuple of ints, default -1
        The axis (or axes) normalised over; negative axes count from the end.
    temperature : float > 0, default 1.0
        Divides the scores: large ``T`` flattens the distribution, small ``T`` sharpens it towards
        :func:`hardmax`; ``inf`` gives the uniform distribution over the unmasked entries.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: entries where it is False get probability 0.
    out : ndarray, optional
        Where to write the result (NumPy input only): same shape as ``x`` and the result's dtype. It
        is filled and returned; no new array is allocated, which on large arrays saves the operating
        system's first-touch cost of fresh memory (docs/performance.md). It may be ``x`` itself.

    Returns
    -------
    ndarray, same shape as x
        Probabilities; float16/32/64 are preserved, ints and bools become float64. ``out`` when given.

    Notes
    -----
    Edge semantics (docs/conventions.md): a fully masked or all ``-inf`` slice gives zeros, never NaN;
    ``+inf`` entries share the mass equally; a NaN in a slice makes the whole slice NaN. The maximum is
    subtracted before exponentiation, so large scores never overflow. Relative error of each output is
    at most ``(8 + |x_i - max x|)·eps``.

    Examples
    --------
    >>> import luce
    >>> luce.softmax([2.0, 1.0, 0.1])
    array([0.65900114, 0.24243297, 0.09856589])
    >>> luce.softmax([1010, 1000, 990])
    array([9.99954600e-01, 4.53978686e-05, 2.06106005e-09])

    References
    ----------
    J. S. Bridle, "Probabilistic interpretation of feedforward classification network outputs", 1990.
    """
    return _softmax_like(x, axis, temperature, where, False, out)


@v.own_errstate
def log_softmax(x, axis=-1, *, temperature=1.0, where=None, out=None):
    r"""Logarithm of :func:`softmax`, computed without forming the probabilities.

    .. math::
        \mathrm{log\_softmax}(x)_i = \frac{x_i - m}{T} - \log\Big(1 + \sum_{j \ne k} e^{(x_j - m)/T}\Big)

    with ``m = x_k`` the maximum; the ``log1p`` form keeps tiny tails that ``log(sum)`` rounds away.

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores; see :func:`softmax` for accepted inputs.
    axis : int or tuple of ints, default -1
        The axis (or axes) normalised over.
    temperature : float > 0, default 1.0
        Divides the scores before normalising.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: masked entries get ``-inf``.
    out : ndarray, optional
        Where to write the result, as in :func:`softmax`.

    Returns
    -------
    ndarray, same shape as x
        Log-probabilities (``<= 0``), dtype as :func:`softmax`. ``out`` when given.

    Examples
    --------
    >>> import luce
    >>> float(luce.log_softmax([0.0, -40.0])[0])
    -4.248354255291589e-18

    References
    ----------
    P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41 (2021).
    """
    return _softmax_like(x, axis, temperature, where, True, out)


@v.own_errstate
def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, where=None, out=None):
    r"""Log of the sum of exponentials, ``log(sum(b * exp(x)))``, without overflow.

    .. math:: \mathrm{logsumexp}(x) = m + \log\Big(1 + \sum_{j \ne k} e^{x_j - m}\Big), \quad m = x_k = \max x

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Values; see :func:`softmax` for accepted inputs.
    axis : int or tuple of ints, default -1
        The axis (or axes) reduced.
    b : array_like, optional
        Weights broadcastable to ``x``, possibly negative (as in :func:`scipy.special.logsumexp`).
    keepdims : bool, default False
        Keep the reduced axes with length one.
    return_sign : bool, default False
        Return ``(value, sign)`` where ``value = log|sum|`` and ``sign`` is -1, 0 or +1. Without it a
        negative sum gives NaN.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: masked entries are left out of the sum.
    out : ndarray, optional
        Where to write ``value`` (NumPy input only): the result's shape and dtype. It is filled and
        returned.

    Returns
    -------
    value : ndarray or NumPy scalar
        Shape of ``x`` without ``axis`` (or with length-one axes when ``keepdims``); a NumPy scalar
        when that shape is ``()`` and ``x`` is NumPy input (as ``scipy.special.logsumexp``). A fully masked or
        empty slice gives ``-inf``; ``+inf`` entries give ``+inf``; NaN anywhere gives NaN. ``out``
        when given.
    sign : ndarray, only with ``return_sign``

    Examples
    --------
    >>> import luce
    >>> float(luce.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> luce.logsumexp([0.0, 0.0], b=[1.0, -2.0], return_sign=True)
    (np.float64(0.0), np.float64(-1.0))

    References
    ----------
    P. Blanchard, D. J. Higham, N. J. Higham, IMA J. Numer. Anal. 41 (2021).
    """
    keepdims = v.check_bool(keepdims, "keepdims")
    return_sign = v.check_bool(return_sign, "return_sign")
    xp = v.array_namespace(x, b, where)
    arr, out_dtype = v.as_float_array(x, xp)
    if b is not None:
        bw, out_dtype = _promote_weights(xp, b, out_dtype)
        if out_dtype != arr.dtype and out_dtype != getattr(xp, "float16", None):
            arr = xp.astype(arr, out_dtype)  # computed in the promoted dtype
        try:
            arr, bw = xp.broadcast_arrays(arr, xp.astype(bw, arr.dtype))
        except (ValueError, RuntimeError):
            raise ValueError(
                f"b of shape {tuple(bw.shape)} does not broadcast with x of shape {tuple(arr.shape)}"
            ) from None
    scalar_in = arr.ndim == 0
    if scalar_in:
        arr = xp.reshape(arr, (1,))
        bw = None if b is None else xp.reshape(bw, (1,))
    axes = v.normalize_axes(axis, tuple(arr.shape)) if not scalar_in else (0,)
    mask = v.prepare_where(where, arr, xp)
    if keepdims:
        out_shape = () if scalar_in else tuple(1 if i in axes else n for i, n in enumerate(arr.shape))
    else:
        out_shape = () if scalar_in else tuple(n for i, n in enumerate(arr.shape) if i not in axes)
    out = v.check_out(out, out_shape, out_dtype, xp)
    if b is not None:
        # Zero weights drop out exactly like masked entries (so they never decide the max).
        nonzero = bw != 0
        mask = nonzero if mask is None else (mask & nonzero)

    value = sign = None
    # The kernels write into out only when nothing is left to do afterwards (no sign, no cast).
    direct = out if out is not None and out.dtype == arr.dtype and not return_sign else None
    if xp is np and b is None:
        value = _dispatch.logsumexp(arr, axes, mask, out=direct)
        if value is not None and value is direct:
            return out
    if value is None:
        if _is_empty(arr, axes):
            shape = tuple(1 if i in axes else n for i, n in enumerate(arr.shape))
            value = xp.full(shape, -math.inf, dtype=arr.dtype)
        else:
            value, sign = _logsumexp_reference(xp, arr, axes, mask, None if b is None else bw)
    else:
        value = xp.reshape(value, tuple(1 if i in axes else n for i, n in enumerate(arr.shape)))
    if sign is None:
        # Without weights the sum is never negative: sign 0 for an empty sum, NaN for NaN.
        sign = xp.where(xp.isnan(value), value, xp.astype(value > -math.inf, value.dtype))
    if not return_sign:
        value = xp.where(sign < 0, xp.full_like(value, math.nan), value)
    if not keepdims:
        value, sign = xp.reshape(value, out_shape), xp.reshape(sign, out_shape)
    value = _into(out, _finish(xp, value, out_dtype))
    sign = _into(None, _finish(xp, sign, out_dtype))
    return (value, sign) if return_sign else value


def _promote_weights(xp, b, out_dtype):
    """``b`` as a float array, and the result dtype promoted with it as ``scipy.special.logsumexp``
    does: float ``b`` promotes with ``x`` (float32 ``x``, float64 ``b``: float64), integer ``b`` makes
    the result float64, bool ``b`` leaves the dtype of ``x``."""
    raw = xp.asarray(b) if xp is not np else np.asarray(b)
    bw, b_dtype = v.as_float_array(raw, xp, name="b")
    if xp.isdtype(raw.dtype, "bool"):
        return bw, out_dtype
    return bw, xp.result_type(out_dtype, b_dtype)


def _logsumexp_reference(xp, arr, axes, mask, b):
    xm, m, _, e, special = _shifted(xp, arr, axes, mask, 1.0)
    if b is None:
        value = m + xp.log1p(_log1p_tail(xp, xm, m, e, axes))
        sign = xp.astype(value > -math.inf, value.dtype)
    else:
        bm = b if mask is None else xp.where(mask, b, xp.zeros_like(b))
        s = xp.sum(bm * e, axis=axes, keepdims=True)
        sign = xp.sign(s)
        value = m + xp.log(xp.abs(s))
    if xp.any(special):
        top = (xm == m) & (m > 0)
        if b is None:
            top_sum = xp.sum(xp.astype(top, arr.dtype), axis=axes, keepdims=True)
        else:
            top_sum = xp.sum(xp.where(top, b, xp.zeros_like(b)), axis=axes, keepdims=True)
        # +inf slices: +inf with the sign of the weights on the +inf entries (NaN if they cancel).
        inf_value = xp.where(top_sum == 0, xp.full_like(m, math.nan), xp.full_like(m, math.inf))
        inf_value = xp.where(m > 0, inf_value, m)  # -inf and NaN slices keep their max
        inf_sign = xp.where(m > 0, xp.sign(top_sum), xp.where(xp.isnan(m), m, xp.zeros_like(m)))
        inf_sign = xp.where(xp.isnan(inf_value), inf_value, inf_sign)
        value = xp.where(special, inf_value, value)
        sign = xp.where(special, inf_sign, sign)
    return value, sign
