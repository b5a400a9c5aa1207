/* The row reductions every kernel shares (one copy), for float32 and float64 rows: the maximum of a row
 * (under a where-mask, or counting its NaNs), float64 sums, and the softmax family's exp passes with the
 * max known (rows_t.h), the plain reductions (rows_typed.h).
 *
 * Without -ffast-math the compiler may not reorder a reduction, so a plain `m = max(m, x[j])` loop runs
 * one element at a time. Each reduction here keeps LUCE_ROW_LANES independent accumulators (lane k
 * takes the elements j ≡ k mod LUCE_ROW_LANES); the fixed-width inner loop vectorises without changing
 * any result, and the lanes are combined at the end (LUCE_SIMD asks OpenMP to vectorise the lane loop;
 * the build's -fno-trapping-math lets GCC vectorise the selects that feed a sum). The helpers are
 * LUCE_INLINE: they are compiled into each ISA clone of the LUCE_DISPATCH kernel that calls them.
 *
 * NaN: `v > m ? v : m` skips NaN entries (a comparison with NaN is false), which is exactly one x86
 * MAXPD; callers that must know detect NaN with luce_row_max_nan_* or later (a NaN poisons a sum).
 */
#ifndef LUCE_ROWS_H
#define LUCE_ROWS_H

#include "luce_simd.h"
#include "luce_exp.h"
#include "luce_tuning.h" /* LUCE_ROW_LANES, LUCE_SM_LANES */

/* LUCE_SIMD before a loop over the lanes: vectorise it (its iterations are independent; nothing is
 * reordered). LUCE_SIMD_ANY before a loop that only ORs comparisons into an int `any`. */
#ifdef _OPENMP
#define LUCE_SIMD _Pragma("omp simd")
#define LUCE_SIMD_ANY _Pragma("omp simd reduction(|:any)")
#else
#define LUCE_SIMD
#define LUCE_SIMD_ANY
#endif

/* The threads a row kernel over n_rows rows of n elements starts: at most n_threads (the caller's
 * budget), one per row at most, and at least LUCE_ROW_WORK_PER_THREAD elements each. */
LUCE_INLINE int luce_row_threads(int n_threads, ptrdiff_t n_rows, ptrdiff_t n)
{
    const ptrdiff_t by_work = n_rows * n / LUCE_ROW_WORK_PER_THREAD;
    ptrdiff_t t = n_threads < n_rows ? n_threads : n_rows;
    t = t < by_work ? t : by_work;
    return t > 1 ? (int)t : 1;
}

#define LUCE_T double
#define LUCE_F(name) name##_f64
#define LUCE_SFX(name) name##_f64
#define LUCE_EXP luce_exp_f64
#include "rows_t.h"
#include "rows_typed.h"
#undef LUCE_T
#undef LUCE_F
#undef LUCE_SFX
#undef LUCE_EXP

#define LUCE_T float
#define LUCE_F(name) name##_f32
#define LUCE_SFX(name) name##_f32
#define LUCE_EXP luce_exp_f32
#include "rows_t.h"
#include "rows_typed.h"
#undef LUCE_T
#undef LUCE_F
#undef LUCE_SFX
#undef LUCE_EXP

#endif
