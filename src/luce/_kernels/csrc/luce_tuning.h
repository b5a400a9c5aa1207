/* The kernels' block sizes, one section per area; each constant names the command that measured it. */
#ifndef LUCE_TUNING_H
#define LUCE_TUNING_H

/* -- fit engine (csrc/linear.h) ------------------------------------------------------------------- */

/* Columns of coef per tile of the transposed gradient finish (luce_transpose_scale_add_*): a tile of
 * the d × K accumulator stays in L2 while its K output rows are written. Median of 15 calls at
 * d = 50,000, K = 50, float64 (the sparse benchmark's shape), 2-core machine under load: tile 16:
 * 15 ms, 64: 17 ms, 128: 2.6 ms, 256: 2.5 ms, 512: 6.7 ms, 1024: 7.4 ms (NumPy's strided copy: 22-59 ms).
 * Command (rebuild per value): python -m timeit -s "import numpy as np; from luce._kernels import
 *   _linear; G = np.ones((50_000, 50)); W = np.ones((50, 50_000)); o = np.empty_like(W)"
 *   "_linear.transpose_scale_add(G, .5, .1, W, o)" */
#define LUCE_TRANSPOSE_TILE 256

/* Nonzeros ahead whose weight rows (logits) and gradient rows (scatter) the CSR kernels prefetch.
 * Command: benchmarks/linear_kernels.c (its header comment; -DLUCE_PREFETCH_AHEAD=N). Three alternating
 * runs on the 2-core machine under load 7, float64 / float32: no prefetch (the loops without the
 * prefetch calls) 161-200 / 165-234 ms; 1 ahead: 112-157 / 68-93 ms; 2 ahead: 29-137 / 20-92 ms;
 * 4 and 8 ahead (one run): 168 / 118 and 197 / 103 ms. */
#ifndef LUCE_PREFETCH_AHEAD
#define LUCE_PREFETCH_AHEAD 2
#endif

#endif
