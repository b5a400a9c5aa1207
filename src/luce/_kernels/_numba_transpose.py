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
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["block_lanes", "transpose_block"]

_VECTOR_BYTES = 64


def _splat(builder, value, width):
    vec = ir.VectorType(value.type, width)
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width))


def _masked(builder, name, fnty, args):
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)


@intrinsic
def block_lanes(typingctx, arr):
    """``L``, the block side for ``arr``'s dtype: elements per 512-bit vector (16 float32, 8 float64)."""
    if not (isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)):
        return None
    lanes = _VECTOR_BYTES // (4 if arr.dtype == types.float32 else 8)

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
    is32 = src.dtype == types.float32
    width = _VECTOR_BYTES // (4 if is32 else 8)
    suffix = f"v{width}{'f32' if is32 else 'f64'}.p0"

    def codegen(context, builder, signature, args):
        a_src, i_soff, i_sstr, a_dst, i_doff, i_dstr, i_rows, i_cols = args
        sig = signature.args
        i64, i32 = ir.IntType(64), ir.IntType(32)
        soff, sstr, doff, dstr, rows, cols = (
            context.cast(builder, v, t, types.int64)
            for v, t in zip(
                (i_soff, i_sstr, i_doff, i_dstr, i_rows, i_cols),
                (sig[1], sig[2], sig[4], sig[5], sig[6], sig[7]),
                strict=True,
            )
        )
        src_data = context.make_array(sig[0])(context, builder, a_src).data
        dst_data = context.make_array(sig[3])(context, builder, a_dst).data
        elem = ir.FloatType() if is32 else ir.DoubleType()
        vec = ir.VectorType(elem, width)
        mask_ty = ir.VectorType(ir.IntType(1), width)
        align = ir.Constant(i32, 4 if is32 else 8)
        lane_ids = ir.Constant(ir.VectorType(i64, width), list(range(width)))
        col_ok = builder.icmp_signed("<", lane_ids, _splat(builder, cols, width))
        row_ok = builder.icmp_signed("<", lane_ids, _splat(builder, rows, width))
        zero_mask = ir.Constant(mask_ty, [0] * width)
        load_ty = ir.FunctionType(vec, [src_data.type, i32, mask_ty, vec])
        store_ty = ir.FunctionType(ir.VoidType(), [vec, dst_data.type, i32, mask_ty])

        block = []
        for r in range(width):
            inside = builder.icmp_signed("<", ir.Constant(i64, r), rows)
            mask = builder.select(inside, col_ok, zero_mask)
            ptr = builder.gep(src_data, [builder.add(soff, builder.mul(ir.Constant(i64, r), sstr))])
            args = [ptr, align, mask, ir.Constant(vec, None)]
            block.append(_masked(builder, f"llvm.masked.load.{suffix}", load_ty, args))
        h = 1
        while h < width:
            low = [lane if lane & h == 0 else width + lane - h for lane in range(width)]
            high = [lane + h if lane & h == 0 else width + lane for lane in range(width)]
            for i in range(width):
                if i & h == 0:
                    a, b = block[i], block[i + h]
                    block[i] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, width), low))
                    block[i + h] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, width), high))
            h *= 2
        for c in range(width):
            inside = builder.icmp_signed("<", ir.Constant(i64, c), cols)
            mask = builder.select(inside, row_ok, zero_mask)
            ptr = builder.gep(dst_data, [builder.add(doff, builder.mul(ir.Constant(i64, c), dstr))])
            _masked(builder, f"llvm.masked.store.{suffix}", store_ty, [block[c], ptr, align, mask])
        return context.get_dummy_value()

    return types.void(src, src_off, src_stride, dst, dst_off, dst_stride, nrows, ncols), codegen
