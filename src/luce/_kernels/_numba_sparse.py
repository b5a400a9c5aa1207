"""Numba kernels for sparsemax, 1.5-entmax and α-entmax by bisection (imported on first use only).

Layers as in numba-stats: a row primitive (maximum, candidate filter, threshold search) and a batch
function that runs it over rows with ``prange``. One decorator policy: ``cache=True``,
``error_model="numpy"``, no fast-math; arguments arrive as C-contiguous float32/float64 rows, so each
batch kernel compiles two specialisations.

Threshold search. Sparsemax and 1.5-entmax are ``p_i = [d_i - τ]_+^β`` with ``d = (x - max x)·s``
(``s = 1, β = 1`` and ``s = 1/2, β = 2``) and ``τ`` the root of ``Σ_i [d_i - τ]_+^β = 1``. Because the
largest entry has ``p ≤ 1``, ``τ ≥ -1`` and only entries with ``d > -1`` can be in the support; those
candidates (usually a handful) are copied out, and ``τ`` is found by randomised pivoting (the
quickselect idea behind Kiwiel's and Condat's linear-time simplex projections): for a pivot ``v``,
``F(v) = Σ_{d ≥ v} (d - v)^β - 1 ≤ 0`` means ``τ ≤ v``, so every candidate ``≥ v`` is in the support;
otherwise every candidate ``≤ v`` is out. Each round removes the pivot, so the search ends, in expected
linear time, with the exact support, from which ``τ`` follows in closed form (mean and variance taken
in two passes). Rows with a NaN, a ``+inf`` or no finite entry are flagged for the caller, which
applies the edge rules of docs/conventions.md.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["BISECT", "ENTMAX15", "SPARSEMAX", "bisect_threshold", "row_max", "row_max_nan", "sparse_map_rows"]

_LANES = 16  # independent accumulators, so reductions vectorise without reassociating (no fast-math)


@njit(cache=True, error_model="numpy")
def row_max_nan(row):
    """``(max over non-NaN entries, number of NaN entries)`` of a 1-D row."""
    n = row.shape[0]
    lanes = np.full(_LANES, -np.inf, dtype=row.dtype)
    nans = np.zeros(_LANES, dtype=np.int64)
    nb = (n // _LANES) * _LANES
    for j0 in range(0, nb, _LANES):
        for k in range(_LANES):
            v = row[j0 + k]
            lanes[k] = v if v > lanes[k] else lanes[k]
            nans[k] += v != v
    m = lanes[0]
    n_nan = 0
    for k in range(_LANES):
        m = lanes[k] if lanes[k] > m else m
        n_nan += nans[k]
    for j in range(nb, n):
        v = row[j]
        m = v if v > m else m
        n_nan += v != v
    return m, n_nan


@njit(cache=True, error_model="numpy")
def row_max(row):
    """The maximum of the non-NaN entries of a 1-D row (``-inf`` if none); callers detect NaN later."""
    n = row.shape[0]
    lanes = np.full(_LANES, -np.inf, dtype=row.dtype)
    nb = (n // _LANES) * _LANES
    for j0 in range(0, nb, _LANES):
        for k in range(_LANES):
            v = row[j0 + k]
            lanes[k] = v if v > lanes[k] else lanes[k]
    m = lanes[0]
    for k in range(_LANES):
        m = lanes[k] if lanes[k] > m else m
    for j in range(nb, n):
        v = row[j]
        m = v if v > m else m
    return m


@njit(cache=True, error_model="numpy")
def _candidates(row, m, scale):
    """The shifted, scaled entries ``d = (x - m)·scale > -1`` (float64), and their count."""
    n = row.shape[0]
    count = 0
    for j in range(n):
        count += (np.float64(row[j]) - m) * scale > -1.0
    buf = np.empty(count, dtype=np.float64)
    w = 0
    for j in range(n):
        d = (np.float64(row[j]) - m) * scale
        if d > -1.0:
            buf[w] = d
            w += 1
    return buf


@njit(cache=True, error_model="numpy")
def _threshold(buf, quadratic):
    """Exact ``τ`` with ``Σ [d - τ]_+^β = 1`` (β = 2 if ``quadratic`` else 1) by randomised pivoting.

    ``buf`` (modified) holds every candidate; its maximum is 0. Layout while searching:
    ``buf[:cert]`` is in the support for sure, ``buf[cert:end]`` is undecided, the rest is out.
    """
    cert = 0
    end = buf.shape[0]
    k = 0
    s1 = 0.0
    s2 = 0.0
    seed = (end * 40503 + 12345) % 2147483647 + 1
    while cert < end:
        seed = (seed * 48271) % 2147483647  # Park–Miller minimal standard generator picks the pivot
        v = buf[cert + seed % (end - cert)]
        w = cert
        t1 = 0.0
        t2 = 0.0
        for j in range(cert, end):  # move the candidates >= v to the front of the undecided block
            d = buf[j]
            if d >= v:
                buf[j] = buf[w]
                buf[w] = d
                w += 1
                t1 += d
                t2 += d * d
        kk = k + (w - cert)
        a1 = s1 + t1
        a2 = s2 + t2
        if quadratic:
            f = a2 - 2.0 * v * a1 + kk * v * v - 1.0
        else:
            f = a1 - kk * v - 1.0
        if f <= 0.0:  # τ <= v: every candidate >= v is in the support
            cert = w
            k = kk
            s1 = a1
            s2 = a2
        else:  # τ > v: every candidate <= v is out
            w2 = cert
            for j in range(cert, w):
                d = buf[j]
                if d > v:
                    buf[j] = buf[w2]
                    buf[w2] = d
                    w2 += 1
            end = w2
    mu = 0.0
    for j in range(cert):
        mu += buf[j]
    mu /= cert
    if not quadratic:
        return mu - 1.0 / cert
    ss = 0.0
    for j in range(cert):
        ss += (buf[j] - mu) * (buf[j] - mu)
    delta = (1.0 - ss) / cert
    return mu - math.sqrt(delta if delta > 0.0 else 0.0)


@njit(cache=True, error_model="numpy")
def _power(u, beta):
    """``u**beta`` for ``u > 0``, with the exponents of sparsemax (1) and 1.5-entmax (2) done exactly."""
    if beta == 1.0:
        return u
    if beta == 2.0:
        return u * u
    return u**beta


@njit(cache=True, error_model="numpy")
def bisect_threshold(buf, alpha, n_iter):
    """``τ`` with ``Σ [d - τ]_+^{1/(α-1)} = 1`` over the candidates ``buf`` (max 0), by bisection
    safeguarded Newton steps (``rtsafe``, Press et al., Numerical Recipes §9.4).

    ``f(τ) = Σ [d - τ]_+^β - 1`` is decreasing; ``[lo, hi] = [-1, -(1/k)^{α-1}]`` brackets the root
    (``k`` candidates). Each step keeps the bracket, takes the Newton step when it lands inside and
    halves the bracket otherwise, so it never does worse than bisection; it stops after ``n_iter``
    steps or when ``τ`` no longer moves.
    """
    am1 = alpha - 1.0
    beta = 1.0 / am1
    k = buf.shape[0]
    lo = -1.0
    hi = -((1.0 / k) ** am1)
    tau = 0.5 * (lo + hi)
    for _ in range(n_iter):
        f = -1.0
        df = 0.0
        for j in range(k):
            u = buf[j] - tau
            if u > 0.0:
                q = _power(u, beta - 1.0)
                f += q * u
                df += q
        if f == 0.0:
            break
        if f > 0.0:
            lo = tau
        else:
            hi = tau
        step = tau + f / (beta * df) if df > 0.0 else lo
        new = step if lo < step < hi else 0.5 * (lo + hi)
        if new == tau or hi - lo <= 4.0 * 2.220446049250313e-16 * abs(tau):
            break
        tau = new
    return tau


SPARSEMAX, ENTMAX15, BISECT = 0, 1, 2


@njit(cache=True, parallel=True, error_model="numpy")
def sparse_map_rows(x, mode, alpha, n_iter, out, flags):
    """Sparsemax, 1.5-entmax or α-entmax (``mode``) of each row of ``x`` into ``out``.

    Sparsemax and 1.5-entmax take the exact threshold of :func:`_threshold`; α-entmax takes
    :func:`bisect_threshold` (``alpha``, ``n_iter``) and divides by the sum. ``flags[i] = 1`` marks a
    row the kernel left alone (NaN, ``+inf`` or no finite entry).
    """
    n_rows, n = x.shape
    if mode == SPARSEMAX:
        scale, beta = 1.0, 1.0
    elif mode == ENTMAX15:
        scale, beta = 0.5, 2.0
    else:
        scale, beta = alpha - 1.0, 1.0 / (alpha - 1.0)
    for i in prange(n_rows):
        row = x[i]
        o = out[i]
        m, n_nan = row_max_nan(row)
        if n_nan > 0 or not math.isfinite(m):
            flags[i] = 1
            continue
        mf = np.float64(m)
        buf = _candidates(row, mf, scale)
        total = 1.0
        if mode == BISECT:
            tau = bisect_threshold(buf, alpha, n_iter)
            total = 0.0
            for j in range(buf.shape[0]):
                u = buf[j] - tau
                if u > 0.0:
                    total += _power(u, beta)
        else:
            tau = _threshold(buf, mode == ENTMAX15)
        for j in range(n):
            u = (np.float64(row[j]) - mf) * scale - tau
            o[j] = _power(u, beta) / total if u > 0.0 else 0.0
