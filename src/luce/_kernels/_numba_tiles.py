"""The passes of softmax, log_softmax and logsumexp over a transposed tile of short rows, as LLVM intrinsics.

Rows shorter than ``SHORT_ROW`` are transposed into a tile (:func:`luce._kernels._numba_softmax._short_tile`):
element ``j`` of row ``r`` at ``tile[j*stride + r]`` for ``j < n``, ``r < w``, so a vector holds one
element of 16 (float32) or 8 (float64) rows. The passes here take the tile in strips of four vectors
(64 float32 / 32 float64 rows, masked past ``w``) and keep a strip's maxima and sums in registers down
its ``n`` elements; written as Numba loops, they loaded and stored every row's state at every element
(65536 rows of 16: softmax 0.46 -> 0.41 ms, log_softmax 0.51 -> 0.44 ms).

Masked entries are already ``-inf`` in the tile, so ``general`` (a runtime bool) only adds the division
by the temperature ``t``. ``log`` (a runtime bool) selects the log forms: the sums leave out the
maxima and count them (for log1p), and the write is ``(x - m)/T - c``. Sums: ``KC`` elements in the
input dtype, then folded into the float64 arrays ``sums``/``counts``.

Imported by :mod:`luce._kernels._numba_softmax`, whose on-disk cache is keyed to its own file: touch it
after editing this one.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._numba_exp import exp_vector
from ._numba_simd import I64, UNROLL, Vectors, arguments_fit, each_variant, int_arg

__all__ = ["tile_max", "tile_sums", "tile_write"]

KC = 16  # tile elements summed in the input dtype before they are folded into float64
_NINF = float("-inf")


class _Tile:
    """A tile argument in IR (``tile, n, stride, w`` are the first four arguments) and its strips."""

    def __init__(self, context, builder, sig, args):
        self.context, self.builder, self.sig, self.args = context, builder, sig, args
        self.v = Vectors(builder, sig.args[0].dtype)
        self.data = self.array(0)
        self.n, self.stride, self.w = (int_arg(context, builder, sig, args, i) for i in (1, 2, 3))

    def array(self, i):
        """The data pointer of array argument ``i``."""
        return self.context.make_array(self.sig.args[i])(self.context, self.builder, self.args[i]).data

    def strips(self, body):
        """``body(strip)`` for each strip of UNROLL vectors; ``strip`` is a list of ``(row, lanes)``:
        the first row of each vector (an i64) and its lanes below ``w``."""
        b, v = self.builder, self.v
        size = v.width * UNROLL
        nstrips = b.sdiv(b.add(self.w, ir.Constant(I64, size - 1)), ir.Constant(I64, size))
        with cgutils.for_range(b, nstrips) as loop:
            start = b.mul(loop.index, ir.Constant(I64, size))
            rows = [b.add(start, ir.Constant(I64, k * v.width)) for k in range(UNROLL)]
            body([(r, v.lanes_below(b.sub(self.w, r))) for r in rows])

    def down(self, strip, step, start=None, stop=None):
        """``step(at, values)`` for the tile elements ``j`` in ``[start, stop)`` (default: all ``n``):
        ``at = j*stride`` and the strip's vectors of element ``j`` (-inf outside the lanes)."""
        b = self.builder
        start = ir.Constant(I64, 0) if start is None else start
        with cgutils.for_range(b, b.sub(self.n if stop is None else stop, start)) as loop:
            at = b.mul(b.add(start, loop.index), self.stride)
            step(at, [self.v.load(self.data, b.add(at, r), lanes, _NINF) for r, lanes in strip])

    def load_rows(self, i, strip):
        """The per-row array argument ``i`` at the strip's rows (0 outside the lanes)."""
        data = self.array(i)
        return [self.v.load(data, r, lanes) for r, lanes in strip]


def _halves(v, strip):
    """The float64 view of a strip's rows: ``(row, lanes)`` per half of each vector (float32: two)."""
    if not v.is32:
        return list(strip)
    b, h = v.builder, v.width // 2
    out = []
    for r, lanes in strip:
        for k in (0, h):
            idx = ir.Constant(ir.VectorType(ir.IntType(32), h), list(range(k, k + h)))
            out.append((b.add(r, ir.Constant(I64, k)), b.shuffle_vector(lanes, lanes, idx)))
    return out


@intrinsic
def tile_max(typingctx, tile, n, stride, w, m):
    """``m[r]`` = the max of row ``r`` of the tile (``r < w``); with a NaN in the row the result is
    unspecified (the sums find the NaN)."""
    if not arguments_fit(floats=(tile, m), ints=(n, stride, w)):
        return None

    def codegen(context, builder, sig, args):
        tl = _Tile(context, builder, sig, args)
        v, dest = tl.v, tl.array(4)

        def body(strip):
            maxima = [v.accumulator(v.constant(_NINF)) for _ in strip]

            def step(at, values):
                for acc, value in zip(maxima, values, strict=True):
                    builder.store(v.max(builder.load(acc), value), acc)

            tl.down(strip, step)
            for acc, (r, lanes) in zip(maxima, strip, strict=True):
                v.store(builder.load(acc), dest, r, lanes)

        tl.strips(body)
        return context.get_dummy_value()

    return types.void(tile, n, stride, w, m), codegen


@intrinsic
def tile_sums(typingctx, tile, n, stride, w, m, t, general, log, sums, counts):
    """Per row ``r``: softmax (not ``log``) stores ``exp((x - m[r])/T)`` into the tile and sets
    ``sums[r]`` to their float64 sum; the log forms set ``sums[r]`` to the sum below ``m[r]`` and
    ``counts[r]`` to the count at it (softmax leaves ``counts`` alone)."""
    ints, flags = (n, stride, w), (general, log)
    if not arguments_fit(floats=(tile, m), scalars=(t,), ints=ints, flags=flags, float64=(sums, counts)):
        return None

    def codegen(context, builder, sig, args):
        tl = _Tile(context, builder, sig, args)
        v = tl.v
        v64 = Vectors(builder, types.float64)
        sum_data, count_data = tl.array(8), tl.array(9)
        tv = v.splat(args[5])
        zero, one = v.constant(0.0), v.constant(1.0)

        def fold(partials, dest, strip):
            """``dest[rows] += partials`` in float64, and ``partials = 0``."""
            wide = [part for acc in partials for part in v.to_float64(builder.load(acc))]
            for part, (r, lanes) in zip(wide, _halves(v, strip), strict=True):
                v64.store(builder.fadd(v64.load(dest, r, lanes), part), dest, r, lanes)
            for acc in partials:
                builder.store(zero, acc)

        def emit(log, general):
            def body(strip):
                mv = tl.load_rows(4, strip)
                for r, lanes in _halves(v, strip):
                    for dest in (sum_data, count_data) if log else (sum_data,):
                        v64.store(v64.constant(0.0), dest, r, lanes)
                partial = [v.accumulator(zero) for _ in strip]
                hits = [v.accumulator(zero) for _ in strip] if log else []

                def step(at, values):
                    for i, value in enumerate(values):
                        d = builder.fsub(value, mv[i])
                        e = exp_vector(v, builder.fdiv(d, tv) if general else d)
                        if log:
                            at_max = builder.fcmp_ordered("==", value, mv[i])
                            e = builder.select(at_max, zero, e)  # a NaN is added: the sum is NaN
                            counted = builder.fadd(builder.load(hits[i]), builder.select(at_max, one, zero))
                            builder.store(counted, hits[i])
                        else:
                            v.store(e, tl.data, builder.add(at, strip[i][0]), strip[i][1])
                        builder.store(builder.fadd(builder.load(partial[i]), e), partial[i])

                kc = ir.Constant(I64, KC)
                nblocks = builder.sdiv(builder.add(tl.n, ir.Constant(I64, KC - 1)), kc)
                with cgutils.for_range(builder, nblocks) as block:
                    j0 = builder.mul(block.index, kc)
                    j1 = builder.add(j0, kc)
                    tl.down(strip, step, j0, builder.select(builder.icmp_signed("<", j1, tl.n), j1, tl.n))
                    fold(partial, sum_data, strip)
                    if log:
                        fold(hits, count_data, strip)

            tl.strips(body)

        each_variant(builder, (args[7], args[6]), emit)
        return context.get_dummy_value()

    return types.void(tile, n, stride, w, m, t, general, log, sums, counts), codegen


@intrinsic
def tile_write(typingctx, tile, n, stride, w, m, coef, t, general, log):
    """The outputs, in the tile: softmax ``tile *= coef[r]`` (the tile holds the exponentials), the
    log forms ``tile = (tile - m[r])/T - coef[r]``."""
    if not arguments_fit(floats=(tile, m, coef), scalars=(t,), ints=(n, stride, w), flags=(general, log)):
        return None

    def codegen(context, builder, sig, args):
        tl = _Tile(context, builder, sig, args)
        v = tl.v
        tv = v.splat(args[6])

        def emit(log, general):
            def body(strip):
                cv = tl.load_rows(5, strip)
                mv = tl.load_rows(4, strip) if log else []

                def step(at, values):
                    for i, value in enumerate(values):
                        if log:
                            d = builder.fsub(value, mv[i])
                            value = builder.fsub(builder.fdiv(d, tv) if general else d, cv[i])
                        else:
                            value = builder.fmul(value, cv[i])
                        v.store(value, tl.data, builder.add(at, strip[i][0]), strip[i][1])

                tl.down(strip, step)

            tl.strips(body)

        each_variant(builder, (args[8], args[7]), emit)
        return context.get_dummy_value()

    return types.void(tile, n, stride, w, m, coef, t, general, log), codegen
