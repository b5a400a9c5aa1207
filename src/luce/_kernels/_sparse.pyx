"""Sparsemax, 1.5-entmax and α-entmax rows (csrc/sparse.h), over threads.

Rows are C-contiguous ``(n_rows, n)`` float32/float64 arrays; luce.functional._sparse reaches these
through ``_dispatch.lookup`` and passes ``n_threads = _dispatch.kernel_threads()``. A row the kernel
leaves alone (a NaN, a ``+inf`` or no finite entry) gets ``flags[i] = 1``; the caller applies the edge
rules.
"""

import numpy as np

from cython.parallel cimport prange, threadid
from libc.stdint cimport uint8_t

cdef extern from "sparse.h" nogil:
    int luce_row_threads(int n_threads, Py_ssize_t n_rows, Py_ssize_t n)
    enum:
        LUCE_SPARSEMAX
        LUCE_ENTMAX15
        LUCE_ENTMAX_BISECT
    int luce_sparse_map_row_f64(const double *x, Py_ssize_t n, int mode, double alpha, int n_iter,
                                double *buf, double *out)
    int luce_sparse_map_row_f32(const float *x, Py_ssize_t n, int mode, double alpha, int n_iter,
                                double *buf, float *out)

ctypedef fused real:
    float
    double


def sparsemax_rows(x, out, flags, int n_threads):
    """Sparsemax of each row of ``x`` into ``out`` (exact threshold by randomised pivoting)."""
    _map_rows(x, LUCE_SPARSEMAX, 2.0, 0, out, flags, n_threads)


def entmax15_rows(x, out, flags, int n_threads):
    """1.5-entmax of each row of ``x`` into ``out`` (exact threshold by randomised pivoting)."""
    _map_rows(x, LUCE_ENTMAX15, 1.5, 0, out, flags, n_threads)


def entmax_bisect_rows(x, double alpha, int n_iter, out, flags, int n_threads):
    """α-entmax (``alpha > 1``) of each row of ``x`` into ``out``: at most ``n_iter`` safeguarded
    Newton–bisection steps on the threshold, the result divided by its sum."""
    if not alpha > 1.0:
        raise ValueError(f"alpha must be > 1, got {alpha}")
    _map_rows(x, LUCE_ENTMAX_BISECT, alpha, n_iter, out, flags, n_threads)


def _map_rows(x, int mode, double alpha, int n_iter, out, flags, int n_threads):
    if x.ndim != 2 or x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
        raise ValueError(f"x must be a 2-d C-contiguous float32/float64 array, got {x.dtype} {x.shape}")
    n_rows, n = x.shape
    if out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {x.dtype} array of shape {x.shape}")
    if flags.shape != (n_rows,) or flags.dtype != np.uint8:
        raise ValueError(f"flags must be a uint8 array of shape ({n_rows},)")
    if n_rows == 0 or n == 0:
        return
    n_threads = luce_row_threads(n_threads, n_rows, n)  # no more threads than the work pays for
    buf = np.empty((n_threads, n))  # each thread's candidates
    if x.dtype == np.float64:
        _rows[double](x, mode, alpha, n_iter, buf, out, flags, n_threads)
    else:
        _rows[float](x, mode, alpha, n_iter, buf, out, flags, n_threads)


cdef void _rows(const real[:, ::1] x, int mode, double alpha, int n_iter, double[:, ::1] buf,
                real[:, ::1] out, uint8_t[::1] flags, int n_threads) noexcept:
    cdef Py_ssize_t n_rows = x.shape[0], n = x.shape[1], i, tid
    cdef const real *xp = &x[0, 0]
    cdef real *op = &out[0, 0]
    with nogil:
        for i in prange(n_rows, num_threads=n_threads, schedule='static'):
            tid = threadid()
            if real is double:
                flags[i] = luce_sparse_map_row_f64(xp + i * n, n, mode, alpha, n_iter, &buf[tid, 0],
                                                   op + i * n)
            else:
                flags[i] = luce_sparse_map_row_f32(xp + i * n, n, mode, alpha, n_iter, &buf[tid, 0],
                                                   op + i * n)
