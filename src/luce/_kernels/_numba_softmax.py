"""Numba CPU kernels for softmax, log_softmax and logsumexp along one axis (or consecutive axes).

Imported only by :mod:`luce._kernels._dispatch`, on the first call that uses the kernels. ``_kernel``
compiles on its first call for each dtype (float32, float64) and is cached on disk (``cache=True``;
the cache is keyed to this file: touch it after editing ``_numba_exp.py``, ``_numba_simd.py``,
``_numba_rows.py``, ``_numba_tiles.py`` or ``_numba_transpose.py``).

Layout. The input is viewed, without copying, as ``(outer, n, inner)``: ``n`` the reduced axis (or
consecutive axes merged), ``outer``/``inner`` the axes before/after it merged. Three task kinds:

* rows (``inner == 1``, the last axis): rows of ``n`` contiguous elements, split over threads in blocks
  of many rows (``prange`` over tasks). Rows that stay in cache (softmax up to ``ROW_CACHE_BYTES``,
  log_softmax/logsumexp up to ``SHORT_LOG_ROW`` elements) take the max first, then the sum, storing
  into the output on the way (softmax ``exp``: one ``exp`` per element; log_softmax ``x - max``),
  then finish the output in cache; each pass is one intrinsic of :mod:`luce._kernels._numba_rows`
  (whole vectors and a masked last one), and :func:`_rows_cached` runs each pass over a group of rows
  before the next so that the rows' reductions overlap. Longer rows take one online pass that reads
  the row in chunks of ``CHUNK`` elements (chunk max, rescale of the running sum when the max grows,
  exponentials summed in ``W`` lanes), then one write pass.
* columns (``inner > 1``, any other axis): no transposed copy. A task takes up to ``CB`` contiguous
  columns of one outer index (and, when there are few such blocks, a range of the reduced axis; the
  ranges' states are merged in a second round) and streams over whole rows with a running max, sum
  and count per column, updated with one ``exp`` per element (``exp(-|x - m|/T)`` is both the new
  term and the rescale of the old sum), then writes. SIMD runs across the columns. A block that fits
  in ``CACHE_BLOCK_BYTES`` is read twice instead (max, then sums) with no rescaling.
* short rows (last axis, ``n < SHORT_ROW``): ``TILE`` rows at a time are transposed into a small tile,
  so SIMD runs across rows. :func:`_short_tile` does max, sums and write on the tile in one call
  (:mod:`luce._kernels._numba_tiles`), the transposes in registers
  (:mod:`luce._kernels._numba_transpose`, 16×16 float32 blocks by shuffles; masked rows are staged
  contiguously first, a mask broadcast along the rows is gathered); a tile holding a special row (or
  T = inf) goes through the column code instead.

Memory: at most two passes over the input and one over the output; temporaries are per task
(``O(CB)`` or ``O(TILE·SHORT_ROW)`` elements), never the size of the input, and the input is never
written. A copy (``np.ascontiguousarray``, once) is made only when the fast axis (the reduced axis for
the last axis, else the trailing axes) cannot be viewed with unit stride, the axes cannot be merged, or
a stride is negative. ``where`` masks with unit stride along the fast axis (same shape as ``x``, or
broadcast along the other axes) are read in place; other broadcast masks are materialised as booleans.
The loops prefetch a few KB ahead in software (this VM-hosted class of machine keeps too few cache
misses in flight on its own) and ask for 512-bit vectors where those pay (``prefer_512``).

Accuracy. Exponentials use :func:`luce._kernels._numba_exp.vexp` (< 0.6 ulp), or its IR form, bit
for bit the same. Sums are blocked: a few terms per lane in the input dtype (in the row intrinsics, a
step's four vectors added as a tree), then float64 lanes, then a pairwise total, so the rounding
error of a sum of ``n`` terms stays far below ``n·eps``. log_softmax/logsumexp use the log1p form: the entries
equal to the max are counted, not added, so ``log1p`` sees the exact tail (Blanchard, Higham & Higham
2021), and :func:`~luce._kernels._numba_exp.vlog1p` keeps it to an ulp.

Compiled code: one ``_kernel`` (a ``prange`` over tasks) per dtype, calling one ``_task`` and a dozen
loop functions, each compiled once. Hot loops come twice inside each function, chosen per call:
``fast`` (no mask, ``T == 1``) and general (mask read, division by ``T``); without a mask the general
loops read a short all-True vector with zero strides. Integer constants are passed as int64 values,
not literals (a literal argument would compile another specialisation), and array indices are
unsigned (Numba then skips the negative-index wraparound, so the loads vectorise).

Threads: Numba's thread pool (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``), read at each call;
below ``PARALLEL_MIN_SIZE`` elements the calling thread works alone.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from ._numba_exp import maxnum, prefer_512, prefetch, prefetchw, vexp, vlog1p
from ._numba_rows import row_exp_store_sum, row_exp_sum_count, row_finish, row_max, row_shift_sum_count
from ._numba_tiles import tile_max, tile_sums, tile_write
from ._numba_transpose import block_lanes, transpose_block, transpose_narrow

__all__ = ["logsumexp", "softmax"]

W = 64  # lanes of the blocked sums (eight SIMD vectors of float32)
K = 8  # blocks of W summed in the input dtype before they are folded into float64
CHUNK = W * K  # elements per online step of a row
ROW_CACHE_BYTES = 512 * 1024  # softmax rows up to this size are exponentiated once (they stay in L2)
SHORT_LOG_ROW = 4096  # log_softmax/logsumexp rows up to this length: max first (no online rescaling)
SHORT_ROW = 32  # last-axis rows shorter than this go through transposed tiles
GROUP_ROWS = 64  # cached rows are processed in groups of at most this many rows
GROUP_BYTES = 16 * 1024  # and at most this many bytes (they stay in L1 between the passes)
TILE = 128  # rows per transposed tile
CB = 2048  # at most this many columns per task of the column kernel (whole rows below it)
SEG = 256  # columns per segment of a row (prefetched together)
KC = 16  # rows between folds of the column sums into float64
MIN_ROWS_PER_PART = 256  # a range of the reduced axis given to one thread is at least this long
LINE = 64  # bytes per cache line
PF_CHUNKS = 2  # rows: software prefetch this many CHUNKs ahead
PF_BYTES = 4096  # columns and short rows: software prefetch about this many bytes ahead
PARALLEL_MIN_SIZE = 1 << 14  # below this many elements one thread does all the work
CACHE_BLOCK_BYTES = 256 * 1024  # column blocks up to this size are read twice (max, then sums) from cache

SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2
ROWS, COLS, SHORT = 0, 1, 2

_u = np.uint64  # unsigned indices: Numba skips the negative-index wraparound, so loads vectorise
_HELPER = {"error_model": "numpy", "fastmath": False}
_KERNEL = {"cache": True, "error_model": "numpy", "fastmath": False, "nogil": True, "parallel": True}


# --- special slices: NaN, +inf, all -inf/masked, and temperature = inf ---------------------------------


@njit(**_HELPER)
def _special_values(x, has_nan, n_pinf, n_fin, tinf, log):
    """``(kind, hit, miss)``: the outputs of a slice whose max is not finite, or of any slice at T = inf.

    kind 0: every entry gets ``miss``; 1: the unmasked ``+inf`` entries get ``hit`` (they share the
    mass); 2 (T = inf): the unmasked finite entries get ``hit`` (uniform over them). A slice with an
    unmasked NaN is all NaN, masked entries included (as in the reference).
    """
    T = x.dtype.type
    one = T(1.0)
    if has_nan:
        return 0, T(np.nan), T(np.nan)
    miss = T(-np.inf) if log else T(0.0)
    if n_pinf > 0:
        share = one / T(n_pinf)
        return 1, (np.log(share) if log else share), miss
    if tinf and n_fin > 0:
        # As the reference: exp(0) = 1 for every finite entry, tail = n_fin - 1 (log1p form).
        if log:
            return 2, -np.log1p(T(n_fin - 1.0)), miss
        return 2, one / T(n_fin), miss
    return 0, miss, miss


@njit(**_HELPER)
def _lse_special(x, has_nan, n_pinf):
    T = x.dtype.type
    if has_nan:
        return T(np.nan)
    return T(np.inf) if n_pinf > 0 else T(-np.inf)


# --- rows: the reduced axis is the last one and contiguous ---------------------------------------------
# Every loop comes twice: ``fast`` (no mask, T = 1) and general (mask read, division by T). Without a
# mask the general loops read an all-True vector.


@njit(**_HELPER)
def _row_special(x, xb, mask, mb, out, ob, n, mode, tinf):
    """A row whose max is not finite (or any row at T = inf), from counts of NaN, +inf and finite."""
    n_nan = 0.0
    n_pinf = 0.0
    n_fin = 0.0
    for i in range(n):
        v = x[_u(xb + i)]
        keep = mask[_u(mb + i)]
        n_nan += 1.0 if (keep and v != v) else 0.0
        n_pinf += 1.0 if (keep and v == np.inf) else 0.0
        n_fin += 1.0 if (keep and np.abs(v) < np.inf) else 0.0
    if mode == LOGSUMEXP:
        out[_u(ob)] = _lse_special(x, n_nan > 0, n_pinf)
        return
    kind, hit, miss = _special_values(x, n_nan > 0, n_pinf, n_fin, tinf, mode == LOG_SOFTMAX)
    for i in range(n):
        v = x[_u(xb + i)]
        keep = mask[_u(mb + i)]
        if kind == 1:
            out[_u(ob + i)] = hit if (keep and v == np.inf) else miss
        elif kind == 2:
            out[_u(ob + i)] = hit if (keep and np.abs(v) < np.inf) else miss
        else:
            out[_u(ob + i)] = miss


@njit(**_HELPER)
def _row_max(x, xb, mask, mb, n, fast):
    """Max of the unmasked entries; NaN is ignored here (llvm.maxnum vectorises) and caught by the sum.

    Reads CHUNK elements at a time and asks for the lines PF_CHUNKS chunks ahead. The online pass
    keeps this loop rather than the ``row_max`` intrinsic of the cached rows: called per chunk, the
    intrinsic made logsumexp of 4096×32000 float32 0.66x -> 0.77x a copy.
    """
    prefer_512()
    ninf = x.dtype.type(-np.inf)
    step = LINE // x.itemsize
    m = ninf
    for i0 in range(0, n, CHUNK):
        for k in range(i0 + PF_CHUNKS * CHUNK, i0 + PF_CHUNKS * CHUNK + min(CHUNK, n), step):
            prefetch(x, xb + k)
        i1 = min(i0 + CHUNK, n)
        if fast:
            for i in range(i0, i1):
                m = maxnum(m, x[_u(xb + i)])
        else:
            prefetch(mask, mb + i0 + PF_CHUNKS * CHUNK)
            for i in range(i0, i1):
                m = maxnum(m, x[_u(xb + i)] if mask[_u(mb + i)] else ninf)
    return m


@njit(**_HELPER)
def _row_online(x, xb, mask, mb, n, t, acc1, cnt1, acc2, cnt2, fast):
    """One pass: (max, sum of exp((x - max)/T) over the entries below the max, count at the max).

    The row is read in chunks: the chunk max, a rescale of the float64 partial sums when the running
    max grows (the old maxima become ordinary terms), then the chunk's exponentials from L1.
    """
    prefer_512()
    T = x.dtype.type
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    m = ninf
    for j in range(W):
        acc2[j] = 0.0
        cnt2[j] = 0.0
    for i0 in range(0, n, CHUNK):
        i1 = min(i0 + CHUNK, n)
        cm = _row_max(x, xb + i0, mask, mb + i0, i1 - i0, fast)  # prefetches ahead too
        if cm > m:
            f = np.float64(vexp((m - cm) / t))  # exp(-inf) = 0 on the first chunk
            for j in range(W):
                acc2[j] = (acc2[j] + cnt2[j]) * f
                cnt2[j] = 0.0
            m = cm
        for j in range(W):
            acc1[j] = zero
            cnt1[j] = zero
        if cm == m:  # the chunk holds the running max: its maxima are counted, not summed
            for i in range(i0, i1, W):
                cnt = min(W, i1 - i)
                if fast:
                    for j in range(cnt):
                        v = x[_u(xb + i + j)]
                        e = vexp(v - m)
                        at_max = v == m
                        acc1[j] += zero if at_max else e  # a NaN lands here and makes the sum NaN
                        cnt1[j] += one if at_max else zero
                else:
                    for j in range(cnt):
                        v = x[_u(xb + i + j)] if mask[_u(mb + i + j)] else ninf
                        e = vexp((v - m) / t)
                        at_max = v == m
                        acc1[j] += zero if at_max else e
                        cnt1[j] += one if at_max else zero
        else:  # every entry is below the max (most chunks): a plain sum
            for i in range(i0, i1, W):
                cnt = min(W, i1 - i)
                if fast:
                    for j in range(cnt):
                        acc1[j] += vexp(x[_u(xb + i + j)] - m)
                else:
                    for j in range(cnt):
                        v = x[_u(xb + i + j)] if mask[_u(mb + i + j)] else ninf
                        acc1[j] += vexp((v - m) / t)
        for j in range(W):
            acc2[j] += np.float64(acc1[j])
            cnt2[j] += np.float64(cnt1[j])
    h = W // 2
    while h >= 1:
        for j in range(h):
            acc2[j] += acc2[j + h]
            cnt2[j] += cnt2[j + h]
        h //= 2
    return m, acc2[0], cnt2[0]


@njit(**_HELPER)
def _row_write(x, xb, mask, mb, out, ob, n, m, t, coef, log, fast):
    """log: out = (x - m)/T - coef; else out = exp((x - m)/T) * coef (masked: -inf / 0)."""
    prefer_512()
    ninf = x.dtype.type(-np.inf)
    step = LINE // x.itemsize
    for i0 in range(0, n, CHUNK):
        for k in range(i0 + PF_CHUNKS * CHUNK, i0 + PF_CHUNKS * CHUNK + min(CHUNK, n), step):
            prefetch(x, xb + k)
            prefetchw(out, ob + k)
        i1 = min(i0 + CHUNK, n)
        if fast and log:
            for i in range(i0, i1):
                out[_u(ob + i)] = (x[_u(xb + i)] - m) - coef
        elif fast:
            for i in range(i0, i1):
                out[_u(ob + i)] = vexp(x[_u(xb + i)] - m) * coef
        elif log:
            prefetch(mask, mb + i0 + PF_CHUNKS * CHUNK)
            for i in range(i0, i1):
                v = x[_u(xb + i)] if mask[_u(mb + i)] else ninf
                out[_u(ob + i)] = (v - m) / t - coef
        else:
            prefetch(mask, mb + i0 + PF_CHUNKS * CHUNK)
            for i in range(i0, i1):
                v = x[_u(xb + i)] if mask[_u(mb + i)] else ninf
                out[_u(ob + i)] = vexp((v - m) / t) * coef


# --- columns: any other axis; blocks of contiguous columns, no transposed copy --------------------------
# A block is w <= CB columns; its element (j, c) is x[xb0 + j*xn + c] (mask[mb0 + j*mn + c]) and is
# written to out[ob0 + j*on + c] (logsumexp: out[ob0 + c]).


@njit(**_HELPER)
def _cols_online(x, xb0, xn, mask, mb0, mn, j0, j1, w, t, m, r1, k1, m2, r2, k2, fac, fast):
    """Per column: max ``m2``, float64 sum ``r2`` of exp((x - max)/T) below the max, count ``k2`` at it.

    One exp per element: exp(-|x - m|/T) is the new term when x <= m and the rescale factor of the
    old sum when x > m (online softmax; Milakov & Gimelshein 2018, "Online normalizer calculation").
    Every KC rows the input-dtype sums (relative to the running max m) are folded into float64
    (relative to m2, the max at the previous fold).
    """
    prefer_512()
    T = x.dtype.type
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    for c in range(w):
        m[_u(c)] = ninf
        r1[_u(c)] = zero
        k1[_u(c)] = zero
        m2[c] = ninf
        r2[c] = 0.0
        k2[c] = 0.0
    step = LINE // x.itemsize
    ahead = max(1, PF_BYTES // (w * x.itemsize))  # rows
    j = j0
    while j < j1:
        je = min(j + KC, j1)
        for jj in range(j, je):
            xb = xb0 + jj * xn
            mb = mb0 + jj * mn
            for c0 in range(0, w, SEG):  # segments, each prefetching its columns `ahead` rows later
                c1 = min(c0 + SEG, w)
                for k in range(c0, c1, step):
                    prefetch(x, xb + ahead * xn + k)
                # Past the first rows a column's max rarely grows: a segment where none does takes
                # the plain sum (no rescale selects, no state of the max to store).
                grew = False
                if fast:
                    for c in range(c0, c1):
                        grew |= x[_u(xb + c)] > m[_u(c)]
                else:
                    prefetch(mask, mb + ahead * mn + c0)
                    for c in range(c0, c1):
                        grew |= mask[_u(mb + c)] and x[_u(xb + c)] > m[_u(c)]
                if not grew:
                    if fast:
                        for c in range(c0, c1):
                            v = x[_u(xb + c)]
                            mm = m[_u(c)]
                            e = vexp(v - mm)
                            eq = v == mm  # -inf == -inf is counted, and wiped once a finite max appears
                            r1[_u(c)] += zero if eq else e  # a NaN lands here
                            k1[_u(c)] += one if eq else zero
                    else:
                        for c in range(c0, c1):
                            v = x[_u(xb + c)] if mask[_u(mb + c)] else ninf
                            mm = m[_u(c)]
                            e = vexp((v - mm) / t)
                            eq = v == mm
                            r1[_u(c)] += zero if eq else e
                            k1[_u(c)] += one if eq else zero
                elif fast:
                    for c in range(c0, c1):
                        v = x[_u(xb + c)]
                        mm = m[_u(c)]
                        e = vexp(-np.abs(v - mm))
                        r = r1[_u(c)]
                        k = k1[_u(c)]
                        gt = v > mm
                        eq = v == mm
                        r1[_u(c)] = (r + k) * e if gt else (r if eq else r + e)  # a NaN falls to r + e
                        k1[_u(c)] = one if gt else (k + one if eq else k)
                        m[_u(c)] = v if gt else mm
                else:
                    for c in range(c0, c1):
                        v = x[_u(xb + c)] if mask[_u(mb + c)] else ninf
                        mm = m[_u(c)]
                        e = vexp(-np.abs(v - mm) / t)
                        r = r1[_u(c)]
                        k = k1[_u(c)]
                        gt = v > mm
                        eq = v == mm
                        r1[_u(c)] = (r + k) * e if gt else (r if eq else r + e)
                        k1[_u(c)] = one if gt else (k + one if eq else k)
                        m[_u(c)] = v if gt else mm
        for c in range(w):
            fac[c] = vexp((m2[c] - m[_u(c)]) / t)  # NaN for -inf - -inf: not used then
        for c in range(w):
            grew = m[_u(c)] > m2[c]
            rr = (r2[c] + k2[c]) * np.float64(fac[c]) if grew else r2[c]
            kk = 0.0 if grew else k2[c]
            r2[c] = rr + np.float64(r1[_u(c)])
            k2[c] = kk + np.float64(k1[_u(c)])
            r1[_u(c)] = zero
            k1[_u(c)] = zero
            m2[c] = m[_u(c)]
        j = je


@njit(**_HELPER)
def _cols_max(x, xb0, xn, mask, mb0, mn, j0, j1, w, m, fast):
    """Per column max of the unmasked entries (NaN ignored; caught later by the sum)."""
    prefer_512()
    ninf = x.dtype.type(-np.inf)
    for c in range(w):
        m[c] = ninf
    for jj in range(j0, j1):
        xb = xb0 + jj * xn
        mb = mb0 + jj * mn
        if fast:
            for c in range(w):
                m[c] = maxnum(m[c], x[_u(xb + c)])
        else:
            for c in range(w):
                m[c] = maxnum(m[c], x[_u(xb + c)] if mask[_u(mb + c)] else ninf)


@njit(**_HELPER)
def _cols_sum(x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, t, m, r1, k1, r2, k2, store, fast):
    """With the column max m known: float64 sum r2 of exp((x - m)/T) below the max and count k2 at it
    (blocked: KC rows in the input dtype, then float64); ``store`` keeps exp((x - m)/T) in out."""
    prefer_512()
    T = x.dtype.type
    ninf = T(-np.inf)
    zero = T(0.0)
    one = T(1.0)
    for c in range(w):
        r1[c] = zero
        k1[c] = zero
        r2[c] = 0.0
        k2[c] = 0.0
    for jj in range(j0, j1):
        xb = xb0 + jj * xn
        mb = mb0 + jj * mn
        ob = ob0 + jj * on
        for c in range(w):
            v = x[_u(xb + c)] if (fast or mask[_u(mb + c)]) else ninf
            d = v - m[c]
            e = vexp(d if fast else d / t)
            if store:
                out[_u(ob + c)] = e
            at_max = v == m[c]  # -inf == -inf too: such columns are special anyway
            r1[c] += zero if at_max else e  # a NaN lands here and makes the sum NaN
            k1[c] += one if at_max else zero
        if (jj - j0) % KC == KC - 1 or jj == j1 - 1:
            for c in range(w):
                r2[c] += np.float64(r1[c])
                k2[c] += np.float64(k1[c])
                r1[c] = zero
                k1[c] = zero


@njit(**_HELPER)
def _cols_scale(out, ob0, on, j0, j1, w, coef):
    prefer_512()
    for jj in range(j0, j1):
        ob = ob0 + jj * on
        for c in range(w):
            out[_u(ob + c)] *= coef[c]


@njit(**_HELPER)
def _cols_counts(x, xb0, xn, mask, mb0, mn, j0, j1, w, n_nan, n_pinf, n_fin):
    """Per column counts of unmasked NaN, +inf and finite entries (for T = inf)."""
    for c in range(w):
        n_nan[c] = 0.0
        n_pinf[c] = 0.0
        n_fin[c] = 0.0
    for jj in range(j0, j1):
        xb = xb0 + jj * xn
        mb = mb0 + jj * mn
        for c in range(w):
            v = x[_u(xb + c)]
            keep = mask[_u(mb + c)]
            n_nan[c] += 1.0 if (keep and v != v) else 0.0
            n_pinf[c] += 1.0 if (keep and v == np.inf) else 0.0
            n_fin[c] += 1.0 if (keep and np.abs(v) < np.inf) else 0.0


@njit(**_HELPER)
def _cols_merge(x, part, p0, nparts, w, t, mt, rt, kt, tinf):
    """Merge the states of the ranges part[p0 : p0 + nparts] ((max, sum, count) or, at T = inf, the
    three counts, which add) into mt, rt, kt."""
    T = x.dtype.type
    for c in range(w):
        mt[c] = T(0.0) if tinf else T(-np.inf)
        rt[c] = 0.0
        kt[c] = 0.0
    if tinf:
        for p in range(nparts):
            for c in range(w):
                mt[c] += T(part[p0 + p, 0, c])
                rt[c] += part[p0 + p, 1, c]
                kt[c] += part[p0 + p, 2, c]
        return
    for p in range(nparts):
        for c in range(w):
            mt[c] = maxnum(mt[c], T(part[p0 + p, 0, c]))
    for p in range(nparts):
        for c in range(w):
            mp = T(part[p0 + p, 0, c])
            f = np.float64(vexp((mp - mt[c]) / t))
            same = mp == mt[c]
            rt[c] += part[p0 + p, 1, c] if same else (part[p0 + p, 1, c] + part[p0 + p, 2, c]) * f
            kt[c] += part[p0 + p, 2, c] if same else 0.0


@njit(**_HELPER)
def _cols_write(x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, t, log, mw, coef, fast):
    """log: out = (x - mw)/T - coef; else out = exp((x - mw)/T) * coef, per column."""
    prefer_512()
    ninf = x.dtype.type(-np.inf)
    step = LINE // x.itemsize
    ahead = max(1, PF_BYTES // (w * x.itemsize))  # rows
    for jj in range(j0, j1):
        xb = xb0 + jj * xn
        mb = mb0 + jj * mn
        ob = ob0 + jj * on
        for c0 in range(0, w, SEG):
            c1 = min(c0 + SEG, w)
            for k in range(c0, c1, step):
                prefetch(x, xb + ahead * xn + k)
                prefetchw(out, ob + ahead * on + k)
            if fast and log:
                for c in range(c0, c1):
                    out[_u(ob + c)] = (x[_u(xb + c)] - mw[_u(c)]) - coef[_u(c)]
            elif fast:
                for c in range(c0, c1):
                    out[_u(ob + c)] = vexp(x[_u(xb + c)] - mw[_u(c)]) * coef[_u(c)]
            elif log:
                prefetch(mask, mb + ahead * mn + c0)
                for c in range(c0, c1):
                    v = x[_u(xb + c)] if mask[_u(mb + c)] else ninf
                    out[_u(ob + c)] = (v - mw[_u(c)]) / t - coef[_u(c)]
            else:
                prefetch(mask, mb + ahead * mn + c0)
                for c in range(c0, c1):
                    v = x[_u(xb + c)] if mask[_u(mb + c)] else ninf
                    out[_u(ob + c)] = vexp((v - mw[_u(c)]) / t) * coef[_u(c)]


@njit(**_HELPER)
def _cols_fix(x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, kind, hit, miss):
    """Overwrite the special columns (kind >= 0) with their special outputs."""
    for jj in range(j0, j1):
        xb = xb0 + jj * xn
        mb = mb0 + jj * mn
        ob = ob0 + jj * on
        for c in range(w):
            k = kind[c]
            if k >= 0:
                v = x[_u(xb + c)]
                keep = mask[_u(mb + c)]
                hit_here = (k == 1 and keep and v == np.inf) or (k == 2 and keep and np.abs(v) < np.inf)
                out[_u(ob + c)] = hit[c] if hit_here else miss[c]


@njit(**_HELPER)
def _cols_block(x, mask, out, geo, t, tinf, fast, mode, stage, part, scratch):
    """The column code on one block of ``w`` columns, ``geo = (xb0, xn, mb0, mn, ob0, on, j0, j1, w, p0,
    nparts)``.

    stage 0: the whole reduced axis [j0, j1) here: online pass, then the write pass. stage 1: online
    pass over [j0, j1) into part[p0]. stage 2: merge part[p0 : p0 + nparts], write [j0, j1)
    (logsumexp: only the range with j0 == 0 writes). ``scratch = (st, ws, kind)``: (3, >= w) float64,
    (8, >= w) input dtype, (>= w,) int64.
    """
    xb0, xn, mb0, mn, ob0, on, j0, j1, w, p0, nparts = geo
    st, ws, kind = scratch
    T = x.dtype.type
    m, r1, k1, mt, fac, mw, coef, hit = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
    miss = fac  # free once the online pass is done
    cached = False
    if stage == 2:
        _cols_merge(x, part, p0, nparts, w, t, mt, st[1], st[2], tinf)
    elif tinf:
        _cols_counts(x, xb0, xn, mask, mb0, mn, j0, j1, w, st[0], st[1], st[2])
        for c in range(w):
            mt[c] = T(st[0, c])
    elif stage == 0 and (j1 - j0) * w * x.itemsize <= CACHE_BLOCK_BYTES:
        # The block fits in cache: max first, then the sums (softmax keeps the exponentials), no
        # online rescaling.
        cached = True
        _cols_max(x, xb0, xn, mask, mb0, mn, j0, j1, w, mt, fast)
        store = mode == SOFTMAX
        _cols_sum(
            x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, t, mt, r1, k1, st[1], st[2], store, fast
        )
    else:
        _cols_online(x, xb0, xn, mask, mb0, mn, j0, j1, w, t, m, r1, k1, mt, st[1], st[2], fac, fast)
    if stage == 1:
        for c in range(w):
            part[p0, 0, c] = np.float64(mt[c])
            part[p0, 1, c] = st[1, c]
            part[p0, 2, c] = st[2, c]
        return
    # The block's state: max mt, float64 sum st[1] and count st[2] (T = inf: the counts of NaN,
    # +inf and finite entries in mt, st[1], st[2]).
    special = False
    if not tinf:
        # Simple loops, so they vectorise (vlog1p included); special columns are redone below.
        n_special = 0
        for c in range(w):
            n_special += 0 if ((np.abs(mt[c]) < np.inf) & (st[1, c] == st[1, c])) else 1
        special = n_special > 0
        # log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1).
        if mode == LOGSUMEXP:
            for c in range(w):
                st[0, c] = np.float64(mt[c]) + vlog1p(st[1, c] + (st[2, c] - 1.0))
        elif mode == LOG_SOFTMAX:
            for c in range(w):
                coef[c] = T(vlog1p(st[1, c] + (st[2, c] - 1.0)))
        else:
            for c in range(w):
                coef[c] = T(1.0 / (st[1, c] + st[2, c]))
        for c in range(w):
            mw[c] = mt[c]
        if special:  # keep the write pass finite on special columns (they are overwritten)
            for c in range(w):
                if not (np.abs(mt[c]) < np.inf and st[1, c] == st[1, c]):
                    mw[c] = T(0.0)
                    coef[c] = T(0.0)
    if mode == LOGSUMEXP:
        if j0 == 0:
            for c in range(w):
                out[_u(ob0 + c)] = T(st[0, c])
            if special:
                for c in range(w):
                    mc = mt[c]
                    r = st[1, c]
                    if not (np.abs(mc) < np.inf and r == r):
                        out[_u(ob0 + c)] = _lse_special(x, r != r, 1.0 if mc == np.inf else 0.0)
        return
    log = mode == LOG_SOFTMAX
    if tinf:
        special = True
        for c in range(w):
            kind[c], hit[c], miss[c] = _special_values(x, mt[c] > 0, st[1, c], st[2, c], tinf, log)
    else:
        for c in range(w):
            kind[c] = -1
        if special:
            for c in range(w):
                mc = mt[c]
                r = st[1, c]
                if not (np.abs(mc) < np.inf and r == r):
                    n_pinf = st[2, c] if mc == np.inf else 0.0  # at a +inf max: the number of +inf
                    kind[c], hit[c], miss[c] = _special_values(x, r != r, n_pinf, 0.0, tinf, log)
        if cached and mode == SOFTMAX:
            _cols_scale(out, ob0, on, j0, j1, w, coef)
        else:
            _cols_write(x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, t, log, mw, coef, fast)
    if special:
        _cols_fix(x, xb0, xn, mask, mb0, mn, out, ob0, on, j0, j1, w, kind, hit, miss)


# --- short rows: many rows of fewer than SHORT_ROW elements ----------------------------------------------


@njit(**_HELPER)
def _short_tile(x, xb, xo, mask, mb, mo, out, a, n, w, t, fast, has_mask, mode, tile, stage, ws, st):
    """Rows a .. a+w (row r at x[xb + r*xo], length n) through one transposed tile, SIMD across rows.

    The tile (``tile[j*TILE + r]``, masked entries at -inf) is copied first and the output written
    last, so out may be x. Returns False, having written nothing, when a row is special (a max that is
    not finite, or a NaN sum): the caller then runs the general column code on the tile. With a mask
    of the rows' own layout, the masked rows are first written contiguously into ``stage`` (n * TILE
    elements), so the transpose reads vectors there too; other masks are applied by a gather loop.
    The passes over the tile are intrinsics (:mod:`luce._kernels._numba_tiles`: max, sums, write).
    Scratch: ws (>= 2, TILE) input dtype, st (>= 2, TILE) float64.
    """
    prefer_512()
    T = x.dtype.type
    ninf = T(-np.inf)
    m, coef, r2, k2 = ws[0], ws[1], st[0], st[1]
    lanes = block_lanes(x)
    narrow = 2 * n <= lanes  # rows of at most half a vector: moved as whole vectors (transpose_narrow)
    if has_mask and xo == n and mo == n:  # rows and their mask contiguous: stage the masked rows
        for i in range(w * n):
            stage[_u(i)] = x[_u(xb + i)] if mask[_u(mb + i)] else ninf
        for r0 in range(0, w, lanes):
            if narrow:
                transpose_narrow(stage, r0 * n, n, tile, r0, TILE, min(lanes, w - r0), n)
                continue
            for j0 in range(0, n, lanes):
                rows, cols = min(lanes, w - r0), min(lanes, n - j0)
                transpose_block(stage, r0 * n + j0, n, tile, j0 * TILE + r0, TILE, rows, cols)
    elif has_mask:
        for j in range(n):  # loads strided by a row (gathers), stores contiguous
            for r in range(w):
                keep = mask[_u(mb + r * mo + j)]
                tile[_u(j * TILE + r)] = x[_u(xb + r * xo + j)] if keep else ninf
    elif narrow and xo == n:
        for r0 in range(0, w, lanes):
            transpose_narrow(x, xb + r0 * n, n, tile, r0, TILE, min(lanes, w - r0), n)
    else:
        for r0 in range(0, w, lanes):  # blocks transposed in registers
            for j0 in range(0, n, lanes):
                rows, cols = min(lanes, w - r0), min(lanes, n - j0)
                transpose_block(x, xb + r0 * xo + j0, xo, tile, j0 * TILE + r0, TILE, rows, cols)
    tn = np.int64(TILE)
    tile_max(tile, n, tn, w, m)
    special = False
    for r in range(w):
        special |= not (np.abs(m[_u(r)]) < np.inf)
    if special:
        return False
    log = mode != SOFTMAX
    tile_sums(tile, n, tn, w, m, t, not fast, log, r2, k2)
    for r in range(w):
        special |= r2[_u(r)] != r2[_u(r)]
    if special:
        return False
    if mode == LOGSUMEXP:
        for r in range(w):
            out[_u(a + r)] = T(np.float64(m[_u(r)]) + vlog1p(r2[_u(r)] + (k2[_u(r)] - 1.0)))
        return True
    for r in range(w):  # side by side, so this loop vectorises
        coef[_u(r)] = T(vlog1p(r2[_u(r)] + (k2[_u(r)] - 1.0))) if log else T(1.0 / r2[_u(r)])
    # The outputs are finished in the tile (SIMD across rows), then transposed back into the rows.
    tile_write(tile, n, tn, w, m, coef, t, not fast, log)
    if narrow:
        for r0 in range(0, w, lanes):
            transpose_narrow(tile, r0, TILE, out, (a + r0) * n, n, n, min(lanes, w - r0))
        return True
    for r0 in range(0, w, lanes):
        for j0 in range(0, n, lanes):
            rows, cols = min(lanes, n - j0), min(lanes, w - r0)
            transpose_block(tile, j0 * TILE + r0, TILE, out, (a + r0) * n + j0, n, rows, cols)
    return True


# --- the kernel ----------------------------------------------------------------------------------------


@njit(**_HELPER)
def _rows_cached(x, mask, out, r0, r1, xo, mo, n, mode, t, general, m, s, c):
    """Rows r0..r1 short enough to stay in cache, in groups (GROUP_ROWS, GROUP_BYTES): each pass goes
    over every row of the group before the next pass, so the rows' reductions, which are independent,
    overlap their latencies (a tree of shuffles, an exp, a log1p) instead of adding them up.

    Softmax: max, then exp stored while summing, then rescaled in cache (one exp per element).
    log_softmax/logsumexp: max, then the sum below the max and the count at it (no rescaling;
    log_softmax stores ``(x - max)/T`` on the way), then the log1p form, subtracted in cache.
    ``m`` (x's dtype), ``s``, ``c`` (float64): scratch of GROUP_ROWS entries; ``s`` holds the sums,
    then the reciprocals (softmax) or the logs of the normalisers over ``exp(m)``.
    """
    T = x.dtype.type
    group = max(1, min(GROUP_ROWS, GROUP_BYTES // (n * x.itemsize)))
    for g0 in range(r0, r1, group):
        g1 = min(r1, g0 + group)
        for r in range(g0, g1):
            m[r - g0] = row_max(x, r * xo, mask, r * mo, n, general)
        for r in range(g0, g1):
            k = r - g0
            s[k], c[k] = np.nan, 0.0
            if np.abs(m[k]) < np.inf:
                if mode == SOFTMAX:
                    s[k] = row_exp_store_sum(x, r * xo, mask, r * mo, n, m[k], t, general, out, r * n)
                elif mode == LOG_SOFTMAX:
                    s[k], c[k] = row_shift_sum_count(x, r * xo, mask, r * mo, n, m[k], t, general, out, r * n)
                else:
                    s[k], c[k] = row_exp_sum_count(x, r * xo, mask, r * mo, n, m[k], t, general)
        for k in range(g1 - g0):  # side by side, so this loop vectorises: a reciprocal or a log1p per row
            if mode == SOFTMAX:
                s[k] = 1.0 / s[k]
            else:
                # log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1).
                s[k] = vlog1p(s[k] + (c[k] - 1.0))
        for r in range(g0, g1):
            k = r - g0
            xb, mb = r * xo, r * mo
            ob = r if mode == LOGSUMEXP else r * n
            finite = np.abs(m[k]) < np.inf
            if mode != LOGSUMEXP and s[k] == s[k]:
                row_finish(out, ob, n, T(s[k]), mode == LOG_SOFTMAX)
            elif mode != LOGSUMEXP and finite:
                # m is finite, so every term is in [0, 1]: the sum is NaN only when the row holds an
                # unmasked NaN, and such a row is all NaN. Decided without reading x again, which the
                # first pass may have overwritten (out may be x).
                for i in range(n):
                    out[_u(ob + i)] = T(np.nan)
            elif not (finite and s[k] == s[k]):
                _row_special(x, xb, mask, mb, out, ob, n, mode, False)
            else:
                out[_u(ob)] = T(np.float64(m[k]) + s[k])


@njit(**_HELPER)
def _task(stage, task, x, mask, out, t, tinf, fast, geo, part, tiles):
    """Task ``task``: a range of rows (ROWS, SHORT) or a block / range of columns (COLS).

    ``geo = (kind, mode, outer, n, inner, xo, xn, mo, mn, ntasks, nparts, cache_n, has_mask)``:
    x[o*xo + j*xn + c] is element (o, j, c) of (outer, n, inner), unit stride along the fast axis (mask
    likewise); out is C-contiguous (outer, n, inner), or (outer, inner) for logsumexp. ``tiles = (tile,
    tile_r, tmask, tmask_r, tout)`` hold the short-row tiles (ntasks * n * TILE elements; else length 1).
    """
    kind, mode, outer, n, inner, xo, xn, mo, mn, ntasks, nparts, cache_n, has_mask = geo
    T = x.dtype.type
    sw = min(inner, CB) if kind == COLS else (TILE if kind == SHORT else W)  # scratch width
    scratch = (np.empty((3, sw), np.float64), np.empty((8, sw), x.dtype), np.empty(sw, np.int64))
    if kind == COLS:
        nb = (inner + CB - 1) // CB
        blk = task // nparts
        o = blk // nb
        c0 = (blk % nb) * CB
        per = (n + nparts - 1) // nparts
        j0 = min(n, (task % nparts) * per)
        ob0 = o * inner + c0 if mode == LOGSUMEXP else o * n * inner + c0
        p0 = task if stage == 1 else blk * nparts
        w = min(CB, inner - c0)
        bgeo = (o * xo + c0, xn, o * mo + c0, mn, ob0, inner, j0, min(n, j0 + per), w, p0, nparts)
        _cols_block(x, mask, out, bgeo, t, tinf, fast, mode, stage, part, scratch)
        return
    per = (outer + ntasks - 1) // ntasks
    r0 = min(outer, task * per)
    r1 = min(outer, r0 + per)
    if kind == SHORT:
        # Rows shorter than SHORT_ROW: TILE rows at a time are transposed into an (n, TILE) tile, go
        # through the column code (SIMD across rows) and are transposed back. The tile is written
        # through tile/tmask and read through their read-only views, which have the types of x and mask
        # (so the column code compiles once).
        tile, tile_r, tmask, tmask_r, tout = tiles
        base = task * n * TILE
        # int64 values, not literals: a literal argument would compile another specialisation.
        tn, zero, one = np.int64(TILE), np.int64(0), np.int64(1)
        ahead = max(1, PF_BYTES // (n * x.itemsize))  # rows
        if not has_mask:
            for i in range(n * TILE):
                tmask[_u(base + i)] = True
        for a in range(r0, r1, TILE):
            w = min(tn, r1 - a)
            for r in range(w):
                prefetch(x, (a + r + ahead) * xo)
                prefetch(x, (a + r + ahead) * xo + n - 1)
            if not tinf and _short_tile(
                x,
                a * xo,
                xo,
                mask,
                a * mo,
                mo,
                out,
                a,
                n,
                w,
                t,
                fast,
                has_mask,
                mode,
                tile[base : base + n * TILE],
                tout[base : base + n * TILE],
                scratch[1],
                scratch[0],
            ):
                continue
            for j in range(n):  # stores contiguous, loads strided (gathers)
                for r in range(w):
                    tile[_u(base + j * TILE + r)] = x[_u((a + r) * xo + j)]
            if has_mask:
                for j in range(n):
                    for r in range(w):
                        tmask[_u(base + j * TILE + r)] = mask[_u((a + r) * mo + j)]
            lse = mode == LOGSUMEXP
            bgeo = (base, tn, base, tn, a if lse else base, tn, zero, n, w, zero, one)
            _cols_block(tile_r, tmask_r, out if lse else tout, bgeo, t, tinf, fast, mode, zero, part, scratch)
            if not lse:
                for r in range(w):
                    prefetchw(out, (a + r + ahead) * n)
                    prefetchw(out, (a + r + ahead) * n + n - 1)
                    for j in range(n):  # stores contiguous, loads strided
                        out[_u((a + r) * n + j)] = tout[_u(base + j * TILE + r)]
        return
    ws = scratch[1]
    st = scratch[0]
    if tinf:
        for r in range(r0, r1):
            _row_special(x, r * xo, mask, r * mo, out, r if mode == LOGSUMEXP else r * n, n, mode, tinf)
    elif n <= (cache_n if mode == SOFTMAX else SHORT_LOG_ROW):
        _rows_cached(x, mask, out, r0, r1, xo, mo, n, mode, t, not fast, ws[2], st[0], st[1])
    else:
        acc1, cnt1, acc2, cnt2 = ws[0, :W], ws[1, :W], st[0, :W], st[1, :W]
        for r in range(r0, r1):
            xb = r * xo
            mb = r * mo
            ob = r if mode == LOGSUMEXP else r * n
            m, rest, cnt = _row_online(x, xb, mask, mb, n, t, acc1, cnt1, acc2, cnt2, fast)
            if not (np.abs(m) < np.inf and rest == rest):
                _row_special(x, xb, mask, mb, out, ob, n, mode, tinf)
            elif mode == LOGSUMEXP:
                # log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1).
                out[_u(ob)] = T(np.float64(m) + vlog1p(rest + (cnt - 1.0)))
            else:
                log = mode == LOG_SOFTMAX
                coef = T(vlog1p(rest + (cnt - 1.0))) if log else T(1.0 / (rest + cnt))
                _row_write(x, xb, mask, mb, out, ob, n, m, t, coef, log, fast)


@njit(**_KERNEL)
def _kernel(x, mask, out, t, tinf, fast, geo, tiles):
    """All tasks in parallel; columns split in ``nparts`` ranges take two rounds (states, then merge
    and write). Arguments as for :func:`_task`; ``geo`` is an int64 array."""
    kind, mode, outer, n, inner, xo, xn, mo, mn, ntasks, nparts, cache_n, has_mask = geo
    g = (kind, mode, outer, n, inner, xo, xn, mo, mn, ntasks, nparts, cache_n, has_mask)
    rounds = 2 if (kind == COLS and nparts > 1) else 1
    part = np.empty((ntasks, 3, min(inner, CB)) if rounds == 2 else (1, 1, 1), np.float64)
    for rnd in range(rounds):
        stage = rnd + 1 if rounds == 2 else 0
        for task in prange(ntasks):
            _task(stage, np.int64(task), x, mask, out, t, tinf, fast, g, part, tiles)


# --- Python side: views, task sizes, calls -------------------------------------------------------------


def _merge(shape, strides):
    """``(size, stride)`` of consecutive axes seen as one, or None when they are not evenly strided."""
    dims = [(n, s) for n, s in zip(shape, strides, strict=True) if n != 1]
    size = math.prod(shape)
    if not dims:
        return size, 0
    for (_, s1), (n2, s2) in itertools.pairwise(dims):
        if s1 != n2 * s2:
            return None
    return size, dims[-1][1]


def _view(a, a0, a1, reverse):
    """Sizes ``(outer, n, inner)`` and element strides of ``a`` viewed with axes a0..a1 as ``n``.

    ``reverse`` reads the axes in reverse order (a Fortran-ordered array is C-ordered reversed). None
    when the axes do not merge, a stride is negative or not a whole number of elements, or the fast
    axis (``n`` when ``inner == 1``, else ``inner``) is not unit-strided.
    """
    shape, strides = a.shape, a.strides
    if reverse:
        shape, strides = shape[::-1], strides[::-1]
        a0, a1 = a.ndim - 1 - a1, a.ndim - 1 - a0
    if a.flags.f_contiguous if reverse else a.flags.c_contiguous:  # the common case, without _merge
        n, inner = math.prod(shape[a0 : a1 + 1]), math.prod(shape[a1 + 1 :])
        return (math.prod(shape[:a0]), n, inner), (n * inner, inner, 1)
    groups = (
        _merge(shape[:a0], strides[:a0]),
        _merge(shape[a0 : a1 + 1], strides[a0 : a1 + 1]),
        _merge(shape[a1 + 1 :], strides[a1 + 1 :]),
    )
    if any(g is None for g in groups):
        return None
    isz = a.itemsize
    if any(st < 0 or st % isz for _, st in groups):
        return None
    (outer, so), (n, sn), (inner, si) = ((size, st // isz) for size, st in groups)
    fast_size, fast_stride = (inner, si) if inner > 1 else (n, sn)
    if fast_size > 1 and fast_stride != 1:
        return None
    return (outer, n, inner), (so, sn, si)


def _flat(a, sizes, strides):
    """A read-only 1-D view of the memory spanned by ``a`` (from its first element), no copy."""
    if a.flags.c_contiguous or a.flags.f_contiguous:  # cheaper than as_strided
        return _readonly(a.reshape(-1, order="A"))
    span = 1 + sum((size - 1) * st for size, st in zip(sizes, strides, strict=True))
    return np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,), writeable=False)


def _readonly(a):
    v = a.view()
    v.flags.writeable = False
    return v


_TRUE = _readonly(np.ones(0, np.bool_))


def _all_true(size):
    """A read-only all-True boolean vector of ``size`` (one buffer, grown as needed: a few KB)."""
    global _TRUE
    if _TRUE.size < size:
        _TRUE = _readonly(np.ones(max(size, 2 * _TRUE.size), np.bool_))
    return _TRUE[:size]


def _tiles(size, dtype):
    """The short-row tiles: (tile, its read-only view, tile mask, its read-only view, output tile)."""
    tile, tmask = np.empty(size, dtype), np.empty(size, np.bool_)
    return tile, _readonly(tile), tmask, _readonly(tmask), np.empty(size, dtype)


@functools.cache
def _no_tiles(dtype):
    """Placeholders of the tiles' types for the other task kinds (they are never read or written)."""
    return _tiles(1, dtype)


def _layout(x, a0, a1):
    if not x.flags.aligned:
        x = x.copy()  # a misaligned buffer would compile another specialisation
    for reverse in (False, True):
        v = _view(x, a0, a1, reverse)
        if v is not None:
            return x, reverse, v
    # No unit-stride view (a strided last axis, negative strides, unmergeable axes): copy once.
    x = np.ascontiguousarray(x)
    return x, False, _view(x, a0, a1, False)


def _mask_layout(mask, a0, a1, reverse):
    v = _view(mask, a0, a1, reverse)
    if v is None:
        # A mask broadcast along the fast axis (or otherwise not viewable) is materialised once.
        mask = np.asfortranarray(mask) if reverse else np.ascontiguousarray(mask)
        v = _view(mask, a0, a1, reverse)
    return mask, v


def _writable_target(out, x, mask, reverse, kind, mode):
    """``out`` flattened in the order the kernel writes (C order, or C order of the reversed axes),
    or None when the kernel cannot write there directly (the caller then copies a temporary in).

    In place (``out`` is exactly ``x``'s memory) is direct for softmax and log_softmax along the last
    axis: each row is read before it is written. The column code reads the input again after writing
    (to place the outputs of special columns), and any other overlap could overwrite input not yet
    read, so those get a temporary.
    """
    view = out.T if reverse else out
    if not (view.flags.c_contiguous and view.flags.aligned and view.dtype == x.dtype):
        return None
    if np.may_share_memory(out, x) or np.may_share_memory(out, mask):
        xv = x.T if reverse else x
        same = view.ctypes.data == xv.ctypes.data and view.strides == xv.strides
        if not (same and kind != COLS and mode != LOGSUMEXP):
            return None
    return view.reshape(-1)


def _run(x, axes, t, mask, mode, out=None):
    """The kernel call. ``out``: a writeable array of the result's shape and x's dtype (keepdims or
    not, for logsumexp), filled and returned; it may be ``x`` itself."""
    a0, a1 = axes[0], axes[-1]
    if tuple(axes) != tuple(range(a0, a1 + 1)):
        return None  # axes that are not consecutive: the reference handles them
    ks = tuple(1 if a0 <= i <= a1 else s for i, s in enumerate(x.shape))
    if x.size == 0:
        empty = np.full(ks, -np.inf, dtype=x.dtype) if mode == LOGSUMEXP else np.empty(x.shape, x.dtype)
        if out is None:
            return empty  # logsumexp: -inf when only the reduced axes are empty
        np.copyto(out, empty.reshape(out.shape))
        return out
    x, reverse, ((outer, n, inner), (so, sn, si)) = _layout(x, a0, a1)
    xbuf = _flat(x, (outer, n, inner), (so, sn, si))
    tinf = math.isinf(t)
    fast = mask is None and t == 1.0
    if mask is None:
        # The general variant reads a mask: an all-True vector along the fast axis, zero strides.
        mbuf = _all_true(n if inner == 1 else inner)
        mo = mn = 0
        has_mask = False
    else:
        mask, (_, (mo, mn, mi)) = _mask_layout(mask, a0, a1, reverse)
        mbuf = _flat(mask, (outer, n, inner), (mo, mn, mi))
        has_mask = True
    tt = x.dtype.type(1.0 if tinf else t)  # the reference divides by T in the input dtype too
    pool = get_num_threads()
    threads = pool if x.size >= PARALLEL_MIN_SIZE else 1
    nparts = 1
    if inner == 1:
        kind = SHORT if n < SHORT_ROW else ROWS
        ntasks = min(-(-outer // TILE) if kind == SHORT else outer, 4 * threads)
        xn, mn = 1, 1
        xo = so
    else:
        kind = COLS
        nblocks = outer * -(-inner // CB)
        if 1 < threads and nblocks < 2 * threads:
            nparts = max(1, min(-(-2 * threads // nblocks), n // MIN_ROWS_PER_PART))
        ntasks = nblocks * nparts
        xn, xo = sn, so
    size = outer * inner if mode == LOGSUMEXP else outer * n * inner
    target = None if out is None else _writable_target(out, x, mbuf, reverse, kind, mode)
    result = np.empty(size, x.dtype) if target is None else target
    tiles = _tiles(ntasks * n * TILE, x.dtype) if kind == SHORT else _no_tiles(x.dtype)
    geo = np.array(
        [
            kind,
            mode,
            outer,
            n,
            inner,
            xo,
            xn,
            mo,
            mn,
            ntasks,
            nparts,
            ROW_CACHE_BYTES // x.itemsize,
            has_mask,
        ],
        dtype=np.int64,
    )
    if threads == 1 and pool > 1:
        # Small work: on this thread alone (waking the pool costs more than it saves, and on a busy
        # machine a parallel region can wait a whole scheduler tick for its second thread).
        set_num_threads(1)
        try:
            _kernel(xbuf, mbuf, result, tt, tinf, fast, geo, tiles)
        finally:
            set_num_threads(pool)
    else:
        _kernel(xbuf, mbuf, result, tt, tinf, fast, geo, tiles)
    if target is not None:
        return out
    shape = ks if mode == LOGSUMEXP else x.shape
    result = result.reshape(shape[::-1]).T if reverse else result.reshape(shape)
    if out is None:
        return result
    np.copyto(out, result.reshape(out.shape))
    return out


def softmax(x, axes, temperature, where, log, out=None):
    """Kernel softmax (``log=False``) or log_softmax of a float32/float64 array over consecutive axes.

    The semantics of the reference in luce.functional._softmax; None for axes it does not handle.
    ``out`` (x's shape and dtype) receives the result and is returned.
    """
    if isinstance(axes, int):
        axes = (axes,)
    return _run(x, tuple(axes), float(temperature), where, LOG_SOFTMAX if log else SOFTMAX, out)


def logsumexp(x, axes, where, out=None):
    """Kernel logsumexp over consecutive axes, in keepdims shape (or ``out``, keepdims or not);
    None for axes it does not handle."""
    if isinstance(axes, int):
        axes = (axes,)
    return _run(x, tuple(axes), 1.0, where, LOGSUMEXP, out)
