r"""Fenchel–Young losses of sparsemax and 1.5-entmax.

For a regulariser Ω (minus an entropy) with prediction map ``p*(z) = argmax_{p∈Δ} <z, p> - Ω(p)``, the
Fenchel–Young loss is

.. math:: L(z; q) = \Omega^*(z) + \Omega(q) - \langle z, q\rangle
          = \langle z, p^* - q\rangle + H(p^*) - H(q) \;\ge 0, \qquad \nabla_z L = p^* - q,

with ``H = -Ω`` the entropy. It is zero exactly when ``p* = q``. Softmax cross-entropy is the case of
the Shannon entropy; here ``H`` is the Tsallis α-entropy ``(1 - Σ p^α) / (α(α-1))``: α = 2 gives the
sparsemax loss (Gini entropy ``(1 - Σ p²)/2``), α = 1.5 the 1.5-entmax loss.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from ..functional._sparse import _rows_forward
from ._common import LossInput, check_reduction, finish_loss

__all__ = ["entmax15_loss", "sparsemax_loss"]


def _tsallis(p: np.ndarray, alpha: float) -> np.ndarray:
    s = (p * p).sum(axis=1) if alpha == 2.0 else (p * np.sqrt(p)).sum(axis=1)
    return (1.0 - s) / (alpha * (alpha - 1.0))


def _fenchel_young(kind, alpha, logits, target, axis, ignore_index, reduction, return_grad):
    return_grad = v.check_bool(return_grad, "return_grad")
    inp = LossInput(logits, target, axis, ignore_index)
    reduction = check_reduction(reduction)
    rows = inp.rows
    n_rows = rows.shape[0]
    p = _rows_forward(kind, rows, alpha, 0).astype(np.float64) if n_rows else np.zeros(rows.shape)
    z = rows.astype(np.float64)
    with np.errstate(invalid="ignore"):
        m = z.max(axis=1, keepdims=True) if n_rows else np.zeros((0, 1))
        finite = np.isfinite(m)
        zs = z - np.where(finite, m, 0.0)  # the loss is shift invariant: shift for accuracy
        inner = np.where(p > 0, zs * p, 0.0).sum(axis=1)
        if inp.index is not None:
            arange = np.arange(n_rows)
            inner = inner - zs[arange, inp.index]
            q = np.zeros_like(p)
            q[arange, inp.index] = 1.0
            h_q = 0.0
        else:
            q = inp.probs
            inner = inner - np.where(q > 0, zs * q, 0.0).sum(axis=1)
            h_q = _tsallis(q, alpha)
        loss = np.maximum(inner + _tsallis(p, alpha) - h_q, 0.0)  # >= 0 exactly; clamp rounding
        # A NaN or +inf logit: the loss is undefined (∞ - ∞); no finite logit: the target sits on -inf.
        m1 = m[:, 0]
        loss = np.where(np.isnan(m1) | (m1 == np.inf), np.nan, np.where(m1 == -np.inf, np.inf, loss))
        loss = np.where(inp.active, loss, 0.0)
    grad = None
    if return_grad:
        grad = p - q
        grad[~inp.active] = 0.0
        grad = grad.astype(rows.dtype)
    denominator = float(inp.active.sum()) if inp.index is not None else float(n_rows)
    out = finish_loss(inp, loss, grad, reduction, denominator)
    return out


@v.own_errstate
def sparsemax_loss(logits, target, axis=-1, *, ignore_index=None, reduction="mean", return_grad=False):
    r"""The sparsemax loss: the Fenchel–Young loss whose prediction map is :func:`luce.sparsemax`.

    .. math:: L(z; q) = \langle z, p - q\rangle + \tfrac12\big(\lVert q\rVert^2 - \lVert p\rVert^2\big),
              \quad p = \mathrm{sparsemax}(z), \qquad \nabla_z L = p - q

    Non-negative, convex in ``z``, and zero exactly when ``sparsemax(z) == q`` (for a class index,
    when the target logit leads every other by at least 1: a margin, unlike cross-entropy).

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Scores, ``C`` classes along ``axis``.
    target : array_like of int, shape logits.shape without axis; or of float, shape logits.shape
        Class indices in ``[0, C)`` (or ``ignore_index``), or class probabilities.
    axis : int, default -1
        The class axis.
    ignore_index : int, optional
        Class-index targets equal to it contribute no loss and no gradient, and leave the mean.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by the number of non-ignored samples.
    return_grad : bool, default False
        Also return the gradient with respect to ``logits`` of the returned loss.

    Returns
    -------
    loss : scalar, or ndarray of shape logits.shape without axis for ``reduction="none"``
    dlogits : ndarray, shape of logits, only with ``return_grad=True``

    Notes
    -----
    A sample with a NaN or ``+inf`` logit has a NaN loss (``∞ - ∞``); a ``-inf`` logit is a class of
    probability 0, with an infinite loss if the target puts mass on it.

    Examples
    --------
    >>> import luce
    >>> float(luce.sparsemax_loss([[3.0, 1.0, 0.0]], [0]))  # margin >= 1: exactly zero
    0.0
    >>> loss, grad = luce.sparsemax_loss([[1.0, 1.5, 0.0]], [0], return_grad=True)
    >>> float(loss), grad
    (0.5625, array([[-0.75,  0.75,  0.  ]]))

    References
    ----------
    A. F. T. Martins, R. F. Astudillo, ICML 2016; M. Blondel, A. F. T. Martins, V. Niculae,
    "Learning with Fenchel-Young losses", JMLR 21 (2020).
    """
    return _fenchel_young("sparsemax", 2.0, logits, target, axis, ignore_index, reduction, return_grad)


@v.own_errstate
def entmax15_loss(logits, target, axis=-1, *, ignore_index=None, reduction="mean", return_grad=False):
    r"""The 1.5-entmax loss: the Fenchel–Young loss whose prediction map is :func:`luce.entmax15`.

    .. math:: L(z; q) = \langle z, p - q\rangle + \frac{\sum_i q_i^{3/2} - \sum_i p_i^{3/2}}{3/4},
              \quad p = \mathrm{entmax15}(z), \qquad \nabla_z L = p - q

    Non-negative, convex in ``z``, and zero exactly when ``entmax15(z) == q`` (for a class index,
    when the target logit leads every other by at least 2).

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Scores, ``C`` classes along ``axis``.
    target : array_like of int, shape logits.shape without axis; or of float, shape logits.shape
        Class indices in ``[0, C)`` (or ``ignore_index``), or class probabilities.
    axis : int, default -1
        The class axis.
    ignore_index : int, optional
        Class-index targets equal to it contribute no loss and no gradient, and leave the mean.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by the number of non-ignored samples.
    return_grad : bool, default False
        Also return the gradient with respect to ``logits`` of the returned loss.

    Returns
    -------
    loss : scalar, or ndarray of shape logits.shape without axis for ``reduction="none"``
    dlogits : ndarray, shape of logits, only with ``return_grad=True``

    Examples
    --------
    >>> import luce
    >>> float(luce.entmax15_loss([[4.0, 1.0, 0.0]], [0]))
    0.0
    >>> loss, grad = luce.entmax15_loss([[1.0, 1.5, 0.0]], [1], return_grad=True)
    >>> grad
    array([[ 0.324041  , -0.32883601,  0.00479501]])

    References
    ----------
    B. Peters, V. Niculae, A. F. T. Martins, ACL 2019; M. Blondel, A. F. T. Martins, V. Niculae,
    JMLR 21 (2020).
    """
    return _fenchel_young("entmax15", 1.5, logits, target, axis, ignore_index, reduction, return_grad)
