/* The vector updates of the conjugate-gradient loop of Newton-CG (models/_solvers.py,
 * _conjugate_gradient) fused into two passes per iteration instead of NumPy's nine (at 50k features
 * × 50 classes each pass streams a 20 MB vector, and the loop ran ~16 ms of them per iteration on the
 * 2-core machine under load, a sixth of a sparse Hessian product).
 *
 * Serial, with sums in LUCE_CG_LANES interleaved partial results combined pairwise: the same bits
 * for any thread count and on every ISA clone (LUCE_FMA is always fused). */
#ifndef LUCE_CG_H
#define LUCE_CG_H

#include <math.h>

#include "luce_simd.h"

#define LUCE_CG_LANES 8

LUCE_INLINE double luce_cg_total(double *part)
{
    for (int width = LUCE_CG_LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) part[l] += part[l + width];
    return part[0];
}

/* max(m, a) that keeps a NaN once it has seen one. */
LUCE_INLINE double luce_cg_max(double m, double a)
{
    return (a > m || a != a) ? a : m;
}

/* Entry i of the update below, its sums into one lane's rr, a1 and mx. */
LUCE_INLINE void luce_cg_entry(double *LUCE_RESTRICT x, double *LUCE_RESTRICT r, const double *LUCE_RESTRICT d,
                               const double *LUCE_RESTRICT hd, double alpha, ptrdiff_t i, double *rr, double *a1,
                               double *mx)
{
    x[i] = LUCE_FMA(alpha, d[i], x[i]);
    const double ri = LUCE_FMA(alpha, hd[i], r[i]);
    r[i] = ri;
    *rr = LUCE_FMA(ri, ri, *rr);
    *a1 += fabs(ri);
    *mx = luce_cg_max(*mx, fabs(ri));
}

/* x += alpha·d and r += alpha·hd over n entries; returns r·r (after the update) and writes ‖r‖₁
 * into *l1 and ‖r‖∞ into *linf (NaN if any entry of r is NaN). */
static LUCE_DISPATCH double luce_cg_update_f64(double *LUCE_RESTRICT x, double *LUCE_RESTRICT r,
                                               const double *LUCE_RESTRICT d, const double *LUCE_RESTRICT hd,
                                               double alpha, ptrdiff_t n, double *l1, double *linf)
{
    double rr[LUCE_CG_LANES], a1[LUCE_CG_LANES], mx[LUCE_CG_LANES];
    for (int l = 0; l < LUCE_CG_LANES; l++) rr[l] = 0.0, a1[l] = 0.0, mx[l] = 0.0;
    ptrdiff_t i = 0;
    for (; i + LUCE_CG_LANES <= n; i += LUCE_CG_LANES)
        for (int l = 0; l < LUCE_CG_LANES; l++) luce_cg_entry(x, r, d, hd, alpha, i + l, rr + l, a1 + l, mx + l);
    for (int l = 0; i + l < n; l++) luce_cg_entry(x, r, d, hd, alpha, i + l, rr + l, a1 + l, mx + l);
    for (int l = 1; l < LUCE_CG_LANES; l++) mx[0] = luce_cg_max(mx[0], mx[l]);
    *linf = mx[0];
    *l1 = luce_cg_total(a1);
    return luce_cg_total(rr);
}

/* d ← beta·d - r over n entries (the next search direction). */
static LUCE_DISPATCH void luce_cg_direction_f64(double *LUCE_RESTRICT d, const double *LUCE_RESTRICT r, double beta,
                                                ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) d[i] = LUCE_FMA(beta, d[i], -r[i]);
}

#endif
