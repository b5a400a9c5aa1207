"""Gradients of softmax and log_softmax as vector-Jacobian products, never forming the Jacobian."""

from __future__ import annotations

from .. import _validation as v
from ._softmax import _finish

__all__ = ["log_softmax_vjp", "softmax_jacobian", "softmax_vjp"]


def _pair(primal, cotangent, axis, where, names):
    xp = v.array_namespace(primal, cotangent, where)
    p, out_dtype = v.as_float_array(primal, xp, name=names[0])
    c, _ = v.as_float_array(cotangent, xp, name="cotangent")
    if tuple(p.shape) != tuple(c.shape):
        raise ValueError(
            f"cotangent of shape {tuple(c.shape)} must have the shape of {names[0]} {tuple(p.shape)}"
        )
    c = xp.astype(c, p.dtype)
    axes = v.normalize_axes(axis, tuple(p.shape), name=names[0]) if p.ndim else None
    mask = v.prepare_where(where, p, xp)
    if mask is not None:
        # Masked outputs are constants: their cotangent carries no gradient.
        c = xp.where(mask, c, xp.zeros_like(c))
    return xp, p, c, axes, mask, out_dtype


@v.own_errstate
def softmax_vjp(probs, cotangent, axis=-1, *, where=None):
    r"""Gradient of ``<cotangent, softmax(x)>`` with respect to ``x``, from the probabilities.

    .. math:: \bar x = p \odot (\bar p - \langle \bar p, p \rangle), \qquad
              J = \mathrm{diag}(p) - p p^\top

    Parameters
    ----------
    probs : array_like, shape (..., n, ...)
        ``softmax(x, axis)``.
    cotangent : array_like, same shape as probs
        Upstream gradient ``dL/dp``.
    axis : int or tuple of ints, default -1
        The axis softmax normalised over.
    where : array_like of bool, optional
        The mask used in the forward pass: masked entries get gradient 0.

    Returns
    -------
    ndarray, same shape as probs
        ``dL/dx``, O(n) per slice (the n×n Jacobian is never formed).

    Examples
    --------
    >>> import luce
    >>> p = luce.softmax([1.0, 2.0, 3.0])
    >>> g = luce.softmax_vjp(p, [1.0, 0.0, 0.0])
    >>> bool(abs(g.sum()) < 1e-15)
    True
    """
    xp, p, c, axes, mask, out_dtype = _pair(probs, cotangent, axis, where, ("probs",))
    inner = xp.sum(p * c, axis=axes, keepdims=True)
    out = p * (c - inner)
    if mask is not None:
        out = xp.where(mask, out, xp.zeros_like(out))
    return _finish(xp, out, out_dtype)


@v.own_errstate
def log_softmax_vjp(log_probs, cotangent, axis=-1, *, where=None):
    r"""Gradient of ``<cotangent, log_softmax(x)>`` with respect to ``x``, from the log-probabilities.

    .. math:: \bar x = \bar\ell - e^{\ell} \sum_j \bar\ell_j

    Parameters
    ----------
    log_probs : array_like, shape (..., n, ...)
        ``log_softmax(x, axis)``.
    cotangent : array_like, same shape as log_probs
        Upstream gradient ``dL/dlog_p``.
    axis : int or tuple of ints, default -1
        The axis log_softmax normalised over.
    where : array_like of bool, optional
        The mask used in the forward pass: masked entries get gradient 0.

    Returns
    -------
    ndarray, same shape as log_probs

    Examples
    --------
    >>> import luce
    >>> lp = luce.log_softmax([1.0, 2.0, 3.0])
    >>> luce.log_softmax_vjp(lp, [0.0, 0.0, -1.0])  # gradient of the cross-entropy at class 2
    array([ 0.09003057,  0.24472847, -0.33475904])
    """
    xp, lp, c, axes, mask, out_dtype = _pair(log_probs, cotangent, axis, where, ("log_probs",))
    out = c - xp.exp(lp) * xp.sum(c, axis=axes, keepdims=True)
    if mask is not None:
        out = xp.where(mask, out, xp.zeros_like(out))
    return _finish(xp, out, out_dtype)


@v.own_errstate
def softmax_jacobian(probs):
    r"""The explicit Jacobian ``diag(p) - p pᵀ`` of softmax at probabilities ``p``.

    Parameters
    ----------
    probs : array_like, shape (..., n)
        Probabilities along the last axis; leading axes are a batch.

    Returns
    -------
    ndarray, shape (..., n, n)
        ``J[..., i, j] = d p_i / d x_j``. For gradients prefer :func:`softmax_vjp` (O(n), not O(n²)).

    Examples
    --------
    >>> import luce
    >>> luce.softmax_jacobian([0.5, 0.5])
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    xp = v.array_namespace(probs)
    p, out_dtype = v.as_float_array(probs, xp, name="probs")
    if p.ndim == 0:
        raise ValueError("probs must have at least one axis, got a scalar")
    n = p.shape[-1]
    outer = p[..., :, None] * p[..., None, :]
    eye = xp.eye(n, dtype=p.dtype)
    return _finish(xp, p[..., :, None] * eye - outer, out_dtype)
