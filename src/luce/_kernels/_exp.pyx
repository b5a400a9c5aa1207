"""The kernels' exp and log1p over arrays: the primitives of csrc/luce_exp.h, for the tests that hold
them to mpmath (every kernel inlines the same C functions)."""

import numpy as np

cdef extern from "luce_exp.h" nogil:
    void luce_exp_array_f64(const double *x, double *out, Py_ssize_t n)
    void luce_exp_array_f32(const float *x, float *out, Py_ssize_t n)
    void luce_log1p_array_f64(const double *t, double *out, Py_ssize_t n)


def exp_array(x):
    """``exp`` of a float32 or float64 array (any shape), as the kernels compute it."""
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"exp_array takes float32 or float64, got {x.dtype}")
    out = np.empty_like(x)
    cdef const double[::1] x64
    cdef double[::1] o64
    cdef const float[::1] x32
    cdef float[::1] o32
    if x.dtype == np.float64:
        x64, o64 = x.reshape(-1), out.reshape(-1)
        with nogil:
            luce_exp_array_f64(&x64[0] if x64.shape[0] else NULL, &o64[0] if o64.shape[0] else NULL, x64.shape[0])
    else:
        x32, o32 = x.reshape(-1), out.reshape(-1)
        with nogil:
            luce_exp_array_f32(&x32[0] if x32.shape[0] else NULL, &o32[0] if o32.shape[0] else NULL, x32.shape[0])
    return out


def log1p_array(t):
    """``log1p`` of a float64 array (``t >= 0``, inf and NaN), as the kernels compute it."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty_like(t)
    cdef const double[::1] tv = t.reshape(-1)
    cdef double[::1] ov = out.reshape(-1)
    if tv.shape[0]:
        with nogil:
            luce_log1p_array_f64(&tv[0], &ov[0], tv.shape[0])
    return out
