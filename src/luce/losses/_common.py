"""Argument handling shared by the multi-class losses: the class axis, the two kinds of target, the
reductions, and the final reshaping (torch.nn.functional.cross_entropy's conventions)."""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validation as v
from ..functional._rowwise import Rows, to_numpy

__all__ = ["LossInput", "check_reduction", "finish_loss"]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _class_axis(axis, shape) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int (the class axis), got {axis!r}")
    return v.normalize_axes(int(axis), shape, name="logits")[0]


class LossInput:
    """Validated logits and target, laid out as rows ``(n_samples, n_classes)``.

    Attributes: ``xp`` (the caller's array namespace), ``rows`` (float32/float64 logits),
    ``out_dtype``, ``layout`` (:class:`Rows`), ``n_classes``, ``index`` (int64 class indices or None),
    ``probs`` (float64 target rows or None), ``active`` (bool per row: not ``ignore_index``).
    """

    def __init__(self, logits, target, axis, ignore_index=None, extra=()):
        self.xp = v.array_namespace(logits, target, *extra)
        logits, target, *self.extra = to_numpy(self.xp, logits, target, *extra)
        z, self.out_dtype = v.as_float_array(logits, np, name="logits")
        if z.ndim == 0:
            raise ValueError("logits must have a class axis, got a scalar")
        ax = _class_axis(axis, z.shape)
        self.n_classes = z.shape[ax]
        if self.n_classes == 0:
            raise ValueError(f"logits of shape {z.shape} has no classes along axis {axis}")
        self.layout = Rows(z, (ax,))
        self.rows = self.layout.rows
        batch_shape = self.layout.batch_shape
        tgt = np.asarray(target)
        self.index = self.probs = None
        kind = tgt.dtype.kind
        if kind in "iu":
            if tgt.shape != batch_shape:
                raise ValueError(
                    f"target of class indices must have shape {batch_shape} (logits {z.shape} without "
                    f"axis {axis}), got {tgt.shape}"
                )
            y = tgt.reshape(-1).astype(np.int64)
            self.active = np.ones(y.shape, dtype=bool)
            if ignore_index is not None:
                if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
                    raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
                self.active = y != int(ignore_index)
            bad = self.active & ((y < 0) | (y >= self.n_classes))
            if bad.any():
                raise ValueError(
                    f"target holds class index {int(y[bad][0])}, outside [0, {self.n_classes}) "
                    f"for logits of shape {z.shape} along axis {axis}"
                )
            self.index = np.where(self.active, y, 0)
        elif kind == "f":
            if tgt.shape != z.shape:
                raise ValueError(
                    f"target of class probabilities must have the shape of logits {z.shape}, got "
                    f"{tgt.shape} (class indices must be an integer array of shape {batch_shape})"
                )
            if ignore_index is not None:
                raise ValueError("ignore_index applies to class-index targets only, got probabilities")
            self.probs = self.layout.take(tgt.astype(np.float64))
            self.active = np.ones(self.rows.shape[0], dtype=bool)
        else:
            raise TypeError(
                f"target must be class indices (integers) or class probabilities (floats), got dtype "
                f"{tgt.dtype}"
            )


def finish_loss(inp: LossInput, loss_rows, grad_rows, reduction, denominator, grad_scaled=False):
    """Reduce per-row losses and scale the gradient rows to match; back to the caller's layout/type.

    ``denominator`` is used by ``"mean"``; a zero denominator gives a NaN loss (as torch) and a zero
    gradient (every row was ignored). ``grad_scaled`` says the gradient already carries the factor.
    """
    xp, dt = inp.xp, inp.out_dtype
    # Rounding a float64 total to float32/float16 may overflow to inf: that is the correctly rounded value.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if reduction == "none":
            loss = loss_rows.reshape(inp.layout.batch_shape).astype(dt)
            scale = 1.0
        elif reduction == "sum":
            loss = dt.type(loss_rows.sum())
            scale = 1.0
        else:
            total = loss_rows.sum()
            loss = dt.type(total / denominator if denominator != 0 else np.nan)
            scale = 1.0 / denominator if denominator != 0 else 0.0
    if xp is not np:
        loss = xp.asarray(np.asarray(loss))
    if grad_rows is None:
        return loss
    if scale != 1.0 and not grad_scaled:
        grad_rows *= grad_rows.dtype.type(scale)
    grad = inp.layout.back(grad_rows).astype(dt, copy=False)
    if xp is not np:
        grad = xp.asarray(np.ascontiguousarray(grad))
    return loss, grad
