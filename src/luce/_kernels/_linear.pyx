"""The fit engine's block kernels (csrc/linear.h): the softmax head on CSR row blocks (logits, loss,
residual and gradient scatter-add in one pass; Hessian products) and on dense logit blocks.

Every function is serial and releases the GIL: the fit engine runs blocks on its own threads. The
Python callers (models/_objective.py) check shapes and dtypes; arrays are C-contiguous, ``y`` is
``np.intp``, ``indptr`` the block's int64 row pointers (starting at 0), ``indices`` int32 or int64.
Accumulators (``Gt``, ``Ht``: ``n_features × K``; ``gb``: ``K`` float64) are added into, not zeroed.
"""

from libc.stdint cimport int64_t

import numpy as np

cdef extern from "linear.h" nogil:
    double luce_csr_softmax_f64(const double *data, const void *indices, int wide, const int64_t *indptr,
                                Py_ssize_t rows, Py_ssize_t K, const double *Wt, const double *b,
                                const Py_ssize_t *y, const double *sw, double eps, int grad, double *z,
                                double *Gt, double *gb)
    double luce_csr_softmax_f32(const float *data, const void *indices, int wide, const int64_t *indptr,
                                Py_ssize_t rows, Py_ssize_t K, const float *Wt, const float *b,
                                const Py_ssize_t *y, const float *sw, double eps, int grad, float *z,
                                float *Gt, double *gb)
    void luce_csr_softmax_hessp_f64(const double *data, const void *indices, int wide, const int64_t *indptr,
                                    Py_ssize_t rows, Py_ssize_t K, const double *Wt, const double *Vt, Py_ssize_t ld,
                                    const double *b, const double *v, double *P, Py_ssize_t p_stride, int make_state,
                                    const double *sw, double *u, double *Ht, double *hb)
    void luce_csr_softmax_hessp_f32(const float *data, const void *indices, int wide, const int64_t *indptr,
                                    Py_ssize_t rows, Py_ssize_t K, const float *Wt, const float *Vt, Py_ssize_t ld,
                                    const float *b, const float *v, float *P, Py_ssize_t p_stride, int make_state,
                                    const float *sw, float *u, float *Ht, double *hb)
    double luce_dense_softmax_f64(double *Z, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t ldz, const double *b,
                                  const Py_ssize_t *y, const double *sw, double eps, int mode, double *gb)
    double luce_dense_softmax_f32(float *Z, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t ldz, const float *b,
                                  const Py_ssize_t *y, const float *sw, double eps, int mode, double *gb)
    void luce_dense_curvature_product_f64(const double *P, double *U, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t ldu,
                                          const double *v, const double *sw, double *hb)
    void luce_dense_curvature_product_f32(const float *P, float *U, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t ldu,
                                          const float *v, const float *sw, double *hb)
    void luce_transpose_scale_add_f64(const double *Gt, Py_ssize_t d, Py_ssize_t K, double s, double lam,
                                      const double *W, double *out)
    void luce_transpose_scale_add_f32(const float *Gt, Py_ssize_t d, Py_ssize_t K, float s, float lam,
                                      const float *W, float *out)
    double luce_csr_softmax_rows_f64(const double *data, const void *indices, int wide, const int64_t *indptr,
                                     Py_ssize_t rows, Py_ssize_t K, const double *Vt, double scale,
                                     const double *b, const Py_ssize_t *y, const double *sw, double eps,
                                     double *R)
    double luce_csr_softmax_rows_f32(const float *data, const void *indices, int wide, const int64_t *indptr,
                                     Py_ssize_t rows, Py_ssize_t K, const float *Vt, float scale,
                                     const float *b, const Py_ssize_t *y, const float *sw, double eps,
                                     float *R)
    double luce_csc_update_f64(const double *csc_data, const int64_t *csc_rows, const int64_t *csc_indptr,
                               const int64_t *cols, Py_ssize_t n_cols, Py_ssize_t K, const double *R, double alpha,
                               double *Vt)
    double luce_csc_update_f32(const float *csc_data, const int64_t *csc_rows, const int64_t *csc_indptr,
                               const int64_t *cols, Py_ssize_t n_cols, Py_ssize_t K, const float *R, float alpha,
                               float *Vt)
    void luce_csc_momentum_update_f64(const double *csc_data, const int64_t *csc_rows, const int64_t *csc_indptr,
                                      const int64_t *cols, Py_ssize_t n_cols, Py_ssize_t K, const double *R,
                                      double alpha, double *theta, double *velocity, int64_t *stamps, int64_t t,
                                      const double *powers, double *gram, double *acc)
    void luce_csc_momentum_update_f32(const float *csc_data, const int64_t *csc_rows, const int64_t *csc_indptr,
                                      const int64_t *cols, Py_ssize_t n_cols, Py_ssize_t K, const float *R,
                                      float alpha, float *theta, float *velocity, int64_t *stamps, int64_t t,
                                      const double *powers, double *gram, float *acc)
    void luce_momentum_catch_up_f64(double *theta, double *velocity, Py_ssize_t K, const int64_t *cols,
                                    Py_ssize_t n_cols, int64_t *stamps, int64_t t, const double *powers)
    void luce_momentum_catch_up_f32(float *theta, float *velocity, Py_ssize_t K, const int64_t *cols,
                                    Py_ssize_t n_cols, int64_t *stamps, int64_t t, const double *powers)

cdef extern from "cg.h" nogil:
    double luce_cg_update_f64(double *x, double *r, const double *d, const double *hd, double alpha, Py_ssize_t n,
                              double *l1, double *linf)
    void luce_cg_direction_f64(double *d, const double *r, double beta, Py_ssize_t n)

ctypedef fused real:
    float
    double

# The data pointer of an optional argument: NULL for None (the kernels read NULL as "absent").
cdef inline const real *_const_data(const real[::1] a):
    return NULL if a is None else &a[0]


cdef inline real *_data(real[::1] a):
    return NULL if a is None else &a[0]


cdef inline const Py_ssize_t *_index_data(const Py_ssize_t[::1] a):
    return NULL if a is None else &a[0]


# What a dense row pass leaves in the logits (csrc/linear.h).
LOSS, RESIDUAL, PROBABILITIES = 0, 1, 2


cdef const void *_index_pointer(indices, int *wide) except? NULL:
    """The address of CSR column indices (int32 or int64, C-contiguous: never copied)."""
    cdef const int[::1] i32
    cdef const int64_t[::1] i64
    if indices.shape[0] == 0:
        wide[0] = 0
        return NULL
    if indices.dtype == np.int32:
        i32 = indices
        wide[0] = 0
        return &i32[0]
    if indices.dtype == np.int64:
        i64 = indices
        wide[0] = 1
        return &i64[0]
    raise TypeError(f"CSR indices must be int32 or int64, got {indices.dtype}")


def csr_softmax(const real[::1] data, indices, const int64_t[::1] indptr, Py_ssize_t K, const real[::1] Wt,
                const real[::1] b, const Py_ssize_t[::1] y, const real[::1] sw, double eps, bint grad,
                real[::1] Gt, double[::1] gb):
    """``Σ w_i CE_i`` (float64) of a CSR row block; with ``grad`` adds ``Σ x_i ⊗ w_i (p_i - q_i)`` into
    the flat ``Gt (n_features × K)`` and ``Σ w_i (p_i - q_i)`` into ``gb`` (None: no intercept).
    ``Wt``: ``coef.T`` (n_features × K) flat; ``b``, ``sw`` may be None."""
    cdef Py_ssize_t rows = y.shape[0]
    cdef int wide = 0
    cdef const void *idx = _index_pointer(indices, &wide)
    cdef real[::1] z = np.empty(max(K, 1), dtype=np.float64 if real is double else np.float32)
    cdef const real *bp = _const_data(b)
    cdef const real *swp = _const_data(sw)
    cdef real *gp = NULL
    if Gt is not None and Gt.shape[0] != 0:
        gp = &Gt[0]
    cdef double *gbp = _data(gb)
    cdef const real *dp = NULL
    if data.shape[0] != 0:
        dp = &data[0]
    cdef const real *wp = NULL
    if Wt.shape[0] != 0:
        wp = &Wt[0]
    cdef double loss = 0.0
    if rows == 0 or K == 0:
        return 0.0
    with nogil:
        if real is double:
            loss = luce_csr_softmax_f64(dp, idx, wide, &indptr[0], rows, K, wp, bp, &y[0], swp, eps, grad,
                                        &z[0], gp, gbp)
        else:
            loss = luce_csr_softmax_f32(dp, idx, wide, &indptr[0], rows, K, wp, bp, &y[0], swp, eps, grad,
                                        &z[0], gp, gbp)
    return loss


def csr_softmax_hessp(const real[::1] data, indices, const int64_t[::1] indptr, Py_ssize_t rows,
                      const real[:, ::1] WVt, const real[::1] b, const real[::1] v, real[::1] P, bint make_state,
                      const real[::1] sw, real[::1] Ht, double[::1] hb):
    """Adds the Hessian-vector sums of a CSR row block into ``Ht`` (flat n_features × K) and ``hb``
    (None: no intercept). With ``make_state``, ``WVt`` is ``[W; V]ᵀ`` (n_features × 2K) and the
    probabilities are computed into ``P`` (rows × K flat; None: per-row scratch); otherwise ``WVt``
    is ``Vᵀ`` (n_features × K) and ``P`` holds the probabilities."""
    cdef int wide = 0
    cdef const void *idx = _index_pointer(indices, &wide)
    cdef Py_ssize_t K = WVt.shape[1] // 2 if make_state else WVt.shape[1]
    cdef Py_ssize_t ld = WVt.shape[1]
    cdef real[::1] u = np.empty(max(K, 1), dtype=np.float64 if real is double else np.float32)
    cdef real[::1] scratch
    cdef Py_ssize_t p_stride = K
    if P is None:
        if not make_state:
            raise ValueError("csr_softmax_hessp needs P without make_state")
        scratch = np.empty(max(K, 1), dtype=np.float64 if real is double else np.float32)
        P, p_stride = scratch, 0
    cdef const real *bp = NULL
    cdef const real *vp = NULL
    cdef const real *swp = NULL
    cdef const real *dp = NULL
    cdef const real *wp = NULL
    cdef const real *vtp = NULL
    cdef real *hp = NULL
    cdef double *hbp = NULL
    bp = _const_data(b)
    vp = _const_data(v)
    swp = _const_data(sw)
    if data.shape[0] != 0:
        dp = &data[0]
    if WVt.shape[0] != 0 and K != 0:
        vtp = &WVt[0, 0]
        if make_state:
            wp, vtp = &WVt[0, 0], &WVt[0, K]
    if Ht.shape[0] != 0:
        hp = &Ht[0]
    hbp = _data(hb)
    if rows == 0 or K == 0:
        return
    with nogil:
        if real is double:
            luce_csr_softmax_hessp_f64(dp, idx, wide, &indptr[0], rows, K, wp, vtp, ld, bp, vp, &P[0], p_stride,
                                       make_state, swp, &u[0], hp, hbp)
        else:
            luce_csr_softmax_hessp_f32(dp, idx, wide, &indptr[0], rows, K, wp, vtp, ld, bp, vp, &P[0], p_stride,
                                       make_state, swp, &u[0], hp, hbp)


def cg_update(double[::1] x, double[::1] r, const double[::1] d, const double[::1] hd, double alpha):
    """One pass of the CG loop (csrc/cg.h): ``x += alpha·d``, ``r += alpha·hd``; returns
    ``(r·r, ‖r‖₁, ‖r‖∞)``."""
    cdef Py_ssize_t n = x.shape[0]
    cdef double rr = 0.0, l1 = 0.0, linf = 0.0
    if r.shape[0] != n or d.shape[0] != n or hd.shape[0] != n:
        raise ValueError("cg_update needs four vectors of one length")
    if n == 0:
        return 0.0, 0.0, 0.0
    with nogil:
        rr = luce_cg_update_f64(&x[0], &r[0], &d[0], &hd[0], alpha, n, &l1, &linf)
    return rr, l1, linf


def cg_direction(double[::1] d, const double[::1] r, double beta):
    """``d ← beta·d - r`` in place (csrc/cg.h)."""
    cdef Py_ssize_t n = d.shape[0]
    if r.shape[0] != n:
        raise ValueError("cg_direction needs two vectors of one length")
    if n == 0:
        return
    with nogil:
        luce_cg_direction_f64(&d[0], &r[0], beta, n)


def dense_softmax(real[:, :] Z, const real[::1] b, const Py_ssize_t[::1] y, const real[::1] sw, double eps,
                  int mode, double[::1] gb):
    """The softmax head on a logit block ``Z (rows, K)`` (contiguous rows, any row stride), in place, after adding ``b``
    (None: none). Returns ``Σ w_i CE_i`` (float64; 0 for PROBABILITIES) and leaves ``w (p - q)``
    (RESIDUAL, summed into ``gb`` unless None), ``p`` (PROBABILITIES) or the logits (LOSS) in ``Z``."""
    cdef Py_ssize_t rows = Z.shape[0], K = Z.shape[1], ldz = Z.strides[0] // sizeof(real)
    if K > 1 and Z.strides[1] != sizeof(real):
        raise ValueError("dense_softmax needs contiguous rows")
    cdef const real *bp = _const_data(b)
    cdef const real *swp = _const_data(sw)
    cdef const Py_ssize_t *yp = _index_data(y)
    cdef double *gbp = _data(gb)
    cdef double loss = 0.0
    if rows == 0 or K == 0:
        return 0.0
    with nogil:
        if real is double:
            loss = luce_dense_softmax_f64(&Z[0, 0], rows, K, ldz, bp, yp, swp, eps, mode, gbp)
        else:
            loss = luce_dense_softmax_f32(&Z[0, 0], rows, K, ldz, bp, yp, swp, eps, mode, gbp)
    return loss


def dense_curvature_product(const real[:, ::1] P, real[:, :] U, const real[::1] v, const real[::1] sw,
                            double[::1] hb):
    """``U ← w_i p_i ⊙ (u_i - p_iᵀu_i)`` row by row after ``U += v`` (None: nothing added); the rows'
    sum added into ``hb`` unless None."""
    cdef Py_ssize_t rows = U.shape[0], K = U.shape[1], ldu = U.strides[0] // sizeof(real)
    if K > 1 and U.strides[1] != sizeof(real):
        raise ValueError("dense_curvature_product needs contiguous rows")
    cdef const real *vp = _const_data(v)
    cdef const real *swp = _const_data(sw)
    cdef double *hbp = _data(hb)
    if rows == 0 or K == 0:
        return
    with nogil:
        if real is double:
            luce_dense_curvature_product_f64(&P[0, 0], &U[0, 0], rows, K, ldu, vp, swp, hbp)
        else:
            luce_dense_curvature_product_f32(&P[0, 0], &U[0, 0], rows, K, ldu, vp, swp, hbp)


def transpose_scale_add(const real[:, ::1] Gt, double s, double lam, const real[:, ::1] W, real[:, ::1] out):
    """``out = s·Gtᵀ + lam·W`` for ``Gt (d, K)``, ``W`` and ``out (K, d)`` (``W`` None: ``out = s·Gtᵀ``),
    the scalars rounded to the arrays' dtype first."""
    cdef Py_ssize_t d = Gt.shape[0], K = Gt.shape[1]
    cdef const real *wp = NULL
    if W is not None and W.shape[0] != 0:
        wp = &W[0, 0]
    if d == 0 or K == 0:
        return
    with nogil:
        if real is double:
            luce_transpose_scale_add_f64(&Gt[0, 0], d, K, s, lam, wp, &out[0, 0])
        else:
            luce_transpose_scale_add_f32(&Gt[0, 0], d, K, <float>s, <float>lam, wp, &out[0, 0])


def csr_softmax_rows(const real[::1] data, indices, const int64_t[::1] indptr, const real[:, ::1] Vt, double scale,
                     const real[::1] b, const Py_ssize_t[::1] y, const real[::1] sw, double eps, real[:, ::1] R):
    """``Σ w_i CE_i`` (float64) of CSR rows with logits ``scale·(Vt x_i) + b``; their residuals
    ``w_i (p_i - q_i)`` into ``R (rows, K)``. ``b``, ``sw`` may be None."""
    cdef Py_ssize_t rows = R.shape[0], K = R.shape[1]
    cdef int wide = 0
    cdef const void *idx = _index_pointer(indices, &wide)
    cdef const real *bp = NULL
    cdef const real *swp = NULL
    cdef const real *dp = NULL
    cdef double loss = 0.0
    bp = _const_data(b)
    swp = _const_data(sw)
    if data.shape[0] != 0:
        dp = &data[0]
    if rows == 0 or K == 0:
        return 0.0
    with nogil:
        if real is double:
            loss = luce_csr_softmax_rows_f64(dp, idx, wide, &indptr[0], rows, K, &Vt[0, 0], scale, bp, &y[0], swp,
                                             eps, &R[0, 0])
        else:
            loss = luce_csr_softmax_rows_f32(dp, idx, wide, &indptr[0], rows, K, &Vt[0, 0], <float>scale, bp, &y[0],
                                             swp, eps, &R[0, 0])
    return loss


def csc_update(const real[::1] csc_data, const int64_t[::1] csc_rows, const int64_t[::1] csc_indptr,
               const int64_t[::1] cols, const real[:, ::1] R, double alpha, real[:, ::1] Vt):
    """``Vt[cols[c]] += alpha·Σ_i x_ic·R[i]`` for a batch in CSC form restricted to its non-empty
    columns ``cols`` (``csc_indptr`` has ``len(cols) + 1`` entries); returns the change of
    ``Σ ‖Vt[j]‖²`` over those rows (float64)."""
    cdef Py_ssize_t n = cols.shape[0], K = Vt.shape[1]
    cdef double change = 0.0
    if n == 0 or K == 0:
        return 0.0
    with nogil:
        if real is double:
            change = luce_csc_update_f64(&csc_data[0], &csc_rows[0], &csc_indptr[0], &cols[0], n, K, &R[0, 0],
                                         alpha, &Vt[0, 0])
        else:
            change = luce_csc_update_f32(&csc_data[0], &csc_rows[0], &csc_indptr[0], &cols[0], n, K, &R[0, 0],
                                         <float>alpha, &Vt[0, 0])
    return change


def csc_momentum_update(const real[::1] csc_data, const int64_t[::1] csc_rows, const int64_t[::1] csc_indptr,
                        const int64_t[::1] cols, const real[:, ::1] R, double alpha, real[:, ::1] theta,
                        real[:, ::1] velocity, int64_t[::1] stamps, int64_t t, const double[:, ::1] powers):
    """The heavy-ball step ``t`` on the touched columns ``cols``, already brought to step ``t``
    (csrc/linear_block.h): ``theta``, ``velocity`` (n_features × K) and ``stamps`` are updated in place;
    ``powers (m, 4)``: ``M^m``. Returns the columns' ``(θ·θ, θ·v, v·v)`` before and after the step."""
    cdef Py_ssize_t n = cols.shape[0], K = theta.shape[1]
    cdef real[::1] acc = np.empty(max(K, 1), dtype=np.float64 if real is double else np.float32)
    cdef double[::1] gram = np.zeros(6)
    if n == 0 or K == 0:
        return np.asarray(gram[:3]), np.asarray(gram[3:])
    if powers.shape[0] < 2:
        raise ValueError("powers needs M^0 and M^1")
    with nogil:
        if real is double:
            luce_csc_momentum_update_f64(&csc_data[0], &csc_rows[0], &csc_indptr[0], &cols[0], n, K, &R[0, 0],
                                         alpha, &theta[0, 0], &velocity[0, 0], &stamps[0], t, &powers[0, 0],
                                         &gram[0], &acc[0])
        else:
            luce_csc_momentum_update_f32(&csc_data[0], &csc_rows[0], &csc_indptr[0], &cols[0], n, K, &R[0, 0],
                                         <float>alpha, &theta[0, 0], &velocity[0, 0], &stamps[0], t,
                                         &powers[0, 0], &gram[0], &acc[0])
    return np.asarray(gram[:3]), np.asarray(gram[3:])


def momentum_catch_up(real[:, ::1] theta, real[:, ::1] velocity, const int64_t[::1] cols, int64_t[::1] stamps,
                      int64_t t, const double[:, ::1] powers):
    """Brings the columns ``cols`` of ``theta`` and ``velocity`` to step ``t`` (in place)."""
    cdef Py_ssize_t n = cols.shape[0], K = theta.shape[1]
    if n == 0 or K == 0:
        return
    if t >= powers.shape[0]:
        raise ValueError("powers needs t + 1 rows")
    with nogil:
        if real is double:
            luce_momentum_catch_up_f64(&theta[0, 0], &velocity[0, 0], K, &cols[0], n, &stamps[0], t, &powers[0, 0])
        else:
            luce_momentum_catch_up_f32(&theta[0, 0], &velocity[0, 0], K, &cols[0], n, &stamps[0], t, &powers[0, 0])


# -- the fused dense kernels (csrc/linear_dense.h): logits, head and gradient per register tile ----------

cdef extern from "linear_dense.h" nogil:
    Py_ssize_t luce_dense_pad_f64(Py_ssize_t K)
    Py_ssize_t luce_dense_pad_f32(Py_ssize_t K)
    Py_ssize_t luce_dense_workspace_f64(Py_ssize_t d, Py_ssize_t K, int both)
    Py_ssize_t luce_dense_workspace_f32(Py_ssize_t d, Py_ssize_t K, int both)
    double luce_dense_sums_f64(const double *X, Py_ssize_t rows, Py_ssize_t d, Py_ssize_t ldx, Py_ssize_t K,
                               const double *Wt, const double *b, const Py_ssize_t *y, const double *sw,
                               double eps, int grad, double *work, double *acc, double *Gt, double *gb)
    double luce_dense_sums_f32(const float *X, Py_ssize_t rows, Py_ssize_t d, Py_ssize_t ldx, Py_ssize_t K,
                               const float *Wt, const float *b, const Py_ssize_t *y, const float *sw,
                               double eps, int grad, float *work, double *acc, float *Gt, double *gb)
    void luce_dense_hessp_f64(const double *X, Py_ssize_t rows, Py_ssize_t d, Py_ssize_t ldx, Py_ssize_t K,
                              const double *Wt, const double *Vt, Py_ssize_t ld, const double *b, const double *v,
                              double *P, int make_state, const double *sw, double *work, double *acc,
                              double *Ht, double *hb)
    void luce_dense_hessp_f32(const float *X, Py_ssize_t rows, Py_ssize_t d, Py_ssize_t ldx, Py_ssize_t K,
                              const float *Wt, const float *Vt, Py_ssize_t ld, const float *b, const float *v,
                              float *P, int make_state, const float *sw, float *work, double *acc,
                              float *Ht, double *hb)


cdef _dense_scratch(Py_ssize_t d, Py_ssize_t K, int both, bint is_double):
    """The fused kernels' scratch: (work in the data dtype, d·KP float64 accumulators)."""
    if is_double:
        return (np.empty(luce_dense_workspace_f64(d, K, both), dtype=np.float64),
                np.empty(d * luce_dense_pad_f64(K), dtype=np.float64))
    return (np.empty(luce_dense_workspace_f32(d, K, both), dtype=np.float32),
            np.empty(d * luce_dense_pad_f32(K), dtype=np.float64))


def dense_sums(const real[:, :] X, const real[:, ::1] Wt, const real[::1] b, const Py_ssize_t[::1] y,
               const real[::1] sw, double eps, bint grad, real[:, ::1] Gt, double[::1] gb):
    """``Σ w_i CE_i`` (float64) of a dense row block ``X (rows, d)`` (contiguous rows) in one pass over it:
    with ``grad`` writes ``Σ x_i ⊗ w_i (p_i - q_i)`` into ``Gt (d, K)`` and adds ``Σ w_i (p_i - q_i)`` into
    ``gb`` (None: no intercept). ``Wt``: ``coef.T`` (d × K); ``b``, ``sw`` may be None."""
    cdef Py_ssize_t rows = X.shape[0], d = X.shape[1], K = Wt.shape[1]
    cdef Py_ssize_t ldx = X.strides[0] // sizeof(real)
    if d > 1 and X.strides[1] != sizeof(real):
        raise ValueError("dense_sums needs contiguous rows")
    if Wt.shape[0] != d or y.shape[0] != rows or (grad and (Gt.shape[0] != d or Gt.shape[1] != K)):
        raise ValueError("dense_sums: shapes do not match")
    if rows == 0 or K == 0:
        if grad:
            Gt[:, :] = 0
        return 0.0
    work_arr, acc_arr = _dense_scratch(d, K, 0, real is double)
    cdef real[::1] work = work_arr
    cdef double[::1] acc = acc_arr
    cdef const real *xp = &X[0, 0] if d else NULL
    cdef const real *wp = &Wt[0, 0] if d else NULL
    cdef real *gp = &Gt[0, 0] if grad and d else NULL
    cdef const real *bp = _const_data(b)
    cdef const real *swp = _const_data(sw)
    cdef double *gbp = _data(gb) if grad else NULL
    cdef double loss = 0.0
    with nogil:
        if real is double:
            loss = luce_dense_sums_f64(xp, rows, d, ldx, K, wp, bp, &y[0], swp, eps, grad, &work[0], &acc[0], gp, gbp)
        else:
            loss = luce_dense_sums_f32(xp, rows, d, ldx, K, wp, bp, &y[0], swp, eps, grad, &work[0], &acc[0], gp, gbp)
    return loss


def dense_hessp(const real[:, :] X, const real[:, ::1] WVt, const real[::1] b, const real[::1] v, real[:, ::1] P,
                bint make_state, const real[::1] sw, real[:, ::1] Ht, double[::1] hb):
    """Writes the Hessian-vector sums of a dense row block ``X (rows, d)`` into ``Ht (d, K)`` and adds their
    intercept part into ``hb`` (None: no intercept). With ``make_state``, ``WVt`` is ``[W; V]ᵀ``
    (d × 2K) and the probabilities are computed (into ``P (rows, K)`` unless None); otherwise ``WVt``
    is ``Vᵀ`` (d × K) and ``P`` holds the probabilities."""
    cdef Py_ssize_t rows = X.shape[0], d = X.shape[1], ld = WVt.shape[1]
    cdef Py_ssize_t K = ld // 2 if make_state else ld
    cdef Py_ssize_t ldx = X.strides[0] // sizeof(real)
    if d > 1 and X.strides[1] != sizeof(real):
        raise ValueError("dense_hessp needs contiguous rows")
    if WVt.shape[0] != d or Ht.shape[0] != d or Ht.shape[1] != K:
        raise ValueError("dense_hessp: shapes do not match")
    if P is None and not make_state:
        raise ValueError("dense_hessp needs P without make_state")
    if P is not None and (P.shape[0] != rows or P.shape[1] != K):
        raise ValueError("dense_hessp: P must be (rows, K)")
    if rows == 0 or K == 0:
        Ht[:, :] = 0
        return
    work_arr, acc_arr = _dense_scratch(d, K, make_state, real is double)
    cdef real[::1] work = work_arr
    cdef double[::1] acc = acc_arr
    cdef const real *xp = &X[0, 0] if d else NULL
    cdef const real *wp = NULL
    cdef const real *vtp = NULL
    if d:
        vtp = &WVt[0, 0]
        if make_state:
            wp, vtp = &WVt[0, 0], &WVt[0, K]
    cdef real *pp = &P[0, 0] if P is not None else NULL
    cdef real *hp = &Ht[0, 0] if d else NULL
    cdef const real *bp = _const_data(b)
    cdef const real *vp = _const_data(v)
    cdef const real *swp = _const_data(sw)
    cdef double *hbp = _data(hb)
    with nogil:
        if real is double:
            luce_dense_hessp_f64(xp, rows, d, ldx, K, wp, vtp, ld, bp, vp, pp, make_state, swp, &work[0], &acc[0],
                                 hp, hbp)
        else:
            luce_dense_hessp_f32(xp, rows, d, ldx, K, wp, vtp, ld, bp, vp, pp, make_state, swp, &work[0], &acc[0],
                                 hp, hbp)
