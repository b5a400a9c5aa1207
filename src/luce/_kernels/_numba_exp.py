"""Vectorisable ``exp`` and ``log1p`` for the Numba kernels, and the few LLVM intrinsics they need.

Numba lowers ``math.exp``/``np.exp`` to a libm call, which LLVM cannot vectorise without SVML. ``vexp``
below is written only with arithmetic, comparisons, fused multiply-adds and bit casts, so loops over it
become SIMD code. Algorithm (Cody & Waite range reduction, polynomial, exponent scaling):

1. ``k = round(x / ln 2)`` by the "shifter" trick: adding ``1.5·2^52`` (``1.5·2^23`` for float32)
   rounds to an integer held in the low bits of the sum, read back with a bit cast (no float→int
   conversion, which LLVM leaves undefined for NaN).
2. ``r = x - k·ln2_hi - k·ln2_lo`` with ``ln 2`` split in two: ``ln2_hi`` has trailing zero bits so
   ``k·ln2_hi`` is exact, and the reduction stays exact to the last bit even for ``|k| ≈ 1075``. With a
   single rounded ``ln 2`` the error of ``r`` grows like ``|k|·ulp(ln 2)``: about 100 ulp at ``x = -700``
   (``test_exp_range_reduction_is_exact`` fails without the split).
3. ``exp(r) ≈ 1 + r + r²·q(r)`` on ``|r| ≤ ln(2)/2``, ``q`` a near-minimax polynomial (degree 9 for
   float64, 4 for float32) fitted to the relative error with mpmath (Lawson-weighted least squares at
   Chebyshev nodes); its own error is below 0.05 ulp, the Horner evaluation with FMAs adds about 0.5.
4. ``2^k`` is applied as ``(p·2^(k+B))·2^-B`` (``B`` = 600 / 64): the first product is exact, the
   second rounds once, so results in the subnormal range come out as ``np.exp`` gives them (gradual
   underflow, 0 below about -745.1 / -103.9). Arguments below -746 / -104 (and ``-inf``: masked
   entries) compute ``exp(0)`` and are zeroed at the end, so they never produce a subnormal on the
   way: on x86 that costs a microcode assist of about 150 cycles per vector.

Domain: ``x <= 0`` (all softmax needs; correct up to about 290 / 43), ``-inf → 0``, NaN → NaN,
``exp(0) == 1`` exactly; within 0.6 ulp of mpmath for normal results (tests/test_kernels.py).

``vlog1p`` (float64, ``t >= 0``) serves the per-slice ``log1p(tail)`` of log_softmax and logsumexp, so
the loops that compute it across columns vectorise too. ``maxnum``, ``fma``, the bit casts and the
software prefetches are one-instruction LLVM intrinsics; ``prefer_512`` asks LLVM for 512-bit vectors.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._numba_simd import Vectors, arguments_fit, int_arg, pointer_arg

__all__ = [
    "as_float",
    "as_int",
    "exp_array",
    "log1p_array",
    "fma",
    "maxnum",
    "prefer_512",
    "prefetch",
    "prefetchw",
    "vexp",
    "vlog1p",
]


# --- intrinsics: fused multiply-add and bit casts ------------------------------------------------------


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``; one instruction on FMA hardware)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        llty = args[0].type
        fnty = ir.FunctionType(llty, [llty, llty, llty])
        name = "llvm.fma.f64" if llty == ir.DoubleType() else "llvm.fma.f32"
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def as_int(typingctx, x):
    """The IEEE bits of a float32/float64 as int32/int64."""
    if x == types.float64:
        sig, llty = types.int64(x), ir.IntType(64)
    elif x == types.float32:
        sig, llty = types.int32(x), ir.IntType(32)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llty)

    return sig, codegen


@intrinsic
def as_float(typingctx, i):
    """The float32/float64 whose IEEE bits are the int32/int64 ``i``."""
    if i == types.int64:
        sig, llty = types.float64(i), ir.DoubleType()
    elif i == types.int32:
        sig, llty = types.float32(i), ir.FloatType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llty)

    return sig, codegen


# --- exp --------------------------------------------------------------------------------------------

# float64 constants. ln2_hi = 0x3FE62E42FEE00000 has 32 trailing zero bits (k·ln2_hi exact for |k| < 2^20).
_F64 = np.float64
_LOG2E_64 = _F64(1.4426950408889634)
_SHIFT_64 = _F64(6755399441055744.0)  # 1.5 * 2**52
_LN2HI_64 = _F64(0.6931471803691238)
_LN2LO_64 = _F64(1.9082149292705877e-10)
_LO_64 = _F64(-746.0)  # exp(-746) rounds to 0
_BIAS_64 = 600
_SCALE_64 = _F64(2.0**-_BIAS_64)
_Q64 = tuple(
    _F64(c)
    for c in (
        0.5000000000000011,
        0.16666666666666413,
        0.04166666666653024,
        0.008333333333494333,
        0.0013888888943604078,
        0.0001984126950680534,
        2.4801493130012402e-05,
        2.755758622757984e-06,
        2.7630235984839274e-07,
        2.500008819528247e-08,
    )
)
_ONE_64 = _F64(1.0)
_ZERO_64 = _F64(0.0)
_SHIFT_BITS_64 = np.int64(np.array(_SHIFT_64).view(np.int64))

# float32 constants. ln2_hi = 0.693359375 (9 significant bits: k·ln2_hi exact for |k| < 2^15).
_F32 = np.float32
_LOG2E_32 = _F32(1.442695)
_SHIFT_32 = _F32(12582912.0)  # 1.5 * 2**23
_LN2HI_32 = _F32(0.693359375)
_LN2LO_32 = _F32(-2.12194440e-4)
_LO_32 = _F32(-104.0)  # exp(-104) rounds to 0 in float32
_BIAS_32 = 64
_SCALE_32 = _F32(2.0**-_BIAS_32)
_Q32 = tuple(
    _F32(c)
    for c in (
        0.4999999403953552,
        0.1666652113199234,
        0.04166838899254799,
        0.008368710987269878,
        0.0013814604608342052,
    )
)
_ONE_32 = _F32(1.0)
_ZERO_32 = _F32(0.0)
_SHIFT_BITS_32 = np.int32(np.array(_SHIFT_32).view(np.int32))


def vexp(x):
    """``exp(x)`` for a float32/float64 scalar, written to vectorise (callable from jitted code only)."""
    raise TypeError("vexp is only callable from Numba-compiled code")


@njit(error_model="numpy")
def _exp64(x):
    # Below -746 (and -inf: masked entries) the result is 0; those lanes compute exp(0) instead and are
    # zeroed at the end, so no lane produces a subnormal on the way (a slow microcode assist on x86).
    # NaN compares false and passes through.
    zero = x < _LO_64
    x = _ZERO_64 if zero else x
    y = fma(x, _LOG2E_64, _SHIFT_64)  # round(x / ln2) + 1.5·2^52, exactly
    kf = y - _SHIFT_64
    # Cody & Waite (1980), "Software Manual for the Elementary Functions", ch. 6: ln 2 split in two.
    r = fma(kf, -_LN2HI_64, x)
    r = fma(kf, -_LN2LO_64, r)
    q = fma(_Q64[9], r, _Q64[8])
    q = fma(q, r, _Q64[7])
    q = fma(q, r, _Q64[6])
    q = fma(q, r, _Q64[5])
    q = fma(q, r, _Q64[4])
    q = fma(q, r, _Q64[3])
    q = fma(q, r, _Q64[2])
    q = fma(q, r, _Q64[1])
    q = fma(q, r, _Q64[0])
    p = fma(fma(q, r, _ONE_64), r, _ONE_64)  # 1 + r·(1 + r·q)
    # 2^(k + 600) is a normal power of two for -1076 <= k <= 423, so p·2^(k+600) is exact and the
    # product with 2^-600 rounds once (subnormal results included).
    e = (p * as_float((as_int(y) - _SHIFT_BITS_64 + (1023 + _BIAS_64)) << 52)) * _SCALE_64
    return _ZERO_64 if zero else e


@njit(error_model="numpy")
def _exp32(x):
    zero = x < _LO_32
    x = _ZERO_32 if zero else x
    y = fma(x, _LOG2E_32, _SHIFT_32)
    kf = y - _SHIFT_32
    # Cody & Waite (1980), "Software Manual for the Elementary Functions", ch. 6: ln 2 split in two.
    r = fma(kf, -_LN2HI_32, x)
    r = fma(kf, -_LN2LO_32, r)
    q = fma(_Q32[4], r, _Q32[3])
    q = fma(q, r, _Q32[2])
    q = fma(q, r, _Q32[1])
    q = fma(q, r, _Q32[0])
    p = fma(fma(q, r, _ONE_32), r, _ONE_32)
    # Numba widens int32 arithmetic to int64: narrow back before the bit cast.
    e = (p * as_float(np.int32((as_int(y) - _SHIFT_BITS_32 + (127 + _BIAS_32)) << 23))) * _SCALE_32
    return _ZERO_32 if zero else e


# The constants of _exp32 (True) and _exp64 (False) for exp_vector; the exponent offset is added to the
# bits of y (it wraps like the integer sums there), then shifted by the mantissa bits.
_EXP_STEPS = {
    True: (
        *(_LOG2E_32, _SHIFT_32, _LN2HI_32, _LN2LO_32, _LO_32, _Q32, _SCALE_32),
        *(127 + _BIAS_32 - int(_SHIFT_BITS_32), 23),
    ),
    False: (
        *(_LOG2E_64, _SHIFT_64, _LN2HI_64, _LN2LO_64, _LO_64, _Q64, _SCALE_64),
        *(1023 + _BIAS_64 - int(_SHIFT_BITS_64), 52),
    ),
}


def exp_vector(v, x):
    """The IR of ``vexp`` on a vector: the steps of ``_exp32``/``_exp64`` above, with their constants,
    for the intrinsics of :mod:`luce._kernels._numba_rows` (``v``: a
    :class:`~luce._kernels._numba_simd.Vectors`; ``x``: a vector of its type)."""
    b = v.builder
    c = v.constant
    log2e, shift, ln2hi, ln2lo, lo, q_coefs, scale, offset, mantissa_bits = _EXP_STEPS[v.is32]
    ints = v.int_type.element
    zero = b.fcmp_ordered("<", x, c(float(lo)))
    x = b.select(zero, c(0.0), x)
    y = v.fma(x, c(float(log2e)), c(float(shift)))
    kf = b.fsub(y, c(float(shift)))
    r = v.fma(kf, c(-float(ln2hi)), x)
    r = v.fma(kf, c(-float(ln2lo)), r)
    q = c(float(q_coefs[-1]))
    for coef in q_coefs[-2::-1]:
        q = v.fma(q, r, c(float(coef)))
    p = v.fma(v.fma(q, r, c(1.0)), r, c(1.0))
    bits = b.shl(b.add(b.bitcast(y, v.int_type), c(offset, ints)), c(mantissa_bits, ints))
    e = b.fmul(b.fmul(p, b.bitcast(bits, v.type)), c(float(scale)))
    return b.select(zero, c(0.0), e)


@overload(vexp)
def _vexp_overload(x):
    if x == types.float64:
        return lambda x: _exp64(x)
    if x == types.float32:
        return lambda x: _exp32(x)
    return None


@njit(cache=True, error_model="numpy")
def _exp_into(x, out):
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


@intrinsic
def _exp_vectors(typingctx, x, xoff, out, ooff, n):
    """``out[ooff:ooff + n] = exp(x[xoff:xoff + n])`` through :func:`exp_vector`."""
    if not arguments_fit(floats=(x, out), ints=(xoff, ooff, n)):
        return None

    def codegen(context, builder, sig, args):
        v = Vectors(builder, sig.args[0].dtype)
        src, dst = pointer_arg(context, builder, sig, args, 0), pointer_arg(context, builder, sig, args, 2)

        def body(index, lanes):
            v.store(exp_vector(v, v.load(src, index, lanes)), dst, index, lanes)

        v.for_each(int_arg(context, builder, sig, args, 4), body)
        return context.get_dummy_value()

    return types.void(x, xoff, out, ooff, n), codegen


@njit(cache=True, error_model="numpy")
def _exp_vectors_into(x, out):
    _exp_vectors(x, 0, out, 0, x.shape[0])


def exp_array(x: np.ndarray, vector: bool = False) -> np.ndarray:
    """``vexp`` (or, with ``vector``, its IR form :func:`exp_vector`) over a 1-D float32/float64 array,
    for tests and benchmarks."""
    x = np.ascontiguousarray(x)
    if x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be a 1-D float32/float64 array, got {x.dtype} of shape {x.shape}")
    out = np.empty_like(x)
    (_exp_vectors_into if vector else _exp_into)(x, out)
    return out


@intrinsic
def maxnum(typingctx, a, b):
    """``max(a, b)`` ignoring a NaN operand (``llvm.maxnum``): loops over it vectorise as reductions."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        llty = args[0].type
        name = "llvm.maxnum.f64" if llty == ir.DoubleType() else "llvm.maxnum.f32"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(llty, [llty, llty]), name)
        return builder.call(fn, args)

    return a(a, b), codegen


def _prefetch_intrinsic(write):
    def prefetch(typingctx, arr, idx):
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), ir.IntType(8).as_pointer())
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # (address, 0 read / 1 write, locality 3 = keep in all cache levels, 1 = data cache)
            builder.call(fn, [ptr, ir.Constant(i32, int(write)), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(arr, idx), codegen

    return intrinsic(prefetch)


# Software prefetch of the cache line holding arr[idx] (1-D, contiguous; any idx, nothing is read).
# Streaming loops here do a lot of arithmetic per element, so the out-of-order window alone keeps too
# few cache misses in flight; asking for the lines a few KB ahead restores memory-level parallelism.
prefetch = _prefetch_intrinsic(write=False)
prefetchw = _prefetch_intrinsic(write=True)


# --- log1p (float64), vectorisable, for the per-slice log1p(tail) of log_softmax and logsumexp ---------

_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(1/2)
_EXP_SHIFT = 0x3FF0000000000000 - _SQRT_HALF_BITS
_MANT_MASK = 0x000FFFFFFFFFFFFF
# log(1 + f) = 2·atanh(s), s = f / (2 + f): the series 2·Σ s^(2k+1)/(2k+1), |s| <= 0.1716 (z <= 0.0295).
_ATANH = tuple(_F64(2.0 / (2 * k + 1)) for k in range(1, 11))  # z^10·2/21 < 5e-17: below an ulp


@njit(error_model="numpy")
def vlog1p(t):
    """``log1p(t)`` for float64 ``t >= 0`` (also inf, NaN), within an ulp, written to vectorise.

    u = 1 + t = 2^k·(1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), log(1 + f) from the atanh series, and
    the rounding of 1 + t put back by c = (t - (u - 1)) / u (the structure of fdlibm's s_log1p.c, Sun
    Microsystems 1993; the series coefficients here are the plain Taylor ones).
    """
    u = 1.0 + t
    c = (t - (u - 1.0)) / u
    ix = as_int(u) + _EXP_SHIFT
    k = np.float64((ix >> 52) - 1023)
    f = as_float((ix & _MANT_MASK) + _SQRT_HALF_BITS) - 1.0
    s = f / (2.0 + f)
    z = s * s
    r = _ATANH[9]
    for i in range(8, -1, -1):
        r = fma(r, z, _ATANH[i])
    r = r * z  # (2·atanh(s) - 2s) / s
    hfsq = 0.5 * f * f
    value = k * _LN2HI_64 - ((hfsq - (s * (hfsq + r) + (k * _LN2LO_64 + c))) - f)
    return value if t < np.inf else t


def _wide_vectors_pay() -> bool:
    """Whether to ask for 512-bit vectors: AVX-512 present, not a CPU whose 512-bit units lower the
    clock for everything that follows (Skylake-SP family), and no user-chosen Numba target."""
    from numba.core import config

    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False
    cpu = llvm_binding.get_host_cpu_name()
    features = llvm_binding.get_host_cpu_features()
    return bool(features.get("avx512f")) and cpu not in ("skylake-avx512", "cascadelake", "cooperlake")


_WIDE = _wide_vectors_pay()


@intrinsic
def prefer_512(typingctx):
    """Let LLVM vectorise the calling function with 512-bit vectors where that pays (see _wide_vectors_pay).

    LLVM prefers 256 bits on every AVX-512 CPU; for these exp-heavy loops 512 bits are 15-30 % faster on
    newer ones. A no-op elsewhere, and if llvmlite's attribute set ever refuses the string attribute.
    """

    def codegen(context, builder, signature, args):
        if _WIDE:
            try:
                set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            except TypeError:  # pragma: no cover - a future llvmlite
                pass
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, error_model="numpy")
def _log1p_into(t, out):
    for i in range(t.shape[0]):
        out[i] = vlog1p(t[i])


def log1p_array(t: np.ndarray) -> np.ndarray:
    """``vlog1p`` over a 1-D float64 array (for tests)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty_like(t)
    _log1p_into(t, out)
    return out
