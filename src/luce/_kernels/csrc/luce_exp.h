/* The one exp and log1p of the kernels: scalar, branch-free, so that loops over them vectorise.
 *
 * luce_exp_f64 / luce_exp_f32 (Cody & Waite range reduction, polynomial, exponent scaling):
 * 1. k = round(x / ln 2) by the "shifter" trick: x·log2(e) + 1.5·2^52 (1.5·2^23 for float32) holds k in
 *    its low bits, read back with a bit cast (no float-to-int conversion, which is undefined for NaN).
 * 2. r = x - k·ln2_hi - k·ln2_lo, ln 2 split in two (Cody & Waite 1980, "Software Manual for the
 *    Elementary Functions", ch. 6): ln2_hi has trailing zero bits, so k·ln2_hi is exact and r is exact
 *    to the last bit even for |k| near 1075. With one rounded ln 2 the error grows like |k|·ulp(ln 2),
 *    about 100 ulp at x = -700 (tests/test_kernels.py::test_exp_range_reduction_is_exact).
 * 3. exp(r) = 1 + r + r^2·q(r) on |r| <= ln(2)/2, q a near-minimax polynomial (degree 9 for float64,
 *    4 for float32) fitted to the relative error with mpmath; Horner with FMAs.
 * 4. 2^k is applied as (p·2^(k+B))·2^-B (B = 600 / 64): the first product is exact, the second rounds
 *    once, subnormal results included.
 * Inputs below -746 / -104 (and -inf, masked entries) compute exp(0) and are zeroed at the end, so no
 * lane produces a subnormal on the way (a microcode assist of about 150 cycles per vector on x86).
 * Domain: x <= 0 (all softmax needs; correct up to about 290 / 43); -inf -> 0, NaN -> NaN,
 * exp(0) == 1 exactly; within 0.6 ulp of mpmath for normal results.
 *
 * luce_log1p_f64 (t >= 0, also inf and NaN), within an ulp: u = 1 + t = 2^k·(1 + f) with 1 + f in
 * [sqrt(1/2), sqrt(2)), log(1 + f) = 2·atanh(s), s = f / (2 + f), from its series, and the rounding of
 * 1 + t put back by c = (t - (u - 1)) / u (the structure of fdlibm's s_log1p.c, Sun Microsystems 1993;
 * plain Taylor coefficients: the 11th term is below an ulp for |s| <= 0.1716).
 */
#ifndef LUCE_EXP_H
#define LUCE_EXP_H

#include "luce_simd.h"

#define LUCE_LN2HI_64 0.6931471803691238   /* 0x3FE62E42FEE00000: 32 trailing zero bits */
#define LUCE_LN2LO_64 1.9082149292705877e-10
#define LUCE_LN2HI_32 0.693359375f          /* 9 significant bits */
#define LUCE_LN2LO_32 (-2.12194440e-4f)

LUCE_INLINE double luce_exp_f64(double x)
{
    const double shift = 6755399441055744.0; /* 1.5 * 2^52 */
    const int zero = x < -746.0;            /* exp(-746) rounds to 0; NaN compares false */
    const double xs = zero ? 0.0 : x;
    const double y = LUCE_FMA(xs, 1.4426950408889634, shift);
    const double kf = y - shift;
    double r = LUCE_FMA(kf, -LUCE_LN2HI_64, xs);
    r = LUCE_FMA(kf, -LUCE_LN2LO_64, r);
    double q = LUCE_FMA(2.500008819528247e-08, r, 2.7630235984839274e-07);
    q = LUCE_FMA(q, r, 2.755758622757984e-06);
    q = LUCE_FMA(q, r, 2.4801493130012402e-05);
    q = LUCE_FMA(q, r, 0.0001984126950680534);
    q = LUCE_FMA(q, r, 0.0013888888943604078);
    q = LUCE_FMA(q, r, 0.008333333333494333);
    q = LUCE_FMA(q, r, 0.04166666666653024);
    q = LUCE_FMA(q, r, 0.16666666666666413);
    q = LUCE_FMA(q, r, 0.5000000000000011);
    const double p = LUCE_FMA(LUCE_FMA(q, r, 1.0), r, 1.0); /* 1 + r·(1 + r·q) */
    /* 2^(k + 600) is a normal power of two for -1076 <= k <= 423. Unsigned: wraps, never undefined. */
    const uint64_t bits = (luce_bits_f64(y) - luce_bits_f64(shift) + (uint64_t)(1023 + 600)) << 52;
    const double e = (p * luce_from_bits_f64(bits)) * 0x1p-600;
    return zero ? 0.0 : e;
}

LUCE_INLINE float luce_exp_f32(float x)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    const int zero = x < -104.0f;   /* exp(-104) rounds to 0 in float32 */
    const float xs = zero ? 0.0f : x;
    const float y = LUCE_FMAF(xs, 1.442695f, shift);
    const float kf = y - shift;
    float r = LUCE_FMAF(kf, -LUCE_LN2HI_32, xs);
    r = LUCE_FMAF(kf, -LUCE_LN2LO_32, r);
    float q = LUCE_FMAF(0.0013814604608342052f, r, 0.008368710987269878f);
    q = LUCE_FMAF(q, r, 0.04166838899254799f);
    q = LUCE_FMAF(q, r, 0.1666652113199234f);
    q = LUCE_FMAF(q, r, 0.4999999403953552f);
    const float p = LUCE_FMAF(LUCE_FMAF(q, r, 1.0f), r, 1.0f);
    const uint32_t bits = (luce_bits_f32(y) - luce_bits_f32(shift) + (uint32_t)(127 + 64)) << 23;
    const float e = (p * luce_from_bits_f32(bits)) * 0x1p-64f;
    return zero ? 0.0f : e;
}

/* log1p for finite t >= 0 (NaN gives NaN, +inf does not give inf): the core of luce_log1p_f64, without
 * its final select, which GCC 12 does not if-convert here, so loops over this one vectorise. */
LUCE_INLINE double luce_log1p_finite_f64(double t)
{
    const uint64_t sqrt_half = 0x3FE6A09E667F3BCDull; /* the bits of sqrt(1/2) */
    const double u = 1.0 + t;
    const double c = (t - (u - 1.0)) / u;
    const uint64_t ix = luce_bits_f64(u) + (0x3FF0000000000000ull - sqrt_half);
    const double k = (double)((int64_t)(ix >> 52) - 1023);
    const double f = luce_from_bits_f64((ix & 0x000FFFFFFFFFFFFFull) + sqrt_half) - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    double r = 2.0 / 21.0;
    r = LUCE_FMA(r, z, 2.0 / 19.0);
    r = LUCE_FMA(r, z, 2.0 / 17.0);
    r = LUCE_FMA(r, z, 2.0 / 15.0);
    r = LUCE_FMA(r, z, 2.0 / 13.0);
    r = LUCE_FMA(r, z, 2.0 / 11.0);
    r = LUCE_FMA(r, z, 2.0 / 9.0);
    r = LUCE_FMA(r, z, 2.0 / 7.0);
    r = LUCE_FMA(r, z, 2.0 / 5.0);
    r = LUCE_FMA(r, z, 2.0 / 3.0);
    r = r * z; /* (2·atanh(s) - 2s) / s */
    const double hfsq = 0.5 * f * f;
    const double value = k * LUCE_LN2HI_64 - ((hfsq - (s * (hfsq + r) + (k * LUCE_LN2LO_64 + c))) - f);
    return value;
}

LUCE_INLINE double luce_log1p_f64(double t)
{
    return t < INFINITY ? luce_log1p_finite_f64(t) : t;
}

/* The maps over contiguous arrays (the tests' view of the primitives above). */
static LUCE_DISPATCH void luce_exp_array_f64(const double *LUCE_RESTRICT x, double *LUCE_RESTRICT out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) out[i] = luce_exp_f64(x[i]);
}

static LUCE_DISPATCH void luce_exp_array_f32(const float *LUCE_RESTRICT x, float *LUCE_RESTRICT out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) out[i] = luce_exp_f32(x[i]);
}

static LUCE_DISPATCH void luce_log1p_array_f64(const double *LUCE_RESTRICT t, double *LUCE_RESTRICT out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) out[i] = luce_log1p_f64(t[i]);
}

#endif
