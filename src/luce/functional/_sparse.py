r"""Sparse alternatives to softmax: sparsemax, 1.5-entmax and α-entmax, and their gradients.

All three are the α-entmax family (Peters, Niculae & Martins 2019)

.. math:: \alpha\text{-entmax}(x)_i = \big[(\alpha - 1)\,x_i - \tau\big]_+^{1/(\alpha-1)}, \qquad
          \tau \text{ such that } \textstyle\sum_i p_i = 1,

with sparsemax at ``α = 2`` and softmax the limit ``α → 1``. Unlike softmax they give exact zeros.

Two paths compute the threshold ``τ`` (docs/conventions.md, "Backends"): the NumPy reference sorts each
row (the textbook O(n log n) definition), and the compiled kernels find it in expected linear time by
filtering the candidates ``x_i > max x - 1/(α-1)`` and pivoting among them (see
``luce/_kernels/csrc/sparse.h``). Both give the same support and the same ``τ`` to rounding.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _validation as v
from .._kernels import _dispatch
from ._rowwise import Rows, from_numpy, prepare
from ._softmax import _finish, softmax
from ._vjp import _pair

__all__ = [
    "entmax15",
    "entmax15_vjp",
    "entmax_bisect",
    "entmax_bisect_vjp",
    "sparsemax",
    "sparsemax_vjp",
]

# Entries with a scaled, shifted score d <= -1 are never in the support (τ >= -1), so the reference
# clips d at -2: -inf (masked) entries then need no special arithmetic and nothing else changes.
_CLIP = -2.0


def _edge_rows(rows: np.ndarray) -> np.ndarray:
    """The edge rules for rows whose maximum is not finite: NaN → all NaN, ``+inf`` entries share the
    mass equally, a row with no finite entry (all ``-inf`` or masked) → all zeros."""
    m = rows.max(axis=1, keepdims=True)
    top = (rows == np.inf).astype(rows.dtype)
    n_top = top.sum(axis=1, keepdims=True)
    out = np.where(n_top > 0, top / np.maximum(n_top, 1), 0.0).astype(rows.dtype)
    return np.where(np.isnan(m), np.nan, out).astype(rows.dtype)


def _shifted(rows: np.ndarray, scale: float) -> np.ndarray:
    d = (rows.astype(np.float64) - rows.max(axis=1, keepdims=True)) * scale
    return np.maximum(d, _CLIP)


def _sparsemax_reference(rows: np.ndarray) -> np.ndarray:
    """Sparsemax of rows with a finite maximum by the sort-based definition (Martins & Astudillo 2016)."""
    d = _shifted(rows, 1.0)
    zs = -np.sort(-d, axis=1)
    k = np.arange(1, d.shape[1] + 1)
    cs = np.cumsum(zs, axis=1)
    size = np.count_nonzero(1.0 + k * zs > cs, axis=1)
    tau = (np.take_along_axis(cs, size[:, None] - 1, axis=1) - 1.0) / size[:, None]
    return np.maximum(d - tau, 0.0)


def _entmax15_reference(rows: np.ndarray) -> np.ndarray:
    """1.5-entmax of rows with a finite maximum by the sort-based algorithm of Peters et al. (2019)."""
    d = _shifted(rows, 0.5)
    zs = -np.sort(-d, axis=1)
    k = np.arange(1, d.shape[1] + 1)
    mean = np.cumsum(zs, axis=1) / k
    ss = np.cumsum(zs * zs, axis=1) - k * mean * mean  # k·variance of the k largest
    delta = np.maximum((1.0 - ss) / k, 0.0)
    tau = mean - np.sqrt(delta)
    size = np.count_nonzero(tau <= zs, axis=1)
    tau_star = np.take_along_axis(tau, size[:, None] - 1, axis=1)
    return np.maximum(d - tau_star, 0.0) ** 2


def _bisect_reference(rows: np.ndarray, alpha: float, n_iter: int) -> np.ndarray:
    """α-entmax by safeguarded Newton–bisection on τ, vectorised over rows; the same steps as the kernel's
    ``luce_bisect_threshold`` (luce/_kernels/csrc/sparse.h) (rtsafe, Press et al., Numerical Recipes §9.4)."""
    am1 = alpha - 1.0
    beta = 1.0 / am1
    d = _shifted(rows, am1)
    k = np.count_nonzero(d > -1.0, axis=1)[:, None]
    lo = np.full(k.shape, -1.0)
    hi = -((1.0 / k) ** am1)
    tau = 0.5 * (lo + hi)
    done = np.zeros(k.shape, dtype=bool)
    eps = np.finfo(np.float64).eps
    for _ in range(n_iter):
        u = np.maximum(d - tau, 0.0)
        with np.errstate(divide="ignore"):  # 0 ** (β - 1) for α > 2 lands in the discarded branch
            q = np.where(u > 0.0, u ** (beta - 1.0), 0.0)
        f = (q * u).sum(axis=1, keepdims=True) - 1.0
        df = q.sum(axis=1, keepdims=True)
        lo = np.where(f > 0.0, tau, lo)
        hi = np.where(f < 0.0, tau, hi)
        step = tau + f / (beta * df)
        new = np.where((lo < step) & (step < hi), step, 0.5 * (lo + hi))
        stop = (f == 0.0) | (new == tau) | (hi - lo <= 4.0 * eps * np.abs(tau))
        tau = np.where(done | stop, tau, new)
        done |= stop
        if done.all():
            break
    p = np.maximum(d - tau, 0.0) ** beta
    return p / p.sum(axis=1, keepdims=True)


def _rows_forward(kind: str, rows: np.ndarray, alpha: float, n_iter: int) -> np.ndarray:
    out = np.empty_like(rows)
    op = "entmax_bisect" if kind == "bisect" else kind
    kernel = _dispatch.lookup(op, rows)
    if kernel is not None:
        flags = np.zeros(rows.shape[0], dtype=np.uint8)
        extra = (float(alpha), int(n_iter)) if kind == "bisect" else ()
        kernel(rows, *extra, out, flags, _dispatch.kernel_threads())
        special = flags.astype(bool)
    else:
        special = ~np.isfinite(rows.max(axis=1))
        ok = ~special
        if ok.any():
            r = rows[ok]
            if kind == "sparsemax":
                res = _sparsemax_reference(r)
            elif kind == "entmax15":
                res = _entmax15_reference(r)
            else:
                res = _bisect_reference(r, alpha, n_iter)
            out[ok] = res
    if special.any():
        out[special] = _edge_rows(rows[special])
    return out


def _forward(kind, x, axis, where, alpha=2.0, n_iter=0):
    xp, arr, out_dtype, axes, mask, scalar = prepare(x, axis, where)
    layout = Rows(arr, axes)
    rows = layout.rows
    if mask is not None:
        rows = np.where(layout.take(mask), rows, -np.inf).astype(rows.dtype)
    out = rows.copy() if rows.size == 0 else _rows_forward(kind, rows, alpha, n_iter)
    out = layout.back(out)
    if scalar:
        out = out.reshape(())
    return from_numpy(xp, _finish(np, np.asarray(out), out_dtype))


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number >= 1, got {alpha!r}")
    a = float(alpha)
    if not (a >= 1.0 and math.isfinite(a)):
        raise ValueError(f"alpha must be a finite number >= 1, got {alpha!r}")
    return a


@v.own_errstate
def sparsemax(x, axis=-1, *, where=None):
    r"""Sparsemax: the Euclidean projection of ``x`` onto the probability simplex.

    .. math:: \mathrm{sparsemax}(x) = \arg\min_{p \in \Delta} \lVert p - x \rVert^2, \qquad
              p_i = [x_i - \tau]_+, \quad \textstyle\sum_i p_i = 1

    Like softmax it is shift invariant and order preserving, but it returns exact zeros for every
    entry at least 1 below the maximum (and often more).

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores; lists, scalars, NumPy arrays and array-API arrays (torch, array-api-strict) are
        accepted and the result is the same kind of array.
    axis : int or tuple of ints, default -1
        The axis (or axes) normalised over; negative axes count from the end.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: entries where it is False get probability 0.

    Returns
    -------
    ndarray, same shape as x
        Probabilities summing to one along ``axis``; float16/32/64 are preserved, ints and bools
        become float64.

    Notes
    -----
    Edge semantics as softmax (docs/conventions.md): a fully masked or all ``-inf`` slice gives
    zeros, ``+inf`` entries share the mass equally, NaN makes the slice NaN. The threshold is found
    in expected linear time by the compiled kernels (the reference path sorts each row).

    Examples
    --------
    >>> import luce
    >>> luce.sparsemax([2.0, 1.5, 0.1])
    array([0.75, 0.25, 0.  ])

    References
    ----------
    A. F. T. Martins, R. F. Astudillo, "From softmax to sparsemax: a sparse model of attention and
    multi-label classification", ICML 2016.
    """
    return _forward("sparsemax", x, axis, where)


@v.own_errstate
def entmax15(x, axis=-1, *, where=None):
    r"""1.5-entmax: the sparse map between softmax and sparsemax, in closed form.

    .. math:: \mathrm{entmax}_{1.5}(x)_i = \big[x_i / 2 - \tau\big]_+^2, \quad \textstyle\sum_i p_i = 1

    the α = 1.5 member of :func:`entmax_bisect`, the maximiser of ``<x, p>`` plus the Tsallis
    1.5-entropy over the simplex. Entries at least 2 below the maximum get exactly 0.

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores; see :func:`sparsemax` for accepted inputs.
    axis : int or tuple of ints, default -1
        The axis (or axes) normalised over.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: masked entries get probability 0.

    Returns
    -------
    ndarray, same shape as x
        Probabilities summing to one along ``axis``; dtype rule as :func:`sparsemax`.

    Examples
    --------
    >>> import luce
    >>> luce.entmax15([2.0, 1.0, -2.0])
    array([0.83071891, 0.16928109, 0.        ])

    References
    ----------
    B. Peters, V. Niculae, A. F. T. Martins, "Sparse sequence-to-sequence models", ACL 2019.
    """
    return _forward("entmax15", x, axis, where)


@v.own_errstate
def entmax_bisect(x, alpha=1.5, axis=-1, n_iter=50, *, where=None):
    r"""α-entmax for any ``α >= 1``, with the threshold found by bisection.

    .. math:: \alpha\text{-entmax}(x)_i = \big[(\alpha - 1)\,x_i - \tau\big]_+^{1/(\alpha-1)},
              \quad \textstyle\sum_i p_i = 1

    ``α = 2`` is :func:`sparsemax`, ``α = 1.5`` is :func:`entmax15` and ``α = 1`` is
    :func:`softmax` (returned exactly). ``τ`` is bracketed in ``[-1, -(1/k)^{α-1}]`` (after the max
    shift, ``k`` the number of candidate entries ``(α-1)(x_i - max x) > -1``) and refined by at most
    ``n_iter`` safeguarded Newton steps, each of which keeps the bracket and falls back to halving it
    (rtsafe), so it is never slower to converge than bisection and usually done in a few steps. The
    result is divided by its sum, so it sums to one whatever ``n_iter``.

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores; see :func:`sparsemax` for accepted inputs.
    alpha : float >= 1, default 1.5
        The entmax parameter: larger is sparser.
    axis : int or tuple of ints, default -1
        The axis (or axes) normalised over.
    n_iter : int >= 1, default 50
        Most steps taken; the search stops earlier once ``τ`` stops moving.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: masked entries get probability 0.

    Returns
    -------
    ndarray, same shape as x
        Probabilities summing to one along ``axis``; dtype rule as :func:`sparsemax`.

    Examples
    --------
    >>> import luce
    >>> luce.entmax_bisect([2.0, 1.5, 0.1], alpha=2.0)
    array([0.75, 0.25, 0.  ])

    References
    ----------
    M. Blondel, A. F. T. Martins, V. Niculae, "Learning classifiers with Fenchel-Young losses:
    generalized entropies, margins, and algorithms", AISTATS 2019; W. H. Press et al., Numerical
    Recipes, 3rd ed., §9.4 (rtsafe).
    """
    a = _check_alpha(alpha)
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be an int >= 1, got {n_iter!r}")
    if a == 1.0:
        return softmax(x, axis, where=where)
    return _forward("bisect", x, axis, where, alpha=a, n_iter=int(n_iter))


def _weighted_vjp(probs, cotangent, axis, where, power, name):
    """``s ⊙ c - s <s, c> / Σ s`` with ``s = p^power`` on the support, 0 elsewhere."""
    xp, p, c, axes, mask, out_dtype = _pair(probs, cotangent, axis, where, (name,))
    if axes is None:  # a scalar: one entry, whose probability is constant
        return _finish(xp, xp.zeros_like(p), out_dtype)
    support = p > 0
    if power == 0.0:
        s = xp.astype(support, p.dtype)
    elif power == 0.5:
        s = xp.sqrt(xp.where(support, p, xp.zeros_like(p)))
    else:
        s = xp.where(support, p**power, xp.zeros_like(p))
    s = xp.where(xp.isnan(p), p, s)
    total = xp.sum(s, axis=axes, keepdims=True)
    total = xp.where(total == 0, xp.ones_like(total), total)
    out = s * c - s * (xp.sum(s * c, axis=axes, keepdims=True) / total)
    if mask is not None:
        out = xp.where(mask, out, xp.zeros_like(out))
    return _finish(xp, out, out_dtype)


@v.own_errstate
def sparsemax_vjp(probs, cotangent, axis=-1, *, where=None):
    r"""Gradient of ``<cotangent, sparsemax(x)>`` with respect to ``x``, from the probabilities.

    .. math:: \bar x_i = [p_i > 0]\,\big(\bar p_i - \tfrac{1}{|S|}\textstyle\sum_{j \in S} \bar p_j\big),
              \qquad J = \mathrm{diag}(s) - s s^\top / |S|, \; s = [p > 0]

    Parameters
    ----------
    probs : array_like, shape (..., n, ...)
        ``sparsemax(x, axis)``.
    cotangent : array_like, same shape as probs
        Upstream gradient ``dL/dp``.
    axis : int or tuple of ints, default -1
        The axis sparsemax normalised over.
    where : array_like of bool, optional
        The mask of the forward pass: masked entries get gradient 0.

    Returns
    -------
    ndarray, same shape as probs
        ``dL/dx``: zero off the support, centred on it.

    Examples
    --------
    >>> import luce
    >>> p = luce.sparsemax([2.0, 1.5, 0.1])
    >>> luce.sparsemax_vjp(p, [1.0, 0.0, 5.0])
    array([ 0.5, -0.5,  0. ])

    References
    ----------
    A. F. T. Martins, R. F. Astudillo, ICML 2016, section 2.5.
    """
    return _weighted_vjp(probs, cotangent, axis, where, 0.0, "probs")


@v.own_errstate
def entmax15_vjp(probs, cotangent, axis=-1, *, where=None):
    r"""Gradient of ``<cotangent, entmax15(x)>`` with respect to ``x``, from the probabilities.

    .. math:: \bar x = s \odot \bar p - s\,\frac{\langle s, \bar p\rangle}{\sum_j s_j},
              \qquad s = \sqrt{p}, \quad J = \mathrm{diag}(s) - \frac{s s^\top}{\sum_j s_j}

    Parameters
    ----------
    probs : array_like, shape (..., n, ...)
        ``entmax15(x, axis)``.
    cotangent : array_like, same shape as probs
        Upstream gradient ``dL/dp``.
    axis : int or tuple of ints, default -1
        The axis entmax15 normalised over.
    where : array_like of bool, optional
        The mask of the forward pass: masked entries get gradient 0.

    Returns
    -------
    ndarray, same shape as probs

    Examples
    --------
    >>> import luce
    >>> p = luce.entmax15([2.0, 1.0, -2.0])
    >>> g = luce.entmax15_vjp(p, [1.0, 0.0, 0.0])
    >>> bool(abs(g.sum()) < 1e-15 and g[2] == 0.0)
    True

    References
    ----------
    B. Peters, V. Niculae, A. F. T. Martins, ACL 2019, Proposition 2.
    """
    return _weighted_vjp(probs, cotangent, axis, where, 0.5, "probs")


@v.own_errstate
def entmax_bisect_vjp(probs, cotangent, alpha=1.5, axis=-1, *, where=None):
    r"""Gradient of ``<cotangent, entmax_bisect(x, alpha)>`` with respect to ``x``.

    .. math:: \bar x = s \odot \bar p - s\,\frac{\langle s, \bar p\rangle}{\sum_j s_j},
              \qquad s_i = p_i^{2 - \alpha} \text{ on the support, 0 elsewhere}

    ``α = 1`` gives :func:`softmax_vjp`, ``α = 2`` :func:`sparsemax_vjp`.

    Parameters
    ----------
    probs : array_like, shape (..., n, ...)
        ``entmax_bisect(x, alpha, axis)``.
    cotangent : array_like, same shape as probs
        Upstream gradient ``dL/dp``.
    alpha : float >= 1, default 1.5
        The α of the forward pass.
    axis : int or tuple of ints, default -1
        The axis normalised over.
    where : array_like of bool, optional
        The mask of the forward pass: masked entries get gradient 0.

    Returns
    -------
    ndarray, same shape as probs

    Examples
    --------
    >>> import luce
    >>> p = luce.entmax_bisect([2.0, 1.5, 0.1], alpha=2.0)
    >>> luce.entmax_bisect_vjp(p, [1.0, 0.0, 5.0], alpha=2.0)
    array([ 0.5, -0.5,  0. ])

    References
    ----------
    B. Peters, V. Niculae, A. F. T. Martins, ACL 2019, Proposition 2.
    """
    a = _check_alpha(alpha)
    return _weighted_vjp(probs, cotangent, axis, where, 2.0 - a, "probs")
