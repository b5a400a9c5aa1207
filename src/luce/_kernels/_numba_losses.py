"""Numba kernels for the fused softmax cross-entropy (loss and gradient in one sweep per row) and for
the top-k softmax probabilities (the normaliser and a size-k heap, no probability array).

Each row stays in cache while three passes run over it: the maximum, then ``e = exp((x - m)/T)``
written straight into the gradient buffer while the sums accumulate, then ``g = e·a - b``. So the
logits are read from memory once and the gradient written once; no probability array is formed.

Policy as in numba-stats: ``cache=True``, ``error_model="numpy"``, no fast-math; reductions are split
over ``_LANES`` independent float64 accumulators so that they vectorise without reassociation. float32
rows use a vectorisable ``exp`` polynomial (below); float64 rows use the libm ``exp``. Rows with a NaN,
a ``+inf`` or no finite entry are flagged and left to the NumPy reference (the edge rules of
docs/conventions.md live in one place).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._numba_sparse import row_max

__all__ = ["PLAIN", "PROBS", "WEIGHTED", "ce_rows", "exp_neg", "topk_rows"]

_LANES = 16


@intrinsic
def _int32_as_float32(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32 (a no-op the vectoriser understands)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return sig, codegen


_LOG2E = np.float32(1.4426950408889634)
# ln 2 split in a part exact in float32 and the rest (Cody & Waite 1980), so k·ln2 is subtracted exactly.
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_MIN = np.float32(-87.33654)  # ln(FLT_MIN): below it exp(x) is subnormal


@njit(cache=True, error_model="numpy", inline="always")
def _exp_neg_f32(x):
    """``exp(x)`` for float32 ``x <= 0``, branch-free so loops over it vectorise; NaN gives NaN.

    Cody–Waite range reduction ``x = k·ln2 + r``, ``|r| <= ln2/2``, then the degree-7 minimax polynomial
    of Cephes ``expf`` (S. L. Moshier) for ``e^r``, scaled by ``2^k`` built from its exponent bits.
    Within 1 ulp over ``[ln FLT_MIN, 0]``; below it (subnormal results) and at ``-inf`` it gives 0.
    ``np.floor`` keeps ``k`` in float32 (``math.floor`` would return an int64 and drag the reduction
    into float64, which does not vectorise as well).
    """
    xc = np.float32(_EXP_MIN) if x < _EXP_MIN else x  # NaN passes through
    k = np.floor(xc * _LOG2E + np.float32(0.5))
    r = xc - k * _LN2_HI - k * _LN2_LO
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    scale = _int32_as_float32((np.int32(k) + np.int32(127)) << np.int32(23))
    return np.float32(0.0) if x < _EXP_MIN else p * scale


def exp_neg(x):
    """``exp(x)`` for ``x <= 0`` in the precision of ``x`` (dispatched at compile time)."""
    return np.exp(x)


@overload(exp_neg, jit_options={"cache": True})
def _exp_neg_overload(x):
    if x == types.float32:
        return lambda x: _exp_neg_f32(x)
    return lambda x: math.exp(x)


# Which per-class weight ``c_j`` multiplies the log-probabilities: 1 (class indices, no weights) or
# ``w_j ((1-ε) q_j + ε/C)``, which covers class weights (``q = 1, ε = 0``) and probability targets
# (``w = 1`` without weights). Each gets its own loop: a branch inside would stop vectorisation.
PLAIN, WEIGHTED, PROBS = 0, 1, 2


@njit(cache=True, error_model="numpy", inline="always")
def _term(row, j, m, t0, scaled):
    d = (row[j] - m) / t0 if scaled else row[j] - m
    return d, exp_neg(d)


@njit(cache=True, error_model="numpy")
def _exp_pass(row, t, plain, w, q, keep, lift, g, want_grad):
    """``e = exp((x - m)/T)`` into ``g`` (when ``want_grad``) and the sums the loss needs.

    Returns ``(m, tail, a, b)``: ``tail = Σ_{d<0} e + (#maxima - 1)`` (so that ``log Σ e = log1p(tail)``,
    Blanchard, Higham & Higham 2021), ``a = Σ c_j`` and ``b = Σ c_j d_j`` with ``d = (x - m)/T`` and
    ``c_j = 1`` if ``plain`` else ``w_j (keep·q_j + lift)``. Terms with ``c_j = 0`` are skipped, so
    ``0·(-inf)`` counts as 0. ``m`` is NaN when the row needs the reference (a NaN, ``+inf`` or no
    finite entry); a NaN is caught by the tail sum, so the maximum pass stays a plain maximum.
    """
    n = row.shape[0]
    m = row_max(row)
    if not math.isfinite(m):
        return np.nan, 0.0, 0.0, 0.0
    tail = np.zeros(_LANES)
    n_top = np.zeros(_LANES, dtype=np.int64)
    acc_a = np.zeros(_LANES)
    acc_b = np.zeros(_LANES)
    nb = (n // _LANES) * _LANES
    t0 = t[0]
    scaled = t0 != 1.0
    if plain:
        for j0 in range(0, nb, _LANES):
            for k in range(_LANES):
                d, e = _term(row, j0 + k, m, t0, scaled)
                if want_grad:
                    g[j0 + k] = e
                tail[k] += 0.0 if d >= 0 else e  # a NaN entry makes the tail NaN
                n_top[k] += d == 0
                acc_b[k] += np.float64(d)
        for j in range(nb, n):
            d, e = _term(row, j, m, t0, scaled)
            if want_grad:
                g[j] = e
            tail[j - nb] += 0.0 if d >= 0 else e
            n_top[j - nb] += d == 0
            acc_b[j - nb] += np.float64(d)
        acc_a[0] = n
    else:
        for j0 in range(0, nb, _LANES):
            for k in range(_LANES):
                d, e = _term(row, j0 + k, m, t0, scaled)
                if want_grad:
                    g[j0 + k] = e
                tail[k] += 0.0 if d >= 0 else e  # a NaN entry makes the tail NaN
                n_top[k] += d == 0
                c = np.float64(w[j0 + k]) * (keep * q[j0 + k] + lift)
                acc_a[k] += c
                acc_b[k] += c * np.float64(d) if c != 0.0 else 0.0
        for j in range(nb, n):
            d, e = _term(row, j, m, t0, scaled)
            if want_grad:
                g[j] = e
            tail[j - nb] += 0.0 if d >= 0 else e
            n_top[j - nb] += d == 0
            c = np.float64(w[j]) * (keep * q[j] + lift)
            acc_a[j - nb] += c
            acc_b[j - nb] += c * np.float64(d) if c != 0.0 else 0.0
    total_tail = 0.0
    count = 0
    a = 0.0
    b = 0.0
    for k in range(_LANES):
        total_tail += tail[k]
        count += n_top[k]
        a += acc_a[k]
        b += acc_b[k]
    if math.isnan(total_tail):  # a NaN entry: the reference applies the edge rule
        return np.nan, 0.0, 0.0, 0.0
    return m, total_tail + (count - 1), a, b


@njit(cache=True, error_model="numpy")
def _grad_pass(g, scale, plain, w, q, keep, lift, offset):
    """``g_j = e_j·scale - offset·c_j`` in place, ``c_j`` as in :func:`_exp_pass`."""
    n = g.shape[0]
    sc = g.dtype.type(scale)
    if plain:
        off = g.dtype.type(offset)
        for j in range(n):
            g[j] = g[j] * sc - off
    else:
        for j in range(n):
            g[j] = g[j] * sc - g.dtype.type(offset * (np.float64(w[j]) * (keep * q[j] + lift)))


@njit(cache=True, parallel=True, error_model="numpy")
def ce_rows(z, y, q, active, w, kind, eps, t, grad_scale, want_grad, loss, g, flags):
    """Cross-entropy and its gradient, per row, against class indices or class probabilities.

    Class indices (``kind`` PLAIN or WEIGHTED, ``y`` the indices, ``q`` unused):
    ``loss_i = (1-ε) w_y (lse - d_y) + (ε/C) Σ_c w_c (lse - d_c)`` and
    ``g_i = [p ((1-ε) w_y + ε W / C) - (ε/C) w - (1-ε) w_y onehot(y)] / T`` (``W = Σ w``).
    Probabilities (``kind`` PROBS, ``y`` unused): with ``c = w ((1-ε) q + ε/C)``,
    ``loss_i = Σ_c c_c (lse - d_c)`` and ``g_i = (p Σ c - c) / T``.

    Here ``d = (z - max z)/T`` and ``lse = log Σ exp d``. Rows with ``active[i]`` False (ignored
    targets) get loss 0 and gradient 0; rows the reference must handle get ``flags[i] = 1``. The
    gradient is written multiplied by ``grad_scale`` (the reduction's factor, so no second pass). ``t`` is
    a length-1 array of the row dtype holding ``T``; ``w`` has the row dtype and length C (ones when
    there are no weights); ``q`` is float64, ``(n_rows, C)`` for PROBS and one row of ones otherwise.
    """
    n_rows, n = z.shape
    plain = kind == PLAIN
    big_w = float(n)
    if kind == WEIGHTED:
        big_w = 0.0
        for j in range(n):
            big_w += w[j]
    keep, lift = (1.0 - eps, eps / n) if kind == PROBS else (1.0, 0.0)
    inv_t = grad_scale / np.float64(t[0])  # 1/T times the reduction's factor (e.g. 1/N for a mean)
    for i in prange(n_rows):
        gi = g[i]
        if not active[i]:
            loss[i] = 0.0
            if want_grad:
                gi[:] = 0.0
            continue
        row = z[i]
        qi = q[i] if kind == PROBS else q[0]  # for WEIGHTED, q is one row of ones
        m, tail, a, b = _exp_pass(row, t, plain, w, qi, keep, lift, gi, want_grad)
        if math.isnan(m):
            flags[i] = 1
            continue
        lse = math.log1p(tail)
        if kind == PROBS:
            loss[i] = a * lse - b
            if want_grad:
                _grad_pass(gi, a / (1.0 + tail) * inv_t, plain, w, qi, keep, lift, inv_t)
            continue
        yi = y[i]
        wy = np.float64(w[yi]) if kind == WEIGHTED else 1.0
        dy = np.float64((row[yi] - m) / t[0])
        value = (1.0 - eps) * wy * (lse - dy) if eps < 1.0 and wy != 0.0 else 0.0
        if eps > 0.0:
            value += eps / n * (big_w * lse - b)
        loss[i] = value
        if want_grad:
            coef = (1.0 - eps) * wy + eps * big_w / n
            _grad_pass(gi, coef / (1.0 + tail) * inv_t, plain, w, qi, keep, lift, eps / n * inv_t)
            gi[yi] -= gi.dtype.type((1.0 - eps) * wy * inv_t)


@njit(cache=True, error_model="numpy")
def _exp_tail(row, m):
    """``Σ exp(x - m) - 1`` with the maxima's terms (exactly 1 each) left out: the log1p form."""
    n = row.shape[0]
    tail = np.zeros(_LANES)
    n_top = np.zeros(_LANES, dtype=np.int64)
    nb = (n // _LANES) * _LANES
    for j0 in range(0, nb, _LANES):
        for k in range(_LANES):
            d = row[j0 + k] - m
            e = exp_neg(d)  # computed unconditionally: a call under a branch would not vectorise
            tail[k] += 0.0 if d >= 0 else e  # a NaN entry makes the tail NaN
            n_top[k] += d == 0
    for j in range(nb, n):
        d = row[j] - m
        e = exp_neg(d)
        tail[j - nb] += 0.0 if d >= 0 else e
        n_top[j - nb] += d == 0
    return tail.sum() + (n_top.sum() - 1)


@njit(cache=True, error_model="numpy", inline="always")
def _heap_less(hv, hi, a, b):
    """Heap order: smaller value first; among equal values the larger index first (evicted first)."""
    return hv[a] < hv[b] or (hv[a] == hv[b] and hi[a] > hi[b])


@njit(cache=True, error_model="numpy")
def _sift_down(hv, hi, start, size):
    pos = start
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _heap_less(hv, hi, child + 1, child):
            child += 1
        if not _heap_less(hv, hi, child, pos):
            return
        hv[pos], hv[child] = hv[child], hv[pos]
        hi[pos], hi[child] = hi[child], hi[pos]
        pos = child


@njit(cache=True, parallel=True, error_model="numpy")
def topk_rows(x, k, probs, idx, flags):
    """The ``k`` largest ``softmax`` probabilities of each row and their indices, in decreasing order
    (equal values by increasing index), without forming the softmax.

    Per row: the maximum, ``Σ exp(x - m)`` in the log1p form, and a size-``k`` min-heap of the
    largest entries (a new entry enters only if it beats the heap's minimum, so the expected work is
    ``O(n + k log k log n)``); the heap is then sorted in place (heapsort) and
    ``exp((x - m) - log1p(tail))`` taken of its ``k`` entries only.
    """
    n_rows, n = x.shape
    for i in prange(n_rows):
        row = x[i]
        m = row_max(row)
        tail = _exp_tail(row, m) if math.isfinite(m) else np.nan
        if math.isnan(tail):  # NaN, +inf or no finite entry: left to the reference
            flags[i] = 1
            continue
        log_norm = math.log1p(tail)  # log Σ exp(x - m): the probabilities are exp((x - m) - log_norm)
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(k):
            hv[j] = row[j]
            hi[j] = j
        for start in range(k // 2 - 1, -1, -1):
            _sift_down(hv, hi, start, k)
        floor = hv[0] if k > 0 else np.inf  # the heap's minimum, kept in a register
        for j in range(k, n):
            val = np.float64(row[j])
            if val > floor:
                hv[0] = val
                hi[0] = j
                _sift_down(hv, hi, 0, k)
                floor = hv[0]
        for size in range(k - 1, 0, -1):  # heapsort: the minimum goes to the end each time
            hv[0], hv[size] = hv[size], hv[0]
            hi[0], hi[size] = hi[size], hi[0]
            _sift_down(hv, hi, 0, size)
        for j in range(k):
            # Shift first: x - (m + log_norm) would cancel at large |m| (shift invariance).
            probs[i, j] = math.exp((hv[j] - np.float64(m)) - log_norm)
            idx[i, j] = hi[j]
