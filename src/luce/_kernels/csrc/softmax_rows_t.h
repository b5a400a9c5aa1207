/* Rows (the reduced axis is the last one, contiguous, n >= LUCE_SM_SHORT_ROW) for one dtype. */

#define T LUCE_T
#define F LUCE_F
#define L LUCE_SM_LANES
#define CHUNK ((ptrdiff_t)LUCE_SM_LANES * LUCE_SM_K)

/* A row that stays in cache: max, then one pass storing exp (softmax) or (x - max)/t (log_softmax)
 * while summing, then the output finished in cache. out may be x: nothing is written before the max
 * is known to be finite, and a NaN sum (the row holds an unmasked NaN: every term is in [0, 1]) makes
 * the whole row NaN without reading x again. */
LUCE_INLINE void F(luce_sm_row_cached)(const T *x, const unsigned char *mask, T *out, ptrdiff_t n, T t, int mode)
{
    const T m = F(luce_row_max_where)(x, mask, n);
    if (!(fabs(m) < INFINITY)) {
        F(luce_sm_slice_special)(x, 1, mask, 1, out, 1, n, mode, 0);
        return;
    }
    double count = 0, s;
    if (mode == LUCE_SOFTMAX)
        s = F(luce_row_exp_store_sum)(x, mask, n, m, t, out);
    else if (mode == LUCE_LOG_SOFTMAX)
        s = F(luce_row_shift_store_sum_count)(x, mask, n, m, t, out, &count);
    else
        s = F(luce_row_exp_sum_count)(x, mask, n, m, t, &count);
    if (mode == LUCE_LOGSUMEXP) {
        /* log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1). */
        out[0] = (T)((double)m + luce_log1p_finite_f64(s + (count - 1)));
    } else if (s != s) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (T)NAN;
    } else if (mode == LUCE_SOFTMAX) {
        F(luce_row_finish)(out, n, (T)(1.0 / s), 0);
    } else {
        F(luce_row_finish)(out, n, (T)luce_log1p_finite_f64(s + (count - 1)), 1);
    }
}

/* The online pass over a long row, in chunks of CHUNK elements: the chunk max (read from memory),
 * a rescale of the float64 lanes when the running max grows (the old maxima become ordinary terms),
 * then the chunk's exponentials from L1. Returns the max; *sum, *count as luce_row_exp_sum_count. */
LUCE_INLINE T F(luce_sm_row_online_v)(const T *x, const unsigned char *mask, ptrdiff_t n, T t, double *sum,
                                      double *count, const int masked, const int scaled)
{
    double sum2[L], cnt2[L];
    for (int j = 0; j < L; j++) sum2[j] = cnt2[j] = 0.0;
    T m = (T)-INFINITY;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += CHUNK) {
        const ptrdiff_t i1 = n - i0 < CHUNK ? n : i0 + CHUNK;
        const T cm = F(luce_row_max_v)(x + i0, masked ? mask + i0 : NULL, i1 - i0, masked);
        if (cm > m) {
            const double f = (double)LUCE_EXP(scaled ? (m - cm) / t : m - cm); /* 0 on the first chunk */
            for (int j = 0; j < L; j++) {
                sum2[j] = (sum2[j] + cnt2[j]) * f;
                cnt2[j] = 0.0;
            }
            m = cm;
        }
        T s[L], c[L];
        for (int j = 0; j < L; j++) s[j] = c[j] = 0;
        ptrdiff_t i = i0;
        for (; i + L <= i1; i += L) F(luce_row_step)(x, mask, i, L, m, t, NULL, s, c, 0, masked, scaled);
        if (i < i1) F(luce_row_step)(x, mask, i, (int)(i1 - i), m, t, NULL, s, c, 0, masked, scaled);
        for (int j = 0; j < L; j++) {
            sum2[j] += (double)s[j];
            cnt2[j] += (double)c[j];
        }
    }
    *sum = F(luce_lanes_total)(sum2);
    *count = F(luce_lanes_total)(cnt2);
    return m;
}

/* The write pass of a long row: out = (x - m)/t - c (log) or exp((x - m)/t)·c; masked: -inf / 0. */
LUCE_INLINE void F(luce_sm_row_write_v)(const T *x, const unsigned char *mask, T *out, ptrdiff_t n, T m, T t, T c,
                                        const int log, const int masked, const int scaled)
{
    /* Steps of L elements, each prefetching its own lines ahead: short bursts that overlap with the
     * arithmetic (a chunk's worth at once fills the line-fill buffers and stalls). */
    ptrdiff_t i0 = 0;
    for (; i0 + L <= n; i0 += L) {
        for (size_t k = 0; k < L * sizeof(T); k += 64) {
            __builtin_prefetch((const char *)(x + i0) + LUCE_SM_PREFETCH_BYTES + k);
            __builtin_prefetch((const char *)(out + i0) + LUCE_SM_PREFETCH_BYTES + k, 1);
        }
#pragma GCC ivdep
        for (int j = 0; j < L; j++) {
            const T v = F(luce_row_at)(x, mask, i0 + j, masked);
            const T d = scaled ? (v - m) / t : v - m;
            out[i0 + j] = log ? d - c : LUCE_EXP(d) * c;
        }
    }
#pragma GCC ivdep
    for (ptrdiff_t i = i0; i < n; i++) {
        const T v = F(luce_row_at)(x, mask, i, masked);
        const T d = scaled ? (v - m) / t : v - m;
        out[i] = log ? d - c : LUCE_EXP(d) * c;
    }
}

/* Three variants: plain; scaled (t != 1); masked, which also divides by t (exact when t == 1). */
#define LUCE_VARIANTS(call) (mask ? call(1, 1) : (t != 1 ? call(0, 1) : call(0, 0)))

/* A row too long for the cache path: online pass, then the write pass. */
LUCE_INLINE void F(luce_sm_row_long)(const T *x, const unsigned char *mask, T *out, ptrdiff_t n, T t, int mode)
{
    double sum, count;
#define ONLINE(masked, scaled) F(luce_sm_row_online_v)(x, mask, n, t, &sum, &count, masked, scaled)
    const T m = LUCE_VARIANTS(ONLINE);
#undef ONLINE
    if (!(fabs(m) < INFINITY && sum == sum)) {
        F(luce_sm_slice_special)(x, 1, mask, 1, out, 1, n, mode, 0);
        return;
    }
    /* log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1). */
    if (mode == LUCE_LOGSUMEXP) {
        out[0] = (T)((double)m + luce_log1p_finite_f64(sum + (count - 1)));
        return;
    }
    const int log = mode == LUCE_LOG_SOFTMAX;
    const T c = log ? (T)luce_log1p_finite_f64(sum + (count - 1)) : (T)(1.0 / (sum + count));
#define WRITE(masked, scaled)                                                                          \
    (log ? F(luce_sm_row_write_v)(x, mask, out, n, m, t, c, 1, masked, scaled)                          \
         : F(luce_sm_row_write_v)(x, mask, out, n, m, t, c, 0, masked, scaled))
    LUCE_VARIANTS(WRITE);
#undef WRITE
}

/* Rows r0 .. r1 of the (outer, n) view: the task of one thread. */
LUCE_DISPATCH void F(luce_sm_rows)(const luce_sm_geo *g, const T *x, const unsigned char *mask, T *out,
                                          ptrdiff_t r0, ptrdiff_t r1)
{
    const ptrdiff_t n = g->n;
    const T t = (T)g->t;
    const int mode = g->mode;
    const int cached = mode == LUCE_SOFTMAX ? n * (ptrdiff_t)sizeof(T) <= LUCE_SM_ROW_CACHE_BYTES
                                            : n <= LUCE_SM_SHORT_LOG_ROW;
    for (ptrdiff_t r = r0; r < r1; r++) {
        const T *xr = x + r * g->xo;
        const unsigned char *mr = mask ? mask + r * g->mo : NULL;
        T *outr = mode == LUCE_LOGSUMEXP ? out + r : out + r * n;
        if (g->tinf)
            F(luce_sm_slice_special)(xr, 1, mr, 1, outr, 1, n, mode, 1);
        else if (cached)
            F(luce_sm_row_cached)(xr, mr, outr, n, t, mode);
        else
            F(luce_sm_row_long)(xr, mr, outr, n, t, mode);
    }
}

#undef LUCE_VARIANTS
#undef CHUNK
#undef T
#undef F
#undef L
