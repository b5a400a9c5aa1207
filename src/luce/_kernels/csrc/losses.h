/* Fused softmax cross-entropy rows (loss and gradient in one sweep per row) and the top-k softmax
 * probabilities (the normaliser and a size-k heap, no probability array), for float32 and float64 rows.
 *
 * Cross-entropy: the row stays in cache while three passes run over it: the maximum m, then
 * e = exp((x - m)/T) written straight into the gradient while the sums accumulate, then g = e·s - o·c.
 * The logits are read from memory once and the gradient written once. log Σ exp d is taken in the
 * log1p form, log1p(Σ_{d<0} e + (#maxima - 1)) (Blanchard, Higham & Higham, "Accurately computing the
 * log-sum-exp and softmax functions", IMA J. Numer. Anal. 2021), so tiny losses keep their digits.
 * Sums run in float64 over LUCE_ROW_LANES lanes (rows.h), the exp is luce_exp.h's in the row's
 * precision. A row with a NaN, a +inf or no finite entry is left to the NumPy reference (the kernel
 * returns 1; docs/conventions.md's edge rules live in one place).
 *
 * Which weight c_j multiplies the log-probabilities: 1 (LUCE_CE_PLAIN: class indices, no weights) or
 * c_j = w_j (keep·q_j + lift), which covers class weights (q = 1, keep = 1, lift = 0: LUCE_CE_WEIGHTED)
 * and probability targets (LUCE_CE_PROBS: keep = 1 - ε, lift = ε/C). Each kind gets its own loop.
 */
#ifndef LUCE_LOSSES_H
#define LUCE_LOSSES_H

#include "luce_exp.h"
#include "rows.h"

enum { LUCE_CE_PLAIN = 0, LUCE_CE_WEIGHTED = 1, LUCE_CE_PROBS = 2 };

/* Heap order of the top-k search: smaller value first; among equal values the larger index first (it
 * is evicted first, so equal scores come out in increasing index order). */
LUCE_INLINE int luce_heap_less(const double *hv, const int64_t *hi, ptrdiff_t a, ptrdiff_t b)
{
    return hv[a] < hv[b] || (hv[a] == hv[b] && hi[a] > hi[b]);
}

static void luce_heap_sift_down(double *hv, int64_t *hi, ptrdiff_t pos, ptrdiff_t size)
{
    for (;;) {
        ptrdiff_t child = 2 * pos + 1;
        if (child >= size) return;
        if (child + 1 < size && luce_heap_less(hv, hi, child + 1, child)) child++;
        if (!luce_heap_less(hv, hi, child, pos)) return;
        const double v = hv[pos];
        const int64_t i = hi[pos];
        hv[pos] = hv[child];
        hi[pos] = hi[child];
        hv[child] = v;
        hi[child] = i;
        pos = child;
    }
}

#define LUCE_T double
#define LUCE_SFX(name) name##_f64
#define LUCE_EXP luce_exp_f64
#include "losses_typed.h"
#undef LUCE_T
#undef LUCE_SFX
#undef LUCE_EXP

#define LUCE_T float
#define LUCE_SFX(name) name##_f32
#define LUCE_EXP luce_exp_f32
#include "losses_typed.h"
#undef LUCE_T
#undef LUCE_SFX
#undef LUCE_EXP

#endif
