/* Row reductions shared by the row-wise kernels (softmax family, cross-entropy, ...): one copy.
 *
 * A row is n contiguous elements x[0..n) with an optional where-mask (bytes, 0 = masked; NULL: none);
 * masked entries read as -inf. Each function is one pass over the row, written as plain loops over
 * LUCE_SM_LANES independent lanes that GCC vectorises for each LUCE_DISPATCH clone that inlines them
 * (the lanes are the explicit partial results a float reduction needs to vectorise without
 * -ffast-math). The sums are blocked: LUCE_SM_K steps in the input dtype, then float64 lanes, then a
 * pairwise total, so their rounding error stays far below n·eps.
 *
 * rows_t.h is the dtype template; this header instantiates it for float (_f32) and double (_f64).
 */
#ifndef LUCE_ROWS_H
#define LUCE_ROWS_H

#include "luce_simd.h"
#include "luce_exp.h"
#include "luce_tuning.h"

#define LUCE_T float
#define LUCE_F(name) name##_f32
#define LUCE_EXP luce_exp_f32
#include "rows_t.h"
#undef LUCE_T
#undef LUCE_F
#undef LUCE_EXP

#define LUCE_T double
#define LUCE_F(name) name##_f64
#define LUCE_EXP luce_exp_f64
#include "rows_t.h"
#undef LUCE_T
#undef LUCE_F
#undef LUCE_EXP

#endif
