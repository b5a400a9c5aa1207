/* Short rows (last axis, n < LUCE_SM_SHORT_ROW) for one dtype: LUCE_SM_TILE rows at a time are
 * transposed into a tile, element j of row r at tile[j*TILE + r], so that every pass below is a
 * vector loop across rows (a row of 16 float32 would fill one vector and need a tree of shuffles per
 * reduction). The tile is copied first and the rows written last, so out may be x. */

#define T LUCE_T
#define F LUCE_F
#define TILE LUCE_SM_TILE

/* The tile's passes: max, then sums (blocked: LUCE_SM_KC elements in the input dtype, then float64;
 * softmax keeps exp((x - m)/t) in the tile, log_softmax (x - m)/t), then the per-row coefficient. */
LUCE_INLINE void F(luce_sm_tile_v)(T *LUCE_RESTRICT tile, ptrdiff_t n, T t, int mode, T *LUCE_RESTRICT m,
                                   double *LUCE_RESTRICT sum, double *LUCE_RESTRICT cnt, const int scaled)
{
    for (int r = 0; r < TILE; r++) m[r] = (T)-INFINITY;
    for (ptrdiff_t j = 0; j < n; j++)
        for (int r = 0; r < TILE; r++) m[r] = tile[j * TILE + r] > m[r] ? tile[j * TILE + r] : m[r];
    T s1[TILE], c1[TILE];
    for (int r = 0; r < TILE; r++) {
        s1[r] = c1[r] = 0;
        sum[r] = cnt[r] = 0;
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        T *row = tile + j * TILE;
        for (int r = 0; r < TILE; r++) {
            const T v = row[r];
            const T d = scaled ? (v - m[r]) / t : v - m[r];
            const T e = LUCE_EXP(d);
            const int eq = v == m[r];
            row[r] = mode == LUCE_SOFTMAX ? e : d;
            s1[r] += eq ? (T)0 : e; /* a NaN lands here */
            c1[r] += eq ? (T)1 : (T)0;
        }
        if (j % LUCE_SM_KC == LUCE_SM_KC - 1 || j == n - 1)
            for (int r = 0; r < TILE; r++) {
                sum[r] += (double)s1[r];
                cnt[r] += (double)c1[r];
                s1[r] = c1[r] = 0;
            }
    }
}

/* Rows r0 .. r1 of the (outer, n) view: the task of one thread. Returns -1 when out of memory. */
LUCE_DISPATCH int F(luce_sm_short)(const luce_sm_geo *g, const T *x, const unsigned char *mask, T *out,
                                          ptrdiff_t r0, ptrdiff_t r1)
{
    const ptrdiff_t n = g->n, xo = g->xo, mo = g->mo;
    const int mode = g->mode;
    const T t = (T)g->t;
    T *tile = (T *)malloc(n * TILE * sizeof(T));
    if (tile == NULL) return -1;
    T m[TILE], coef[TILE];
    double sum[TILE], cnt[TILE], lg[TILE];
    int bad[TILE];
    for (ptrdiff_t a = r0; a < r1; a += TILE) {
        const int w = r1 - a < TILE ? (int)(r1 - a) : TILE;
        if (g->tinf) {
            for (int r = 0; r < w; r++) {
                const unsigned char *mr = mask ? mask + (a + r) * mo : NULL;
                T *outr = mode == LUCE_LOGSUMEXP ? out + a + r : out + (a + r) * n;
                F(luce_sm_slice_special)(x + (a + r) * xo, 1, mr, 1, outr, 1, n, mode, 1);
            }
            continue;
        }
        /* In: rows past w are zeros (never written out). Without a mask, square blocks are transposed
         * in registers (transpose.h); the rest element by element. */
        ptrdiff_t jb = 0, rb = 0;
#ifdef LUCE_HAVE_SHUFFLE
        if (!mask) {
            rb = w / LUCE_TB * LUCE_TB;
            jb = n / LUCE_TB * LUCE_TB;
            for (ptrdiff_t r0 = 0; r0 < rb; r0 += LUCE_TB)
                for (ptrdiff_t j0 = 0; j0 < jb; j0 += LUCE_TB)
                    LUCE_TRANSPOSE(x + (a + r0) * xo + j0, xo, tile + j0 * TILE + r0, TILE);
        }
#endif
        for (ptrdiff_t j = 0; j < n; j++) {
            T *row = tile + j * TILE;
            const int r_from = j < jb ? (int)rb : 0; /* the blocks above hold rows < rb of columns < jb */
            if (mask)
                for (int r = r_from; r < w; r++) {
                    const T v = x[(a + r) * xo + j];
                    row[r] = mask[(a + r) * mo + j] ? v : (T)-INFINITY;
                }
            else
                for (int r = r_from; r < w; r++) row[r] = x[(a + r) * xo + j];
            for (int r = w; r < TILE; r++) row[r] = 0;
        }
        if (t != 1)
            F(luce_sm_tile_v)(tile, n, t, mode, m, sum, cnt, 1);
        else
            F(luce_sm_tile_v)(tile, n, t, mode, m, sum, cnt, 0);
        /* log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1). */
        if (mode == LUCE_SOFTMAX)
            for (int r = 0; r < TILE; r++) coef[r] = (T)(1.0 / (sum[r] + cnt[r]));
        else
            for (int r = 0; r < TILE; r++) lg[r] = luce_log1p_finite_f64(sum[r] + (cnt[r] - 1));
        if (mode == LUCE_LOG_SOFTMAX) /* apart: GCC 12 vectorises selects of one type only */
            for (int r = 0; r < TILE; r++) coef[r] = (T)lg[r];
        /* The outputs are finished in the tile (SIMD across rows), then moved to the rows. */
        if (mode == LUCE_SOFTMAX)
            for (ptrdiff_t j = 0; j < n; j++)
                for (int r = 0; r < TILE; r++) tile[j * TILE + r] *= coef[r];
        else if (mode == LUCE_LOG_SOFTMAX)
            for (ptrdiff_t j = 0; j < n; j++)
                for (int r = 0; r < TILE; r++) tile[j * TILE + r] -= coef[r];
        for (int r = 0; r < w; r++) bad[r] = !(fabs(m[r]) < INFINITY && sum[r] == sum[r]);
        if (mode == LUCE_LOGSUMEXP) { /* one value per row, side by side: a vector loop, then the special rows */
            for (int r = 0; r < w; r++) out[a + r] = (T)((double)m[r] + lg[r]);
            for (int r = 0; r < w; r++)
                if (bad[r]) F(luce_sm_slice_special)(x + (a + r) * xo, 1, mask ? mask + (a + r) * mo : NULL, 1,
                                                     out + a + r, 1, n, mode, 0);
            continue;
        }
        for (int r0 = 0; r0 < w; r0 += LUCE_TB) {
            const int r1 = w - r0 < LUCE_TB ? w : r0 + LUCE_TB;
            int any_bad = 0;
            for (int r = r0; r < r1; r++) any_bad |= bad[r];
            ptrdiff_t jdone = 0;
#ifdef LUCE_HAVE_SHUFFLE
            if (mode != LUCE_LOGSUMEXP && !any_bad && r1 - r0 == LUCE_TB) {
                jdone = n / LUCE_TB * LUCE_TB;
                for (ptrdiff_t j0 = 0; j0 < jdone; j0 += LUCE_TB)
                    LUCE_TRANSPOSE(tile + j0 * TILE + r0, TILE, out + (a + r0) * n + j0, n);
            }
#endif
            /* Row by row, in order: a special row of x is still intact when it is read (out may be x). */
            for (int r = r0; r < r1; r++) {
                const unsigned char *mr = mask ? mask + (a + r) * mo : NULL;
                T *outr = mode == LUCE_LOGSUMEXP ? out + a + r : out + (a + r) * n;
                if (bad[r])
                    F(luce_sm_slice_special)(x + (a + r) * xo, 1, mr, 1, outr, 1, n, mode, 0);
                else if (mode == LUCE_LOGSUMEXP)
                    outr[0] = (T)((double)m[r] + lg[r]);
                else
                    for (ptrdiff_t j = jdone; j < n; j++) outr[j] = tile[j * TILE + r];
            }
        }
    }
    free(tile);
    return 0;
}

#undef T
#undef F
#undef TILE
