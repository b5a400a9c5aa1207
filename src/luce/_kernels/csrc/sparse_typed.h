/* The row kernel of sparse.h for one element type; sparse.h includes this file once per type with
 * LUCE_T and LUCE_SFX(name) defined. */

/* mode (LUCE_SPARSEMAX, LUCE_ENTMAX15, LUCE_ENTMAX_BISECT with alpha and n_iter) of x[0:n] into out.
 * buf: scratch of n doubles (the candidates). Returns 1, writing nothing, when the row has a NaN, a
 * +inf or no finite entry. */
static LUCE_DISPATCH int LUCE_SFX(luce_sparse_map_row)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, int mode,
                                                       double alpha, int n_iter, double *LUCE_RESTRICT buf,
                                                       LUCE_T *LUCE_RESTRICT out)
{
    ptrdiff_t n_nan;
    const LUCE_T m = LUCE_SFX(luce_row_max_nan)(x, n, &n_nan);
    if (n_nan > 0 || !isfinite(m)) return 1;
    const double mf = (double)m;
    const double scale = mode == LUCE_SPARSEMAX ? 1.0 : mode == LUCE_ENTMAX15 ? 0.5 : alpha - 1.0;
    ptrdiff_t count = 0; /* the candidates d = (x - m)·scale > -1 */
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LUCE_ROW_LANES) {
        const ptrdiff_t j1 = n - j0 < LUCE_ROW_LANES ? n : j0 + LUCE_ROW_LANES;
        /* Candidates are rare: a vector test of each block, the same comparison, skips most blocks. */
        int any = 0;
        LUCE_SIMD_ANY
        for (ptrdiff_t j = j0; j < j1; j++) any |= ((double)x[j] - mf) * scale > -1.0;
        if (!any) continue;
        for (ptrdiff_t j = j0; j < j1; j++) { /* branch-free compaction: count <= j < n, always in buf */
            const double d = ((double)x[j] - mf) * scale;
            buf[count] = d;
            count += d > -1.0;
        }
    }
    if (mode == LUCE_SPARSEMAX) {
        const double tau = luce_pivot_threshold(buf, count, 0);
        for (ptrdiff_t j = 0; j < n; j++) {
            const double u = ((double)x[j] - mf) - tau;
            out[j] = (LUCE_T)(u > 0.0 ? u : 0.0);
        }
    } else if (mode == LUCE_ENTMAX15) {
        const double tau = luce_pivot_threshold(buf, count, 1);
        for (ptrdiff_t j = 0; j < n; j++) {
            const double u = ((double)x[j] - mf) * 0.5 - tau;
            out[j] = (LUCE_T)(u > 0.0 ? u * u : 0.0);
        }
    } else {
        const double beta = 1.0 / (alpha - 1.0);
        const double tau = luce_bisect_threshold(buf, count, alpha, n_iter);
        double total = 0.0;
        for (ptrdiff_t j = 0; j < count; j++) {
            const double u = buf[j] - tau;
            if (u > 0.0) total += luce_power(u, beta);
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            const double u = ((double)x[j] - mf) * scale - tau;
            out[j] = (LUCE_T)(u > 0.0 ? luce_power(u, beta) / total : 0.0);
        }
    }
    return 0;
}
