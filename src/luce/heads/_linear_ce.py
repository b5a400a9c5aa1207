"""Cross-entropy of a linear layer over a large vocabulary, never holding the N×V logits.

``linear_cross_entropy(X, W, target)`` is ``cross_entropy(X @ W.T + bias, target)`` computed block by
block: rows of ``X`` in blocks of ``R`` (up to 8192), vocabulary entries in chunks of ``C``, one ``R×C``
buffer of logits reused for every block (32 MiB by default). The row log-sum-exp is accumulated online
over the chunks (Milakov & Gimelshein 2018). The gradient pass recomputes each chunk's logits, forms
``G = scale·(softmax - smoothed one-hot)`` in place and multiplies it into ``dX`` and ``dW`` with BLAS
``gemm`` calls that accumulate into the outputs (``beta = 1``), so no temporary the size of ``dW`` is
ever made: forward plus backward cost four matrix products (the plain path: three) and O(R·C) memory.
When the whole vocabulary fits one chunk the exponentials of the first pass are reused (three
products).

Blocks are tall (many rows, a narrow vocabulary chunk) so that each product has two large dimensions,
which multi-threaded BLAS splits with few synchronisations; elementwise work runs on sub-blocks of a
few hundred rows that stay in cache.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import _validation as v
from .._threads import one_blas_thread

__all__ = ["linear_cross_entropy"]

# Bytes given to the reused block of logits when chunk_size is None.
BLOCK_BUDGET = 32 * 1024 * 1024
# Elementwise passes run on sub-blocks this large, so each pass over a sub-block reads the cache.
_SUB_BUDGET = 1024 * 1024
# Rows per block (at most), and the narrowest vocabulary chunk, when chunk_size is None.
_MAX_ROWS = 8192
_MIN_CHUNK = 128
_REDUCTIONS = ("mean", "sum", "none")


def _float_input(a, name):
    arr, out_dtype = v.as_float_array(a, np, name=name)
    return arr, out_dtype


def _check_args(X, W, target, bias, chunk_size, label_smoothing, ignore_index, reduction, return_grad):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return_grad = v.check_bool(return_grad, "return_grad")
    if return_grad and reduction == "none":
        raise ValueError(
            "return_grad=True needs a scalar loss: reduction must be 'mean' or 'sum', got 'none'"
        )
    eps = v.check_real(label_smoothing, "label_smoothing", low=0.0, high=1.0, what="a float in [0, 1]")
    v.check_int(ignore_index, "ignore_index", allow_none=True)
    v.check_int(chunk_size, "chunk_size", low=1, allow_none=True)

    x, x_out = _float_input(X, "X")
    w, w_out = _float_input(W, "W")
    if x.ndim < 1:
        raise ValueError(f"X must have shape (..., n_features), got a scalar of shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"W must have shape (n_classes, n_features), got shape {w.shape}")
    if w.shape[1] != x.shape[-1]:
        raise ValueError(
            f"W of shape {w.shape} must have n_features = {x.shape[-1]} columns to match X of shape "
            f"{x.shape} (axis -1)"
        )
    if w.shape[0] == 0:
        raise ValueError(f"W must have at least one row (class), got shape {w.shape}")
    outs = [x_out, w_out]
    b = None
    if bias is not None:
        b, b_out = _float_input(bias, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape (n_classes,) = ({w.shape[0]},), got shape {b.shape}")
        outs.append(b_out)

    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices, got dtype {t.dtype}")
    if t.shape != x.shape[:-1]:
        raise ValueError(
            f"target must have shape X.shape[:-1] = {x.shape[:-1]}, got shape {t.shape} "
            f"(X has shape {x.shape})"
        )
    n_classes = w.shape[0]
    t = t.reshape(-1).astype(np.int64, copy=False)
    valid = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        value = int(t[np.argmax(bad)])
        raise ValueError(
            f"target values must be class indices in [0, {n_classes}) (or ignore_index="
            f"{ignore_index!r}), got {value}"
        )

    out_dtype = np.result_type(*outs)
    dtype = np.dtype(np.float32) if out_dtype == np.float16 else out_dtype
    batch_shape = x.shape[:-1]
    x = np.ascontiguousarray(x.reshape(math.prod(batch_shape), x.shape[-1]), dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    if b is not None:
        b = np.ascontiguousarray(b, dtype=dtype)
    return x, w, b, t, valid, eps, out_dtype, dtype, batch_shape


def _plan(n_rows, n_classes, itemsize, chunk_size):
    """Rows per block and vocabulary entries per chunk for the block of logits.

    Many rows and a narrow vocabulary chunk, not the reverse: every product then has two large
    dimensions (rows × d, chunk × d, rows × chunk), which multi-threaded BLAS splits with few
    synchronisations. A block of a few rows against the whole vocabulary would make ``G @ W`` a
    product with a tiny output and an inner dimension of ``V``, which synchronises the BLAS threads
    once per panel of ``V`` and crawls when the cores are shared.
    """
    budget = BLOCK_BUDGET // itemsize  # elements
    if chunk_size is not None:
        chunk = min(int(chunk_size), n_classes)
    else:
        rows = min(max(n_rows, 1), _MAX_ROWS)
        chunk = min(n_classes, max(_MIN_CHUNK, budget // rows))
    rows = max(1, min(max(n_rows, 1), budget // chunk))
    return rows, chunk


# Below this many multiply-adds per product, the products run on one BLAS thread: small products gain
# nothing from threads, and on busy cores their per-panel synchronisation makes them 20x slower.
_SMALL_GEMM = 1 << 24


def _blas_threads(n_macs):
    """A context limiting BLAS to one thread for small products (a no-op for large ones)."""
    if n_macs >= _SMALL_GEMM:
        return contextlib.nullcontext()
    return one_blas_thread()


class _Blas:
    """gemm on C-ordered arrays, writing (or adding) into a given C-ordered output without copies.

    scipy's BLAS wrappers take Fortran-ordered arrays; a C-ordered matrix is the Fortran-ordered
    transpose, so ``C = A @ B`` is done as ``C.T = B.T @ A.T``. All products of one call use the same
    BLAS library (mixing NumPy's and SciPy's OpenBLAS thread pools halves the speed on few cores).
    """

    def __init__(self, dtype):
        from scipy.linalg import blas  # loaded on first use, never at import luce

        self.gemm = blas.dgemm if dtype == np.float64 else blas.sgemm

    def xwt(self, x, w, out):
        """out = x @ w.T for x (R, d), w (C, d), out (R, C)."""
        if x.shape[1] == 0:  # no features: BLAS refuses k = 0
            out.fill(0)
            return
        res = self.gemm(1.0, w.T, x.T, beta=0.0, c=out.T, trans_a=1, overwrite_c=1)
        if not np.shares_memory(res, out):  # pragma: no cover - defensive: the wrapper copied
            out[...] = res.T

    def gw(self, g, w, out, beta):
        """out = beta·out + g @ w for g (R, C), w (C, d), out (R, d)."""
        if out.size == 0:
            return
        res = self.gemm(1.0, w.T, g.T, beta=beta, c=out.T, overwrite_c=1)
        if not np.shares_memory(res, out):  # pragma: no cover
            out[...] = res.T

    def gtx(self, g, x, out):
        """out += g.T @ x for g (R, C), x (R, d), out (C, d)."""
        if out.size == 0:
            return
        res = self.gemm(1.0, x.T, g.T, beta=1.0, c=out.T, trans_b=1, overwrite_c=1)
        if not np.shares_memory(res, out):  # pragma: no cover
            out[...] = res.T


def _sub_rows(n_cols, itemsize):
    return max(1, _SUB_BUDGET // max(1, n_cols * itemsize))


def _chunk_stats(z, b_chunk, c0, tgt_local, zt, m, s, below):
    """One chunk of the online log-sum-exp, in place on the block of logits ``z`` (R, C).

    Adds the bias, records the target logits that fall in this chunk, and updates the running max
    ``m`` (compute dtype, always one of the logits) and the sum ``s`` (float64) of ``exp(z - m)``.
    ``below`` (float64, or None when not needed) accumulates ``Σ (z - m)`` over the ``c0`` columns seen
    so far, for label smoothing: formed from differences to the max, it keeps its accuracy at any
    magnitude of the logits, where ``Σ z`` would not.
    Leaves ``z = exp(z - m_new)``. Online log-sum-exp: Milakov & Gimelshein, "Online normalizer
    calculation for softmax", 2018.
    """
    n_rows, n_cols = z.shape
    step = _sub_rows(n_cols, z.itemsize)
    for i in range(0, n_rows, step):
        zb = z[i : i + step]
        if b_chunk is not None:
            zb += b_chunk
        if tgt_local is not None:
            local = tgt_local[i : i + step]
            hit = np.flatnonzero((local >= c0) & (local < c0 + n_cols))
            zt[i + hit] = zb[hit, local[hit] - c0]
        m_old = m[i : i + step]
        m_new = np.maximum(m_old, zb.max(axis=1))
        # Max shift (standard): every exponent <= 0. A row that is -inf so far shifts by 0 instead.
        shift = np.where(np.isfinite(m_new), m_new, 0).astype(z.dtype, copy=False)
        rescale = np.where(np.isfinite(m_old), np.exp(m_old.astype(np.float64) - shift), 0.0)
        np.subtract(zb, shift[:, None], out=zb)
        if below is not None:  # re-anchor the sum so far at the new max, add this chunk's part
            moved = np.where(np.isfinite(m_old), (m_old.astype(np.float64) - shift) * c0, 0.0)
            below[i : i + step] += moved + zb.sum(axis=1, dtype=np.float64)
        np.exp(zb, out=zb)
        # Pairwise float32 sum within the chunk, float64 across chunks.
        s[i : i + step] = s[i : i + step] * rescale + zb.sum(axis=1, dtype=z.dtype)
        m[i : i + step] = m_new


def _chunk_grad(g, recompute, b_chunk, shift, offset, factor, c0, tgt_local, hit_scale, smooth, db_chunk):
    """Turn the block into ``G = scale·(softmax - smoothed one-hot)`` in place, adding ``G.T @ 1`` to db.

    ``recompute``: ``g`` holds fresh logits ``z`` (bias not added) and becomes
    ``exp((z + b - shift) - offset)`` with ``shift`` the row max and ``offset = log s - log(scale)`` per
    row, the scaled softmax in one exponential (the max subtracted first: shift invariance).
    Otherwise ``g`` holds ``exp(z - m)`` from the log-sum-exp pass and is multiplied by
    ``factor = scale / s``. ``db_chunk`` (float64) accumulates the column sums per sub-block: a float32
    sum over at most a few hundred rows, then float64.
    """
    n_rows, n_cols = g.shape
    step = _sub_rows(n_cols, g.itemsize)
    for i in range(0, n_rows, step):
        gb = g[i : i + step]
        if recompute:
            if b_chunk is not None:
                gb += b_chunk
            np.subtract(gb, shift[i : i + step, None], out=gb)
            np.subtract(gb, offset[i : i + step, None], out=gb)
            np.exp(gb, out=gb)
        else:
            np.multiply(gb, factor[i : i + step, None], out=gb)
        if smooth is not None:
            np.subtract(gb, smooth[i : i + step, None], out=gb)
        if db_chunk is None:
            continue
        local = tgt_local[i : i + step]
        hit = np.flatnonzero((local >= c0) & (local < c0 + n_cols))
        gb[hit, local[hit] - c0] -= hit_scale[i + hit]
        db_chunk += gb.sum(axis=0)
    if db_chunk is None:
        hit = np.flatnonzero((tgt_local >= c0) & (tgt_local < c0 + n_cols))
        g[hit, tgt_local[hit] - c0] -= hit_scale[hit]


@v.own_errstate
def linear_cross_entropy(
    X,
    W,
    target,
    bias=None,
    *,
    chunk_size=None,
    label_smoothing=0.0,
    ignore_index=None,
    reduction="mean",
    return_grad=False,
):
    r"""Cross-entropy of the logits ``X @ W.T + bias`` without ever holding them all.

    .. math::
        z_{ij} = x_i \cdot w_j + b_j, \qquad
        \ell_i = \operatorname{lse}(z_i) - (1-\varepsilon)\, z_{i,t_i} - \frac{\varepsilon}{V} \sum_j z_{ij}

    with ``lse`` the log-sum-exp over the ``V`` classes, ``t_i`` the target class and ``ε`` the label
    smoothing. The logits are computed in blocks (rows × vocabulary chunks) with an online log-sum-exp,
    so memory is one block, not ``n × V``. With ``return_grad=True`` the gradients

    .. math::
        G_{ij} = \frac{\partial L}{\partial z_{ij}}
               = s_i \Big(p_{ij} - (1-\varepsilon)[j = t_i] - \frac{\varepsilon}{V}\Big), \quad
        dX = G W,\; dW = G^\top X,\; d\mathrm{bias} = G^\top \mathbf 1

    (``s_i = 1/n_valid`` for ``"mean"``, 1 for ``"sum"``) are accumulated block by block from the same
    buffer.

    Parameters
    ----------
    X : array_like, shape (..., d)
        Hidden states (``n`` rows once the leading axes are flattened).
    W : array_like, shape (V, d)
        Output embedding, one row per class (the layout of ``torch.nn.Linear.weight``).
    target : array_like of int, shape X.shape[:-1]
        Class index in ``[0, V)`` for every row, or ``ignore_index``.
    bias : array_like, shape (V,), optional
        Added to every row of logits; ``-inf`` entries exclude a class.
    chunk_size : int, optional
        Vocabulary entries per block of logits. Default: up to 8192 rows per block and as many
        vocabulary entries as fit a 32 MiB block (the whole vocabulary when it fits: then one pass
        and three matrix products instead of four). Rows per block follow from the budget.
    label_smoothing : float in [0, 1], default 0
        Mixes the one-hot target with the uniform distribution over the ``V`` classes (as
        ``torch.nn.functional.cross_entropy``).
    ignore_index : int, optional
        Rows whose target equals it contribute no loss and no gradient and are left out of the mean.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` averages over the rows that are not ignored (NaN when there are none, as torch);
        ``"none"`` returns the per-row losses (0 for ignored rows).
    return_grad : bool, default False
        Also return ``(dX, dW, dbias)``, the gradients of the reduced loss (``dbias`` is None when
        ``bias`` is None). Needs ``reduction`` ``"mean"`` or ``"sum"``.

    Returns
    -------
    loss : scalar of the result dtype, or ndarray of shape X.shape[:-1] for ``reduction="none"``
    grads : tuple ``(dX, dW, dbias)``, only when ``return_grad`` is True; shapes of X, W and bias.

    Notes
    -----
    Dtypes follow docs/conventions.md: the result dtype is that of ``X``, ``W`` and ``bias`` promoted
    (float32 stays float32, float16 is computed in float32, ints become float64). In float32 the
    matrix products run in float32 (BLAS ``sgemm``) and the log-sum-exp is accumulated in float64, so
    the loss agrees with the plain logits-then-cross-entropy computation to about 1e-6 relative.
    Extra memory is one block of logits (at most 32 MiB, or ``rows × chunk_size``) plus O(rows), and
    O(rows·d) for a compacted copy of the rows when some are ignored — independent of ``n·V``; the
    gradients are accumulated in place in ``dX``, ``dW`` and ``dbias``. The products run in SciPy's
    BLAS (``gemm`` with ``beta = 1``), multi-threaded except for small blocks.

    Examples
    --------
    >>> import numpy as np
    >>> import luce
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> W = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> float(luce.linear_cross_entropy(X, W, [0, 2]))
    0.9076059644443804
    >>> luce.linear_cross_entropy(X, W, [0, 2], reduction="none")
    array([0.40760596, 1.40760596])
    >>> loss, (dX, dW, db) = luce.linear_cross_entropy(X, W, [0, 2], return_grad=True)
    >>> dX
    array([[-0.21239481,  0.21239481],
           [-0.28760519,  0.28760519]])
    >>> dW.shape, db is None
    ((3, 2), True)

    References
    ----------
    M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", arXiv:1805.02867, 2018.
    E. Wijmans et al., "Cut your losses in large-vocabulary language models", arXiv:2411.09009, 2024.
    """
    x, w, b, t, valid, eps, out_dtype, dtype, batch_shape = _check_args(
        X, W, target, bias, chunk_size, label_smoothing, ignore_index, reduction, return_grad
    )
    n_all, d = x.shape
    n_classes = w.shape[0]
    rows_valid = np.flatnonzero(valid)
    n_valid = rows_valid.size
    all_valid = n_valid == n_all
    row_block, chunk = _plan(n_valid, n_classes, x.itemsize, chunk_size)
    chunks = [(c0, min(c0 + chunk, n_classes)) for c0 in range(0, n_classes, chunk)]
    single = len(chunks) == 1

    losses = np.zeros(n_all, dtype=np.float64)
    if return_grad:
        scale = 1.0 / n_valid if (reduction == "mean" and n_valid) else 1.0
        dx = np.zeros((n_all, d), dtype=dtype)
        dw = np.zeros((n_classes, d), dtype=dtype)
        db = np.zeros(n_classes, dtype=np.float64) if b is not None else None

    if n_valid:
        blas = _Blas(dtype)
        buffer = np.empty(row_block * chunk, dtype=dtype)
    threads = _blas_threads(row_block * chunk * d) if n_valid else contextlib.nullcontext()
    with np.errstate(all="ignore"), threads:
        for r0 in range(0, n_valid, row_block):
            r1 = min(r0 + row_block, n_valid)
            n_r = r1 - r0
            idx = rows_valid[r0:r1]
            xr = x[r0:r1] if all_valid else np.ascontiguousarray(x[idx])
            tgt = t[idx]
            m = np.full(n_r, -np.inf, dtype=dtype)
            s = np.zeros(n_r, dtype=np.float64)
            below = np.zeros(n_r, dtype=np.float64) if eps > 0 else None
            zt = np.zeros(n_r, dtype=dtype)
            for c0, c1 in chunks:
                z = buffer[: n_r * (c1 - c0)].reshape(n_r, c1 - c0)
                blas.xwt(xr, w[c0:c1], z)
                _chunk_stats(z, None if b is None else b[c0:c1], c0, tgt, zt, m, s, below)
            # lse - z = (m - z) + log s: the max is subtracted first, never m + log s formed and
            # then z subtracted (that cancels at large |z|: shift invariance).
            m64 = m.astype(np.float64)
            log_s = np.log(s)
            loss_r = log_s + (1.0 - eps) * (m64 - zt.astype(np.float64)) if eps < 1 else log_s.copy()
            if eps > 0:
                loss_r -= (eps / n_classes) * below  # eps·(m - mean z)
            special = np.isnan(m) | (m == np.inf)  # NaN and +inf rows: the loss is the max itself
            loss_r[special] = m64[special]
            losses[idx] = loss_r
            if not return_grad:
                continue
            factor = (scale / s).astype(dtype)
            shift = np.where(np.isfinite(m), m, 0).astype(dtype)
            # exp((z - m) - offset) = scale·softmax: the scale folded into the exponent.
            offset = (log_s - math.log(scale)).astype(dtype)
            hit_scale = np.full(n_r, (1.0 - eps) * scale, dtype=dtype)
            smooth = np.full(n_r, eps * scale / n_classes, dtype=dtype) if eps > 0 else None
            dxr = dx[r0:r1] if all_valid else np.zeros((n_r, d), dtype=dtype)
            for k, (c0, c1) in enumerate(chunks):
                g = buffer[: n_r * (c1 - c0)].reshape(n_r, c1 - c0)
                if not single:  # recompute the logits of this chunk
                    blas.xwt(xr, w[c0:c1], g)
                bc = None if b is None else b[c0:c1]
                _chunk_grad(
                    g, not single, bc, shift, offset, factor, c0, tgt, hit_scale, smooth,
                    None if db is None else db[c0:c1],
                )  # fmt: skip
                blas.gw(g, w[c0:c1], dxr, beta=0.0 if k == 0 else 1.0)
                blas.gtx(g, xr, dw[c0:c1])
            if not all_valid:
                dx[idx] = dxr

    if reduction == "none":
        losses[~valid] = 0.0
        loss = losses.astype(out_dtype).reshape(batch_shape)
    else:
        total = math.fsum(losses[valid]) if n_valid <= 1 << 16 else float(losses[valid].sum())
        if reduction == "mean":
            total = total / n_valid if n_valid else math.nan
        loss = out_dtype.type(total)
    if not return_grad:
        return loss
    grads = (
        dx.reshape((*batch_shape, d)).astype(out_dtype, copy=False),
        dw.astype(out_dtype, copy=False),
        None if db is None else db.astype(out_dtype),
    )
    return loss, grads
