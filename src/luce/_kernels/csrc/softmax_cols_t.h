/* Columns (the reduced axis is not the last one) for one dtype: a block of w <= LUCE_SM_CB contiguous
 * columns, element (j, c) at x[j*xn + c] (mask[j*mn + c]), written to out[j*on + c]. SIMD runs across
 * the columns; each loop over c below is one vector loop. */

#define T LUCE_T
#define F LUCE_F

/* Element i, -inf where masked (the mask byte is compared as a float: see luce_row_at). */
LUCE_INLINE T F(luce_col_at)(const T *x, const unsigned char *mask, ptrdiff_t i, const int masked)
{
    const T v = x[i];
    return (masked && (T)mask[i] == 0) ? (T)-INFINITY : v;
}

/* Per column: max m (NaN ignored), float64 sum r2 of exp((x - m)/t) below the max, count k2 at it,
 * over rows j0 .. j1, in one pass with one exp per element: exp(-|x - m|/t) is the new term when
 * x <= m and the rescale factor of the old sum when x > m (online softmax; Milakov & Gimelshein
 * 2018). The input-dtype sums r1, k1 (relative to the running max m) are folded into float64 every
 * LUCE_SM_KC rows (relative to m2, the max at the previous fold). */
LUCE_INLINE void F(luce_cols_online_v)(const T *x, ptrdiff_t xn, const unsigned char *mask, ptrdiff_t mn,
                                       ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t w, T t, T *LUCE_RESTRICT m,
                                       T *LUCE_RESTRICT r1, T *LUCE_RESTRICT k1, T *LUCE_RESTRICT m2,
                                       double *LUCE_RESTRICT r2, double *LUCE_RESTRICT k2, T *LUCE_RESTRICT fac,
                                       T *LUCE_RESTRICT kept, const int masked, const int scaled)
{
    for (ptrdiff_t c = 0; c < w; c++) {
        m[c] = m2[c] = (T)-INFINITY;
        r1[c] = k1[c] = 0;
        r2[c] = k2[c] = 0;
    }
    const ptrdiff_t ahead = LUCE_SM_PREFETCH_BYTES / (w * (ptrdiff_t)sizeof(T)) + 1; /* rows */
    for (ptrdiff_t j = j0; j < j1; j += LUCE_SM_KC) {
        const ptrdiff_t je = j1 - j < LUCE_SM_KC ? j1 : j + LUCE_SM_KC;
        for (ptrdiff_t jj = j; jj < je; jj++) {
            /* Segments of LUCE_SM_SEG columns, each prefetching its lines `ahead` rows later: short
             * bursts of prefetches that overlap with the arithmetic (a whole row at once fills the
             * line-fill buffers and stalls). */
            for (ptrdiff_t c0 = 0; c0 < w; c0 += LUCE_SM_SEG) {
                const ptrdiff_t sw = w - c0 < LUCE_SM_SEG ? w - c0 : LUCE_SM_SEG;
                const T *xr = x + jj * xn + c0;
                const unsigned char *mr = masked ? mask + jj * mn + c0 : NULL;
                T *ms = m + c0, *r1s = r1 + c0, *k1s = k1 + c0;
                for (ptrdiff_t k = 0; k < sw; k += 64 / sizeof(T)) __builtin_prefetch(xr + ahead * xn + k);
                /* Past the first rows a column's max rarely grows: a segment where none does takes
                 * the plain sum (no rescale, no store of the max). */
                int grew = 0;
                for (ptrdiff_t c = 0; c < sw; c++) grew |= F(luce_col_at)(xr, mr, c, masked) > ms[c];
                if (!grew) {
                    for (ptrdiff_t c = 0; c < sw; c++) {
                        const T v = F(luce_col_at)(xr, mr, c, masked);
                        const T e = LUCE_EXP(scaled ? (v - ms[c]) / t : v - ms[c]);
                        const int eq = v == ms[c]; /* -inf == -inf is counted, and wiped once a finite max appears */
                        r1s[c] += eq ? (T)0 : e;   /* a NaN lands here */
                        k1s[c] += eq ? (T)1 : (T)0;
                    }
                } else {
                    for (ptrdiff_t c = 0; c < sw; c++) {
                        const T v = F(luce_col_at)(xr, mr, c, masked);
                        const T mm = ms[c];
                        const T e = LUCE_EXP(scaled ? -fabs(v - mm) / t : -fabs(v - mm));
                        const T r = r1s[c], k = k1s[c];
                        const int gt = v > mm, eq = v == mm;
                        r1s[c] = gt ? (r + k) * e : (eq ? r : r + e); /* a NaN falls to r + e */
                        k1s[c] = gt ? (T)1 : (eq ? k + 1 : k);
                        ms[c] = gt ? v : mm;
                    }
                }
            }
        }
        /* Fold into float64. Two loops: GCC 12 vectorises a select only when it has the type of its
         * comparison, so the float selects come first and the float64 loop has none. */
        for (ptrdiff_t c = 0; c < w; c++) {
            const T e = LUCE_EXP(scaled ? (m2[c] - m[c]) / t : m2[c] - m[c]); /* NaN for -inf - -inf: unused */
            const int grew = m[c] > m2[c];
            fac[c] = grew ? e : (T)1;
            kept[c] = grew ? (T)0 : (T)1;
            m2[c] = m[c];
        }
        for (ptrdiff_t c = 0; c < w; c++) {
            /* grew: (r2 + k2)·fac (the old maxima become ordinary terms), k2 = 0; else unchanged. */
            r2[c] = (r2[c] + (1 - (double)kept[c]) * k2[c]) * (double)fac[c] + (double)r1[c];
            k2[c] = (double)kept[c] * k2[c] + (double)k1[c];
            r1[c] = k1[c] = 0;
        }
    }
}

/* Per column max over rows j0 .. j1 (NaN ignored: caught later by the sum). */
LUCE_INLINE void F(luce_cols_max_v)(const T *x, ptrdiff_t xn, const unsigned char *mask, ptrdiff_t mn, ptrdiff_t j0,
                                    ptrdiff_t j1, ptrdiff_t w, T *LUCE_RESTRICT m, const int masked)
{
    for (ptrdiff_t c = 0; c < w; c++) m[c] = (T)-INFINITY;
    for (ptrdiff_t j = j0; j < j1; j++) {
        const T *xr = x + j * xn;
        const unsigned char *mr = masked ? mask + j * mn : NULL;
        for (ptrdiff_t c = 0; c < w; c++) {
            const T v = F(luce_col_at)(xr, mr, c, masked);
            m[c] = v > m[c] ? v : m[c];
        }
    }
}

/* With the column max m known: float64 sum r2 of exp((x - m)/t) below the max and count k2 at it
 * (blocked: LUCE_SM_KC rows in the input dtype, then float64); store keeps exp((x - m)/t) in out. */
LUCE_INLINE void F(luce_cols_sum_v)(const T *x, ptrdiff_t xn, const unsigned char *mask, ptrdiff_t mn,
                                    T *LUCE_RESTRICT out, ptrdiff_t on, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t w, T t,
                                    const T *LUCE_RESTRICT m, T *LUCE_RESTRICT r1, T *LUCE_RESTRICT k1,
                                    double *LUCE_RESTRICT r2, double *LUCE_RESTRICT k2, int store, const int masked,
                                    const int scaled)
{
    for (ptrdiff_t c = 0; c < w; c++) {
        r1[c] = k1[c] = 0;
        r2[c] = k2[c] = 0;
    }
    for (ptrdiff_t j = j0; j < j1; j++) {
        const T *xr = x + j * xn;
        const unsigned char *mr = masked ? mask + j * mn : NULL;
        T *outr = out + j * on;
        if (store) {
            for (ptrdiff_t c = 0; c < w; c++) {
                const T v = F(luce_col_at)(xr, mr, c, masked);
                const T e = LUCE_EXP(scaled ? (v - m[c]) / t : v - m[c]);
                const int eq = v == m[c];
                outr[c] = e;
                r1[c] += eq ? (T)0 : e;
                k1[c] += eq ? (T)1 : (T)0;
            }
        } else {
            for (ptrdiff_t c = 0; c < w; c++) {
                const T v = F(luce_col_at)(xr, mr, c, masked);
                const T e = LUCE_EXP(scaled ? (v - m[c]) / t : v - m[c]);
                const int eq = v == m[c];
                r1[c] += eq ? (T)0 : e;
                k1[c] += eq ? (T)1 : (T)0;
            }
        }
        if ((j - j0) % LUCE_SM_KC == LUCE_SM_KC - 1 || j == j1 - 1) {
            for (ptrdiff_t c = 0; c < w; c++) {
                r2[c] += (double)r1[c];
                k2[c] += (double)k1[c];
                r1[c] = k1[c] = 0;
            }
        }
    }
}

/* log: out = (x - mw)/t - coef; else out = exp((x - mw)/t)·coef, per column. */
LUCE_INLINE void F(luce_cols_write_v)(const T *x, ptrdiff_t xn, const unsigned char *mask, ptrdiff_t mn,
                                      T *LUCE_RESTRICT out, ptrdiff_t on, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t w, T t,
                                      const T *LUCE_RESTRICT mw, const T *LUCE_RESTRICT coef, const int log,
                                      const int masked, const int scaled)
{
    const ptrdiff_t ahead = LUCE_SM_PREFETCH_BYTES / (w * (ptrdiff_t)sizeof(T)) + 1; /* rows */
    for (ptrdiff_t j = j0; j < j1; j++) {
        const T *xr = x + j * xn;
        const unsigned char *mr = masked ? mask + j * mn : NULL;
        T *outr = out + j * on;
        for (ptrdiff_t c0 = 0; c0 < w; c0 += LUCE_SM_SEG) { /* segments, as in luce_cols_online_v */
            const ptrdiff_t c1 = w - c0 < LUCE_SM_SEG ? w : c0 + LUCE_SM_SEG;
            for (ptrdiff_t k = c0; k < c1; k += 64 / sizeof(T)) {
                __builtin_prefetch(xr + ahead * xn + k);
                __builtin_prefetch(outr + ahead * on + k, 1);
            }
            for (ptrdiff_t c = c0; c < c1; c++) {
                const T v = F(luce_col_at)(xr, mr, c, masked);
                const T d = scaled ? (v - mw[c]) / t : v - mw[c];
                outr[c] = log ? d - coef[c] : LUCE_EXP(d) * coef[c];
            }
        }
    }
}

/* Scratch of one column task: w columns of T (8 arrays) and of double (3 arrays). */
typedef struct {
    T *m, *r1, *k1, *mt, *fac, *kept, *mw, *coef;
    double *st0, *st1, *st2;
} F(luce_cols_scratch);

/* The column code on one block. stage 0: the whole reduced range [j0, j1) here; stage 1: the state
 * of [j0, j1) into part (3 rows of LUCE_SM_CB doubles: max, sum, count); stage 2: merge the nparts
 * states at parts, then write [j0, j1) (logsumexp: only the range with j0 == 0 writes).
 * x, mask, out point at the block's first column (row 0); outn is the output's row stride. */
LUCE_INLINE void F(luce_cols_block)(const luce_sm_geo *g, const T *x, const unsigned char *mask, T *out,
                                    ptrdiff_t on, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t w, int stage, double *parts,
                                    ptrdiff_t nparts, F(luce_cols_scratch) s)
{
    const T t = (T)g->t;
    const int mode = g->mode, masked = mask != NULL, scaled = t != 1;
    const ptrdiff_t xn = g->xn, mn = g->mn;
    const ptrdiff_t CBW = LUCE_SM_CB;
    int cached = 0;
/* Three variants: plain; scaled (t != 1); masked, which also divides by t (exact when t == 1). */
#define VARIANTS(call) (masked ? call(1, 1) : (scaled ? call(0, 1) : call(0, 0)))
    if (stage == 2) {
        /* Merge the ranges' (max, sum, count) states. */
        for (ptrdiff_t c = 0; c < w; c++) {
            s.mt[c] = (T)-INFINITY;
            s.st1[c] = s.st2[c] = 0;
        }
        for (ptrdiff_t p = 0; p < nparts; p++)
            for (ptrdiff_t c = 0; c < w; c++) {
                const T mp = (T)parts[p * 3 * CBW + c];
                s.mt[c] = mp > s.mt[c] ? mp : s.mt[c];
            }
        for (ptrdiff_t p = 0; p < nparts; p++) {
            const double *st = parts + p * 3 * CBW;
            for (ptrdiff_t c = 0; c < w; c++) {
                const T mp = (T)st[c];
                const double f = (double)LUCE_EXP(scaled ? (mp - s.mt[c]) / t : mp - s.mt[c]);
                const int same = mp == s.mt[c];
                s.st1[c] += same ? st[CBW + c] : (st[CBW + c] + st[2 * CBW + c]) * f;
                s.st2[c] += same ? st[2 * CBW + c] : 0.0;
            }
        }
    } else if (stage == 0 && (j1 - j0) * w * (ptrdiff_t)sizeof(T) <= LUCE_SM_CACHE_BLOCK_BYTES) {
        /* The block fits in cache: max first, then the sums (softmax keeps the exponentials). */
        cached = 1;
        const int store = mode == LUCE_SOFTMAX;
#define MAX(a, b) F(luce_cols_max_v)(x, xn, mask, mn, j0, j1, w, s.mt, a)
        if (masked) MAX(1, 0); else MAX(0, 0);
#undef MAX
#define SUM(a, b) F(luce_cols_sum_v)(x, xn, mask, mn, out, on, j0, j1, w, t, s.mt, s.r1, s.k1, s.st1, s.st2, store, a, b)
        VARIANTS(SUM);
#undef SUM
    } else {
#define ONLINE(a, b) F(luce_cols_online_v)(x, xn, mask, mn, j0, j1, w, t, s.m, s.r1, s.k1, s.mt, s.st1, s.st2, s.fac, s.kept, a, b)
        VARIANTS(ONLINE);
#undef ONLINE
    }
    if (stage == 1) {
        for (ptrdiff_t c = 0; c < w; c++) {
            parts[c] = (double)s.mt[c];
            parts[CBW + c] = s.st1[c];
            parts[2 * CBW + c] = s.st2[c];
        }
        return;
    }
    /* The block's state: max mt, float64 sum st1 below it and count st2 at it. Simple loops, so they
     * vectorise (log1p included); special columns are redone at the end. */
    int special = 0;
    for (ptrdiff_t c = 0; c < w; c++) special |= !(fabs(s.mt[c]) < INFINITY && s.st1[c] == s.st1[c]);
    /* log1p form (Blanchard, Higham & Higham 2021): tail = terms below the max + (count - 1). */
    if (mode == LUCE_LOGSUMEXP) {
        if (j0 != 0) return;
        for (ptrdiff_t c = 0; c < w; c++) s.st0[c] = luce_log1p_finite_f64(s.st1[c] + (s.st2[c] - 1));
        for (ptrdiff_t c = 0; c < w; c++) out[c] = (T)((double)s.mt[c] + s.st0[c]);
        if (special)
            for (ptrdiff_t c = 0; c < w; c++)
                if (!(fabs(s.mt[c]) < INFINITY && s.st1[c] == s.st1[c]))
                    out[c] = F(luce_sm_special_lse)(s.st1[c] != s.st1[c], s.mt[c] == INFINITY ? s.st2[c] : 0);
        return;
    }
    const int log = mode == LUCE_LOG_SOFTMAX;
    if (log)
        for (ptrdiff_t c = 0; c < w; c++) s.st0[c] = luce_log1p_finite_f64(s.st1[c] + (s.st2[c] - 1));
    if (log)
        for (ptrdiff_t c = 0; c < w; c++) s.coef[c] = (T)s.st0[c];
    else
        for (ptrdiff_t c = 0; c < w; c++) s.coef[c] = (T)(1.0 / (s.st1[c] + s.st2[c]));
    for (ptrdiff_t c = 0; c < w; c++) {
        const int ok = fabs(s.mt[c]) < INFINITY && s.st1[c] == s.st1[c];
        s.mw[c] = ok ? s.mt[c] : (T)0; /* keeps the write pass finite on special columns */
        s.coef[c] = ok ? s.coef[c] : (T)0;
    }
    if (cached && mode == LUCE_SOFTMAX) {
        for (ptrdiff_t j = j0; j < j1; j++) {
            T *outr = out + j * on;
            for (ptrdiff_t c = 0; c < w; c++) outr[c] *= s.coef[c];
        }
    } else {
#define WRITE(a, b)                                                                                     \
    (log ? F(luce_cols_write_v)(x, xn, mask, mn, out, on, j0, j1, w, t, s.mw, s.coef, 1, a, b)          \
         : F(luce_cols_write_v)(x, xn, mask, mn, out, on, j0, j1, w, t, s.mw, s.coef, 0, a, b))
        VARIANTS(WRITE);
#undef WRITE
    }
#undef VARIANTS
    if (!special) return;
    for (ptrdiff_t c = 0; c < w; c++) {
        if (fabs(s.mt[c]) < INFINITY && s.st1[c] == s.st1[c]) continue;
        const double n_pinf = s.mt[c] == INFINITY ? s.st2[c] : 0; /* at a +inf max: the number of +inf */
        const F(luce_sm_special) sv = F(luce_sm_special_values)(s.st1[c] != s.st1[c], n_pinf, 0, 0, log);
        for (ptrdiff_t j = j0; j < j1; j++)
            out[j * on + c] = F(luce_sm_special_at)(sv, x[j * xn + c], !masked || mask[j * mn + c]);
    }
}

/* T = inf: per column counts of unmasked NaN, +inf and finite entries, then the special outputs. */
LUCE_INLINE void F(luce_cols_tinf)(const luce_sm_geo *g, const T *x, const unsigned char *mask, T *out,
                                   ptrdiff_t on, ptrdiff_t n, ptrdiff_t w, F(luce_cols_scratch) s)
{
    double *n_nan = s.st0, *n_pinf = s.st1, *n_fin = s.st2;
    for (ptrdiff_t c = 0; c < w; c++) n_nan[c] = n_pinf[c] = n_fin[c] = 0;
    for (ptrdiff_t j = 0; j < n; j++)
        for (ptrdiff_t c = 0; c < w; c++) {
            const T v = x[j * g->xn + c];
            const int keep = mask == NULL || mask[j * g->mn + c];
            n_nan[c] += keep && v != v;
            n_pinf[c] += keep && v == (T)INFINITY;
            n_fin[c] += keep && fabs(v) < INFINITY;
        }
    for (ptrdiff_t c = 0; c < w; c++) {
        if (g->mode == LUCE_LOGSUMEXP) {
            out[c] = F(luce_sm_special_lse)(n_nan[c] > 0, n_pinf[c]);
            continue;
        }
        const F(luce_sm_special) sv =
            F(luce_sm_special_values)(n_nan[c] > 0, n_pinf[c], n_fin[c], 1, g->mode == LUCE_LOG_SOFTMAX);
        for (ptrdiff_t j = 0; j < n; j++)
            out[j * on + c] = F(luce_sm_special_at)(sv, x[j * g->xn + c], mask == NULL || mask[j * g->mn + c]);
    }
}

/* Column task `task` of the (outer, n, inner) view: block task / nparts, range task % nparts of the
 * reduced axis. parts: (ntasks, 3, LUCE_SM_CB) doubles when nparts > 1. Returns -1 when out of memory. */
LUCE_DISPATCH int F(luce_sm_cols)(const luce_sm_geo *g, const T *x, const unsigned char *mask, T *out,
                                         ptrdiff_t task, int stage, double *parts)
{
    const ptrdiff_t nb = (g->inner + LUCE_SM_CB - 1) / LUCE_SM_CB, nparts = g->nparts;
    const ptrdiff_t blk = task / nparts, o = blk / nb, c0 = (blk % nb) * LUCE_SM_CB;
    const ptrdiff_t w = g->inner - c0 < LUCE_SM_CB ? g->inner - c0 : LUCE_SM_CB;
    const ptrdiff_t per = (g->n + nparts - 1) / nparts;
    const ptrdiff_t j0 = (task % nparts) * per < g->n ? (task % nparts) * per : g->n;
    const ptrdiff_t j1 = g->n - j0 < per ? g->n : j0 + per;
    const int lse = g->mode == LUCE_LOGSUMEXP;
    void *mem = malloc(w * (8 * sizeof(T) + 3 * sizeof(double)));
    if (mem == NULL) return -1;
    F(luce_cols_scratch) s;
    double *d = (double *)mem;
    s.st0 = d, s.st1 = d + w, s.st2 = d + 2 * w;
    T *a = (T *)(d + 3 * w);
    s.m = a, s.r1 = a + w, s.k1 = a + 2 * w, s.mt = a + 3 * w;
    s.fac = a + 4 * w, s.kept = a + 5 * w, s.mw = a + 6 * w, s.coef = a + 7 * w;
    const T *xb = x + o * g->xo + c0;
    const unsigned char *mb = mask ? mask + o * g->mo + c0 : NULL;
    T *ob = out + (lse ? o * g->inner : o * g->n * g->inner) + c0;
    const ptrdiff_t on = lse ? 0 : g->inner;
    if (g->tinf)
        F(luce_cols_tinf)(g, xb, mb, ob, on, g->n, w, s);
    else
        F(luce_cols_block)(g, xb, mb, ob, on, j0, j1, w, stage,
                           stage == 2 ? parts + blk * nparts * 3 * LUCE_SM_CB : parts + task * 3 * LUCE_SM_CB,
                           nparts, s);
    free(mem);
    return 0;
}

#undef T
#undef F
