/* The block kernels of linear.h for one element type: included once per LUCE_T (double, float) with
 * LUCE_SFX (f64, f32), LUCE_FMA_T (that type's fused multiply-add), LUCE_EXP (that type's luce_exp) and
 * LUCE_LOG_TINY (the probability clamp). */
#define LUCE_FN(name) LUCE_CAT(name, LUCE_SFX)

/* Asks for the cache lines of a feature's K weights a few nonzeros ahead: the rows a CSR row selects
 * are scattered over an n_features × K array far larger than the caches, and the hardware prefetchers
 * do not follow an index list. */
LUCE_INLINE void LUCE_FN(luce_prefetch_row_)(const LUCE_T *row, ptrdiff_t K, int write)
{
#if defined(__GNUC__) || defined(__clang__)
    const ptrdiff_t step = 64 / (ptrdiff_t)sizeof(LUCE_T); /* one cache line */
    for (ptrdiff_t k = 0; k < K + step - 1; k += step) {
        const LUCE_T *line = row + (k < K ? k : K - 1);
        if (write)
            __builtin_prefetch(line, 1);
        else
            __builtin_prefetch(line, 0);
    }
#else
    (void)row, (void)K, (void)write;
#endif
}

/* z += a·w over K entries (one nonzero of a CSR row times its feature's K weights). */
LUCE_INLINE void LUCE_FN(luce_axpy_)(LUCE_T a, const LUCE_T *LUCE_RESTRICT w, LUCE_T *LUCE_RESTRICT z, ptrdiff_t K)
{
    for (ptrdiff_t k = 0; k < K; k++) z[k] = LUCE_FMA_T(a, w[k], z[k]);
}

/* Row reductions in LUCE_LANES interleaved partial results (lane l takes entries k ≡ l mod LUCE_LANES),
 * combined pairwise at the end: a fixed order, the same on every ISA clone, that GCC vectorises
 * (without -ffast-math it keeps a single running sum scalar, as its order is part of the result). */
LUCE_INLINE double LUCE_FN(luce_lanes_total_)(const double *part)
{
    double t[LUCE_LANES];
    for (int l = 0; l < LUCE_LANES; l++) t[l] = part[l];
    for (int width = LUCE_LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) t[l] += t[l + width];
    return t[0];
}

/* max_k z[k] (NaN entries are skipped; they make the sum of exps NaN) and Σ_k z[k] (float64). */
LUCE_INLINE LUCE_T LUCE_FN(luce_max_sum_)(const LUCE_T *LUCE_RESTRICT z, ptrdiff_t K, double *sum)
{
    LUCE_T mx[LUCE_LANES];
    double sm[LUCE_LANES];
    for (int l = 0; l < LUCE_LANES; l++) mx[l] = -INFINITY, sm[l] = 0.0;
    ptrdiff_t k = 0;
    for (; k + LUCE_LANES <= K; k += LUCE_LANES)
        for (int l = 0; l < LUCE_LANES; l++) {
            mx[l] = z[k + l] > mx[l] ? z[k + l] : mx[l];
            sm[l] += (double)z[k + l];
        }
    for (int l = 0; k + l < K; l++) {
        mx[l] = z[k + l] > mx[l] ? z[k + l] : mx[l];
        sm[l] += (double)z[k + l];
    }
    LUCE_T m = mx[0];
    for (int l = 1; l < LUCE_LANES; l++) m = mx[l] > m ? mx[l] : m;
    *sum = LUCE_FN(luce_lanes_total_)(sm);
    return m;
}

/* Σ_k exp(z[k] - m) (float64). */
LUCE_INLINE double LUCE_FN(luce_sum_exp_)(const LUCE_T *LUCE_RESTRICT z, ptrdiff_t K, LUCE_T m)
{
    double sm[LUCE_LANES];
    for (int l = 0; l < LUCE_LANES; l++) sm[l] = 0.0;
    ptrdiff_t k = 0;
    for (; k + LUCE_LANES <= K; k += LUCE_LANES) {
        /* exp first, widen after: with the conversion in the same expression GCC did not vectorise
         * the float32 exp (benchmarks/linear_kernels.c, dense head, float32: 1.2-1.4 -> 0.7-0.8 ms;
         * three alternating runs under load) */
        LUCE_T e[LUCE_LANES];
        for (int l = 0; l < LUCE_LANES; l++) e[l] = LUCE_EXP(z[k + l] - m);
        for (int l = 0; l < LUCE_LANES; l++) sm[l] += (double)e[l];
    }
    for (int l = 0; k + l < K; l++) sm[l] += (double)LUCE_EXP(z[k + l] - m);
    return LUCE_FN(luce_lanes_total_)(sm);
}

/* Σ_k a[k]·b[k] (float64). */
LUCE_INLINE double LUCE_FN(luce_dot_)(const LUCE_T *LUCE_RESTRICT a, const LUCE_T *LUCE_RESTRICT b, ptrdiff_t K)
{
    double sm[LUCE_LANES];
    for (int l = 0; l < LUCE_LANES; l++) sm[l] = 0.0;
    ptrdiff_t k = 0;
    for (; k + LUCE_LANES <= K; k += LUCE_LANES)
        for (int l = 0; l < LUCE_LANES; l++) sm[l] = LUCE_FMA((double)a[k + l], (double)b[k + l], sm[l]);
    for (int l = 0; k + l < K; l++) sm[l] = LUCE_FMA((double)a[k + l], (double)b[k + l], sm[l]);
    return LUCE_FN(luce_lanes_total_)(sm);
}

/* The softmax head on one row of logits z (K entries), target class y, label smoothing eps, weight w.
 * Returns the row's cross-entropy (unweighted, float64; 0 for LUCE_ROW_PROBABILITIES) and leaves in z:
 * nothing new (LOSS), w·(p - q) (RESIDUAL) or p (PROBABILITIES). q = (1 - eps)·onehot(y) + eps/K. */
LUCE_INLINE double LUCE_FN(luce_softmax_row_)(LUCE_T *LUCE_RESTRICT z, ptrdiff_t K, ptrdiff_t y, double eps,
                                              LUCE_T w, int mode)
{
    double zsum;
    const LUCE_T m = LUCE_FN(luce_max_sum_)(z, K, &zsum);
    const double lse = (double)m + log(LUCE_FN(luce_sum_exp_)(z, K, m));
    double loss = 0.0;
    if (mode != LUCE_ROW_PROBABILITIES) {
        loss = (1.0 - eps) * (lse - (double)z[y]);
        if (eps != 0.0) loss += eps * (lse - zsum / (double)K);
    }
    if (mode == LUCE_ROW_LOSS) return loss;
    const LUCE_T lse_t = (LUCE_T)lse;
    for (ptrdiff_t k = 0; k < K; k++) {
        const LUCE_T logp = z[k] - lse_t;
        z[k] = LUCE_EXP(logp > LUCE_LOG_TINY ? logp : LUCE_LOG_TINY);
    }
    if (mode == LUCE_ROW_PROBABILITIES) return 0.0;
    if (eps != 0.0) {
        const LUCE_T share = (LUCE_T)(eps / (double)K);
        for (ptrdiff_t k = 0; k < K; k++) z[k] -= share;
    }
    z[y] -= (LUCE_T)(1.0 - eps);
    if (w != (LUCE_T)1)
        for (ptrdiff_t k = 0; k < K; k++) z[k] *= w;
    return loss;
}

/* r ← w·p ⊙ (u - pᵀu) over K entries: one row of the softmax Hessian times u (written over u). */
LUCE_INLINE void LUCE_FN(luce_curvature_row_)(const LUCE_T *LUCE_RESTRICT p, LUCE_T *LUCE_RESTRICT u,
                                              ptrdiff_t K, LUCE_T w)
{
    const LUCE_T put = (LUCE_T)LUCE_FN(luce_dot_)(p, u, K);
    for (ptrdiff_t k = 0; k < K; k++) u[k] = (u[k] - put) * p[k] * w;
}

/* z = b (or 0) + Σ_t x_t Wt[j_t, :] over one CSR row (nonzeros lo..hi). */
LUCE_INLINE void LUCE_FN(luce_csr_row_logits_)(const LUCE_T *LUCE_RESTRICT data, const void *indices, int wide,
                                               int64_t lo, int64_t hi, const LUCE_T *LUCE_RESTRICT Wt,
                                               const LUCE_T *LUCE_RESTRICT b, LUCE_T *LUCE_RESTRICT z,
                                               ptrdiff_t K)
{
    for (ptrdiff_t k = 0; k < K; k++) z[k] = b ? b[k] : (LUCE_T)0;
    for (int64_t t = lo; t < hi; t++) {
        if (t + LUCE_PREFETCH_AHEAD < hi)
            LUCE_FN(luce_prefetch_row_)(Wt + luce_index(indices, wide, t + LUCE_PREFETCH_AHEAD) * K, K, 0);
        LUCE_FN(luce_axpy_)(data[t], Wt + luce_index(indices, wide, t) * K, z, K);
    }
}

/* Gt[j_t, :] += x_t r over one CSR row; sums r into gb (float64) when gb is not NULL. */
LUCE_INLINE void LUCE_FN(luce_csr_row_scatter_)(const LUCE_T *LUCE_RESTRICT data, const void *indices, int wide,
                                                int64_t lo, int64_t hi, const LUCE_T *LUCE_RESTRICT r,
                                                LUCE_T *LUCE_RESTRICT Gt, double *LUCE_RESTRICT gb, ptrdiff_t K)
{
    for (int64_t t = lo; t < hi; t++) {
        if (t + LUCE_PREFETCH_AHEAD < hi)
            LUCE_FN(luce_prefetch_row_)(Gt + luce_index(indices, wide, t + LUCE_PREFETCH_AHEAD) * K, K, 1);
        LUCE_FN(luce_axpy_)(data[t], r, Gt + luce_index(indices, wide, t) * K, K);
    }
    if (gb)
        for (ptrdiff_t k = 0; k < K; k++) gb[k] += (double)r[k];
}

/* Loss and gradient sums of a CSR block: returns Σ w_i CE_i (float64); with grad, adds
 * Σ_i x_i ⊗ w_i (p_i - q_i) into Gt (d × K) and Σ_i w_i (p_i - q_i) into gb (K, float64; may be NULL).
 * z: K entries of scratch. b, sw may be NULL (no intercept, unit weights). */
static LUCE_DISPATCH double LUCE_FN(luce_csr_softmax_)(const LUCE_T *data, const void *indices, int wide,
                                                      const int64_t *indptr, ptrdiff_t rows, ptrdiff_t K,
                                                      const LUCE_T *Wt, const LUCE_T *b, const intptr_t *y,
                                                      const LUCE_T *sw, double eps, int grad, LUCE_T *z,
                                                      LUCE_T *Gt, double *gb)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const LUCE_T w = sw ? sw[i] : (LUCE_T)1;
        LUCE_FN(luce_csr_row_logits_)(data, indices, wide, indptr[i], indptr[i + 1], Wt, b, z, K);
        const double loss = LUCE_FN(luce_softmax_row_)(z, K, y[i], eps, w, grad ? LUCE_ROW_RESIDUAL : LUCE_ROW_LOSS);
        total += sw ? (double)w * loss : loss;
        if (grad) LUCE_FN(luce_csr_row_scatter_)(data, indices, wide, indptr[i], indptr[i + 1], z, Gt, gb, K);
    }
    return total;
}

/* Hessian-vector sums of a CSR block: adds Σ_i x_i ⊗ w_i p_i ⊙ (u_i - p_iᵀu_i) into Ht (d × K) and the
 * rows' sum into hb (float64, may be NULL), u_i = V x_i + v. Feature j's weights are Wt + j·ld and
 * Vt + j·ld: with make_state, Wt and Vt interleaved (the rows of [W; V]ᵀ, ld = 2K) so that one gather of
 * a 2K row gives both logits, and the probabilities p_i = softmax(W x_i + b) are computed into row i
 * of P (row stride p_stride: 0 reuses one K-row of scratch); without, p_i is read from P (Newton-CG's
 * later products at the same point) and Wt is not used (ld = K). */
static LUCE_DISPATCH void LUCE_FN(luce_csr_softmax_hessp_)(const LUCE_T *data, const void *indices, int wide,
                                                         const int64_t *indptr, ptrdiff_t rows, ptrdiff_t K,
                                                         const LUCE_T *Wt, const LUCE_T *Vt, ptrdiff_t ld,
                                                         const LUCE_T *b, const LUCE_T *v, LUCE_T *P,
                                                         ptrdiff_t p_stride, int make_state, const LUCE_T *sw,
                                                         LUCE_T *u, LUCE_T *Ht, double *hb)
{
    for (ptrdiff_t i = 0; i < rows; i++) {
        LUCE_T *LUCE_RESTRICT p = P + i * p_stride;
        for (ptrdiff_t k = 0; k < K; k++) u[k] = v ? v[k] : (LUCE_T)0;
        if (make_state) {
            for (ptrdiff_t k = 0; k < K; k++) p[k] = b ? b[k] : (LUCE_T)0;
            for (int64_t t = indptr[i]; t < indptr[i + 1]; t++) {
                const ptrdiff_t row = luce_index(indices, wide, t) * ld;
                LUCE_FN(luce_axpy_)(data[t], Wt + row, p, K);
                LUCE_FN(luce_axpy_)(data[t], Vt + row, u, K);
            }
            LUCE_FN(luce_softmax_row_)(p, K, 0, 0.0, (LUCE_T)1, LUCE_ROW_PROBABILITIES);
        } else {
            for (int64_t t = indptr[i]; t < indptr[i + 1]; t++)
                LUCE_FN(luce_axpy_)(data[t], Vt + luce_index(indices, wide, t) * ld, u, K);
        }
        LUCE_FN(luce_curvature_row_)(p, u, K, sw ? sw[i] : (LUCE_T)1);
        LUCE_FN(luce_csr_row_scatter_)(data, indices, wide, indptr[i], indptr[i + 1], u, Ht, hb, K);
    }
}

/* The softmax head on a dense block of logits Z (rows × K, row stride ldz) after adding b (may be NULL):
 * returns Σ w_i CE_i (float64, 0 for probabilities) and leaves the residuals w (p - q) (mode
 * RESIDUAL, their column sums added into gb when not NULL), the probabilities (PROBABILITIES) or the
 * logits (LOSS) in Z. */
static LUCE_DISPATCH double LUCE_FN(luce_dense_softmax_)(LUCE_T *Z, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t ldz,
                                                        const LUCE_T *b, const intptr_t *y, const LUCE_T *sw,
                                                        double eps, int mode, double *gb)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        LUCE_T *z = Z + i * ldz;
        const LUCE_T w = sw ? sw[i] : (LUCE_T)1;
        if (b)
            for (ptrdiff_t k = 0; k < K; k++) z[k] += b[k];
        const double loss = LUCE_FN(luce_softmax_row_)(z, K, y ? y[i] : 0, eps, w, mode);
        total += sw ? (double)w * loss : loss;
        if (mode == LUCE_ROW_RESIDUAL && gb)
            for (ptrdiff_t k = 0; k < K; k++) gb[k] += (double)z[k];
    }
    return total;
}

/* U ← w_i p_i ⊙ (u_i - p_iᵀu_i) row by row (U += v first when v is not NULL); the rows' sum into hb
 * (float64) when not NULL. P: rows × K, C order; U: rows × K, row stride ldu. */
static LUCE_DISPATCH void LUCE_FN(luce_dense_curvature_product_)(const LUCE_T *P, LUCE_T *U, ptrdiff_t rows,
                                                                ptrdiff_t K, ptrdiff_t ldu, const LUCE_T *v,
                                                                const LUCE_T *sw, double *hb)
{
    for (ptrdiff_t i = 0; i < rows; i++) {
        LUCE_T *u = U + i * ldu;
        if (v)
            for (ptrdiff_t k = 0; k < K; k++) u[k] += v[k];
        LUCE_FN(luce_curvature_row_)(P + i * K, u, K, sw ? sw[i] : (LUCE_T)1);
        if (hb)
            for (ptrdiff_t k = 0; k < K; k++) hb[k] += (double)u[k];
    }
}

/* Mini-batch SGD on CSR rows, O(nonzeros × K) per batch (models/_solvers.py, lazy weight decay
 * W = scale·V): the residuals R (rows × K, C order) of the rows' logits z_i = scale·(Vt x_i) + b
 * (b may be NULL); returns Σ w_i CE_i (float64). */
static LUCE_DISPATCH double LUCE_FN(luce_csr_softmax_rows_)(const LUCE_T *data, const void *indices, int wide,
                                                           const int64_t *indptr, ptrdiff_t rows, ptrdiff_t K,
                                                           const LUCE_T *Vt, LUCE_T scale, const LUCE_T *b,
                                                           const intptr_t *y, const LUCE_T *sw, double eps,
                                                           LUCE_T *R)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        LUCE_T *z = R + i * K;
        const LUCE_T w = sw ? sw[i] : (LUCE_T)1;
        LUCE_FN(luce_csr_row_logits_)(data, indices, wide, indptr[i], indptr[i + 1], Vt, NULL, z, K);
        for (ptrdiff_t k = 0; k < K; k++) z[k] = b ? scale * z[k] + b[k] : scale * z[k];
        const double loss = LUCE_FN(luce_softmax_row_)(z, K, y[i], eps, w, LUCE_ROW_RESIDUAL);
        total += sw ? (double)w * loss : loss;
    }
    return total;
}

/* The sparse SGD step's update, column by column: for each listed column j (with its nonzeros
 * csc_indptr[c]..csc_indptr[c + 1] in the batch's CSC form: row numbers csc_rows, values csc_data),
 * Vt[j, :] += alpha·Σ_i x_ij·R[i, :] (rows in increasing order, as a row-wise scatter would add them).
 * Returns Σ_j (‖Vt[j]‖² after - before) (float64) for the penalty: one visit of each touched row. */
static LUCE_DISPATCH double LUCE_FN(luce_csc_update_)(const LUCE_T *csc_data, const int64_t *csc_rows,
                                                     const int64_t *csc_indptr, const int64_t *cols,
                                                     ptrdiff_t n_cols, ptrdiff_t K, const LUCE_T *R,
                                                     LUCE_T alpha, LUCE_T *Vt)
{
    double change = 0.0;
    for (ptrdiff_t c = 0; c < n_cols; c++) {
        LUCE_T *v = Vt + cols[c] * K;
        const double before = LUCE_FN(luce_dot_)(v, v, K);
        for (int64_t t = csc_indptr[c]; t < csc_indptr[c + 1]; t++)
            LUCE_FN(luce_axpy_)(alpha * csc_data[t], R + csc_rows[t] * K, v, K);
        change += LUCE_FN(luce_dot_)(v, v, K) - before;
    }
    return change;
}

/* Heavy-ball SGD on CSR batches with lazy columns (models/_objective.py, LazyMomentumSGD): a column j
 * of the weights (theta, row j) and of the velocity (velocity, row j) that no batch touched since
 * step stamps[j] follows the linear map M = [[1 - ηλ, β], [-ηλ, β]] on (θ, v) once per step; powers
 * holds M^m row-major (4 doubles each) for m = 0, 1, ... . */
LUCE_INLINE void LUCE_FN(luce_momentum_gram_)(const LUCE_T *w, const LUCE_T *v, ptrdiff_t K, double *gram)
{
    gram[0] += LUCE_FN(luce_dot_)(w, w, K);
    gram[1] += LUCE_FN(luce_dot_)(w, v, K);
    gram[2] += LUCE_FN(luce_dot_)(v, v, K);
}

/* (θ, v) ← M^m (θ, v) over one column's K entries, plus add to both (add may be NULL). */
LUCE_INLINE void LUCE_FN(luce_momentum_map_)(LUCE_T *LUCE_RESTRICT w, LUCE_T *LUCE_RESTRICT v, ptrdiff_t K,
                                            const double *P, LUCE_T alpha, const LUCE_T *LUCE_RESTRICT add)
{
    const LUCE_T a = (LUCE_T)P[0], b = (LUCE_T)P[1], e = (LUCE_T)P[2], f = (LUCE_T)P[3];
    for (ptrdiff_t k = 0; k < K; k++) {
        const LUCE_T wk = w[k], vk = v[k], g = add ? alpha * add[k] : (LUCE_T)0;
        w[k] = a * wk + b * vk + g;
        v[k] = e * wk + f * vk + g;
    }
}

/* Brings the listed columns to step t: (θ_j, v_j) ← M^(t - stamps[j]) (θ_j, v_j), stamp ← t. */
static LUCE_DISPATCH void LUCE_FN(luce_momentum_catch_up_)(LUCE_T *theta, LUCE_T *velocity, ptrdiff_t K,
                                                          const int64_t *cols, ptrdiff_t n_cols, int64_t *stamps,
                                                          int64_t t, const double *powers)
{
    for (ptrdiff_t c = 0; c < n_cols; c++) {
        const int64_t s = stamps[cols[c]];
        if (s == t) continue;
        LUCE_FN(luce_momentum_map_)(theta + cols[c] * K, velocity + cols[c] * K, K, powers + 4 * (t - s),
                                    (LUCE_T)0, NULL);
        stamps[cols[c]] = t;
    }
}

/* Step t on the touched columns (already brought to step t): (θ, v) ← M (θ, v) + alpha·Σ_i x_ic·R[i]
 * on both (alpha = -η / Σw), stamp ← t + 1. Adds the columns' (θ·θ, θ·v, v·v) before the step into
 * gram[0..2] and after it into gram[3..5] (the caller keeps the 2 × 2 Gram matrix of all columns:
 * untouched ones move by M G Mᵀ). acc: K entries of scratch. */
static LUCE_DISPATCH void LUCE_FN(luce_csc_momentum_update_)(const LUCE_T *csc_data, const int64_t *csc_rows,
                                                            const int64_t *csc_indptr, const int64_t *cols,
                                                            ptrdiff_t n_cols, ptrdiff_t K, const LUCE_T *R,
                                                            LUCE_T alpha, LUCE_T *theta, LUCE_T *velocity,
                                                            int64_t *stamps, int64_t t, const double *powers,
                                                            double *gram, LUCE_T *acc)
{
    for (ptrdiff_t c = 0; c < n_cols; c++) {
        LUCE_T *w = theta + cols[c] * K, *v = velocity + cols[c] * K;
        LUCE_FN(luce_momentum_gram_)(w, v, K, gram);
        for (ptrdiff_t k = 0; k < K; k++) acc[k] = 0;
        for (int64_t u = csc_indptr[c]; u < csc_indptr[c + 1]; u++)
            LUCE_FN(luce_axpy_)(csc_data[u], R + csc_rows[u] * K, acc, K);
        LUCE_FN(luce_momentum_map_)(w, v, K, powers + 4, alpha, acc);
        stamps[cols[c]] = t + 1;
        LUCE_FN(luce_momentum_gram_)(w, v, K, gram + 3);
    }
}

/* out[k, j] = s·Gt[j, k] + lam·W[k, j] (W may be NULL: no penalty term): the gradient of coef
 * (K × d) finished from the CSR blocks' d × K sums, a tiled transpose so that both sides stream
 * (NumPy's strided copy of a transposed 20 MB array reads one element per cache line). */
static LUCE_DISPATCH void LUCE_FN(luce_transpose_scale_add_)(const LUCE_T *Gt, ptrdiff_t d, ptrdiff_t K, LUCE_T s,
                                                            LUCE_T lam, const LUCE_T *W, LUCE_T *out)
{
    const ptrdiff_t tile = LUCE_TRANSPOSE_TILE;
    for (ptrdiff_t j0 = 0; j0 < d; j0 += tile) {
        const ptrdiff_t j1 = j0 + tile < d ? j0 + tile : d;
        for (ptrdiff_t k = 0; k < K; k++) {
            LUCE_T *o = out + k * d;
            for (ptrdiff_t j = j0; j < j1; j++) {
                const LUCE_T g = Gt[j * K + k] * s;
                o[j] = W ? g + lam * W[k * d + j] : g;
            }
        }
    }
}

#undef LUCE_FN
