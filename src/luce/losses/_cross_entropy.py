"""Softmax cross-entropy with torch's options, and its gradient from the same fused pass."""

from __future__ import annotations

import math

import numpy as np

from .. import _validation as v
from .._kernels import _dispatch
from ..functional._softmax import log_softmax
from ._common import LossInput, check_reduction, finish_loss

__all__ = ["cross_entropy"]


def _check_smoothing(label_smoothing) -> float:
    return v.check_real(label_smoothing, "label_smoothing", low=0.0, high=1.0, what="a float in [0, 1]")


def _check_weight(weight, n_classes) -> np.ndarray | None:
    if weight is None:
        return None
    w, _ = v.as_float_array(weight, np, name="weight")
    if w.shape != (n_classes,):
        raise ValueError(f"weight must have shape ({n_classes},) (one per class), got {w.shape}")
    return w.astype(np.float64)


def _reference(rows, index, probs, active, w, eps, t, want_grad):
    """Per-row losses and gradients from the exact log_softmax (handles every edge case)."""
    n_rows, n = rows.shape
    lp = log_softmax(rows, axis=-1, temperature=t).astype(np.float64)
    wv = np.ones(n) if w is None else w
    with np.errstate(invalid="ignore"):
        if index is not None:
            rng_ = np.arange(n_rows)
            wy = wv[index]
            nll = np.where(wy == 0, 0.0, -wy * lp[rng_, index])
            loss = (1.0 - eps) * nll if eps < 1.0 else np.zeros(n_rows)
            if eps > 0.0:
                loss = loss - eps / n * np.where(wv == 0, 0.0, wv * lp).sum(axis=1)
            loss = np.where(active, loss, 0.0)
            grad = None
            if want_grad:
                coef = (1.0 - eps) * wy + eps * wv.sum() / n
                grad = np.exp(lp) * coef[:, None] - eps / n * wv
                grad[rng_, index] -= (1.0 - eps) * wy
                grad[~active] = 0.0
        else:
            c = wv * ((1.0 - eps) * probs + eps / n)
            loss = -np.where(c == 0, 0.0, c * lp).sum(axis=1)
            grad = None
            if want_grad:
                grad = np.exp(lp) * c.sum(axis=1, keepdims=True) - c
    if grad is not None:
        grad = (grad / t).astype(rows.dtype)
    return loss, grad


@v.own_errstate
def cross_entropy(
    logits,
    target,
    axis=-1,
    *,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    temperature=1.0,
    return_grad=False,
):
    r"""Softmax cross-entropy between logits and class indices or class probabilities.

    With ``log p = log_softmax(logits / T)`` along ``axis``, ``C`` classes, smoothing ``ε`` and class
    weights ``w``, the loss of one sample is

    .. math:: \ell = -\sum_c w_c\, q_c \log p_c, \qquad
              q = (1 - \varepsilon)\,y + \varepsilon / C

    where ``y`` is the one-hot of the class index, or the given probabilities. Its gradient is

    .. math:: \frac{\partial \ell}{\partial \mathrm{logits}} =
              \frac{1}{T}\Big(p \sum_c w_c q_c - w \odot q\Big)

    (softmax minus the smoothed target when there are no weights), computed in the same fused pass.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, ``C`` classes along ``axis``. Any size is safe (max shift and the
        ``log1p`` form of log-sum-exp); ``[1e4, 0]`` with target 1 gives exactly ``1e4``.
    target : array_like of int, shape logits.shape without axis; or of float, shape logits.shape
        Class indices in ``[0, C)`` (or ``ignore_index``), or class probabilities.
    axis : int, default -1
        The class axis.
    weight : array_like, shape (C,), optional
        A weight per class (as torch's ``weight``).
    ignore_index : int, optional
        Class-index targets equal to it contribute no loss and no gradient, and leave the mean.
    label_smoothing : float in [0, 1], default 0.0
        Mixes the target with the uniform distribution over classes.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` follows torch.nn.functional.cross_entropy exactly: for class indices the sum is
        divided by the total weight ``Σ_i w_{y_i}`` of the non-ignored samples (their count without
        weights); for probabilities, by the number of samples. An empty mean is NaN, as in torch.
    temperature : float > 0, default 1.0
        Divides the logits before the softmax; ``inf`` gives the uniform distribution over the
        finite logits (and a zero gradient).
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to ``logits`` (for
        ``reduction="none"``, of the sum of the per-sample losses).

    Returns
    -------
    loss : scalar, or ndarray of shape logits.shape without axis for ``reduction="none"``
        Dtype of the logits (float16/32/64 kept, ints become float64); sums are accumulated in float64.
    dlogits : ndarray, shape of logits, only with ``return_grad=True``

    Notes
    -----
    Edge cases follow :func:`luce.log_softmax` (docs/conventions.md): a NaN logit makes its sample's
    loss and gradient NaN; a ``-inf`` logit is a class of probability zero (infinite loss only if the
    smoothed target puts mass on it). ``0·log 0`` counts as 0, so a probability target of 0 on a
    ``-inf`` logit gives a finite loss (torch gives NaN there). NumPy float32/float64 input above a
    few thousand elements runs a fused compiled kernel: one read of the logits, one write of the gradient.

    Examples
    --------
    >>> import luce
    >>> float(luce.cross_entropy([[2.0, 1.0, 0.1]], [0]))
    0.4170300162778335
    >>> float(luce.cross_entropy([[1e4, 0.0]], [1]))
    10000.0
    >>> loss, grad = luce.cross_entropy([[2.0, 1.0, 0.1]], [0], return_grad=True)
    >>> grad
    array([[-0.34099886,  0.24243297,  0.09856589]])

    References
    ----------
    PyTorch, ``torch.nn.functional.cross_entropy`` (the option semantics); C. Szegedy et al.,
    "Rethinking the Inception architecture for computer vision", CVPR 2016 (label smoothing).
    """
    inp = LossInput(logits, target, axis, ignore_index, extra=(weight,))
    eps = _check_smoothing(label_smoothing)
    reduction = check_reduction(reduction)
    t = v.check_temperature(temperature)
    w = _check_weight(inp.extra[0], inp.n_classes)
    rows = inp.rows
    grad_factor = 1.0
    if math.isinf(t):
        # The T → ∞ limit: finite logits tie at 0 (as softmax does); the gradient vanishes.
        rows = np.where(np.isfinite(rows), 0.0, rows).astype(rows.dtype)
        t, grad_factor = 1.0, 0.0
    want_grad = v.check_bool(return_grad, "return_grad")
    n_rows = rows.shape[0]
    if inp.index is not None:
        wy = np.ones(n_rows) if w is None else w[inp.index]
        denominator = float(np.where(inp.active, wy, 0.0).sum())
    else:
        denominator = float(n_rows)
    # The reduction's factor goes into the gradient as it is written (no second pass over it).
    if reduction == "mean":
        grad_factor *= 1.0 / denominator if denominator != 0 else 0.0
    loss = np.zeros(n_rows)
    grad = None
    kernel = _dispatch.lookup("cross_entropy", rows) if n_rows else None
    if kernel is not None:
        grad = np.empty_like(rows) if want_grad else None
        flags = np.zeros(n_rows, dtype=np.uint8)
        kernel(
            rows,
            inp.index,
            inp.probs,
            w,
            inp.active,
            eps,
            t,
            grad_factor,
            grad,
            loss,
            flags,
            _dispatch.kernel_threads(),
        )
        special = flags.astype(bool)
        if special.any():
            sl, sg = _reference(
                rows[special],
                None if inp.index is None else inp.index[special],
                None if inp.probs is None else inp.probs[special],
                inp.active[special],
                w,
                eps,
                t,
                want_grad,
            )
            loss[special] = sl
            if want_grad:
                grad[special] = sg * sg.dtype.type(grad_factor)
    elif n_rows:
        loss, grad = _reference(rows, inp.index, inp.probs, inp.active, w, eps, t, want_grad)
        if grad is not None and grad_factor != 1.0:
            grad *= grad.dtype.type(grad_factor)
    elif want_grad:
        grad = np.empty_like(rows)
    return finish_loss(inp, loss, grad, reduction, denominator, grad_scaled=True)
