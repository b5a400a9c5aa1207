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
from libc.stdint cimport int8_t, int64_t

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
    void luce_tree_sgd_row(const luce_rows *rows, const int64_t *y, const double *sw, const int64_t *order,
                           Py_ssize_t t, Py_ssize_t start, const luce_tree *tr, const double *V, const double *b,
                           const double *scale, double *gbuf, double *lbuf)
    double luce_tree_sgd_decay(const int64_t *y, const double *sw, const int64_t *order, Py_ssize_t start,
                               Py_ssize_t stop, const int64_t *depths, Py_ssize_t max_depth, const double *lbuf,
                               double *V, Py_ssize_t d, double *scale, double *norm2, const double *rate,
                               Py_ssize_t n_rows, double lr, double reg, double explode, double *weight)
    int luce_tree_sgd_apply(const luce_rows *rows, const int64_t *y, const int64_t *order, Py_ssize_t start,
                            Py_ssize_t stop, const luce_tree *tr, double *V, double *b, const double *scale,
                            double *norm2, const double *rate, double lr, double reg, int fit_intercept,
                            double weight, const double *gbuf, int64_t part, int64_t n_parts)
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


def sgd_epoch(const double[:, ::1] X, const double[::1] data, const int64_t[::1] indices,
              const int64_t[::1] indptr, const int64_t[::1] y, const double[::1] sw, const int64_t[::1] order,
              Py_ssize_t batch_size, const int64_t[:, ::1] children, const int64_t[::1] edge_row,
              const int64_t[:, ::1] paths, const int8_t[:, ::1] codes, const int64_t[::1] depths,
              double[:, ::1] V, double[::1] b, double[::1] scale, double[::1] norm2, const double[::1] rate,
              double lr, double reg, bint fit_intercept, double explode, int n_threads=1):
    """One epoch of path-only mini-batch SGD (csrc/heads.h): the rows ``order``, ``batch_size`` at a
    time, update ``V``, ``b``, ``scale`` and ``norm2`` in place (``W = scale[:, None] · V``). Each batch:
    its rows' path gradients (rows in parallel), the objective and the weight decay, then the steps
    (weight rows split between the threads). The result does not depend on ``n_threads``. Returns
    ``Σ f_batch · rows(batch)``, or NaN on divergence (a batch over ``explode`` is not applied)."""
    cdef luce_rows rows
    cdef luce_tree t
    _rows(&rows, X, data, indices, indptr)
    _tree(&t, children, edge_row)
    _paths(&t, paths, codes, depths)
    cdef Py_ssize_t batch = max(1, batch_size), n = order.shape[0], max_depth = paths.shape[1]
    cdef Py_ssize_t start, stop, i
    cdef int nt = max(1, n_threads), part
    cdef double[::1] gbuf = np.empty(batch * max_depth * (children.shape[1] - 1))
    cdef double[::1] lbuf = np.empty(batch * max_depth)
    cdef int[::1] finite = np.ones(nt, dtype=np.intc)
    cdef double total = 0.0, f, weight = 0.0
    cdef const double *swp = _dptr(sw)
    cdef double *Vp = &V[0, 0] if V.shape[1] else NULL
    start = 0
    with nogil:
        while start < n:
            stop = min(start + batch, n)
            for i in prange(start, stop, num_threads=nt, schedule='static'):
                luce_tree_sgd_row(&rows, &y[0], swp, &order[0], i, start, &t, Vp, &b[0], &scale[0], &gbuf[0],
                                  &lbuf[0])
            f = luce_tree_sgd_decay(&y[0], swp, &order[0], start, stop, &depths[0], max_depth, &lbuf[0], Vp,
                                    V.shape[1], &scale[0], &norm2[0], &rate[0], V.shape[0], lr, reg, explode,
                                    &weight)
            if not f <= explode:
                total = NAN
                break
            total = total + f * (stop - start)
            if weight > 0:
                for part in prange(nt, num_threads=nt, schedule='static'):
                    finite[part] = luce_tree_sgd_apply(&rows, &y[0], &order[0], start, stop, &t, Vp, &b[0],
                                                       &scale[0], &norm2[0], &rate[0], lr, reg, fit_intercept,
                                                       weight, &gbuf[0], part, nt)
                if not _all_set(finite):
                    total = NAN
                    break
            start = stop
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
