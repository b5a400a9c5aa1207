/* Special slices for one dtype: a max that is not finite, a NaN, or temperature = inf
 * (docs/conventions.md): a slice with an unmasked NaN is all NaN; else its unmasked +inf entries
 * share the mass; else at T = inf its unmasked finite entries share it; else all 0 (log: -inf). */

#define T LUCE_T
#define F LUCE_F

typedef struct {
    int kind; /* 0: every entry gets miss; 1: unmasked +inf entries get hit; 2: unmasked finite ones */
    T hit, miss;
} F(luce_sm_special);

LUCE_INLINE F(luce_sm_special) F(luce_sm_special_values)(int has_nan, double n_pinf, double n_fin, int tinf, int log_mode)
{
    F(luce_sm_special) s;
    s.kind = 0;
    s.miss = log_mode ? (T)-INFINITY : (T)0;
    s.hit = s.miss;
    if (has_nan) {
        s.hit = s.miss = (T)NAN;
    } else if (n_pinf > 0) {
        const T share = (T)1 / (T)n_pinf; /* as the reference: the share in the input dtype, then its log */
        s.kind = 1;
        s.hit = log_mode ? (T)log((double)share) : share;
    } else if (tinf && n_fin > 0) {
        /* The T -> inf limit: exp(0) = 1 for every finite entry, tail = n_fin - 1 (log1p form). */
        s.kind = 2;
        s.hit = log_mode ? (T)-log1p((double)(T)(n_fin - 1)) : (T)1 / (T)n_fin;
    }
    return s;
}

/* The output of entry v (kept: unmasked) of a special slice. */
LUCE_INLINE T F(luce_sm_special_at)(F(luce_sm_special) s, T v, int keep)
{
    const int hit = (s.kind == 1 && keep && v == (T)INFINITY) || (s.kind == 2 && keep && fabs(v) < INFINITY);
    return hit ? s.hit : s.miss;
}

/* logsumexp of a special slice: NaN, +inf, or -inf (all masked or -inf). */
LUCE_INLINE T F(luce_sm_special_lse)(int has_nan, double n_pinf)
{
    return has_nan ? (T)NAN : n_pinf > 0 ? (T)INFINITY : (T)-INFINITY;
}

/* A whole special slice: n entries x[j*xs] (mask[j*ms]), written to out[j*os] (logsumexp: out[0]).
 * Reads every entry before writing any, so out may be x. */
static void F(luce_sm_slice_special)(const T *x, ptrdiff_t xs, const unsigned char *mask, ptrdiff_t ms, T *out,
                                     ptrdiff_t os, ptrdiff_t n, int mode, int tinf)
{
    double n_nan = 0, n_pinf = 0, n_fin = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        const T v = x[j * xs];
        const int keep = mask == NULL || mask[j * ms];
        n_nan += keep && v != v;
        n_pinf += keep && v == (T)INFINITY;
        n_fin += keep && fabs(v) < INFINITY;
    }
    if (mode == LUCE_LOGSUMEXP) {
        out[0] = F(luce_sm_special_lse)(n_nan > 0, n_pinf);
        return;
    }
    const F(luce_sm_special) s = F(luce_sm_special_values)(n_nan > 0, n_pinf, n_fin, tinf, mode == LUCE_LOG_SOFTMAX);
    for (ptrdiff_t j = 0; j < n; j++)
        out[j * os] = F(luce_sm_special_at)(s, x[j * xs], mask == NULL || mask[j * ms]);
}

#undef T
#undef F
