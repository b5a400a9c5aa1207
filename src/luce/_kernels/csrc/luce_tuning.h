/* The machine-tuned constants of the C kernels, each with the command that measured it. Python-side
 * size thresholds live in luce/_kernels/_dispatch.py. One section per kernel family. */
#ifndef LUCE_TUNING_H
#define LUCE_TUNING_H

/* --- row reductions (rows.h) and the row-wise kernels (losses.h, sparse.h) --------------------------- */

/* Independent accumulators per row reduction (lane k takes the elements j ≡ k mod LUCE_ROW_LANES): 16
 * doubles are two AVX-512 vectors, enough chains to hide the latency of an add or a max. 8, 16 and 32
 * were within the noise of each other on the loaded 2-core x86-64-v4 machine (cross-entropy rows,
 * 256 x 32000, one thread: 1.1-2.1 ns/element float32, 1.7-2.9 float64), measured by compiling a C
 * driver that calls luce_ce_row_f32/_f64 with -DLUCE_ROW_LANES=8/16/32 and the build's flags (gcc 12,
 * -O3 -fopenmp -fno-trapping-math -fno-math-errno). Changing it changes the rounding of the sums (not
 * their accuracy bound): results are then not bit-identical to earlier builds. */
#ifndef LUCE_ROW_LANES
#define LUCE_ROW_LANES 16
#endif

/* Elements of work each thread of a row kernel gets at least (luce_row_threads in rows.h): below it a
 * parallel region's start costs more than the second thread saves. Measured with the kernels on every
 * thread (this limit at 1), as `python benchmarks/sparse_maps.py --threads` prints (best of 40 calls,
 * 64 float32 rows, 2-core x86-64-v4 machine under load): 2 threads slower than 1 at 4096 elements,
 * faster from 16384 (sparsemax 30 -> 17 µs, cross-entropy 23 -> 16 µs). */
#ifndef LUCE_ROW_WORK_PER_THREAD
#define LUCE_ROW_WORK_PER_THREAD 8192
#endif

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

/* -- fused dense fit engine (csrc/linear_dense.h) --------------------------------------------------- */

/* Rows per register tile of the fused dense kernels (also features per gradient micro-kernel call):
 * with K padded to 3 vectors (K = 17..24 float64), 8 rows hold 24 of the 32 AVX-512 registers as
 * accumulators, and the tile head's SIMD across rows fills one vector of doubles. Chosen from the
 * register count, not measured against other values. */
#ifndef LUCE_DENSE_ROWS
#define LUCE_DENSE_ROWS 8
#endif

/* Rows per panel (a multiple of LUCE_DENSE_ROWS): the panel's residuals are kept, then its gradient
 * is added in one sweep over the features (fewer loads and stores of the gradient accumulators per
 * FMA). float32 blocks sum a panel's gradient terms in float32 and add them into the block's float64
 * sums after each panel. Two alternating runs of builds with 16, 32, 64 (one 5242 x 100 block, K = 20,
 * one thread, 2-core machine under load 5; fused time / BLAS + head time of the same run, float64 and
 * float32): 16: 0.62-0.64, 0.81-0.93; 32: 0.51-0.56, 0.66-0.72; 64: 0.48-0.60, 0.68-0.72. Command:
 *   python -c "import numpy as np, timeit; from luce._kernels import _linear; r = np.random.default_rng(0);
 *   X = r.standard_normal((5242, 100)); Wt = 0.1 * r.standard_normal((100, 20)); y = r.integers(0, 20, 5242);
 *   G = np.empty((100, 20)); print(min(timeit.repeat(lambda: _linear.dense_sums(X, Wt, None, y, None, 0.0,
 *   True, G, None), number=1, repeat=40)))"  (and X.astype(np.float32) ...) */
#ifndef LUCE_DENSE_PANEL_ROWS
#define LUCE_DENSE_PANEL_ROWS 32
#endif

/* Bytes of the padded Wᵀ (or [W; V]ᵀ) rows one logit sweep over a panel uses: wider weights are
 * taken in chunks of features that fit in L1 (48 KiB on the 2-core machine), each chunk for every tile
 * of the panel. Set from the cache size; with K = 20 and d = 100 the whole Wᵀ (19 KB) is one chunk. */
#ifndef LUCE_DENSE_W_BYTES
#define LUCE_DENSE_W_BYTES (32 * 1024)
#endif

/* --- softmax, log_softmax, logsumexp (csrc/softmax*.h) ------------------------------------------- */
/* Lanes of the blocked row sums: two 512-bit vectors of float32 (four of float64), enough to hide the
 * add latency behind the exp; 64 lanes ran no faster and compiled 15 % slower (one thread, CPU time:
 * OMP_NUM_THREADS=1, time.thread_time of luce.softmax on 1024x32000 / 16384x1000 float32, under load).
 * The terms of LUCE_SM_K steps are added in the input dtype, then folded into float64 lanes. */
#define LUCE_SM_LANES 32
#define LUCE_SM_K 8
/* Softmax rows up to this many bytes are exponentiated once and rescaled in cache (L2); longer rows
 * take one online pass and an exp per element in the write pass. */
#define LUCE_SM_ROW_CACHE_BYTES (512 * 1024)
/* log_softmax / logsumexp rows up to this many elements take the max first (no online rescaling). */
#define LUCE_SM_SHORT_LOG_ROW 4096
/* Last-axis rows shorter than this go through transposed tiles of LUCE_SM_TILE rows (SIMD across rows). */
#define LUCE_SM_SHORT_ROW 32
#define LUCE_SM_TILE 128
/* Columns (any axis but the last): at most this many contiguous columns per task; the running state
 * of a block is folded into float64 every LUCE_SM_KC rows; blocks up to LUCE_SM_CACHE_BLOCK_BYTES are
 * read twice (max, then sums) from cache instead of streamed once with online rescaling. */
#define LUCE_SM_CB 2048
#define LUCE_SM_KC 16
#define LUCE_SM_CACHE_BLOCK_BYTES (256 * 1024)
/* Columns per segment of a row in the streaming column passes (prefetched together). */
#define LUCE_SM_SEG 256
/* Software prefetch distance of the streaming passes, in bytes. */
#define LUCE_SM_PREFETCH_BYTES 4096

/* --- label trees (csrc/heads.h) ------------------------------------------------------------------ */
/* Nodes ahead (on a row's path in the sgd epoch, in the frontier of the beam search) whose weights at
 * a CSR row's nonzeros are prefetched. Path-only sgd epoch, 100,000 rows, 10,000-class Huffman tree of
 * benchmarks/hierarchical.py, batch 256, CPU s per epoch (epochs 2-4, one thread, under load): 0 ahead
 * 0.46-0.48, 2 ahead 0.34-0.36, 4 ahead 0.39-0.40 (the same loss to the last bit). Beam search, CPU time of
 * predict_topk(k=5) per 1,000 documents, 10,000-class Huffman tree of benchmarks/hierarchical.py (20,000
 * words, 25.5 nonzeros per row), 1 / 2 threads, one run each under load 7 (ns per weight read): beam 10,
 * 0 ahead (prefetch the node about to be scored): 43 / 46 ms (13.6-14.5 ns); 2 ahead: 28 / 29 ms (9 ns);
 * 4 ahead: 33 / 38 ms; 8 ahead: 37 / 45 ms. Beam 20: 83 / 75, 50 / 52, 58 / 62, 63 / 63 ms.
 * Command (rebuild per value): the model of `python benchmarks/hierarchical.py --classes 10000 --only
 * huffman`, then `_heads.topk_beam` on 2,000 test rows, time.process_time, best of 5. */
#ifndef LUCE_TREE_PREFETCH_AHEAD
#define LUCE_TREE_PREFETCH_AHEAD 2
#endif

/* Rows ahead whose path nodes a shard of the tree's sgd epoch prefetches (csrc/heads.h:
 * luce_shard_prefetch_row; with several shards a row holds only one or two of a shard's nodes, so the
 * prefetch within a path finds nothing ahead). A 10,000-class epoch of benchmarks/hierarchical.py on
 * two threads, the same state replayed, best of 4 / median (s): none 0.335 / 0.355; 1 row 0.309 /
 * 0.320; 2 rows 0.303 / 0.329; 4 rows 0.326 / 0.343. */
#ifndef LUCE_SHARD_ROWS_AHEAD
#define LUCE_SHARD_ROWS_AHEAD 2
#endif

#endif
