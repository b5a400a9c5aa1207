"""LLVM IR building blocks for the kernels' vector intrinsics: 512-bit vectors of one float dtype.

Numba has no vector type: its loops become SIMD code only through LLVM's loop vectoriser, which serves
long loops well and short ones badly. A loop whose trip count is not a multiple of its vector step
ends in a scalar loop (up to 63 float32 elements), a ``maxnum`` reduction is finished one lane at a
time with a NaN check per lane, and the loop guards cost more than a 64-element row's arithmetic.
The intrinsics built from this module (:mod:`luce._kernels._numba_rows`,
:mod:`luce._kernels._numba_tiles`, :mod:`luce._kernels._numba_transpose`) emit the vector code
themselves: whole vectors, a masked load or store for the last partial one, and reductions as a tree
of shuffles.

:class:`Vectors` holds the geometry for one dtype (16 float32 or 8 float64 lanes) and the IR builder;
its methods emit one operation each. Masked loads and stores (``llvm.masked.load``/``store``) touch
no memory outside their lanes, so a row may end anywhere. The vectors are 512-bit whatever the CPU:
LLVM splits them into 256- or 128-bit operations where AVX-512 is missing (still correct; masked
loads without hardware support become per-lane branches, slower but only for a row's last vector).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils

__all__ = [
    "I64",
    "UNROLL",
    "VECTOR_BYTES",
    "Vectors",
    "arguments_fit",
    "each_variant",
    "int_arg",
    "pointer_arg",
]

VECTOR_BYTES = 64  # one AVX-512 register
UNROLL = 4  # vectors per step of a row loop (combined as a tree: the loop-carried chain is short)

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)


def int_arg(context, builder, signature, args, i):
    """Argument ``i`` (any Numba integer) as an i64."""
    return context.cast(builder, args[i], signature.args[i], types.int64)


def pointer_arg(context, builder, signature, args, i):
    """A pointer to ``a[offset]`` for the array argument ``a = args[i]`` and ``offset = args[i + 1]``."""
    data = context.make_array(signature.args[i])(context, builder, args[i]).data
    return builder.gep(data, [int_arg(context, builder, signature, args, i + 1)])


def arguments_fit(*, floats=(), scalars=(), ints=(), flags=(), masks=(), float64=()):
    """Whether Numba argument types fit an intrinsic here: ``floats`` 1-D arrays of one dtype, float32
    or float64; ``scalars`` of that dtype; ``ints`` integers; ``flags`` booleans; ``masks`` 1-D
    boolean arrays; ``float64`` 1-D float64 arrays."""

    def array(a, dtype):
        return isinstance(a, types.Array) and a.ndim == 1 and a.dtype == dtype

    dtype = getattr(floats[0], "dtype", None) if floats else None
    return (
        dtype in (types.float32, types.float64)
        and all(array(a, dtype) for a in floats)
        and all(s == dtype for s in scalars)
        and all(isinstance(i, types.Integer) for i in ints)
        and all(f == types.boolean for f in flags)
        and all(array(m, types.boolean) for m in masks)
        and all(array(a, types.float64) for a in float64)
    )


def each_variant(builder, flags, emit):
    """``emit(*values)`` for every combination of the runtime booleans ``flags`` (i1 values), each in
    its own branch: the loops of each variant are compiled without the others' tests."""

    def branch(done, rest):
        if not rest:
            emit(*done)
            return
        with builder.if_else(rest[0]) as (yes, no):
            for value, block in ((True, yes), (False, no)):
                with block:
                    branch((*done, value), rest[1:])

    branch((), tuple(flags))


class Vectors:
    """512-bit vectors of ``dtype`` (Numba float32 or float64) built with ``builder``."""

    def __init__(self, builder, dtype):
        self.builder = builder
        self.is32 = dtype == types.float32
        self.width = VECTOR_BYTES // (4 if self.is32 else 8)
        self.elem = ir.FloatType() if self.is32 else ir.DoubleType()
        self.type = ir.VectorType(self.elem, self.width)
        self.int_type = ir.VectorType(ir.IntType(32 if self.is32 else 64), self.width)
        self.align = ir.Constant(I32, 4 if self.is32 else 8)
        self._suffix = f"v{self.width}{'f32' if self.is32 else 'f64'}"

    # --- values ---

    def constant(self, value, elem=None):
        """A vector with ``value`` in every lane (a Python number; ``elem``: another lane type)."""
        vtype = self.type if elem is None else ir.VectorType(elem, self.width)
        return ir.Constant(vtype, [value] * self.width)

    def splat(self, scalar):
        """A vector with the IR scalar ``scalar`` in every lane."""
        vtype = ir.VectorType(scalar.type, self.width)
        one = self.builder.insert_element(ir.Constant(vtype, ir.Undefined), scalar, ir.Constant(I32, 0))
        zeros = ir.Constant(ir.VectorType(I32, self.width), [0] * self.width)
        return self.builder.shuffle_vector(one, one, zeros)

    def lanes_below(self, count):
        """The lanes ``i < count`` (an i64), as a ``<width x i1>`` mask."""
        lanes = ir.Constant(ir.VectorType(I64, self.width), list(range(self.width)))
        return self.builder.icmp_signed("<", lanes, self.splat(count))

    # --- memory ---

    def _call(self, name, ret, args):
        fnty = ir.FunctionType(ret, [a.type for a in args])
        return self.builder.call(cgutils.get_or_insert_function(self.builder.module, fnty, name), args)

    def _pointer(self, base, index, vtype):
        return self.builder.bitcast(self.builder.gep(base, [index]), vtype.as_pointer())

    def load(self, base, index, lanes=None, fill=0.0):
        """The vector at ``base[index:]``; with ``lanes``, only those lanes are read, the others
        are ``fill`` (a Python number)."""
        ptr = self._pointer(base, index, self.type)
        if lanes is None:
            return self.builder.load(ptr, align=self.align.constant)
        args = [ptr, self.align, lanes, self.constant(fill)]
        return self._call(f"llvm.masked.load.{self._suffix}.p0", self.type, args)

    def store(self, value, base, index, lanes=None):
        """Store ``value`` at ``base[index:]`` (with ``lanes``: only those lanes)."""
        ptr = self._pointer(base, index, self.type)
        if lanes is None:
            self.builder.store(value, ptr, align=self.align.constant)
        else:
            self._call(f"llvm.masked.store.{self._suffix}.p0", ir.VoidType(), [value, ptr, self.align, lanes])

    def prefetch(self, base, index):
        """Ask for the cache line of ``base[index]`` (``llvm.prefetch``: never faults, reads nothing)."""
        ptr = self.builder.bitcast(self.builder.gep(base, [index]), I8.as_pointer())
        rw, locality, data = (ir.Constant(I32, k) for k in (0, 3, 1))
        self._call("llvm.prefetch.p0", ir.VoidType(), [ptr, rw, locality, data])

    def load_bools(self, base, index, lanes=None):
        """The booleans (bytes) at ``base[index:]`` as a ``<width x i1>`` mask (outside ``lanes``: False)."""
        vtype = ir.VectorType(I8, self.width)
        ptr = self._pointer(base, index, vtype)
        if lanes is None:
            raw = self.builder.load(ptr, align=1)
        else:
            name = f"llvm.masked.load.v{self.width}i8.p0"
            raw = self._call(name, vtype, [ptr, ir.Constant(I32, 1), lanes, ir.Constant(vtype, None)])
        return self.builder.icmp_unsigned("!=", raw, ir.Constant(vtype, None))

    # --- arithmetic ---

    def fma(self, a, b, c):
        """``a * b + c`` with one rounding, lane by lane."""
        return self._call(f"llvm.fma.{self._suffix}", a.type, [a, b, c])

    def popcount(self, bits):
        """The number of set bits of an integer (one ``popcnt``)."""
        return self._call(f"llvm.ctpop.i{bits.type.width}", bits.type, [bits])

    def max(self, a, b):
        """``a > b ? a : b`` lane by lane (one ``vmaxps``; with a NaN operand either may come out)."""
        return self.builder.select(self.builder.fcmp_ordered(">", a, b), a, b)

    def reduce(self, a, op):
        """``op`` over the lanes of ``a`` as a tree (log2 width shuffles); the result is a scalar."""
        n = a.type.count
        h = n // 2
        while h >= 1:
            rotated = [(j + h) % n for j in range(n)]
            a = op(a, self.builder.shuffle_vector(a, a, ir.Constant(ir.VectorType(I32, n), rotated)))
            h //= 2
        return self.builder.extract_element(a, ir.Constant(I32, 0))

    def to_float64(self, value):
        """``value`` as a list of ``<8 x double>`` vectors (two halves of a float32 vector)."""
        if not self.is32:
            return [value]
        h = self.width // 2
        b = self.builder
        halves = (ir.Constant(ir.VectorType(I32, h), list(range(k, k + h))) for k in (0, h))
        return [b.fpext(b.shuffle_vector(value, value, i), ir.VectorType(ir.DoubleType(), h)) for i in halves]

    # --- loops ---

    def for_each(self, n, body, combine=(), accumulate=None):
        """Emit a loop over ``n`` (an i64) elements: ``body(index, lanes)`` for every vector, ``UNROLL``
        per step, then single vectors, then once for the last partial vector with its ``lanes`` mask
        (None for whole vectors).

        ``body`` may return a tuple of values, one per op of ``combine`` (binary ops): the values of a
        step's vectors are combined as a tree and passed to ``accumulate`` once per step, so the loop
        carries one accumulator per value whatever ``UNROLL`` is; single and partial vectors pass
        theirs directly."""
        b = self.builder
        step = ir.Constant(I64, self.width * UNROLL)
        width = ir.Constant(I64, self.width)
        nsteps = b.sdiv(n, step)
        with cgutils.for_range(b, nsteps) as loop:
            start = b.mul(loop.index, step)
            values = [body(b.add(start, ir.Constant(I64, k * self.width)), None) for k in range(UNROLL)]
            if accumulate is not None:
                while len(values) > 1:
                    pairs = zip(values[::2], values[1::2], strict=True)
                    values = [
                        tuple(op(a, c) for op, a, c in zip(combine, *pair, strict=True)) for pair in pairs
                    ]
                accumulate(*values[0])
        done = b.mul(nsteps, step)
        nvectors = b.sdiv(b.sub(n, done), width)
        with cgutils.for_range(b, nvectors) as loop:
            values = body(b.add(done, b.mul(loop.index, width)), None)
            if accumulate is not None:
                accumulate(*values)
        done = b.add(done, b.mul(nvectors, width))
        rest = b.sub(n, done)
        with b.if_then(b.icmp_signed(">", rest, ir.Constant(I64, 0))):
            values = body(done, self.lanes_below(rest))
            if accumulate is not None:
                accumulate(*values)

    def accumulator(self, value):
        """A stack slot holding ``value`` (promoted to a register by LLVM)."""
        return cgutils.alloca_once_value(self.builder, value)
