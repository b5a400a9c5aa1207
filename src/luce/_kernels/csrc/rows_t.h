/* The softmax family's row passes for one dtype (included by rows.h with LUCE_T, LUCE_F(name), LUCE_EXP
 * defined): the max of a row under a where-mask (the one row max: rows_typed.h's luce_row_max is this one
 * without a mask), and the exp passes with the max known. Blocked sums: LUCE_SM_K steps in the input
 * dtype, then float64 lanes, then a pairwise total, so their rounding error stays far below n·eps.
 *
 * "general" variants read the mask and divide by the temperature t (shift first, then divide, as the
 * reference); the others do neither. Callers decide about special rows (a max that is not finite, a
 * NaN sum): the max ignores NaN, the sums then come out NaN. */

#define T LUCE_T
#define F LUCE_F
#define L LUCE_SM_LANES

/* Element i of the row, -inf where masked. The load is unconditional and the mask byte is compared
 * as a float: GCC 12 vectorises a select only when it has the type of its comparison. */
LUCE_INLINE T F(luce_row_at)(const T *x, const unsigned char *mask, ptrdiff_t i, const int masked)
{
    const T v = x[i];
    return (masked && (T)mask[i] == 0) ? (T)-INFINITY : v;
}

LUCE_INLINE T F(luce_row_max_v)(const T *x, const unsigned char *mask, ptrdiff_t n, const int masked)
{
    T acc[L];
    for (int j = 0; j < L; j++) acc[j] = (T)-INFINITY;
    ptrdiff_t i = 0;
    for (; i + L <= n; i += L) {
        for (size_t k = 0; k < L * sizeof(T); k += 64) /* every cache line, LUCE_SM_PREFETCH_BYTES ahead */
            __builtin_prefetch((const char *)(x + i) + LUCE_SM_PREFETCH_BYTES + k);
        for (int j = 0; j < L; j++) {
            const T v = F(luce_row_at)(x, mask, i + j, masked);
            acc[j] = v > acc[j] ? v : acc[j]; /* NaN never wins */
        }
    }
    for (int j = 0; i + j < n; j++) {
        const T v = F(luce_row_at)(x, mask, i + j, masked);
        acc[j] = v > acc[j] ? v : acc[j];
    }
    for (int h = L / 2; h > 0; h /= 2)
        for (int j = 0; j < h; j++) acc[j] = acc[j + h] > acc[j] ? acc[j + h] : acc[j];
    return acc[0];
}

/* The max of the unmasked entries, NaN ignored; -inf for an empty or fully masked row. */
LUCE_INLINE T F(luce_row_max_where)(const T *x, const unsigned char *mask, ptrdiff_t n)
{
    return mask ? F(luce_row_max_v)(x, mask, n, 1) : F(luce_row_max_v)(x, mask, n, 0);
}

/* Pairwise total of float64 lanes. */
LUCE_INLINE double F(luce_lanes_total)(double *acc)
{
    for (int h = L / 2; h > 0; h /= 2)
        for (int j = 0; j < h; j++) acc[j] += acc[j + h];
    return acc[0];
}

/* One pass with the max m known: d = (x - m)/t (or x - m), e = exp(d).
 *   store == 1: out[i] = e, returns the sum of every e (softmax);
 *   store == 2: out[i] = d, returns the sum of e below the max, *count = entries equal to the max
 *               (log_softmax: the log1p form counts the maxima instead of adding them);
 *   store == 0: the sum below the max and the count (logsumexp).
 * out may be x (each element is read before it is written). */
/* One step of the pass below: elements i .. i + w of the row into the lanes sum, cnt. */
LUCE_INLINE void F(luce_row_step)(const T *x, const unsigned char *mask, ptrdiff_t i, const int w, T m, T t,
                                  T *out, T *sum, T *cnt, const int store, const int masked, const int scaled)
{
#pragma GCC ivdep
    for (int j = 0; j < w; j++) {
        const T v = F(luce_row_at)(x, mask, i + j, masked);
        const T d = scaled ? (v - m) / t : v - m;
        const T e = LUCE_EXP(d);
        if (store == 1) {
            out[i + j] = e;
            sum[j] += e;
        } else {
            const int at_max = v == m;
            if (store == 2) out[i + j] = d;
            sum[j] += at_max ? (T)0 : e; /* a NaN lands here and makes the sum NaN */
            cnt[j] += at_max ? (T)1 : (T)0;
        }
    }
}

/* One pass with the max m known: d = (x - m)/t (or x - m), e = exp(d).
 *   store == 1: out[i] = e, returns the sum of every e (softmax);
 *   store == 2: out[i] = d, returns the sum of e below the max, *count = entries equal to the max
 *               (log_softmax: the log1p form counts the maxima instead of adding them);
 *   store == 0: the sum below the max and the count (logsumexp).
 * out may be x (each element is read before it is written). */
LUCE_INLINE double F(luce_row_pass_v)(const T *x, const unsigned char *mask, ptrdiff_t n, T m, T t, T *out,
                                      double *count, const int store, const int masked, const int scaled)
{
    double sum2[L], cnt2[L];
    for (int j = 0; j < L; j++) sum2[j] = cnt2[j] = 0.0;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += (ptrdiff_t)L * LUCE_SM_K) {
        const ptrdiff_t i1 = n - i0 < (ptrdiff_t)L * LUCE_SM_K ? n : i0 + (ptrdiff_t)L * LUCE_SM_K;
        T sum[L], cnt[L];
        for (int j = 0; j < L; j++) sum[j] = cnt[j] = 0;
        ptrdiff_t i = i0;
        for (; i + L <= i1; i += L) {
            if (store) /* the output's lines, for writing, ahead (x is in cache from the max pass) */
                for (size_t k = 0; k < L * sizeof(T); k += 64)
                    __builtin_prefetch((const char *)(out + i) + LUCE_SM_PREFETCH_BYTES + k, 1);
            F(luce_row_step)(x, mask, i, L, m, t, out, sum, cnt, store, masked, scaled);
        }
        if (i < i1) F(luce_row_step)(x, mask, i, (int)(i1 - i), m, t, out, sum, cnt, store, masked, scaled);
        for (int j = 0; j < L; j++) {
            sum2[j] += (double)sum[j];
            cnt2[j] += (double)cnt[j];
        }
    }
    if (store != 1) *count = F(luce_lanes_total)(cnt2);
    return F(luce_lanes_total)(sum2);
}

/* Three variants: plain; scaled (t != 1); masked, which also divides by t (exact when t == 1). */
#define LUCE_ROW_PASS_VARIANTS(store)                                                              \
    (mask ? F(luce_row_pass_v)(x, mask, n, m, t, out, count, store, 1, 1)                           \
          : (t != 1 ? F(luce_row_pass_v)(x, mask, n, m, t, out, count, store, 0, 1)                 \
                    : F(luce_row_pass_v)(x, mask, n, m, t, out, count, store, 0, 0)))

/* softmax: out = exp((x - m)/t), returns their sum. */
LUCE_INLINE double F(luce_row_exp_store_sum)(const T *x, const unsigned char *mask, ptrdiff_t n, T m, T t, T *out)
{
    double *count = NULL;
    return LUCE_ROW_PASS_VARIANTS(1);
}

/* log_softmax: out = (x - m)/t, returns the sum of exp below the max, *count the entries at it. */
LUCE_INLINE double F(luce_row_shift_store_sum_count)(const T *x, const unsigned char *mask, ptrdiff_t n, T m,
                                                     T t, T *out, double *count)
{
    return LUCE_ROW_PASS_VARIANTS(2);
}

/* logsumexp (and cross-entropy): the sum of exp((x - m)/t) below the max, *count the entries at it. */
LUCE_INLINE double F(luce_row_exp_sum_count)(const T *x, const unsigned char *mask, ptrdiff_t n, T m, T t,
                                             double *count)
{
    T *out = NULL;
    return LUCE_ROW_PASS_VARIANTS(0);
}

#undef LUCE_ROW_PASS_VARIANTS

/* out *= c (softmax) or out -= c (log_softmax), in cache after the pass above. */
LUCE_INLINE void F(luce_row_finish)(T *out, ptrdiff_t n, T c, int log)
{
    if (log)
        for (ptrdiff_t i = 0; i < n; i++) out[i] -= c;
    else
        for (ptrdiff_t i = 0; i < n; i++) out[i] *= c;
}

#undef T
#undef F
#undef L
