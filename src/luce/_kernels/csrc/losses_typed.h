/* The kernels of losses.h for one element type; losses.h includes this file once per type with LUCE_T,
 * LUCE_SFX(name) and LUCE_EXP (luce_exp_f64 or luce_exp_f32) defined. */

/* The sums of one cross-entropy row after its maximum m: tail = Σ_{d<0} e + (#maxima - 1), a = Σ c_j and
 * b = Σ c_j d_j with d = (x - m)/T (x - m when !scaled), e = exp(d) stored into g when want_grad.
 * Terms with c_j = 0 are skipped, so 0·(-inf) counts as 0. A NaN entry makes tail NaN. The flags are
 * compile-time constants at each call: every combination gets its own branch-free loop. */
LUCE_INLINE void LUCE_SFX(luce_ce_sums)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, LUCE_T m, LUCE_T t,
                                        const LUCE_T *LUCE_RESTRICT w, const double *LUCE_RESTRICT q,
                                        double keep, double lift, LUCE_T *LUCE_RESTRICT g, const int plain,
                                        const int want_grad, const int scaled, double sums[3])
{
    double tail[LUCE_ROW_LANES], top[LUCE_ROW_LANES], acc_a[LUCE_ROW_LANES], acc_b[LUCE_ROW_LANES];
    for (int k = 0; k < LUCE_ROW_LANES; k++) tail[k] = top[k] = acc_a[k] = acc_b[k] = 0.0;
    const ptrdiff_t nb = n - n % LUCE_ROW_LANES;
    for (ptrdiff_t j0 = 0; j0 <= n; j0 += LUCE_ROW_LANES) {
        /* Lane k takes the elements j0 + k; the last, partial block (j0 = nb) runs the same lanes. */
        const int width = j0 < nb ? LUCE_ROW_LANES : (int)(n - nb);
        LUCE_SIMD
        for (int k = 0; k < width; k++) {
            const ptrdiff_t j = j0 + k;
            const LUCE_T d = scaled ? (x[j] - m) / t : x[j] - m;
            const LUCE_T e = LUCE_EXP(d);
            if (want_grad) g[j] = e;
            tail[k] += (double)(e * (LUCE_T)(d < 0)); /* NaN: e is NaN, NaN·0 is NaN */
            top[k] += (double)(d == 0);
            if (plain) {
                acc_b[k] += (double)d;
            } else {
                const double c = (double)w[j] * (keep * q[j] + lift);
                acc_a[k] += c;
                acc_b[k] += c * (c != 0.0 ? (double)d : 0.0); /* 0·(-inf) counts as 0 */
            }
        }
    }
    double s_tail = 0.0, s_top = 0.0, s_a = 0.0, s_b = 0.0;
    for (int k = 0; k < LUCE_ROW_LANES; k++) {
        s_tail += tail[k];
        s_top += top[k];
        s_a += acc_a[k];
        s_b += acc_b[k];
    }
    sums[0] = s_tail + (s_top - 1.0);
    sums[1] = plain ? (double)n : s_a;
    sums[2] = s_b;
}

/* g_j = e_j·scale - offset·c_j in place (c_j = 1 when plain). */
LUCE_INLINE void LUCE_SFX(luce_ce_grad)(LUCE_T *LUCE_RESTRICT g, ptrdiff_t n, double scale, double offset,
                                        const LUCE_T *LUCE_RESTRICT w, const double *LUCE_RESTRICT q,
                                        double keep, double lift, const int plain)
{
    const LUCE_T sc = (LUCE_T)scale;
    if (plain) {
        const LUCE_T off = (LUCE_T)offset;
        for (ptrdiff_t j = 0; j < n; j++) g[j] = g[j] * sc - off;
    } else {
        for (ptrdiff_t j = 0; j < n; j++) g[j] = g[j] * sc - (LUCE_T)(offset * ((double)w[j] * (keep * q[j] + lift)));
    }
}

/* The cross-entropy of one row x[0:n] and (when g is not NULL) its gradient times grad_scale into g.
 * kind: LUCE_CE_PLAIN / LUCE_CE_WEIGHTED (class index y; w the class weights, ones when PLAIN; q n ones)
 * or LUCE_CE_PROBS (q the target probabilities; y unused). big_w = Σ w. Loss into *loss.
 * Returns 1, touching nothing but g, when the row must go to the reference (NaN, +inf, no finite entry). */
static LUCE_DISPATCH int LUCE_SFX(luce_ce_row)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, int kind, int64_t y,
                                               const LUCE_T *LUCE_RESTRICT w, const double *LUCE_RESTRICT q,
                                               double big_w, double eps, LUCE_T t, double grad_scale,
                                               LUCE_T *LUCE_RESTRICT g, double *loss)
{
    const LUCE_T m = LUCE_SFX(luce_row_max)(x, n);
    if (!isfinite(m)) return 1;
    const int plain = kind == LUCE_CE_PLAIN, scaled = t != 1;
    const double keep = kind == LUCE_CE_PROBS ? 1.0 - eps : 1.0;
    const double lift = kind == LUCE_CE_PROBS ? eps / (double)n : 0.0;
    double s[3];
    /* Constant flags: each call below inlines its own specialised loop. */
    if (plain) {
        if (g) {
            if (scaled) LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 1, 1, 1, s);
            else LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 1, 1, 0, s);
        } else {
            if (scaled) LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 1, 0, 1, s);
            else LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 1, 0, 0, s);
        }
    } else {
        if (g) {
            if (scaled) LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 0, 1, 1, s);
            else LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 0, 1, 0, s);
        } else {
            if (scaled) LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 0, 0, 1, s);
            else LUCE_SFX(luce_ce_sums)(x, n, m, t, w, q, keep, lift, g, 0, 0, 0, s);
        }
    }
    const double tail = s[0], a = s[1], b = s[2];
    if (isnan(tail)) return 1; /* a NaN entry: the reference applies the edge rule */
    const double lse = luce_log1p_f64(tail);
    const double inv_t = grad_scale / (double)t; /* 1/T times the reduction's factor (1/N for a mean) */
    if (kind == LUCE_CE_PROBS) {
        *loss = a * lse - b;
        if (g) LUCE_SFX(luce_ce_grad)(g, n, a / (1.0 + tail) * inv_t, inv_t, w, q, keep, lift, 0);
        return 0;
    }
    const double wy = kind == LUCE_CE_WEIGHTED ? (double)w[y] : 1.0;
    const double dy = (double)((x[y] - m) / t);
    double value = eps < 1.0 && wy != 0.0 ? (1.0 - eps) * wy * (lse - dy) : 0.0;
    if (eps > 0.0) value += eps / (double)n * (big_w * lse - b);
    *loss = value;
    if (g) {
        const double coef = (1.0 - eps) * wy + eps * big_w / (double)n;
        LUCE_SFX(luce_ce_grad)(g, n, coef / (1.0 + tail) * inv_t, eps / (double)n * inv_t, w, q, keep, lift, plain);
        g[y] -= (LUCE_T)((1.0 - eps) * wy * inv_t);
    }
    return 0;
}

/* Σ exp(x - m) - 1 with the maxima's terms (exactly 1 each) left out: the log1p form. NaN if x has one. */
LUCE_INLINE double LUCE_SFX(luce_exp_tail)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, LUCE_T m)
{
    double tail[LUCE_ROW_LANES], top[LUCE_ROW_LANES];
    for (int k = 0; k < LUCE_ROW_LANES; k++) tail[k] = top[k] = 0.0;
    const ptrdiff_t nb = n - n % LUCE_ROW_LANES;
    for (ptrdiff_t j0 = 0; j0 < nb; j0 += LUCE_ROW_LANES)
        LUCE_SIMD
        for (int k = 0; k < LUCE_ROW_LANES; k++) {
            const LUCE_T d = x[j0 + k] - m;
            const LUCE_T e = LUCE_EXP(d); /* computed for every entry: a branch would stop vectorisation */
            tail[k] += (double)(e * (LUCE_T)(d < 0));
            top[k] += (double)(d == 0);
        }
    for (ptrdiff_t j = nb; j < n; j++) {
        const LUCE_T d = x[j] - m;
        const LUCE_T e = LUCE_EXP(d);
        tail[j - nb] += (double)(e * (LUCE_T)(d < 0));
        top[j - nb] += (double)(d == 0);
    }
    double s_tail = 0.0, s_top = 0.0;
    for (int k = 0; k < LUCE_ROW_LANES; k++) {
        s_tail += tail[k];
        s_top += top[k];
    }
    return s_tail + (s_top - 1.0);
}

/* The k largest softmax probabilities of x[0:n] (1 <= k <= n) into probs[0:k], their indices into
 * idx[0:k], in decreasing order (equal values by increasing index), without forming the softmax.
 * hv, hi: scratch of k entries. The maximum, Σ exp(x - m) in the log1p form, and a size-k min-heap of
 * the largest entries (an entry enters only if it beats the heap's minimum: expected work
 * O(n + k log k log n)), sorted in place by heapsort; exp((x - m) - log1p(tail)) of its k entries only.
 * Returns 1, writing nothing, when the row must go to the reference (NaN, +inf, no finite entry). */
static LUCE_DISPATCH int LUCE_SFX(luce_topk_row)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t n, ptrdiff_t k,
                                                 double *LUCE_RESTRICT hv, int64_t *LUCE_RESTRICT hi,
                                                 double *LUCE_RESTRICT probs, int64_t *LUCE_RESTRICT idx)
{
    const LUCE_T m = LUCE_SFX(luce_row_max)(x, n);
    if (!isfinite(m)) return 1;
    const double tail = LUCE_SFX(luce_exp_tail)(x, n, m);
    if (isnan(tail)) return 1;
    const double log_norm = luce_log1p_f64(tail); /* log Σ exp(x - m) */
    for (ptrdiff_t j = 0; j < k; j++) {
        hv[j] = (double)x[j];
        hi[j] = j;
    }
    for (ptrdiff_t start = k / 2 - 1; start >= 0; start--) luce_heap_sift_down(hv, hi, start, k);
    double floor = hv[0]; /* the heap's minimum, kept in a register */
    for (ptrdiff_t j0 = k; j0 < n; j0 += LUCE_ROW_LANES) {
        const ptrdiff_t j1 = n - j0 < LUCE_ROW_LANES ? n : j0 + LUCE_ROW_LANES;
        /* Soon the heap holds large values and most blocks have none above its minimum: a vector
         * test of the block skips them, the entries of the others are inserted one by one. */
        int any = 0;
        LUCE_SIMD_ANY
        for (ptrdiff_t j = j0; j < j1; j++) any |= (double)x[j] > floor;
        if (!any) continue;
        for (ptrdiff_t j = j0; j < j1; j++) {
            const double v = (double)x[j];
            if (v > floor) {
                hv[0] = v;
                hi[0] = j;
                luce_heap_sift_down(hv, hi, 0, k);
                floor = hv[0];
            }
        }
    }
    for (ptrdiff_t size = k - 1; size > 0; size--) { /* heapsort: the minimum goes to the end each time */
        const double v = hv[0];
        const int64_t i = hi[0];
        hv[0] = hv[size];
        hi[0] = hi[size];
        hv[size] = v;
        hi[size] = i;
        luce_heap_sift_down(hv, hi, 0, size);
    }
    for (ptrdiff_t j = 0; j < k; j++) {
        /* Shift first: x - (m + log_norm) would cancel at large |m| (shift invariance). */
        probs[j] = luce_exp_f64((hv[j] - (double)m) - log_norm);
        idx[j] = hi[j];
    }
    return 0;
}
