"""Fused softmax cross-entropy rows and top-k softmax rows (csrc/losses.h), over threads.

Rows are C-contiguous ``(n_rows, n)`` float32/float64 arrays; the Python callers
(luce.losses._cross_entropy, luce.functional._sampling) reach these through ``_dispatch.lookup`` and
pass ``n_threads = _dispatch.kernel_threads()``. A row the kernel leaves to the NumPy reference (a NaN,
a ``+inf`` or no finite entry) gets ``flags[i] = 1``.
"""

import numpy as np

from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memset

cdef extern from "losses.h" nogil:
    int luce_row_threads(int n_threads, Py_ssize_t n_rows, Py_ssize_t n)
    enum:
        LUCE_CE_PLAIN
        LUCE_CE_WEIGHTED
        LUCE_CE_PROBS
    int luce_ce_row_f64(const double *x, Py_ssize_t n, int kind, int64_t y, const double *w,
                        const double *q, double big_w, double eps, double t, double grad_scale,
                        double *g, double *loss)
    int luce_ce_row_f32(const float *x, Py_ssize_t n, int kind, int64_t y, const float *w,
                        const double *q, double big_w, double eps, float t, double grad_scale,
                        float *g, double *loss)
    int luce_topk_row_f64(const double *x, Py_ssize_t n, Py_ssize_t k, double *hv, int64_t *hi,
                          double *probs, int64_t *idx)
    int luce_topk_row_f32(const float *x, Py_ssize_t n, Py_ssize_t k, double *hv, int64_t *hi,
                          double *probs, int64_t *idx)

ctypedef fused real:
    float
    double


def _check(a, shape, dtype, name):
    if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, "
                         f"got {a.dtype} {a.shape}")


def ce_rows(z, index, probs, weight, active, double eps, double t, double grad_scale, grad, loss, flags,
            int n_threads):
    """Cross-entropy of each row of ``z`` into ``loss`` (float64) and its gradient times ``grad_scale``
    into ``grad`` (z's shape and dtype; None: no gradient).

    Targets: class indices ``index`` (int64, one per row; ``probs`` None) with optional class weights
    ``weight`` (length n), or class probabilities ``probs`` (float64, z's shape; ``index`` None).
    ``eps`` label smoothing, ``t`` the temperature. Rows with ``active[i]`` False (ignored targets) get
    loss 0 and gradient 0.

    Class indices: ``loss_i = (1-ε) w_y (lse - d_y) + (ε/C) Σ_c w_c (lse - d_c)``, probabilities: with
    ``c = w ((1-ε) q + ε/C)``, ``loss_i = Σ_c c_c (lse - d_c)``, where ``d = (z - max z)/T`` and
    ``lse = log Σ exp d``; the gradient is ``(p Σ c - c)/T``.
    """
    n_rows, n = z.shape
    if z.dtype not in (np.float32, np.float64) or not z.flags.c_contiguous:
        raise ValueError(f"z must be a C-contiguous float32/float64 array, got {z.dtype}")
    if probs is not None:
        kind = LUCE_CE_PROBS
        probs = np.ascontiguousarray(probs, dtype=np.float64)
        _check(probs, (n_rows, n), np.float64, "probs")
        index = np.zeros(n_rows, dtype=np.int64)
    else:
        kind = LUCE_CE_PLAIN if weight is None else LUCE_CE_WEIGHTED
        index = np.ascontiguousarray(index, dtype=np.int64)
        _check(index, (n_rows,), np.int64, "index")
        probs = np.ones((1, n))
    big_w = float(n)
    if weight is None:
        weight = np.ones(n, dtype=z.dtype)
    else:
        weight = np.ascontiguousarray(weight, dtype=z.dtype)
        _check(weight, (n,), z.dtype, "weight")
        big_w = float(weight.sum(dtype=np.float64))
    active = np.ascontiguousarray(active, dtype=np.bool_)
    _check(active, (n_rows,), np.bool_, "active")
    _check(loss, (n_rows,), np.float64, "loss")
    _check(flags, (n_rows,), np.uint8, "flags")
    want_grad = grad is not None
    if want_grad:
        _check(grad, (n_rows, n), z.dtype, "grad")
    else:
        grad = np.empty((0, 0), dtype=z.dtype)
    if n_rows == 0 or n == 0:
        return
    n_threads = luce_row_threads(n_threads, n_rows, n)  # no more threads than the work pays for
    if z.dtype == np.float64:
        _ce_rows[double](z, index, probs, weight, active.view(np.uint8), kind, big_w, eps, t, grad_scale,
                         grad, want_grad, loss, flags, n_threads)
    else:
        _ce_rows[float](z, index, probs, weight, active.view(np.uint8), kind, big_w, eps, t, grad_scale,
                        grad, want_grad, loss, flags, n_threads)


cdef void _ce_rows(const real[:, ::1] z, const int64_t[::1] index, const double[:, ::1] probs,
                   const real[::1] weight, const uint8_t[::1] active, int kind, double big_w, double eps,
                   double t, double grad_scale, real[:, ::1] grad, bint want_grad, double[::1] loss,
                   uint8_t[::1] flags, int n_threads) noexcept:
    cdef Py_ssize_t n_rows = z.shape[0], n = z.shape[1], i
    cdef Py_ssize_t q_step = n if kind == LUCE_CE_PROBS else 0  # one row of ones otherwise
    cdef const real *zp = &z[0, 0]
    cdef const real *wp = &weight[0]
    cdef const double *qp = &probs[0, 0]
    cdef real *gp = &grad[0, 0] if want_grad else NULL
    cdef real *gi
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule='static'):
            gi = gp + i * n if want_grad else NULL
            if not active[i]:
                loss[i] = 0.0
                if want_grad:
                    memset(gi, 0, n * sizeof(real))
                continue
            if real is double:
                flags[i] = luce_ce_row_f64(zp + i * n, n, kind, index[i], wp, qp + i * q_step, big_w, eps,
                                           t, grad_scale, gi, &loss[i])
            else:
                flags[i] = luce_ce_row_f32(zp + i * n, n, kind, index[i], wp, qp + i * q_step, big_w, eps,
                                           <float>t, grad_scale, gi, &loss[i])


def topk_rows(x, Py_ssize_t k, probs, idx, flags, int n_threads):
    """The ``k`` (1 <= k <= n) largest softmax probabilities of each row of ``x`` into ``probs``
    (float64, ``(n_rows, k)``) and their indices into ``idx`` (int64), in decreasing order, equal
    values by increasing index; the softmax itself is never formed."""
    n_rows, n = x.shape
    if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
        raise ValueError(f"x must be a C-contiguous float32/float64 array, got {x.dtype}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    _check(probs, (n_rows, k), np.float64, "probs")
    _check(idx, (n_rows, k), np.int64, "idx")
    _check(flags, (n_rows,), np.uint8, "flags")
    if n_rows == 0:
        return
    n_threads = luce_row_threads(n_threads, n_rows, n)  # no more threads than the work pays for
    heap_values = np.empty((n_threads, k))  # one heap per thread
    heap_index = np.empty((n_threads, k), dtype=np.int64)
    if x.dtype == np.float64:
        _topk_rows[double](x, k, heap_values, heap_index, probs, idx, flags, n_threads)
    else:
        _topk_rows[float](x, k, heap_values, heap_index, probs, idx, flags, n_threads)


cdef void _topk_rows(const real[:, ::1] x, Py_ssize_t k, double[:, ::1] hv, int64_t[:, ::1] hi,
                     double[:, ::1] probs, int64_t[:, ::1] idx, uint8_t[::1] flags,
                     int n_threads) noexcept:
    cdef Py_ssize_t n_rows = x.shape[0], n = x.shape[1], i, tid
    cdef const real *xp = &x[0, 0]
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule='static'):
            tid = threadid()
            if real is double:
                flags[i] = luce_topk_row_f64(xp + i * n, n, k, &hv[tid, 0], &hi[tid, 0], &probs[i, 0],
                                             &idx[i, 0])
            else:
                flags[i] = luce_topk_row_f32(xp + i * n, n, k, &hv[tid, 0], &hi[tid, 0], &probs[i, 0],
                                             &idx[i, 0])
