"""Binary cross-entropy on logits: the sigmoid loss of multi-label problems."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from ..functional._rowwise import to_numpy
from ._common import check_reduction

__all__ = ["binary_cross_entropy_with_logits"]


def _broadcast(name, value, shape):
    if value is None:
        return None
    arr, _ = v.as_float_array(value, np, name=name)
    try:
        return np.broadcast_to(arr.astype(np.float64), shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast to logits of shape {shape}"
        ) from None


def _softplus(x):
    """``log(1 + e^x) = max(x, 0) + log1p(e^{-|x|})``: exp only sees ``-|x|``, so it never overflows."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


@v.own_errstate
def binary_cross_entropy_with_logits(
    logits, target, *, weight=None, pos_weight=None, reduction="mean", return_grad=False
):
    r"""Binary cross-entropy between ``sigmoid(logits)`` and targets in ``[0, 1]``, elementwise.

    .. math:: \ell = w \big[\, p_w\, y \log(1 + e^{-x}) + (1 - y) \log(1 + e^{x}) \big]
              = -w \big[\, p_w\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x)) \big]

    with gradient

    .. math:: \frac{\partial \ell}{\partial x} = w \big[(1 - y)\,\sigma(x) - p_w\, y\, \sigma(-x)\big].

    Parameters
    ----------
    logits : array_like, shape (...)
        One independent logit per entry (e.g. ``(n_samples, n_labels)`` for multi-label problems).
    target : array_like, shape of logits
        Targets in ``[0, 1]`` (soft labels allowed).
    weight : array_like, optional
        Broadcastable to ``logits``: rescales each entry's loss (torch's ``weight``).
    pos_weight : array_like, optional
        Broadcastable to ``logits`` (typically shape ``(n_labels,)``): weight of the positive term,
        to trade recall against precision (torch's ``pos_weight``).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` averages over every entry (as torch; weights do not enter the denominator).
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to ``logits`` (for
        ``reduction="none"``, of the sum of the losses).

    Returns
    -------
    loss : scalar, or ndarray of the shape of logits for ``reduction="none"``
        Dtype of the logits (float16/32/64 kept, ints become float64).
    dlogits : ndarray, shape of logits, only with ``return_grad=True``

    Notes
    -----
    Stable for any ``|x|``: ``log(1 + e^x)`` is evaluated as ``max(x, 0) + log1p(e^{-|x|})`` and both
    ``σ(x)`` and ``σ(-x)`` come from ``e^{-|x|}``, so the loss of ``x = 1e4, y = 0`` is exactly
    ``1e4`` and ``σ(-x)`` keeps its relative accuracy where ``1 - σ(x)`` would round to 0. A term
    whose coefficient is 0 counts as 0 even at an infinite logit (``x = +inf, y = 1`` has loss 0;
    torch gives NaN there). NaN logits give NaN.

    Examples
    --------
    >>> import luce
    >>> float(luce.binary_cross_entropy_with_logits([1e4, -2.0], [0.0, 0.0]))
    5000.063464...
    >>> loss, grad = luce.binary_cross_entropy_with_logits([0.0], [1.0], pos_weight=[3.0], return_grad=True)
    >>> float(loss), grad
    (2.0794415416798357, array([-1.5]))

    References
    ----------
    PyTorch, ``torch.nn.functional.binary_cross_entropy_with_logits`` (the option semantics).
    """
    return_grad = v.check_bool(return_grad, "return_grad")
    xp = v.array_namespace(logits, target, weight, pos_weight)
    logits, target, weight, pos_weight = to_numpy(xp, logits, target, weight, pos_weight)
    x, out_dtype = v.as_float_array(logits, np, name="logits")
    y, _ = v.as_float_array(target, np, name="target")
    if y.shape != x.shape:
        raise ValueError(f"target must have the shape of logits {x.shape}, got {y.shape}")
    reduction = check_reduction(reduction)
    w = _broadcast("weight", weight, x.shape)
    pw = _broadcast("pos_weight", pos_weight, x.shape)
    x64 = x.astype(np.float64)
    y = y.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        neg = 1.0 - y
        pos = y if pw is None else pw * y
        # 0 · inf counts as 0: a term with zero coefficient contributes nothing.
        loss = np.where(neg == 0, 0.0, neg * _softplus(x64)) + np.where(pos == 0, 0.0, pos * _softplus(-x64))
        loss = np.where(np.isnan(x64), np.nan, loss)
        if w is not None:
            loss = w * loss
        grad = None
        if return_grad:
            e = np.exp(-np.abs(x64))
            sig_pos = np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # σ(x)
            sig_neg = np.where(x64 >= 0, e / (1.0 + e), 1.0 / (1.0 + e))  # σ(-x), not 1 - σ(x)
            grad = neg * sig_pos - pos * sig_neg
            grad = np.where(np.isnan(x64), np.nan, grad)
            if w is not None:
                grad = w * grad
    if reduction == "none":
        out = loss.astype(out_dtype)
    else:
        total = loss.sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                total = total / loss.size if loss.size else np.float64(np.nan)
            if grad is not None and loss.size:
                grad = grad / loss.size
        out = out_dtype.type(total)
    if xp is not np:
        out = xp.asarray(np.asarray(out))
    if grad is None:
        return out
    grad = grad.astype(out_dtype)
    return out, (grad if xp is np else xp.asarray(grad))
