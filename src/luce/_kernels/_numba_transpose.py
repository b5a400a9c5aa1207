"""Transpose a small block between two 1-D arrays in registers: LLVM intrinsics for the Numba kernels.

The short-row softmax transposes tiles of rows so that SIMD runs across rows. Written as loops, the
strided side of a transpose becomes gather (or scatter) instructions, about one element per cycle;
here a block of ``L × L`` elements (``L`` = 16 float32 or 8 float64: one 512-bit vector per row) is
loaded as ``L`` vectors, transposed by ``log2 L`` rounds of two-source shuffles (at round ``h`` rows
``i`` and ``i + h`` swap the lanes whose bit ``h`` differs from the row's: after all rounds element
``(r, c)`` sits at ``(c, r)``), and stored as ``L`` vectors. Partial blocks use masked loads and stores,
which touch no memory outside the mask, so a block may end anywhere. :func:`transpose_narrow` does
the same for blocks with a contiguous side of at most ``L/2`` elements, as whole vectors.

Imported by :mod:`luce._kernels._numba_softmax`, whose on-disk cache is keyed to its own file: touch
it after editing this one.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba_simd import I32, VECTOR_BYTES, Vectors, arguments_fit, int_arg, pointer_arg

__all__ = ["block_lanes", "transpose_block", "transpose_narrow"]


@intrinsic
def block_lanes(typingctx, arr):
    """``L``, the block side for ``arr``'s dtype: elements per 512-bit vector (16 float32, 8 float64)."""
    if not (isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)):
        return None
    lanes = VECTOR_BYTES // (4 if arr.dtype == types.float32 else 8)

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), lanes)

    return types.int64(arr), codegen


@intrinsic
def transpose_block(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride, nrows, ncols):
    """``dst[dst_off + c*dst_stride + r] = src[src_off + r*src_stride + c]`` for ``r < nrows``,
    ``c < ncols`` (both at most ``L``, see :func:`block_lanes`); nothing else is read or written.

    ``src`` and ``dst``: 1-D contiguous arrays of the same float dtype; offsets, strides and counts
    are integers (elements).
    """
    if not arguments_fit(floats=(src, dst), ints=(src_off, src_stride, dst_off, dst_stride, nrows, ncols)):
        return None

    def codegen(context, builder, signature, args):
        v = Vectors(builder, signature.args[0].dtype)
        width = v.width
        src_base = pointer_arg(context, builder, signature, args, 0)
        dst_base = pointer_arg(context, builder, signature, args, 3)
        sstr, dstr, rows, cols = (int_arg(context, builder, signature, args, i) for i in (2, 5, 6, 7))
        col_ok, row_ok = v.lanes_below(cols), v.lanes_below(rows)
        no_lanes = ir.Constant(col_ok.type, [0] * width)

        block = []
        for r in range(width):
            inside = builder.icmp_signed("<", ir.Constant(sstr.type, r), rows)
            at = builder.mul(ir.Constant(sstr.type, r), sstr)
            block.append(v.load(src_base, at, builder.select(inside, col_ok, no_lanes)))
        h = 1
        while h < width:
            low = [lane if lane & h == 0 else width + lane - h for lane in range(width)]
            high = [lane + h if lane & h == 0 else width + lane for lane in range(width)]
            for i in range(width):
                if i & h == 0:
                    a, b = block[i], block[i + h]
                    block[i] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(I32, width), low))
                    block[i + h] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(I32, width), high))
            h *= 2
        for c in range(width):
            inside = builder.icmp_signed("<", ir.Constant(dstr.type, c), cols)
            at = builder.mul(ir.Constant(dstr.type, c), dstr)
            v.store(block[c], dst_base, at, builder.select(inside, row_ok, no_lanes))
        return context.get_dummy_value()

    return types.void(src, src_off, src_stride, dst, dst_off, dst_stride, nrows, ncols), codegen


@intrinsic
def transpose_narrow(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride, nrows, ncols):
    """:func:`transpose_block` for a block with a narrow contiguous side, which it moves as whole
    vectors: either the source rows are contiguous (``src_stride == ncols <= L/2``) or the
    destination is (``dst_stride == nrows <= L/2``). Other blocks are the caller's error: nothing
    is moved.

    For rows of a few elements the masked row loads and column stores of :func:`transpose_block`
    touch a few bytes each, and most of their 64-byte windows straddle a cache line: rows of 2
    elements ran 4× slower through it. The whole vectors are regrouped by two-source shuffles (``L/2`` at
    most per vector). Kept apart from :func:`transpose_block`: one intrinsic with both made the
    16-wide tiles 15% slower.
    """
    if not arguments_fit(floats=(src, dst), ints=(src_off, src_stride, dst_off, dst_stride, nrows, ncols)):
        return None

    def codegen(context, builder, signature, args):
        v = Vectors(builder, signature.args[0].dtype)
        src_base = pointer_arg(context, builder, signature, args, 0)
        dst_base = pointer_arg(context, builder, signature, args, 3)
        sstr, dstr, rows, cols = (int_arg(context, builder, signature, args, i) for i in (2, 5, 6, 7))
        narrow = v.width // 2

        def each_width(count, emit):
            for k in range(1, narrow + 1):
                with builder.if_then(builder.icmp_signed("==", count, ir.Constant(count.type, k))):
                    emit(k)

        with builder.if_else(builder.icmp_signed("==", sstr, cols)) as (contiguous_src, contiguous_dst):
            with contiguous_src:
                each_width(cols, lambda k: _from_contiguous(v, src_base, dst_base, dstr, rows, k))
            with contiguous_dst:
                each_width(rows, lambda k: _to_contiguous(v, src_base, sstr, dst_base, cols, k))
        return context.get_dummy_value()

    return types.void(src, src_off, src_stride, dst, dst_off, dst_stride, nrows, ncols), codegen


def _pick(v, sources, picks):
    """The vector whose lane ``i`` is lane ``picks[i][1]`` of ``sources[picks[i][0]]``: one two-source
    shuffle per source it draws on."""
    b, width = v.builder, v.width
    out = None
    for s in sorted({p[0] for p in picks}):
        lanes = {i for i, p in enumerate(picks) if p[0] == s}
        if out is None:
            mask = [picks[i][1] if i in lanes else 0 for i in range(width)]
            out = b.shuffle_vector(sources[s], sources[s], ir.Constant(ir.VectorType(I32, width), mask))
        else:
            mask = [width + picks[i][1] if i in lanes else i for i in range(width)]
            out = b.shuffle_vector(out, sources[s], ir.Constant(ir.VectorType(I32, width), mask))
    return out


def _from_contiguous(v, src, dst, dstr, rows, ncols):
    """A block whose source rows are contiguous (``src_stride == ncols``, ``ncols <= L/2``): its
    ``rows*ncols`` elements are ``ncols`` whole vectors (the last masked), regrouped by shuffles."""
    b, width = v.builder, v.width
    total = b.mul(rows, ir.Constant(rows.type, ncols))
    flat = []
    for k in range(ncols):
        start = ir.Constant(rows.type, k * width)
        flat.append(v.load(src, start, v.lanes_below(b.sub(total, start))))
    row_ok = v.lanes_below(rows)
    for c in range(ncols):
        picks = [divmod(r * ncols + c, width) for r in range(width)]
        v.store(_pick(v, flat, picks), dst, b.mul(ir.Constant(dstr.type, c), dstr), row_ok)


def _to_contiguous(v, src, sstr, dst, ncols, nrows):
    """A block whose destination is contiguous (``dst_stride == nrows``, ``nrows <= L/2``): ``nrows``
    row loads, regrouped by shuffles into ``nrows`` whole vectors (the last masked)."""
    b, width = v.builder, v.width
    col_ok = v.lanes_below(ncols)
    block = [v.load(src, b.mul(ir.Constant(sstr.type, r), sstr), col_ok) for r in range(nrows)]
    total = b.mul(ncols, ir.Constant(ncols.type, nrows))
    for k in range(nrows):
        picks = [((k * width + i) % nrows, (k * width + i) // nrows) for i in range(width)]
        start = ir.Constant(ncols.type, k * width)
        v.store(_pick(v, block, picks), dst, start, v.lanes_below(b.sub(total, start)))
