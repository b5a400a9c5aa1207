/* The fit engine's block kernels for the softmax head (models/_objective.py), float64 and float32.
 *
 * One row at a time, while its K logits are in cache: the logits z = W x + b (a CSR row: one
 * K-vector FMA per nonzero, SIMD over K, on Wᵀ stored d × K so that a feature's K weights are
 * contiguous), the log-sum-exp, the loss, and the residual r = w (p - q) (or, for Hessian products,
 * r = w p ⊙ (u - pᵀu)); then the gradient scatter-add Gᵀ[j, :] += x_j r over the row's nonzeros into
 * the block's own d × K accumulator. A dense block keeps BLAS for its two GEMMs and uses the row pass
 * only for the head (one pass over the rows × K logits instead of NumPy's several).
 *
 * Numerics (the same as the NumPy reference in models/_objective.py):
 * - max shift: lse = m + log Σ exp(z_k - m), m = max z (exp of non-positive arguments only, the domain
 *   of luce_exp_*); sums and the loss in float64 for both dtypes;
 * - probabilities p_k = exp(max(z_k - lse, log(tiny) + 1)): never subnormal (subnormal operands make
 *   the products with X about 20x slower; the clamp moves p by at most e·tiny), as the reference;
 * - NaN anywhere in a row's logits gives a NaN loss (the solvers treat it as non-finite).
 * - Every kernel is serial and deterministic: the engine runs blocks on several threads and adds the
 *   blocks' sums in a fixed order, so results are bitwise the same for any thread count.
 *
 * CSR indices may be int32 or int64 (SciPy picks): the kernels take them untyped with a width flag;
 * indptr is always int64 (the wrapper converts the block's small indptr).
 */
#ifndef LUCE_LINEAR_H
#define LUCE_LINEAR_H

#include "luce_simd.h"
#include "luce_exp.h"
#include "luce_tuning.h"

#define LUCE_CAT_(a, b) a##b
#define LUCE_CAT(a, b) LUCE_CAT_(a, b)

/* Partial results per row reduction (csrc/linear_block.h): fixes the summation order, so changing it
 * changes results in the last bits (8: one AVX-512 vector of doubles, two AVX2 ones). */
#define LUCE_LANES 8

/* What a row pass leaves in the logits. */
enum { LUCE_ROW_LOSS = 0, LUCE_ROW_RESIDUAL = 1, LUCE_ROW_PROBABILITIES = 2 };

LUCE_INLINE ptrdiff_t luce_index(const void *indices, int wide, ptrdiff_t t)
{
    return wide ? (ptrdiff_t)((const int64_t *)indices)[t] : (ptrdiff_t)((const int32_t *)indices)[t];
}

#define LUCE_T double
#define LUCE_FMA_T LUCE_FMA
#define LUCE_SFX f64
#define LUCE_EXP luce_exp_f64
#define LUCE_LOG_TINY (-707.3964185322641) /* log(DBL_MIN) + 1 */
#include "linear_block.h"
#undef LUCE_T
#undef LUCE_FMA_T
#undef LUCE_SFX
#undef LUCE_EXP
#undef LUCE_LOG_TINY

#define LUCE_T float
#define LUCE_FMA_T LUCE_FMAF
#define LUCE_SFX f32
#define LUCE_EXP luce_exp_f32
#define LUCE_LOG_TINY (-86.33655f) /* log(FLT_MIN) + 1 */
#include "linear_block.h"
#undef LUCE_T
#undef LUCE_FMA_T
#undef LUCE_SFX
#undef LUCE_EXP
#undef LUCE_LOG_TINY

#endif
