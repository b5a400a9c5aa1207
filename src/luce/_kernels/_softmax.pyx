"""softmax, log_softmax and logsumexp kernels (csrc/softmax.h): the input viewed without copying as
(outer, n, inner), split into tasks over OpenMP threads, the GIL released.

Reached through :mod:`luce._kernels._dispatch` (``softmax``, ``logsumexp``), which checks the dtype,
the backend and the axes. A copy (``np.ascontiguousarray``, once) is made only when the fast axis (the
reduced axis for the last axis, else the trailing axes) cannot be viewed with unit stride, the axes
cannot be merged, or a stride is negative. ``where`` masks with unit stride along the fast axis (same
shape as ``x``, or broadcast along the other axes) are read in place; other masks are materialised
once as booleans.
"""

import itertools
import math

import numpy as np

from cython.parallel cimport prange

cdef extern from "softmax.h" nogil:
    ctypedef struct luce_sm_geo:
        Py_ssize_t outer, n, inner, xo, xn, mo, mn, nparts
        double t
        int mode, tinf
    enum:
        LUCE_SOFTMAX, LUCE_LOG_SOFTMAX, LUCE_LOGSUMEXP
        LUCE_SM_SHORT_ROW, LUCE_SM_TILE, LUCE_SM_CB, LUCE_SM_LANES, LUCE_SM_K, LUCE_SM_KC
        LUCE_SM_ROW_CACHE_BYTES, LUCE_SM_SHORT_LOG_ROW, LUCE_SM_CACHE_BLOCK_BYTES
    void luce_sm_rows_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out,
                          Py_ssize_t r0, Py_ssize_t r1)
    void luce_sm_rows_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out,
                          Py_ssize_t r0, Py_ssize_t r1)
    int luce_sm_short_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out,
                          Py_ssize_t r0, Py_ssize_t r1)
    int luce_sm_short_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out,
                          Py_ssize_t r0, Py_ssize_t r1)
    int luce_sm_cols_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out,
                         Py_ssize_t task, int stage, double *parts)
    int luce_sm_cols_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out,
                         Py_ssize_t task, int stage, double *parts)

# The C constants, for the tests that exercise each code path.
SHORT_ROW = LUCE_SM_SHORT_ROW  # last-axis rows shorter than this go through transposed tiles
TILE = LUCE_SM_TILE  # rows per transposed tile
CB = LUCE_SM_CB  # columns per column task at most
KC = LUCE_SM_KC  # rows between folds of the column sums into float64
LANES = LUCE_SM_LANES  # lanes of the blocked row sums (elements per step of a row pass)
CHUNK = LUCE_SM_LANES * LUCE_SM_K  # elements per online step of a long row
ROW_CACHE_BYTES = LUCE_SM_ROW_CACHE_BYTES  # softmax rows up to this size: exp once, rescaled in cache
SHORT_LOG_ROW = LUCE_SM_SHORT_LOG_ROW  # log_softmax/logsumexp rows up to this length: max first
CACHE_BLOCK_BYTES = LUCE_SM_CACHE_BLOCK_BYTES  # column blocks up to this size are read twice from cache
# Below this many elements one thread does all the work (waking a second costs more than it saves).
PARALLEL_MIN_SIZE = 1 << 14
# A range of the reduced axis given to one thread is at least this long.
MIN_ROWS_PER_PART = 256

cdef enum:  # the task kinds
    ROWS = 0
    COLS = 1
    SHORT = 2

ctypedef fused real:
    float
    double


cdef int _run_tasks(luce_sm_geo *g, const real *x, const unsigned char *mask, real *out, int kind,
                    Py_ssize_t ntasks, int n_threads, double *parts) noexcept nogil:
    """Every task of the call, on n_threads threads; columns split in ranges take two rounds
    (states, then merge and write). Returns nonzero when a task ran out of memory."""
    cdef Py_ssize_t task, per = (g.outer + ntasks - 1) // ntasks
    cdef int status = 0
    cdef int stage, rounds = 2 if (kind == COLS and g.nparts > 1) else 1
    if kind == ROWS:
        for task in prange(ntasks, num_threads=n_threads, schedule="static"):
            if real is float:
                luce_sm_rows_f32(g, x, mask, out, min(g.outer, task * per), min(g.outer, task * per + per))
            else:
                luce_sm_rows_f64(g, x, mask, out, min(g.outer, task * per), min(g.outer, task * per + per))
    elif kind == SHORT:
        for task in prange(ntasks, num_threads=n_threads, schedule="static"):
            if real is float:
                status |= luce_sm_short_f32(g, x, mask, out, min(g.outer, task * per), min(g.outer, task * per + per))
            else:
                status |= luce_sm_short_f64(g, x, mask, out, min(g.outer, task * per), min(g.outer, task * per + per))
    else:
        for stage in range(rounds):
            for task in prange(ntasks, num_threads=n_threads, schedule="static"):
                if real is float:
                    status |= luce_sm_cols_f32(g, x, mask, out, task, stage + 1 if rounds == 2 else 0, parts)
                else:
                    status |= luce_sm_cols_f64(g, x, mask, out, task, stage + 1 if rounds == 2 else 0, parts)
    return status


def _merge(shape, strides):
    """``(size, stride)`` of consecutive axes seen as one, or None when they are not evenly strided."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    size = math.prod(shape)
    if not dims:
        return size, 0
    for (_, s1), (n2, s2) in itertools.pairwise(dims):
        if s1 != n2 * s2:
            return None
    return size, dims[len(dims) - 1][1]


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
        v = a.reshape(-1, order="A")
    else:
        span = 1 + sum((size - 1) * st for size, st in zip(sizes, strides))
        v = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,), writeable=False)
    return v.view(np.uint8) if v.dtype == np.bool_ else v


def _layout(x, a0, a1):
    """``(x, reverse, view)``: x (copied only when it must be) and its (outer, n, inner) view."""
    if not x.flags.aligned:
        x = x.copy()
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
    if np.may_share_memory(out, x) or (mask is not None and np.may_share_memory(out, mask)):
        xv = x.T if reverse else x
        same = view.ctypes.data == xv.ctypes.data and view.strides == xv.strides
        if not (same and kind != COLS and mode != LUCE_LOGSUMEXP):
            return None
    return view.reshape(-1)


def _run(x, axes, double t, where, int mode, out, int n_threads):
    """The kernel call. ``out``: None or a writeable array of the result's shape and x's dtype
    (keepdims or not, for logsumexp), filled and returned; it may be ``x`` itself."""
    a0, a1 = axes[0], axes[len(axes) - 1]
    if tuple(axes) != tuple(range(a0, a1 + 1)):
        return None  # axes that are not consecutive: the reference handles them
    ks = tuple(1 if a0 <= i <= a1 else s for i, s in enumerate(x.shape))
    if x.size == 0:
        empty = np.full(ks, -np.inf, dtype=x.dtype) if mode == LUCE_LOGSUMEXP else np.empty(x.shape, x.dtype)
        if out is None:
            return empty  # logsumexp: -inf when only the reduced axes are empty
        np.copyto(out, empty.reshape(out.shape))
        return out
    x, reverse, ((outer, n, inner), (so, sn, si)) = _layout(x, a0, a1)
    xbuf = _flat(x, (outer, n, inner), (so, sn, si))
    cdef luce_sm_geo g
    g.outer, g.n, g.inner, g.xo, g.xn = outer, n, inner, so, sn
    g.mo = g.mn = 0
    g.mode = mode
    g.tinf = math.isinf(t)
    g.t = 1.0 if g.tinf else t
    g.nparts = 1
    mbuf = None
    if where is not None:
        where, (_, (mo, mn, mi)) = _mask_layout(where, a0, a1, reverse)
        mbuf = _flat(where, (outer, n, inner), (mo, mn, mi))
        g.mo, g.mn = mo, mn
    threads = n_threads if x.size >= PARALLEL_MIN_SIZE else 1
    if inner == 1:
        kind = SHORT if n < SHORT_ROW else ROWS
        ntasks = min(-(-outer // TILE) if kind == SHORT else outer, 4 * threads)
    else:
        kind = COLS
        nblocks = outer * -(-inner // CB)
        if 1 < threads and nblocks < 2 * threads and not g.tinf:
            g.nparts = max(1, min(-(-2 * threads // nblocks), n // MIN_ROWS_PER_PART))
        ntasks = nblocks * g.nparts
    size = outer * inner if mode == LUCE_LOGSUMEXP else outer * n * inner
    target = None if out is None else _writable_target(out, x, where, reverse, kind, mode)
    result = np.empty(size, x.dtype) if target is None else target
    parts = np.empty(ntasks * 3 * CB if g.nparts > 1 else 1, np.float64)
    cdef double[::1] pv = parts
    cdef const unsigned char[::1] mv
    cdef const unsigned char *mp = NULL
    if mbuf is not None:
        mv = mbuf
        mp = &mv[0]
    cdef const float[::1] x32
    cdef float[::1] o32
    cdef const double[::1] x64
    cdef double[::1] o64
    cdef int status, c_kind = kind, c_threads = threads
    cdef Py_ssize_t c_ntasks = ntasks
    if x.dtype == np.float32:
        x32, o32 = xbuf, result
        with nogil:
            status = _run_tasks(&g, &x32[0], mp, &o32[0], c_kind, c_ntasks, c_threads, &pv[0])
    else:
        x64, o64 = xbuf, result
        with nogil:
            status = _run_tasks(&g, &x64[0], mp, &o64[0], c_kind, c_ntasks, c_threads, &pv[0])
    if status:
        raise MemoryError("softmax kernel: out of memory for its scratch")
    if target is not None:
        return out
    shape = ks if mode == LUCE_LOGSUMEXP else x.shape
    result = result.reshape(shape[::-1]).T if reverse else result.reshape(shape)
    if out is None:
        return result
    np.copyto(out, result.reshape(out.shape))
    return out


def softmax(x, axes, temperature, where, log, out=None, n_threads=1):
    """Kernel softmax (``log=False``) or log_softmax of a float32/float64 array over consecutive axes.

    The semantics of the reference in luce.functional._softmax; None for axes it does not handle.
    ``out`` (x's shape and dtype) receives the result and is returned; ``n_threads``: the OpenMP
    threads it may use (``_dispatch.kernel_threads()``).
    """
    if isinstance(axes, int):
        axes = (axes,)
    return _run(x, tuple(axes), float(temperature), where, LUCE_LOG_SOFTMAX if log else LUCE_SOFTMAX, out, n_threads)


def logsumexp(x, axes, where, out=None, n_threads=1):
    """Kernel logsumexp over consecutive axes, in keepdims shape (or ``out``, keepdims or not);
    None for axes it does not handle."""
    if isinstance(axes, int):
        axes = (axes,)
    return _run(x, tuple(axes), 1.0, where, LUCE_LOGSUMEXP, out, n_threads)
