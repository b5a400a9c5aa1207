/* The row reductions of rows.h for one element type; rows.h includes this file once per type with
 * LUCE_T (the element type) and LUCE_SFX(name) (name##_f64 or name##_f32) defined. */

/* The maximum of the non-NaN entries of x[0:n] (-inf when there is none). */
LUCE_INLINE LUCE_T LUCE_SFX(luce_row_max)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n)
{
    return LUCE_SFX(luce_row_max_where)(x, NULL, n);
}

/* The maximum of the non-NaN entries of x[0:n] (-inf when there is none); *n_nan gets the NaN count. */
LUCE_INLINE LUCE_T LUCE_SFX(luce_row_max_nan)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, ptrdiff_t *n_nan)
{
    LUCE_T lane[LUCE_ROW_LANES];
    LUCE_T nans[LUCE_ROW_LANES]; /* counted in the element type: same vector width, exact below 2^24 per lane */
    for (int k = 0; k < LUCE_ROW_LANES; k++) {
        lane[k] = -INFINITY;
        nans[k] = 0;
    }
    ptrdiff_t count = 0;
    const ptrdiff_t nb = n - n % LUCE_ROW_LANES;
    for (ptrdiff_t b0 = 0; b0 < nb;) {
        /* Blocks of at most 2^20 per lane keep the float32 counts exact. */
        const ptrdiff_t b1 = nb - b0 > ((ptrdiff_t)LUCE_ROW_LANES << 20) ? b0 + ((ptrdiff_t)LUCE_ROW_LANES << 20) : nb;
        for (ptrdiff_t j0 = b0; j0 < b1; j0 += LUCE_ROW_LANES)
            LUCE_SIMD
            for (int k = 0; k < LUCE_ROW_LANES; k++) {
                const LUCE_T v = x[j0 + k];
                lane[k] = v > lane[k] ? v : lane[k];
                nans[k] += (LUCE_T)(v != v);
            }
        for (int k = 0; k < LUCE_ROW_LANES; k++) {
            count += (ptrdiff_t)nans[k];
            nans[k] = 0;
        }
        b0 = b1;
    }
    LUCE_T m = -INFINITY;
    for (int k = 0; k < LUCE_ROW_LANES; k++) m = lane[k] > m ? lane[k] : m;
    for (ptrdiff_t j = nb; j < n; j++) {
        m = x[j] > m ? x[j] : m;
        count += x[j] != x[j];
    }
    *n_nan = count;
    return m;
}

/* Σ x[0:n], accumulated in float64 whatever the element type (a NaN or inf propagates). */
LUCE_INLINE double LUCE_SFX(luce_row_sum)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n)
{
    double lane[LUCE_ROW_LANES];
    for (int k = 0; k < LUCE_ROW_LANES; k++) lane[k] = 0.0;
    const ptrdiff_t nb = n - n % LUCE_ROW_LANES;
    for (ptrdiff_t j0 = 0; j0 < nb; j0 += LUCE_ROW_LANES)
        LUCE_SIMD
        for (int k = 0; k < LUCE_ROW_LANES; k++) lane[k] += (double)x[j0 + k];
    double s = 0.0;
    for (int k = 0; k < LUCE_ROW_LANES; k++) s += lane[k];
    for (ptrdiff_t j = nb; j < n; j++) s += (double)x[j];
    return s;
}
