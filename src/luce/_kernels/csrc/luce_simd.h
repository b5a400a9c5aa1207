/* The build policy of every kernel, in C: run-time ISA dispatch and the few helpers all kernels share.
 *
 * LUCE_DISPATCH before a function compiles it three times on x86-64 with GCC or Clang: for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline; the loader picks the best one the CPU
 * has (an ifunc resolved once, at load). Put it on the function that holds a hot loop, not on the small
 * static inline helpers it calls: those are inlined into each clone and compiled for its ISA.
 * Elsewhere (aarch64, macOS, Windows, other compilers) it is empty and the code compiles for the build's
 * target.
 *
 * Results are the same on every clone: the kernels use fused multiply-adds everywhere (LUCE_FMA), which
 * the baseline clone computes with libm's fma (exact, slower: only CPUs older than 2013 run it).
 */
#ifndef LUCE_SIMD_H
#define LUCE_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

/* ifunc needs ELF (Linux, the BSDs): macOS and Windows builds compile for the build's target. */
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(LUCE_NO_DISPATCH) && (defined(__clang__) ? __clang_major__ >= 16 : __GNUC__ >= 11)
#define LUCE_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LUCE_DISPATCH
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LUCE_INLINE static inline __attribute__((always_inline))
#define LUCE_RESTRICT __restrict__
#define LUCE_LIKELY(c) __builtin_expect(!!(c), 1)
#define LUCE_UNLIKELY(c) __builtin_expect(!!(c), 0)
#define LUCE_FMA(a, b, c) __builtin_fma((a), (b), (c))
#define LUCE_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define LUCE_INLINE static inline
#define LUCE_RESTRICT
#define LUCE_LIKELY(c) (c)
#define LUCE_UNLIKELY(c) (c)
#define LUCE_FMA(a, b, c) fma((a), (b), (c))
#define LUCE_FMAF(a, b, c) fmaf((a), (b), (c))
#endif

/* Bit casts (memcpy compiles to a register move). */
LUCE_INLINE uint64_t luce_bits_f64(double x) { uint64_t i; memcpy(&i, &x, sizeof i); return i; }
LUCE_INLINE double luce_from_bits_f64(uint64_t i) { double x; memcpy(&x, &i, sizeof x); return x; }
LUCE_INLINE uint32_t luce_bits_f32(float x) { uint32_t i; memcpy(&i, &x, sizeof i); return i; }
LUCE_INLINE float luce_from_bits_f32(uint32_t i) { float x; memcpy(&x, &i, sizeof x); return x; }

#endif
