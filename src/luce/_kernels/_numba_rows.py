"""The passes over one row of softmax, log_softmax and logsumexp, as LLVM intrinsics for the Numba kernels.

A row is ``n`` contiguous elements ``x[xoff:xoff + n]``, with its ``where`` mask at
``mask[moff:moff + n]`` (booleans). Each intrinsic is one pass over the row in 512-bit vectors
(:class:`~luce._kernels._numba_simd.Vectors`): four vectors per step, combined as a tree, then single
vectors, then one masked vector for the rest, so a row of any length runs without a scalar loop.
Sums: a step's four vectors are added in the input dtype (two roundings), then widened into float64
lanes; every reduction ends in a tree.
Written as Numba loops, which LLVM vectorises with scalar tails and lane-by-lane reductions, rows of
32 to a few thousand elements (a classifier's classes) ran 1.1-2x slower than torch; now they run
faster (docs/performance.md).

``general`` (a runtime bool) selects the variant that reads the mask (masked entries are ``-inf``) and
divides by the temperature ``t`` (shift first, then divide, as the reference); the fast variant does
neither. The callers in :mod:`luce._kernels._numba_softmax` handle the special rows (a max that is not
finite, a NaN sum).

Imported by :mod:`luce._kernels._numba_softmax`, whose on-disk cache is keyed to its own file: touch it
after editing this one.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba_exp import exp_vector
from ._numba_simd import I64, Vectors, arguments_fit, each_variant, int_arg, pointer_arg

__all__ = ["row_exp_store_sum", "row_exp_sum_count", "row_finish", "row_max", "row_shift_sum_count"]

PREFETCH_BYTES = 4096  # row_max asks for the line this far ahead (past the row: the next row)
_NINF = float("-inf")


class _Row:
    """One row in IR: the leading arguments ``(x, xoff, mask, moff, n)``, read in either variant."""

    def __init__(self, context, builder, sig, args, general_at):
        self.v = Vectors(builder, sig.args[0].dtype)
        self.builder = builder
        self.x = pointer_arg(context, builder, sig, args, 0)
        self.mask = pointer_arg(context, builder, sig, args, 2)
        self.n = int_arg(context, builder, sig, args, 4)
        self.general = args[general_at]

    def read(self, index, lanes, general):
        """The elements at ``index`` (-inf outside ``lanes`` and, if ``general``, where masked)."""
        value = self.v.load(self.x, index, lanes, _NINF)
        if general:
            keep = self.v.load_bools(self.mask, index, lanes)
            value = self.builder.select(keep, value, self.v.constant(_NINF))
        return value

    def shifted(self, value, m, t, general):
        """``(value - m) / t`` (``value - m`` in the fast variant)."""
        d = self.builder.fsub(value, m)
        return self.builder.fdiv(d, t) if general else d

    def loop(self, body, combine=(), accumulate=None):
        """``body(index, lanes, general)`` over the row (see ``Vectors.for_each``), emitted for both
        variants and chosen at run time."""

        def emit(general):
            each = lambda i, lanes: body(i, lanes, general)  # noqa: E731
            self.v.for_each(self.n, each, combine, accumulate)

        each_variant(self.builder, (self.general,), emit)


def _float64_sum(v):
    """An accumulator of float64 lanes, and the function that adds a vector of the row's dtype to it
    (a float32 vector's two halves are added to each other first, in float64)."""
    b = v.builder
    acc = v.accumulator(ir.Constant(ir.VectorType(ir.DoubleType(), 8), [0.0] * 8))

    def add(value):
        parts = v.to_float64(value)
        total = parts[0] if len(parts) == 1 else b.fadd(parts[0], parts[1])
        b.store(b.fadd(b.load(acc), total), acc)

    return acc, add


@intrinsic
def row_max(typingctx, x, xoff, mask, moff, n, general):
    """The max of the row's unmasked entries. With a NaN in the row the result is unspecified: the
    callers find the NaN in the sum, where ``exp`` propagates it."""
    if not arguments_fit(floats=(x,), ints=(xoff, moff, n), flags=(general,), masks=(mask,)):
        return None

    def codegen(context, builder, sig, args):
        row = _Row(context, builder, sig, args, general_at=5)
        v = row.v
        acc = v.accumulator(v.constant(_NINF))
        ahead = ir.Constant(I64, PREFETCH_BYTES // (4 if v.is32 else 8))

        def body(index, lanes, general):
            if lanes is None:  # the first pass reads the row from memory: ask for it ahead of time
                v.prefetch(row.x, builder.add(index, ahead))
            return (row.read(index, lanes, general),)

        row.loop(body, (v.max,), lambda value: builder.store(v.max(builder.load(acc), value), acc))
        return v.reduce(builder.load(acc), v.max)

    return x.dtype(x, xoff, mask, moff, n, general), codegen


def _sum_count(store):
    """The codegen of row_exp_sum_count (``store``: also row_shift_sum_count's store of the shifted
    values into ``out``)."""
    result = types.UniTuple(types.float64, 2)

    def codegen(context, builder, sig, args):
        row = _Row(context, builder, sig, args, general_at=7)
        v = row.v
        mv, tv = v.splat(args[5]), v.splat(args[6])
        dest = pointer_arg(context, builder, sig, args, 8) if store else None
        total, add = _float64_sum(v)
        count = v.accumulator(ir.Constant(I64, 0))
        lane_bits = ir.IntType(v.width)

        def body(index, lanes, general):
            value = row.read(index, lanes, general)
            shifted = row.shifted(value, mv, tv, general)
            if store:
                v.store(shifted, dest, index, lanes)
            e = exp_vector(v, shifted)
            at_max = builder.fcmp_ordered("==", value, mv)
            hits = builder.zext(v.popcount(builder.bitcast(at_max, lane_bits)), I64)
            return builder.select(at_max, v.constant(0.0), e), hits  # a NaN is added: the sum is NaN

        def accumulate(terms, hits):
            add(terms)
            builder.store(builder.add(builder.load(count), hits), count)

        row.loop(body, (builder.fadd, builder.add), accumulate)
        counted = builder.sitofp(builder.load(count), ir.DoubleType())
        return context.make_tuple(builder, result, [v.reduce(builder.load(total), builder.fadd), counted])

    return result, codegen


@intrinsic
def row_exp_sum_count(typingctx, x, xoff, mask, moff, n, m, t, general):
    """``(sum of exp((x - m)/T) over the entries below m, count of entries equal to m)`` in float64:
    the maxima are counted, not added, so the log1p form sees the exact tail."""
    if not arguments_fit(floats=(x,), scalars=(m, t), ints=(xoff, moff, n), flags=(general,), masks=(mask,)):
        return None
    result, codegen = _sum_count(store=False)
    return result(x, xoff, mask, moff, n, m, t, general), codegen


@intrinsic
def row_shift_sum_count(typingctx, x, xoff, mask, moff, n, m, t, general, out, ooff):
    """:func:`row_exp_sum_count`, storing ``(x - m)/T`` (masked: -inf) into ``out[ooff:ooff + n]`` on
    the way: log_softmax's stores then overlap the exponentials, and its last pass (``-= c``) runs
    in cache."""
    if not arguments_fit(
        floats=(x, out), scalars=(m, t), ints=(xoff, moff, n, ooff), flags=(general,), masks=(mask,)
    ):
        return None
    result, codegen = _sum_count(store=True)
    return result(x, xoff, mask, moff, n, m, t, general, out, ooff), codegen


@intrinsic
def row_exp_store_sum(typingctx, x, xoff, mask, moff, n, m, t, general, out, ooff):
    """``out[ooff:ooff + n] = exp((x - m)/T)`` (masked: 0); returns their sum in float64."""
    if not arguments_fit(
        floats=(x, out), scalars=(m, t), ints=(xoff, moff, n, ooff), flags=(general,), masks=(mask,)
    ):
        return None

    def codegen(context, builder, sig, args):
        row = _Row(context, builder, sig, args, general_at=7)
        v = row.v
        mv, tv = v.splat(args[5]), v.splat(args[6])
        dest = pointer_arg(context, builder, sig, args, 8)
        total, add = _float64_sum(v)

        def body(index, lanes, general):
            e = exp_vector(v, row.shifted(row.read(index, lanes, general), mv, tv, general))
            v.store(e, dest, index, lanes)
            return (e,)

        row.loop(body, (builder.fadd,), add)
        return v.reduce(builder.load(total), builder.fadd)

    return types.float64(x, xoff, mask, moff, n, m, t, general, out, ooff), codegen


@intrinsic
def row_finish(typingctx, out, ooff, n, c, log):
    """``out[ooff:ooff + n] -= c`` if ``log`` else ``*= c``: the last pass over a row in cache."""
    if not arguments_fit(floats=(out,), scalars=(c,), ints=(ooff, n), flags=(log,)):
        return None

    def codegen(context, builder, sig, args):
        v = Vectors(builder, sig.args[0].dtype)
        data = pointer_arg(context, builder, sig, args, 0)
        cv = v.splat(args[3])

        def emit(log):
            def body(index, lanes):
                value = v.load(data, index, lanes)
                v.store(builder.fsub(value, cv) if log else builder.fmul(value, cv), data, index, lanes)

            v.for_each(int_arg(context, builder, sig, args, 2), body)

        each_variant(builder, (args[4],), emit)
        return context.get_dummy_value()

    return types.void(out, ooff, n, c, log), codegen
