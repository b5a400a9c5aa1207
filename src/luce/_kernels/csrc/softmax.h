/* softmax, log_softmax and logsumexp over one axis (or consecutive axes merged), float32 and float64.
 *
 * Layout: the caller (_softmax.pyx) views the input without copying as (outer, n, inner): n the
 * reduced axis, element (o, j, c) at x[o*xo + j*xn + c] (unit stride along c; for rows, inner == 1,
 * unit stride along j). The where-mask (bytes, NULL: none) has its own strides mo, mn. The output is
 * C-contiguous (outer, n, inner), or (outer, inner) for logsumexp. Three task kinds:
 *
 * - rows (inner == 1, n >= LUCE_SM_SHORT_ROW; softmax_rows_t.h): rows that stay in cache take the max,
 *   then one pass storing exp (softmax) or x - max (log_softmax) while summing, then finish in cache;
 *   longer rows take one online pass (chunk max, rescale of the running sums when it grows; Milakov &
 *   Gimelshein 2018, "Online normalizer calculation for softmax") and a write pass.
 * - columns (inner > 1; softmax_cols_t.h): blocks of up to LUCE_SM_CB contiguous columns, SIMD across
 *   them, with a running max, sum and count per column (no transposed copy). When there are few
 *   blocks, the reduced axis is also split in ranges whose states are merged in a second round.
 * - short rows (inner == 1, n < LUCE_SM_SHORT_ROW; softmax_short_t.h): LUCE_SM_TILE rows at a time are
 *   transposed into a tile (square blocks in registers, transpose.h), so SIMD runs across rows.
 *
 * Vectorisation: plain loops that GCC vectorises in each LUCE_DISPATCH clone (check with
 * -fopt-info-vec). GCC 12 if-converts a select only when it has the type of its comparison, so
 * mixed float/float64 selects are split into two loops, and mask bytes are compared as floats.
 *
 * Accuracy: exp from luce_exp.h only (< 0.6 ulp); sums blocked (a few terms per lane in the input
 * dtype, then float64 lanes, then a pairwise total); log_softmax and logsumexp use the log1p form:
 * the entries equal to the max are counted, not added, so log1p sees the exact tail (Blanchard,
 * Higham & Higham 2021, "Accurately computing the log-sum-exp and softmax functions").
 * Special slices (a max that is not finite, a NaN, temperature = inf) follow docs/conventions.md
 * exactly (softmax_special_t.h). Memory: at most two passes over the input and one over the output;
 * scratch is per task, never the size of the input; the input is never written (unless out is x).
 */
#ifndef LUCE_SOFTMAX_H
#define LUCE_SOFTMAX_H

#include <stddef.h>

#include "luce_tuning.h"

enum { LUCE_SOFTMAX = 0, LUCE_LOG_SOFTMAX = 1, LUCE_LOGSUMEXP = 2 };

/* The geometry of one call (see the header comment). */
typedef struct {
    ptrdiff_t outer, n, inner;
    ptrdiff_t xo, xn; /* element strides of x along outer and n (along inner: 1) */
    ptrdiff_t mo, mn; /* the same for the mask */
    ptrdiff_t nparts; /* columns: ranges of the reduced axis per block (1: not split) */
    double t;         /* temperature (1 when tinf) */
    int mode, tinf;
} luce_sm_geo;

/* The tasks, one thread each (softmax_f32.c, softmax_f64.c instantiate the *_t.h templates; two
 * translation units, so that the build compiles them in parallel). Rows r0 .. r1 of the view: */
void luce_sm_rows_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out, ptrdiff_t r0,
                      ptrdiff_t r1);
void luce_sm_rows_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out, ptrdiff_t r0,
                      ptrdiff_t r1);
/* Short rows r0 .. r1 through transposed tiles; -1 when out of memory for the tile. */
int luce_sm_short_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out, ptrdiff_t r0,
                      ptrdiff_t r1);
int luce_sm_short_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out, ptrdiff_t r0,
                      ptrdiff_t r1);
/* Column task `task` (stage 0: whole; 1: state into parts; 2: merge parts, write); -1 when out of memory. */
int luce_sm_cols_f32(const luce_sm_geo *g, const float *x, const unsigned char *mask, float *out, ptrdiff_t task,
                     int stage, double *parts);
int luce_sm_cols_f64(const luce_sm_geo *g, const double *x, const unsigned char *mask, double *out, ptrdiff_t task,
                     int stage, double *parts);

#endif
