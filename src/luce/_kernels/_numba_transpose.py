"""Transpose a small block between two 1-D arrays in registers: one LLVM intrinsic for the Numba kernels.

The short-row softmax transposes tiles of rows so that SIMD runs across rows. Written as loops, the
strided side of a transpose becomes gather (or scatter) instructions, about one element per cycle;
here a block of ``L × L`` elements (``L`` = 16 float32 or 8 float64: one 512-bit vector per row) is
loaded as ``L`` vectors, transposed by ``log2 L`` rounds of two-source shuffles (at round ``h`` rows
``i`` and ``i + h`` swap the lanes whose bit ``h`` differs from the row's: after all rounds element
``(r, c)`` sits at ``(c, r)``), and stored as ``L`` vectors. Partial blocks use masked loads and stores,
which touch no memory outside the mask, so a block may end anywhere.

Imported by :mod:`luce._kernels._numba_softmax`, whose on-disk cache is keyed to its own file: touch
it after editing this one.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._numba_simd import I32, VECTOR_BYTES, Vectors, int_arg, pointer_arg

__all__ = ["block_lanes", "transpose_block"]


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
    arrays = (src, dst)
    if not all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays):
        return None
    if src.dtype != dst.dtype or src.dtype not in (types.float32, types.float64):
        return None
    ints = (src_off, src_stride, dst_off, dst_stride, nrows, ncols)
    if not all(isinstance(i, types.Integer) for i in ints):
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
