/* The fused dense block kernels of the fit engine (models/_objective.py), float64 and float32: one
 * pass over a row block of X for the loss and gradient, or for a Hessian-vector product.
 *
 * A register-blocked GEMM micro-kernel in plain C loops that GCC vectorises (the shape of BLIS's
 * micro-kernel: Van Zee & van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
 * Functionality", ACM TOMS 41(3), 2015) does both products; per panel of LUCE_DENSE_PANEL_ROWS rows:
 * 1. per tile of LUCE_DENSE_ROWS rows, the logits: for each feature j, one row of Wᵀ (stored d × KP,
 *    K padded with zeros to a whole number of vectors) times the tile's values x[r, j], into
 *    R × (up to 3 vectors) accumulators held in registers (a Wᵀ wider than L1 in chunks of features,
 *    each chunk for every tile of the panel);
 * 2. the softmax head on the tile while its logits are in L1, SIMD across its rows (max shift,
 *    luce_exp, log-sum-exp, loss in float64, residual w (p - q); or p and the curvature product);
 * 3. the panel's gradient Gᵀ[j, :] += Σ_r x[r, j] res[r, :], R features at a time, the panel's rows
 *    of X re-read from L1/L2: X is read from memory once per evaluation.
 *
 * Accumulation: float64 data accumulates the gradient in the block's d × KP float64 array. float32
 * data computes the logits, the exp and the products in float32 (as BLAS sgemm does); each panel's
 * gradient sums (LUCE_DENSE_PANEL_ROWS terms) are taken in float32 and added into the block's float64
 * array (a block of 10^4 rows never adds 10^4 float32 terms in one running sum); the loss and the
 * intercept sums are float64 for both dtypes. Each kernel is serial and its summation order depends
 * only on the block: results are bitwise the same for any number of engine threads.
 *
 * Non-finite inputs follow the row head: a NaN or inf logit gives a NaN or inf loss (the solvers'
 * non-finite checks), as the BLAS + head path does.
 */
#ifndef LUCE_LINEAR_DENSE_H
#define LUCE_LINEAR_DENSE_H

#include "linear.h"

/* Unrolls the next loop completely: the micro-kernel's accumulators stay in registers only when its
 * row and column loops are unrolled, which GCC's size heuristics do not always do (float32, 2 vectors:
 * the row loop stayed rolled and every FMA loaded and stored its accumulator). */
#if defined(__GNUC__) && !defined(__clang__)
#define LUCE_UNROLL _Pragma("GCC unroll 32")
#elif defined(__clang__)
#define LUCE_UNROLL _Pragma("unroll")
#else
#define LUCE_UNROLL
#endif

/* Keeps the next loop, over a tile's R rows inside a loop over its K logits, a loop: GCC 12 unrolls an
 * 8-iteration loop completely before its loop vectoriser runs, and its SLP pass then left the max and
 * the selects scalar (a compare and a cmov per row); kept rolled, the loop vectoriser makes one vector
 * operation of it. */
#if defined(__GNUC__) && !defined(__clang__)
#define LUCE_ROW_LOOP _Pragma("GCC unroll 1")
#else
#define LUCE_ROW_LOOP
#endif

/* What the micro-kernel starts from and where its sums go (a compile-time constant after inlining). */
enum { LUCE_DENSE_FROM_BIAS = 0, LUCE_DENSE_ADD = 1, LUCE_DENSE_ADD_WIDE = 2 };

#define LUCE_T double
#define LUCE_SFX f64
#define LUCE_FMA_T LUCE_FMA
#define LUCE_DENSE_VEC 8   /* doubles per AVX-512 vector */
#define LUCE_DENSE_FOLD 0  /* float64 gradient sums directly */
/* The micro-kernel's FMA loop over rows: unrolled for float64 (rolled, K = 8, 16, 33 ran 1.3-1.5x
 * slower); left to GCC for float32, where the unrolled 1-vector variant (K <= 16) came out as scalar
 * FMAs (3x slower) and the others ran the same (one block, one thread, under load). */
#define LUCE_DENSE_UNROLL_FMA LUCE_UNROLL
#define LUCE_EXP luce_exp_f64
#define LUCE_LOG_TINY (-707.3964185322641) /* log(DBL_MIN) + 1, as linear.h */
#include "linear_dense_t.h" /* which #undefs its parameters */

#define LUCE_T float
#define LUCE_SFX f32
#define LUCE_FMA_T LUCE_FMAF
#define LUCE_DENSE_VEC 16
#define LUCE_DENSE_FOLD 1  /* float32 panel sums added into float64 */
#define LUCE_DENSE_UNROLL_FMA
#define LUCE_EXP luce_exp_f32
#define LUCE_LOG_TINY (-86.33655f) /* log(FLT_MIN) + 1 */
#include "linear_dense_t.h" /* which #undefs its parameters */

#endif
