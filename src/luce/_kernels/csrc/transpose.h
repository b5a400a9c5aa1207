/* Square blocks transposed in registers (16×16 float32, 8×8 float64), with GCC vector extensions:
 * each clone of the caller compiles the shuffles for its ISA (AVX-512: one vpermt2ps each).
 *
 * The transpose as log2(B) stages of block swaps: at stage s, in every 2s×2s block of the matrix the
 * top-right and bottom-left s×s blocks change places. For rows a (i) and b (i + s), i & s == 0:
 * new a = [a[0:s], b[0:s]] and new b = [a[s:2s], b[s:2s]] in every 2s-wide group of columns.
 * (Each stage is a permutation of the 2×2 block structure; after all of them element (i, j) is at
 * (j, i).) Used by the short-row tiles, which transpose rows into columns and back. */
#ifndef LUCE_TRANSPOSE_H
#define LUCE_TRANSPOSE_H

#include "luce_simd.h"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 || defined(__clang__)
#define LUCE_HAVE_SHUFFLE 1

typedef float luce_v16sf __attribute__((vector_size(64)));
typedef double luce_v8df __attribute__((vector_size(64)));

#define LUCE_SHUF16(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define LUCE_SHUF8(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)

/* Index tables: for column c, group g = c / 2s, w = c % 2s; lo: w < s ? a[g·2s + w] : b[g·2s + w - s];
 * hi: w < s ? a[g·2s + s + w] : b[g·2s + w] (b's indices are offset by the lane count). */
#define LUCE_T16_S8_LO 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define LUCE_T16_S8_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define LUCE_T16_S4_LO 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define LUCE_T16_S4_HI 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define LUCE_T16_S2_LO 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define LUCE_T16_S2_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define LUCE_T16_S1_LO 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define LUCE_T16_S1_HI 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define LUCE_T8_S4_LO 0, 1, 2, 3, 8, 9, 10, 11
#define LUCE_T8_S4_HI 4, 5, 6, 7, 12, 13, 14, 15
#define LUCE_T8_S2_LO 0, 1, 8, 9, 4, 5, 12, 13
#define LUCE_T8_S2_HI 2, 3, 10, 11, 6, 7, 14, 15
#define LUCE_T8_S1_LO 0, 8, 2, 10, 4, 12, 6, 14
#define LUCE_T8_S1_HI 1, 9, 3, 11, 5, 13, 7, 15

#define LUCE_T_STAGE(v, n, s, LO, HI, SHUF)                                                          \
    for (int i = 0; i < (n); i++) {                                                                  \
        if (i & (s)) continue;                                                                       \
        const __typeof__(v[0]) a_ = v[i], b_ = v[i + (s)];                                           \
        v[i] = SHUF(a_, b_, LO);                                                                     \
        v[i + (s)] = SHUF(a_, b_, HI);                                                               \
    }

/* dst[j·ds + i] = src[i·ss + j] for a 16×16 float block (element strides ss, ds). */
LUCE_INLINE void luce_transpose16_f32(const float *src, ptrdiff_t ss, float *dst, ptrdiff_t ds)
{
    luce_v16sf v[16];
    for (int i = 0; i < 16; i++) memcpy(&v[i], src + i * ss, sizeof v[i]);
    LUCE_T_STAGE(v, 16, 8, LUCE_T16_S8_LO, LUCE_T16_S8_HI, LUCE_SHUF16)
    LUCE_T_STAGE(v, 16, 4, LUCE_T16_S4_LO, LUCE_T16_S4_HI, LUCE_SHUF16)
    LUCE_T_STAGE(v, 16, 2, LUCE_T16_S2_LO, LUCE_T16_S2_HI, LUCE_SHUF16)
    LUCE_T_STAGE(v, 16, 1, LUCE_T16_S1_LO, LUCE_T16_S1_HI, LUCE_SHUF16)
    for (int i = 0; i < 16; i++) memcpy(dst + i * ds, &v[i], sizeof v[i]);
}

/* The same for an 8×8 double block. */
LUCE_INLINE void luce_transpose8_f64(const double *src, ptrdiff_t ss, double *dst, ptrdiff_t ds)
{
    luce_v8df v[8];
    for (int i = 0; i < 8; i++) memcpy(&v[i], src + i * ss, sizeof v[i]);
    LUCE_T_STAGE(v, 8, 4, LUCE_T8_S4_LO, LUCE_T8_S4_HI, LUCE_SHUF8)
    LUCE_T_STAGE(v, 8, 2, LUCE_T8_S2_LO, LUCE_T8_S2_HI, LUCE_SHUF8)
    LUCE_T_STAGE(v, 8, 1, LUCE_T8_S1_LO, LUCE_T8_S1_HI, LUCE_SHUF8)
    for (int i = 0; i < 8; i++) memcpy(dst + i * ds, &v[i], sizeof v[i]);
}
#endif

#endif
