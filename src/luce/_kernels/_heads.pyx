"""The label-tree kernels of csrc/heads.h over NumPy arrays (luce.models._hierarchical calls them
through luce._kernels._dispatch.lookup).

Rows arrive as ``(X, data, indices, indptr)``: dense float64 ``X (n, d)`` with an empty ``indptr``, or
a CSR matrix's float64 ``data`` and int64 ``indices``/``indptr`` with ``X`` of shape ``(0, d)``. The tree
arrives as ``children (n_internal, arity)`` (0 pads) and ``edge_row (n_internal,)``, the weight row of
each node's child 1 (see csrc/heads.h), with ``paths``/``codes``/``depths`` where a kernel follows
class paths; int64 (``codes`` int8), everything C-contiguous: the caller converts and checks shapes.
Every kernel releases the GIL; the parallel ones take ``n_threads`` (``_dispatch.kernel_threads()``).
"""

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport NAN
from libc.stdint cimport int8_t, int32_t, int64_t

import numpy as np

cdef extern from "heads.h" nogil:
    ctypedef struct luce_rows:
        const double *X
        Py_ssize_t d
        const double *data
        const int64_t *indices
        const int64_t *indptr

    ctypedef struct luce_tree:
        const int64_t *children
        const int64_t *edge_row
        Py_ssize_t arity
        const int64_t *paths
        const int8_t *codes
        const int64_t *depths
        Py_ssize_t max_depth

    int LUCE_MAX_ARITY
    double luce_tree_loss_grad(const luce_rows *rows, Py_ssize_t n, const int64_t *y, const double *sw,
                               const luce_tree *t, const double *W, const double *b, double *gW, double *gb)
    int luce_tree_sgd_shard(const luce_rows *rows, const int64_t *y, const double *sw, const int64_t *order,
                            Py_ssize_t n, Py_ssize_t batch, Py_ssize_t b0, Py_ssize_t b1, const luce_tree *tr,
                            Py_ssize_t n_internal, Py_ssize_t n_rows, double *V, double *b, double *scale,
                            double *norm2, const double *rate, double lr, double reg, int fit_intercept,
                            const int32_t *owner, int64_t shard, int64_t n_shards, double *gbuf, double *lbuf,
                            double *pbuf, double *weights)
    int64_t luce_shard_of(int64_t node, int64_t n_shards)
    void luce_tree_log_proba_row(const double *s, const luce_tree *t, Py_ssize_t n_internal, double *lp,
                                 double *out)
    int64_t luce_tree_topk_row(const luce_rows *rows, Py_ssize_t r, const double *W, const double *b,
                               const luce_tree *t, Py_ssize_t k, int64_t *out_classes, double *out_logp,
                               double *keys, int64_t *items)
    int64_t luce_tree_beam_row(const luce_rows *rows, Py_ssize_t r, const double *W, const double *b,
                               const luce_tree *t, Py_ssize_t k, Py_ssize_t beam, int64_t *out_classes,
                               double *out_logp, double *fkeys, int64_t *fitems, double *nkeys, int64_t *nitems)


cdef inline const double *_dptr(const double[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef inline const int64_t *_iptr(const int64_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef Py_ssize_t _rows(luce_rows *r, const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
                      const int64_t[::1] indptr):
    """Fill ``r`` from the row arrays; returns the number of rows."""
    r.X = &X[0, 0] if X.shape[0] and X.shape[1] else NULL
    r.d = X.shape[1]
    r.data = _dptr(data)
    r.indices = _iptr(indices)
    r.indptr = _iptr(indptr)
    return X.shape[0] if indptr.shape[0] == 0 else indptr.shape[0] - 1


cdef void _tree(luce_tree *t, const int64_t[:, ::1] children, const int64_t[::1] edge_row) except *:
    """Fill the node arrays of ``t`` (no paths)."""
    if children.shape[0] == 0 or not 2 <= children.shape[1] <= LUCE_MAX_ARITY or edge_row.shape[0] != children.shape[0]:
        raise ValueError(f"the tree needs children (n_internal, 2..{LUCE_MAX_ARITY}) and edge_row (n_internal,)")
    t.children = &children[0, 0]
    t.edge_row = &edge_row[0]
    t.arity = children.shape[1]
    t.paths = NULL
    t.codes = NULL
    t.depths = NULL
    t.max_depth = 0


cdef void _paths(luce_tree *t, const int64_t[:, ::1] paths, const int8_t[:, ::1] codes,
                 const int64_t[::1] depths) except *:
    if paths.shape[1] == 0 or codes.shape[0] != paths.shape[0] or codes.shape[1] != paths.shape[1]:
        raise ValueError("paths and codes must have the same shape (K, max_depth)")
    t.paths = &paths[0, 0]
    t.codes = &codes[0, 0]
    t.depths = &depths[0]
    t.max_depth = paths.shape[1]


cdef inline bint _all_set(const int[::1] flags) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(flags.shape[0]):
        if flags[i] == 0:
            return False
    return True


def loss_grad(const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
              const int64_t[::1] indptr, const int64_t[::1] y, const double[::1] sw,
              const int64_t[:, ::1] children, const int64_t[::1] edge_row, const int64_t[:, ::1] paths,
              const int8_t[:, ::1] codes, const int64_t[::1] depths, const double[:, ::1] W, const double[::1] b,
              double[:, ::1] gW, double[::1] gb):
    """``Σ_i sw_i · (-log P(y_i | x_i))``, adding the gradient into ``gW (K-1, d)`` and ``gb (K-1,)``
    (the caller zeroes them). ``O(nnz·L·arity)`` per row, one thread (the sums go into one gradient)."""
    cdef luce_rows rows
    cdef luce_tree t
    cdef Py_ssize_t n = _rows(&rows, X, data, indices, indptr)
    _tree(&t, children, edge_row)
    _paths(&t, paths, codes, depths)
    cdef double total
    with nogil:
        total = luce_tree_loss_grad(&rows, n, _iptr(y), _dptr(sw), &t, &W[0, 0] if W.shape[1] else NULL, &b[0],
                                    &gW[0, 0] if gW.shape[1] else NULL, &gb[0])
    return total


# Rows of an epoch between two joins of the node shards' threads (csrc/heads.h: luce_tree_sgd_shard),
# and the most doubles of penalty terms kept per chunk (one per weight row and batch).
_SGD_CHUNK_ROWS = 16384
_SGD_CHUNK_TERMS = 1 << 20


def sgd_epoch(const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
              const int64_t[::1] indptr, const int64_t[::1] y, const double[::1] sw, const int64_t[::1] order,
              Py_ssize_t batch_size, const int64_t[:, ::1] children, const int64_t[::1] edge_row,
              const int64_t[:, ::1] paths, const int8_t[:, ::1] codes, const int64_t[::1] depths,
              double[:, ::1] V, double[::1] b, double[::1] scale, double[::1] norm2, const double[::1] rate,
              double lr, double reg, bint fit_intercept, double explode, int n_threads=1):
    """One epoch of path-only mini-batch SGD (csrc/heads.h): the rows ``order``, ``batch_size`` at a
    time, update ``V``, ``b``, ``scale`` and ``norm2`` in place (``W = scale[:, None] · V``). With
    several threads the tree's nodes are split into shards (the top block of 8 and 4 per thread), each run
    over a chunk of batches without synchronisation; the batch objectives are then added here in the
    order of one serial pass, so nothing depends on ``n_threads``. Returns ``Σ f_batch · rows(batch)``,
    or NaN on divergence: a step not finite, or a batch objective not finite or over ``explode`` (found
    after its chunk: the epoch's state is then to be discarded, as path_sgd does)."""
    cdef luce_rows rows
    cdef luce_tree t
    _rows(&rows, X, data, indices, indptr)
    _tree(&t, children, edge_row)
    _paths(&t, paths, codes, depths)
    cdef Py_ssize_t batch = max(1, batch_size), n = order.shape[0], md = paths.shape[1]
    cdef Py_ssize_t n_batches = (n + batch - 1) // batch, n_internal = children.shape[0], n_rows = V.shape[0]
    cdef Py_ssize_t chunk = max(1, min(_SGD_CHUNK_ROWS // batch, _SGD_CHUNK_TERMS // max(n_rows, 1)))
    cdef Py_ssize_t b0, b1, bi, tt, level, r
    cdef int nt = max(1, n_threads), s, tid = 0
    # the top block of 8 nodes alone, the others' blocks round robin: at most one shard per block
    cdef int shards = 1 if nt == 1 else min(4 * nt + 1, (n_internal + 7) // 8)
    cdef double[:, ::1] gbuf = np.empty((nt, batch * md * (children.shape[1] - 1)))  # one per thread
    cdef double[::1] lbuf = np.zeros(chunk * batch * md)
    cdef double[::1] pbuf = np.zeros(chunk * n_rows if reg > 0 else 1)
    cdef double[::1] weights = np.zeros(chunk)
    cdef int[::1] finite = np.ones(shards, dtype=np.intc)
    cdef int32_t[::1] owner = np.empty(max(n_internal, 1), dtype=np.int32)
    for r in range(n_internal):
        owner[r] = <int32_t>luce_shard_of(r, shards)
    cdef double total = 0.0, f, nll, penalty
    cdef const double *swp = _dptr(sw)
    cdef double *Vp = &V[0, 0] if V.shape[1] else NULL
    b0 = 0
    while b0 < n_batches:
        b1 = min(b0 + chunk, n_batches)
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for s in prange(shards, schedule='dynamic'):
                finite[s] = luce_tree_sgd_shard(&rows, &y[0], swp, &order[0], n, batch, b0, b1, &t, n_internal,
                                                n_rows, Vp, &b[0], &scale[0], &norm2[0], &rate[0], lr, reg,
                                                fit_intercept, &owner[0], s, shards, &gbuf[tid, 0], &lbuf[0],
                                                &pbuf[0], &weights[0])
        if not _all_set(finite):
            return NAN
        for bi in range(b0, b1):  # the batch objectives, added as one serial pass adds them
            nll = 0.0
            for tt in range(bi * batch, min(bi * batch + batch, n)):
                for level in range(depths[y[order[tt]]]):
                    nll = nll + lbuf[((bi - b0) * batch + tt - bi * batch) * md + level]
            penalty = 0.0
            if reg > 0:
                for r in range(n_rows):
                    penalty = penalty + pbuf[(bi - b0) * n_rows + r]
            f = (nll / weights[bi - b0] if weights[bi - b0] > 0 else 0.0) + 0.5 * reg * penalty
            if not f <= explode:
                return NAN
            total = total + f * (min(bi * batch + batch, n) - bi * batch)
        b0 = b1
    return total


def log_proba_from_scores(const double[:, ::1] S, const int64_t[:, ::1] children, const int64_t[::1] edge_row,
                          double[:, ::1] out, int n_threads=1):
    """Log-probability of every class ``out (n, K)`` from the weight rows' scores ``S (n, K-1)``, rows
    in parallel."""
    cdef luce_tree t
    _tree(&t, children, edge_row)
    cdef Py_ssize_t n = S.shape[0], n_internal = children.shape[0], r
    cdef int nt = max(1, n_threads), tid = 0
    cdef double[:, ::1] lp = np.empty((nt, n_internal))  # one scratch row per thread
    if n == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for r in prange(n, schedule='static'):
            luce_tree_log_proba_row(&S[r, 0], &t, n_internal, &lp[tid, 0], &out[r, 0])


def topk_best_first(const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
                    const int64_t[::1] indptr, const double[:, ::1] W, const double[::1] b,
                    const int64_t[:, ::1] children, const int64_t[::1] edge_row, Py_ssize_t k,
                    int64_t[:, ::1] out_classes, double[:, ::1] out_logp, int64_t[::1] visited, int n_threads=1):
    """The ``k`` most probable classes of each row by best-first search: ``out_classes``/``out_logp``
    ``(n, k)``, and the number of nodes evaluated per row in ``visited``; rows in parallel."""
    cdef luce_rows rows
    cdef luce_tree t
    cdef Py_ssize_t n = _rows(&rows, X, data, indices, indptr), r
    _tree(&t, children, edge_row)
    cdef Py_ssize_t cap = children.shape[0] + W.shape[0] + 2  # every push but the root's is a child
    cdef int nt = max(1, n_threads), tid = 0
    cdef double[:, ::1] keys = np.empty((nt, cap))  # one heap per thread
    cdef int64_t[:, ::1] items = np.empty((nt, cap), dtype=np.int64)
    if n == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for r in prange(n, schedule='static'):
            visited[r] = luce_tree_topk_row(&rows, r, &W[0, 0] if W.shape[1] else NULL, &b[0], &t, k,
                                            &out_classes[r, 0], &out_logp[r, 0], &keys[tid, 0], &items[tid, 0])


def topk_beam(const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
              const int64_t[::1] indptr, const double[:, ::1] W, const double[::1] b,
              const int64_t[:, ::1] children, const int64_t[::1] edge_row, Py_ssize_t k, Py_ssize_t beam,
              int64_t[:, ::1] out_classes, double[:, ::1] out_logp, int64_t[::1] visited, int n_threads=1):
    """The ``k`` most probable classes of each row among those a beam search of width ``beam >= k``
    reaches (at most ``beam·L`` node evaluations per row): as :func:`topk_best_first`, rows in
    parallel."""
    if beam < k:
        raise ValueError(f"beam must be at least k={k}, got {beam}")
    cdef luce_rows rows
    cdef luce_tree t
    cdef Py_ssize_t n = _rows(&rows, X, data, indices, indptr), r
    _tree(&t, children, edge_row)
    cdef Py_ssize_t width = (children.shape[1] + 1) * beam  # per thread: the frontier, then the next level
    cdef int nt = max(1, n_threads), tid = 0
    cdef double[:, ::1] keys = np.empty((nt, width))
    cdef int64_t[:, ::1] items = np.empty((nt, width), dtype=np.int64)
    if n == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for r in prange(n, schedule='static'):
            visited[r] = luce_tree_beam_row(&rows, r, &W[0, 0] if W.shape[1] else NULL, &b[0], &t, k, beam,
                                            &out_classes[r, 0], &out_logp[r, 0], &keys[tid, 0], &items[tid, 0],
                                            &keys[tid, beam], &items[tid, beam])
