"""Choosing with softmax: Gumbel-softmax relaxed samples, categorical sampling by the Gumbel-max trick
with top-k / nucleus truncation, and the top-k probabilities without forming the softmax."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _validation as v
from .._kernels import _dispatch
from ._rowwise import Rows, from_numpy, prepare
from ._softmax import _finish, log_softmax, softmax

__all__ = ["gumbel_softmax", "sample", "topk_softmax"]

# Gumbel noise is drawn in blocks of at most this many values, so many draws over a large vocabulary
# never hold more than ~128 MiB of noise at once.
_NOISE_BLOCK = 1 << 24


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(None if rng is None else int(rng))
    if isinstance(rng, np.random.SeedSequence | np.random.BitGenerator):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def _int_axis(axis, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {axis!r}")
    return int(axis)


def _scaled(rows: np.ndarray, t: float) -> np.ndarray:
    """``(x - max x) / T`` per row in float64; a row with ``+inf`` entries keeps them as equal
    finite scores (0) and drops the rest (the limit of raising them together), a row with no finite
    entry stays ``-inf`` and a row with a NaN stays NaN."""
    x = rows.astype(np.float64)
    if x.shape[1] == 0:
        return x  # an empty axis: nothing to shift (softmax of it is empty too)
    with np.errstate(invalid="ignore"):
        m = x.max(axis=1, keepdims=True)
        if math.isinf(t):  # the T → ∞ limit: the finite entries tie
            s = np.where(np.isfinite(x), 0.0, x)
            s = np.where(s == np.inf, 0.0, s)
            s = np.where(m == np.inf, np.where(x == np.inf, 0.0, -np.inf), s)
        else:
            s = np.where(np.isfinite(m), (x - np.where(np.isfinite(m), m, 0.0)) / t, x)
            s = np.where(m == np.inf, np.where(x == np.inf, 0.0, -np.inf), s)
        s = np.where(np.isnan(m), np.nan, s)
    return s


@v.own_errstate
def gumbel_softmax(logits, temperature=1.0, *, hard=False, axis=-1, rng=None):
    r"""A relaxed categorical sample: softmax of the logits perturbed by Gumbel noise.

    .. math:: y = \mathrm{softmax}\big((x + g) / T\big), \qquad g_i = -\log(-\log u_i),\;
              u_i \sim \mathcal U(0, 1)

    As ``T → 0`` the sample tends to the one-hot of ``argmax(x + g)``, which is distributed as
    ``softmax(x)`` (the Gumbel-max trick).

    Parameters
    ----------
    logits : array_like, shape (..., n, ...)
        Unnormalised log-probabilities along ``axis``.
    temperature : float > 0, default 1.0
        Relaxation temperature ``T``.
    hard : bool, default False
        Return the one-hot vector of ``argmax(x + g)`` (the forward value of the straight-through
        estimator; its gradient is taken through the soft sample, e.g. with :func:`softmax_vjp`).
    axis : int, default -1
        The category axis.
    rng : numpy.random.Generator, int or None
        The noise source; an int seeds a fresh ``default_rng``.

    Returns
    -------
    ndarray, same shape as logits
        A point of the simplex (one-hot with ``hard=True``); dtype rule as :func:`softmax`.

    Notes
    -----
    ``-inf`` logits are never chosen; a slice with no finite logit gives zeros, a NaN gives NaN.
    ``+inf`` logits are treated as equal finite logits that dominate all others, so the sample is
    drawn among them.

    Examples
    --------
    >>> import luce
    >>> y = luce.gumbel_softmax([1.0, 2.0, 3.0], temperature=0.5, rng=0)
    >>> bool(abs(y.sum() - 1) < 1e-12)
    True
    >>> y = luce.gumbel_softmax([0.0, -float("inf"), 0.0], hard=True, rng=0)
    >>> y.argmax(), y.sum()  # one-hot; the -inf entry is never chosen
    (np.int64(2), np.float64(1.0))

    References
    ----------
    E. Jang, S. Gu, B. Poole, "Categorical reparameterization with Gumbel-softmax", ICLR 2017;
    C. J. Maddison, A. Mnih, Y. W. Teh, "The concrete distribution", ICLR 2017.
    """
    hard = v.check_bool(hard, "hard")
    gen = _generator(rng)
    t = v.check_temperature(temperature)
    xp, arr, out_dtype, axes, _, scalar = prepare(logits, _int_axis(axis))
    layout = Rows(arr, axes)
    s = _scaled(layout.rows, 1.0)  # shift only; the noise is added before dividing by T
    g = gen.gumbel(size=s.shape)
    with np.errstate(invalid="ignore"):
        noisy = s + g
        if not math.isinf(t):
            noisy = noisy / t
        else:
            noisy = np.where(np.isfinite(noisy), 0.0, noisy)
    if hard:
        out = np.zeros_like(noisy)
        if out.size:
            best = np.argmax(np.where(np.isnan(noisy), -np.inf, noisy), axis=1)
            ok = np.isfinite(noisy.max(axis=1))
            out[np.arange(out.shape[0])[ok], best[ok]] = 1.0
            out[np.isnan(s).any(axis=1)] = np.nan
    else:
        out = softmax(noisy, axis=-1)
    out = layout.back(out.astype(arr.dtype))
    if scalar:
        out = out.reshape(())
    return from_numpy(xp, _finish(np, np.asarray(out), out_dtype))


def _check_top_k(top_k, n):
    top_k = v.check_int(top_k, "top_k", low=1, allow_none=True)
    return None if top_k is None else min(top_k, n)


def _check_top_p(top_p):
    if top_p is None:
        return None
    if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real):
        raise TypeError(f"top_p must be a float in (0, 1] or None, got {top_p!r}")
    p = float(top_p)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    return p


def _truncate(s: np.ndarray, top_k, top_p) -> np.ndarray:
    """Scores with the entries outside the top-k and outside the nucleus set to ``-inf``."""
    n = s.shape[1]
    if top_k is not None and top_k < n:
        kth = np.partition(s, n - top_k, axis=1)[:, n - top_k, None]
        s = np.where(s >= kth, s, -np.inf)  # ties with the k-th score are kept (as in HF transformers)
    if top_p is not None and top_p < 1.0:
        p = softmax(s, axis=-1)
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass strictly before each entry
        keep_sorted = before < top_p  # the smallest prefix reaching top_p; never empty
        keep = np.empty_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        s = np.where(keep, s, -np.inf)
    return s


@v.own_errstate
def sample(logits, *, temperature=1.0, top_k=None, top_p=None, size=None, axis=-1, rng=None):
    r"""Categorical samples from ``softmax(logits / T)`` by the Gumbel-max trick, optionally truncated.

    .. math:: k = \arg\max_i \big(x_i / T + g_i\big), \qquad g_i \sim \mathrm{Gumbel}(0, 1)
              \;\Rightarrow\; P(k = i) = \mathrm{softmax}(x / T)_i

    ``top_k`` keeps the ``k`` largest logits (and any tied with the k-th); ``top_p`` then keeps the
    smallest set of most probable categories whose probability reaches ``top_p`` (nucleus
    sampling), and the sample is drawn from the renormalised remainder.

    Parameters
    ----------
    logits : array_like, shape (..., n, ...)
        Unnormalised log-probabilities along ``axis``; the other axes are a batch of distributions.
    temperature : float > 0, default 1.0
        Divides the logits (``inf`` samples uniformly among the finite ones).
    top_k : int >= 1, optional
        Keep only the ``top_k`` most probable categories.
    top_p : float in (0, 1], optional
        Keep only the nucleus of probability ``top_p`` (applied after ``top_k``).
    size : int or tuple of ints, optional
        Independent draws per distribution: the result has shape ``size + batch_shape``.
    axis : int, default -1
        The category axis.
    rng : numpy.random.Generator, int or None
        The noise source; an int seeds a fresh ``default_rng`` (same seed, same samples).

    Returns
    -------
    ndarray of int64, shape ``size + batch_shape``
        Category indices along ``axis``.

    Raises
    ------
    ValueError
        When a distribution has no finite logit or a NaN: there is nothing to sample from.

    Examples
    --------
    >>> import luce
    >>> draws = luce.sample([0.0, 1.0, 2.0], size=10_000, rng=0)
    >>> draws.shape, bool(abs((draws == 2).mean() - 0.665) < 0.02)
    ((10000,), True)
    >>> luce.sample([[5.0, 0.0, 1.0], [0.0, 0.0, 9.0]], top_k=1, rng=0)
    array([0, 2])

    References
    ----------
    E. J. Gumbel, "Statistical theory of extreme values", 1954; A. Holtzman et al., "The curious
    case of neural text degeneration", ICLR 2020 (nucleus sampling).
    """
    gen = _generator(rng)
    t = v.check_temperature(temperature)
    xp, arr, _, axes, _, scalar = prepare(logits, _int_axis(axis), name="logits")
    layout = Rows(arr, axes)
    rows = layout.rows
    n = rows.shape[1]
    if n == 0:
        raise ValueError(f"logits of shape {arr.shape} has no categories along axis {axis}")
    top_k = _check_top_k(top_k, n)
    top_p = _check_top_p(top_p)
    s = _scaled(rows, t)
    with np.errstate(invalid="ignore"):
        m = s.max(axis=1) if s.size else np.zeros(0)
    bad = ~np.isfinite(m)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a NaN" if np.isnan(m[i]) else "no finite logit"
        raise ValueError(f"logits has {what} in distribution {i} (of shape {arr.shape}, axis {axis})")
    s = _truncate(s, top_k, top_p)
    if size is None:
        draw_shape = ()
    else:
        dims = size if isinstance(size, tuple | list) else (size,)
        draw_shape = tuple(v.check_int(d, "size", low=0) for d in dims)
    n_draws = math.prod(draw_shape)
    out = np.empty((n_draws, rows.shape[0]), dtype=np.int64)
    per_draw = max(1, s.size)
    step = max(1, _NOISE_BLOCK // per_draw)
    for start in range(0, n_draws, step):
        stop = min(n_draws, start + step)
        noise = gen.gumbel(size=(stop - start, *s.shape))
        out[start:stop] = np.argmax(s + noise, axis=2)
    batch_shape = () if scalar else layout.batch_shape
    result = out.reshape(draw_shape + batch_shape)
    return from_numpy(xp, result)


def _topk_reference(rows: np.ndarray, k: int):
    order = np.argsort(-rows, axis=1, kind="stable")[:, :k]  # descending, ties by lower index
    # exp of log_softmax, never exp(x - lse): x - lse cancels at large |x| (shift invariance).
    log_probs = log_softmax(rows.astype(np.float64), axis=1)
    return np.exp(np.take_along_axis(log_probs, order, axis=1)), order


def _topk_edges(rows: np.ndarray, probs: np.ndarray, idx: np.ndarray) -> None:
    """Edge rules in place for rows whose maximum is not finite (NaN, +inf, no finite entry)."""
    with np.errstate(invalid="ignore"):
        m = rows.max(axis=1)
    special = ~np.isfinite(m)
    if not special.any():
        return
    r = rows[special]
    top = r == np.inf
    n_top = np.maximum(top.sum(axis=1, keepdims=True), 1)
    vals = np.take_along_axis(r, idx[special], axis=1)
    p = np.where(vals == np.inf, 1.0 / n_top, 0.0)
    p = np.where(np.isnan(m[special])[:, None], np.nan, p)
    probs[special] = p


def _topk_rows(rows: np.ndarray, k: int):
    """``(probs, indices)`` of every row: the fused kernel, or the reference; edge rules applied."""
    kernel = _dispatch.lookup("topk_softmax", rows)
    if kernel is not None:
        probs = np.empty((rows.shape[0], k), dtype=np.float64)
        idx = np.empty((rows.shape[0], k), dtype=np.int64)
        flags = np.zeros(rows.shape[0], dtype=np.uint8)
        kernel(rows, k, probs, idx, flags, _dispatch.kernel_threads())
        special = flags.astype(bool)
        if special.any():  # the kernel leaves NaN / +inf / all -inf rows to the reference
            sp, si = _topk_reference(rows[special], k)
            _topk_edges(rows[special], sp, si)
            probs[special], idx[special] = sp, si
        return probs, idx
    probs, idx = _topk_reference(rows, k)
    _topk_edges(rows, probs, idx)
    return probs, idx


@v.own_errstate
def topk_softmax(x, k, axis=-1):
    r"""The ``k`` largest softmax probabilities and their indices, without forming the softmax.

    .. math:: p_{(j)} = \exp\big(\mathrm{log\_softmax}(x)_{(j)}\big), \quad j = 1, \dots, k

    with ``x_(1) >= x_(2) >= ...`` the sorted scores. Only ``k`` exponentials are written: the
    normaliser is a log-sum-exp over the slice, fused with the selection in one kernel.

    Parameters
    ----------
    x : array_like, shape (..., n, ...)
        Scores (logits).
    k : int, 0 <= k <= n
        How many of the largest probabilities to return.
    axis : int, default -1
        The axis normalised over.

    Returns
    -------
    probs : ndarray, shape of x with ``axis`` of length k
        The probabilities under the full softmax (they do not sum to one unless ``k = n``), in
        decreasing order; dtype rule as :func:`softmax`.
    indices : ndarray of int64, same shape
        Their positions along ``axis``; equal scores come in increasing index order.

    Notes
    -----
    Edge semantics as :func:`softmax`: a slice with a NaN gives NaN probabilities; ``+inf`` entries
    share the mass equally; a slice with no finite entry gives zeros.

    Examples
    --------
    >>> import luce
    >>> probs, idx = luce.topk_softmax([1.0, 3.0, 2.0, 0.0], 2)
    >>> probs, idx
    (array([0.64391426, 0.23688282]), array([1, 2]))

    References
    ----------
    M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", arXiv:1805.02867 (2018),
    section 5 (softmax fused with top-k).
    """
    xp, arr, out_dtype, axes, _, scalar = prepare(x, _int_axis(axis))
    layout = Rows(arr, axes)
    rows = layout.rows
    n = rows.shape[1]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= n:
        raise ValueError(
            f"k must be an int in [0, {n}] for x of shape {arr.shape} along axis {axis}, got {k!r}"
        )
    k = int(k)
    if k and rows.shape[0]:
        probs, idx = _topk_rows(rows, k)
    else:
        probs, idx = np.zeros((rows.shape[0], k)), np.zeros((rows.shape[0], k), dtype=np.int64)
    shape = (*layout.moved_shape[:-1], k)
    inverse = np.argsort(layout.perm)
    probs = probs.reshape(shape).transpose(inverse)
    idx = idx.reshape(shape).transpose(inverse)
    if scalar:
        probs, idx = probs.reshape(k), idx.reshape(k)
    probs = _finish(np, np.ascontiguousarray(probs), out_dtype)
    return from_numpy(xp, probs), from_numpy(xp, np.ascontiguousarray(idx))
