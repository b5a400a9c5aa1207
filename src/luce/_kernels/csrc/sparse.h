/* Sparsemax, 1.5-entmax and α-entmax (by safeguarded Newton–bisection) of one row, float32 and float64.
 *
 * Sparsemax and 1.5-entmax are p_i = [d_i - τ]_+^β with d = (x - max x)·s (s = 1, β = 1 and s = 1/2,
 * β = 2) and τ the root of Σ_i [d_i - τ]_+^β = 1. Because the largest entry has p ≤ 1, τ ≥ -1 and only
 * entries with d > -1 can be in the support; those candidates (usually a handful) are copied out, and τ
 * is found by randomised pivoting (the quickselect idea behind Kiwiel's and Condat's linear-time simplex
 * projections): for a pivot v, F(v) = Σ_{d ≥ v} (d - v)^β - 1 ≤ 0 means τ ≤ v, so every candidate ≥ v is
 * in the support; otherwise every candidate ≤ v is out. Each round removes the pivot, so the search
 * ends, in expected linear time, with the exact support, from which τ follows in closed form (mean and
 * variance taken in two passes). α-entmax: β = 1/(α-1), s = α - 1, τ by rtsafe (Press et al., Numerical
 * Recipes, 3rd ed., §9.4), the result divided by its sum. All arithmetic after the load is float64.
 * A row with a NaN, a +inf or no finite entry is left to the caller (the kernel returns 1), which
 * applies the edge rules of docs/conventions.md.
 */
#ifndef LUCE_SPARSE_H
#define LUCE_SPARSE_H

#include "rows.h"

enum { LUCE_SPARSEMAX = 0, LUCE_ENTMAX15 = 1, LUCE_ENTMAX_BISECT = 2 };

/* u^beta for u > 0, with the exponents of sparsemax (1) and 1.5-entmax (2) done exactly. */
LUCE_INLINE double luce_power(double u, double beta)
{
    if (beta == 1.0) return u;
    if (beta == 2.0) return u * u;
    return pow(u, beta);
}

/* Exact τ with Σ [d - τ]_+^β = 1 (β = 2 if quadratic, else 1) over buf[0:end] (reordered; its maximum
 * is 0) by randomised pivoting. Layout while searching: buf[:cert] is in the support for sure,
 * buf[cert:end] is undecided, the rest is out. */
static double luce_pivot_threshold(double *buf, ptrdiff_t end, int quadratic)
{
    ptrdiff_t cert = 0, k = 0;
    double s1 = 0.0, s2 = 0.0;
    int64_t seed = ((int64_t)end * 40503 + 12345) % 2147483647 + 1;
    while (cert < end) {
        seed = (seed * 48271) % 2147483647; /* Park & Miller's minimal standard generator picks the pivot */
        const double v = buf[cert + seed % (end - cert)];
        ptrdiff_t w = cert;
        double t1 = 0.0, t2 = 0.0;
        for (ptrdiff_t j = cert; j < end; j++) { /* the candidates >= v to the front of the undecided block */
            const double d = buf[j];
            if (d >= v) {
                buf[j] = buf[w];
                buf[w] = d;
                w++;
                t1 += d;
                t2 += d * d;
            }
        }
        const ptrdiff_t kk = k + (w - cert);
        const double a1 = s1 + t1, a2 = s2 + t2;
        const double f = quadratic ? a2 - 2.0 * v * a1 + (double)kk * v * v - 1.0 : a1 - (double)kk * v - 1.0;
        if (f <= 0.0) { /* τ <= v: every candidate >= v is in the support */
            cert = w;
            k = kk;
            s1 = a1;
            s2 = a2;
        } else { /* τ > v: every candidate <= v is out */
            ptrdiff_t w2 = cert;
            for (ptrdiff_t j = cert; j < w; j++) {
                const double d = buf[j];
                if (d > v) {
                    buf[j] = buf[w2];
                    buf[w2] = d;
                    w2++;
                }
            }
            end = w2;
        }
    }
    const double mu = luce_row_sum_f64(buf, cert) / (double)cert;
    if (!quadratic) return mu - 1.0 / (double)cert;
    double ss = 0.0;
    for (ptrdiff_t j = 0; j < cert; j++) ss += (buf[j] - mu) * (buf[j] - mu);
    const double delta = (1.0 - ss) / (double)cert;
    return mu - sqrt(delta > 0.0 ? delta : 0.0);
}

/* τ with Σ [d - τ]_+^{1/(α-1)} = 1 over the k candidates buf (max 0) by bisection-safeguarded Newton
 * steps (rtsafe): f(τ) = Σ [d - τ]_+^β - 1 is decreasing and [-1, -(1/k)^{α-1}] brackets the root. Each
 * step keeps the bracket, takes the Newton step when it lands inside and halves the bracket otherwise;
 * it stops after n_iter steps or when τ no longer moves. */
static double luce_bisect_threshold(const double *buf, ptrdiff_t k, double alpha, int n_iter)
{
    const double am1 = alpha - 1.0, beta = 1.0 / am1;
    double lo = -1.0, hi = -pow(1.0 / (double)k, am1);
    double tau = 0.5 * (lo + hi);
    for (int it = 0; it < n_iter; it++) {
        double f = -1.0, df = 0.0;
        for (ptrdiff_t j = 0; j < k; j++) {
            const double u = buf[j] - tau;
            if (u > 0.0) {
                const double q = luce_power(u, beta - 1.0);
                f += q * u;
                df += q;
            }
        }
        if (f == 0.0) break;
        if (f > 0.0) lo = tau;
        else hi = tau;
        const double step = df > 0.0 ? tau + f / (beta * df) : lo;
        const double next = lo < step && step < hi ? step : 0.5 * (lo + hi);
        if (next == tau || hi - lo <= 4.0 * 2.220446049250313e-16 * fabs(tau)) break;
        tau = next;
    }
    return tau;
}

#define LUCE_T double
#define LUCE_SFX(name) name##_f64
#include "sparse_typed.h"
#undef LUCE_T
#undef LUCE_SFX

#define LUCE_T float
#define LUCE_SFX(name) name##_f32
#include "sparse_typed.h"
#undef LUCE_T
#undef LUCE_SFX

#endif
