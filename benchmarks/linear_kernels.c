/* Times the fit engine's kernels (csrc/linear.h) outside Python, for their tuning constants
 * (csrc/luce_tuning.h) and code choices, best of 5, float64 and float32:
 * - the CSR loss-and-gradient kernel: 20,000 rows × 30 nonzeros at cubic-skewed columns of a
 *   50,000 × 50 weight array (text-like: a few frequent features, a long tail);
 * - the dense softmax head (residuals of a 6,553 × 20 logit block, the dense benchmark's block).
 *
 *   gcc -O3 -std=gnu11 -march=native -fno-math-errno -Wno-unused-function -DLUCE_NO_DISPATCH [-DLUCE_PREFETCH_AHEAD=N] \
 *       -I src/luce/_kernels/csrc benchmarks/linear_kernels.c -o /tmp/linear_kernels -lm && /tmp/linear_kernels
 */
#include "linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void)
{
    const ptrdiff_t rows = 20000, d = 50000, K = 50, nnz = 30;
    double *W = calloc(d * K, sizeof *W), *G = calloc(d * K, sizeof *G), *x = malloc(rows * nnz * sizeof *x);
    float *Wf = calloc(d * K, sizeof *Wf), *Gf = calloc(d * K, sizeof *Gf), *xf = malloc(rows * nnz * sizeof *xf);
    int32_t *idx = malloc(rows * nnz * sizeof *idx);
    int64_t *indptr = malloc((rows + 1) * sizeof *indptr);
    intptr_t *y = malloc(rows * sizeof *y); /* rows > 6,553: the dense head reuses the targets */
    double z[64], gb[64] = {0};
    float zf[64];
    srand(1);
    for (ptrdiff_t i = 0; i < d * K; i++) Wf[i] = (float)(W[i] = (rand() / (double)RAND_MAX - 0.5) * 0.1);
    for (ptrdiff_t i = 0; i <= rows; i++) indptr[i] = i * nnz;
    for (ptrdiff_t t = 0; t < rows * nnz; t++) {
        const double u = rand() / (double)RAND_MAX;
        idx[t] = (int32_t)(d * u * u * u);
        xf[t] = (float)(x[t] = 0.2);
    }
    for (ptrdiff_t i = 0; i < rows; i++) y[i] = i % K;
    double best64 = 1e9, best32 = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        luce_csr_softmax_f64(x, idx, 0, indptr, rows, K, W, NULL, y, NULL, 0.0, 1, z, G, gb);
        t = now() - t;
        best64 = t < best64 ? t : best64;
        t = now();
        luce_csr_softmax_f32(xf, idx, 0, indptr, rows, K, Wf, NULL, y, NULL, 0.0, 1, zf, Gf, gb);
        t = now() - t;
        best32 = t < best32 ? t : best32;
    }
    printf("CSR loss+gradient, %ld rows x %ld nonzeros, K = %ld: float64 %.1f ms, float32 %.1f ms\n", (long)rows,
           (long)nnz, (long)K, 1e3 * best64, 1e3 * best32);

    const ptrdiff_t zrows = 6553, zK = 20;
    double *Z = malloc(zrows * zK * sizeof *Z), *Z0 = malloc(zrows * zK * sizeof *Z0);
    float *Zf = malloc(zrows * zK * sizeof *Zf), *Z0f = malloc(zrows * zK * sizeof *Z0f);
    for (ptrdiff_t i = 0; i < zrows * zK; i++) Z0f[i] = (float)(Z0[i] = 4.0 * rand() / RAND_MAX - 2.0);
    best64 = best32 = 1e9;
    for (int r = 0; r < 5; r++) {
        memcpy(Z, Z0, zrows * zK * sizeof *Z);
        memcpy(Zf, Z0f, zrows * zK * sizeof *Zf);
        double t = now();
        luce_dense_softmax_f64(Z, zrows, zK, zK, NULL, y, NULL, 0.0, LUCE_ROW_RESIDUAL, NULL);
        t = now() - t;
        best64 = t < best64 ? t : best64;
        t = now();
        luce_dense_softmax_f32(Zf, zrows, zK, zK, NULL, y, NULL, 0.0, LUCE_ROW_RESIDUAL, NULL);
        t = now() - t;
        best32 = t < best32 ? t : best32;
    }
    printf("dense softmax head, %ld x %ld logits: float64 %.2f ms, float32 %.2f ms\n", (long)zrows, (long)zK,
           1e3 * best64, 1e3 * best32);
    return 0;
}
