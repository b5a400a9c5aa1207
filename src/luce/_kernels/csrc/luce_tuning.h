/* The machine-tuned constants of the compiled kernels, one section per area; each says how it was
 * measured ("under load": the 2-core machine was shared while measuring). */
#ifndef LUCE_TUNING_H
#define LUCE_TUNING_H

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

#endif
