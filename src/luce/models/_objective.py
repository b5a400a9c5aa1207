r"""The linear-model objective: a shared linear part and a per-row head, evaluated by one block engine.

.. math::
    f(W, b) = \frac{1}{\sum_i w_i} \sum_i w_i \, \ell\big(W x_i + b,\, t_i\big)
              + \frac{\lambda}{2} \lVert W \rVert_F^2

with ``W = coef (n_classes, n_features)``, ``b = intercept (n_classes,)`` (never penalised), ``w_i`` the
sample weights (class weights already multiplied in), ``λ = reg_strength``, ``t_i`` the target of row
``i`` and ``ℓ`` the *head*: the per-row loss of the logits ``z_i = W x_i + b``. This module's head is
softmax regression's, the cross-entropy ``ℓ(z, y) = CE(softmax(z), q)`` against the one-hot vector of
``y`` (or ``(1 - ε)·onehot + ε/K`` with label smoothing ``ε``); :mod:`luce.models._sigmoid` supplies the
sigmoid head. One weight vector per class (the symmetric parameterisation scikit-learn uses).
scikit-learn's ``LogisticRegression(C)`` minimises the same function with ``C = 1 / (λ · Σ w_i)`` for
three or more classes; for two classes its single vector ``w`` is ``W[1] - W[0]`` and
``C = 2 / (λ · Σ w_i)``.

The split follows scikit-learn's ``LinearModelLoss(base_loss, fit_intercept)``: the linear part
(:class:`LinearObjective`: row blocks, sample weights, penalty, intercept, the flat parameter vector,
the reductions) is written once; a head knows only its logits. A head has two methods, both working in
place on a ``(rows, n_classes)`` block of logits ``Z``:

* ``loss_gradient(Z, t, w, gradient, mask)`` returns ``(Σ w_i ℓ_i, G)`` with ``G = w_i ∂ℓ_i/∂z_i``
  (written over ``Z``; ``None`` when ``gradient`` is False), the loss accumulated in float64;
* ``hessian_product(Z, U, t, w)`` returns ``w_i ∇²ℓ_i · u_i`` (written over ``U``), ``U`` the block's
  directional logits ``V x_i + v``.

The engine
----------
One evaluation reads ``X`` once. ``X`` is cut once, at construction, into row blocks of about
``_BLOCK_BYTES`` (a dense block is re-read from cache by the gradient product; a CSR block is a view
of ``X``'s arrays, never a copy). A dense block of the softmax head (rows contiguous, no dropout
mask) runs one fused compiled pass (``csrc/linear_dense.h``, through ``SoftmaxHead.dense_sums`` /
``dense_hessp``): per tile of 8 rows the logits from a register-blocked product with ``Wᵀ``, the head
on the tile (max, log-sum-exp, loss and ``w (p - q)``), and per panel of 32 rows the gradient
product, so ``X`` is read from memory once. Otherwise, per dense block: the logits (one BLAS GEMM,
``X_b @ Wᵀ``; for the Hessian product ``X_b @ [W; V]ᵀ`` gives both logits at once), the head on the
logits (the softmax head: one compiled pass per row, ``csrc/linear.h``), and the gradient product
``Gᵀ X_b`` while ``X_b`` is still in cache. A CSR block of the softmax head runs one
compiled row loop (``csrc/linear.h``): each row's logits from the rows of ``Wᵀ`` its nonzeros select
(``Wᵀ`` stored ``n_features × K``, a feature's K weights contiguous), the head while the K logits
are in cache, and the scatter-add of ``x_ij (p_i - q_i)`` into the block's ``n_features × K``
gradient; the finished gradient is transposed once per evaluation (tiled). Other heads, and the
``"reference"`` backend, use SciPy's CSR×dense product for the logits and ``X_bᵀ @ G`` (a CSC×dense
product on the same arrays, no copy) for the gradient. Hessian products at one point (Newton-CG's
inner loop) keep each block's curvature state (the probabilities) after the first, so the later
ones skip the logits of ``W`` and the softmax.

Blocks run on a thread pool (NumPy's GEMMs and ufuncs and the compiled kernels release the GIL), with
BLAS and the compiled kernels limited to one thread inside the workers
(:func:`luce._kernels._dispatch.serial_kernels`). SciPy's sparse products hold the GIL, so CSR data on
the reference path runs on one thread unless ``n_threads`` asks for more. The block partition does
not depend on the number of threads, and the blocks' partial sums are added in block order, so every
result is bitwise the same for any number of threads. ``n_threads`` (default: the current BLAS
thread limit, so ``threadpoolctl.threadpool_limits`` governs the engine too) sets the pool's width.

Mini-batch SGD on CSR data (:class:`LazySparseSGD`) moves only the columns a batch touches, with the
weight decay kept as a scalar factor: O(batch nonzeros × K) per plain step.

Block contract (what a distributed evaluator reuses)
----------------------------------------------------
The data enter only through sums over rows, so the objective is a reduction over row blocks:

* :func:`block_loss_gradient` ``(X_block, y_block, sample_weight_block, coef, intercept)`` returns
  ``(loss_sum, grad_coef_sum, grad_intercept_sum)``:
  ``Σ w_i CE_i`` as a Python float, ``Σ w_i (p_i - q_i) x_iᵀ`` of shape ``(n_classes, n_features)`` and
  ``Σ w_i (p_i - q_i)`` of shape ``(n_classes,)`` (``None`` when ``intercept`` is ``None``).
* :func:`block_hessp` ``(X_block, sample_weight_block, coef, intercept, vec_coef, vec_intercept)``
  returns the same two sums for the Hessian-vector product of the data term,
  ``Σ w_i [diag(p_i) - p_i p_iᵀ] (V x_i + v) x_iᵀ`` and ``Σ w_i [diag(p_i) - p_i p_iᵀ] (V x_i + v)``.
* :func:`block_gram` ``(X_block, sample_weight_block, fit_intercept)`` returns ``Σ w_i x̃_i x̃_iᵀ``
  (``x̃ = [x, 1]`` with an intercept), used to precondition the solvers.

``X_block`` is a dense array or a SciPy CSR matrix (never densified), ``y_block`` holds class indices
in ``[0, n_classes)``, ``sample_weight_block`` is an array or ``None`` (every weight 1). Every sum is
in the dtype of ``X_block`` except ``loss_sum`` (accumulated in float64). The full objective is::

    f    = sum(loss_sum over blocks) / sw_sum + reg_strength / 2 * ||coef||²
    ∇W f = sum(grad_coef_sum) / sw_sum + reg_strength * coef,   ∇b f = sum(grad_intercept_sum) / sw_sum
    H·V  = sum(hv_coef_sum) / sw_sum + reg_strength * V,        (H·v)_b = sum(hv_intercept_sum) / sw_sum

with ``sw_sum = Σ w_i`` over all rows.
"""

from __future__ import annotations

import collections
import contextvars
import math
import os
import threading

import numpy as np
import scipy.sparse as sp

from .._kernels import _dispatch
from .._threads import blas_threads, one_blas_thread
from ..functional import log_softmax
from ._validation import scaled_sample_weight

__all__ = [
    "LazyMomentumSGD",
    "LazySparseSGD",
    "LinearObjective",
    "Objective",
    "ParameterVector",
    "SoftmaxHead",
    "block_gram",
    "block_hessp",
    "block_loss_gradient",
    "unpack_params",
]

# A dense row block of about this many bytes of X: large enough that the per-block Python and kernel
# overheads are small, small enough that G^T X_b re-reads X_b from cache (this machine's 2 MiB L2 and
# large L3). Measured on 200k x 100, 20 classes, 2 threads (one run, load 4-6): 1310 rows 111-162 ms,
# 4096 rows 84-105 ms per float64 evaluation; 8192 rows slower again.
_BLOCK_BYTES = 1 << 22
# ... and its logits (rows x n_classes) stay below this many elements.
_BLOCK_ELEMENTS = 1 << 17
# A CSR block holds at least this many times n_features nonzeros, so adding its dense
# (n_classes x n_features) partial gradient costs at most 1/16 of the block's own products.
_SPARSE_NNZ_PER_FEATURE = 16
# Subnormal guard: log-probabilities are clamped at log(smallest normal) + 1 before exp, so that no
# probability is subnormal. Subnormal operands make the BLAS products with X about 20x slower (measured
# with OpenBLAS, float32); the clamp moves each probability by at most e·1.2e-38 (float32) or
# e·2.2e-308 (float64).
_LOG_TINY = {np.dtype(t): float(np.log(np.finfo(t).tiny)) + 1.0 for t in (np.float32, np.float64)}


# -- threads -----------------------------------------------------------------------------------------

_pools: dict[int, object] = {}
_pools_lock = threading.Lock()


def _forget_pools():
    # A forked child has none of the parent's worker threads: it starts its own pools.
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools)


def _pool(n_threads):
    """A process-wide pool of ``n_threads`` workers (one per width, made on first use)."""
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(n_threads, thread_name_prefix="luce-block")
            _pools[n_threads] = pool
    return pool


def _add_into(total, part):
    """``total += part`` for tuples of a float and arrays (None entries stay None)."""
    if total is None:
        # Copies: a hook may return arrays it keeps.
        return [None if p is None else float(p) if np.ndim(p) == 0 else np.array(p, copy=True) for p in part]
    for i, p in enumerate(part):
        if p is not None:
            total[i] += p
    return total


def reduce_blocks(task, blocks, n_threads):
    """``Σ task(block)`` over ``blocks`` (each result a tuple of floats, arrays or None; or None for a
    task that only works in place), added in block order whatever ``n_threads`` is: bitwise the same
    result for any number of threads.

    The blocks run on a pool of ``n_threads`` workers (one worker runs them in order) with BLAS and the
    compiled kernels limited to one thread (:func:`luce._kernels._dispatch.serial_kernels`); at most
    ``2·n_threads`` results wait to be added, so memory stays ``O(n_threads)`` partial sums.
    """
    pool = _pool(max(1, n_threads))
    errstate = np.geterr()  # NumPy's error state is per thread: the workers take the caller's

    def run(block):
        with np.errstate(**errstate), _dispatch.serial_kernels():
            return task(block)

    def submit(block):
        # Each block runs in a copy of the caller's context, so the backend chosen with use_backend
        # (a context variable) holds in the workers too.
        return pool.submit(contextvars.copy_context().run, run, block)

    total = None
    with one_blas_thread():
        queue = collections.deque()
        it = iter(blocks)
        for b in it:
            queue.append(submit(b))
            if len(queue) >= 2 * n_threads:
                break
        while queue:
            part = queue.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                queue.append(submit(nxt))
            if part is not None:
                total = _add_into(total, part)
    return total


# -- the linear part of a block ------------------------------------------------------------------------


def _logits(X, coef_t, intercept, out=None):
    """``X @ coef_t + intercept`` of shape ``(rows, k)``; ``coef_t (n_features, k)`` C-contiguous."""
    if sp.issparse(X):
        z = np.asarray(X @ coef_t)
    else:
        z = np.matmul(X, coef_t, out=out)
    if intercept is not None:
        z += intercept
    return z


def _compressed_view(kind, data, indices, indptr, shape):
    """A CSR/CSC matrix on the given arrays, without copying them. (SciPy's constructors copy index and
    data arrays that are views of less than half of their base, as every row block of ``X`` is.)"""
    out = kind(shape, dtype=data.dtype)
    out.data, out.indices, out.indptr = data, indices, indptr
    return out


def _times_x(G, X):
    """``Gᵀ @ X`` of shape ``(k, n_features)`` for ``G (rows, k)`` and dense or CSR ``X``."""
    if sp.issparse(X):
        # Xᵀ as CSC on X's own arrays (the free transpose of CSR) times dense: no copy of X.
        XT = _compressed_view(sp.csc_matrix, X.data, X.indices, X.indptr, X.shape[::-1])
        return np.asarray(XT @ G).T
    return G.T @ X


class SoftmaxHead:
    r"""Softmax regression's per-row loss: ``CE(softmax(z), q)`` with ``q`` the (smoothed) one-hot target.

    Gradient ``∂ℓ/∂z = p - q``; Hessian ``diag(p) - p pᵀ`` (label smoothing does not change it: the
    targets sum to one). The softmax is luce's :func:`~luce.functional.log_softmax` kernel.

    Parameters
    ----------
    label_smoothing : float in [0, 1), default 0

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._objective import SoftmaxHead
    >>> Z = np.zeros((1, 2)); loss, G = SoftmaxHead().loss_gradient(Z, np.array([0]), None, True)
    >>> round(loss, 6), G   # log 2, p - q = (1/2 - 1, 1/2)
    (0.693147, array([[-0.5,  0.5]]))
    """

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = float(label_smoothing)

    @staticmethod
    def _probabilities(Z):
        """``Z <- softmax(Z)`` row-wise, no probability subnormal (see ``_LOG_TINY``)."""
        np.maximum(Z, _LOG_TINY[Z.dtype], out=Z)
        np.exp(Z, out=Z)

    def loss_gradient(self, Z, y, sw, gradient, mask=None):
        """``(Σ w_i CE_i, G)`` of a logit block ``Z (rows, K)``, overwritten with ``G = w (p - q)``.

        ``mask (rows, K)`` multiplies the logits before the softmax (logit dropout) and the gradient
        after it (the chain rule through the mask).
        """
        if mask is None:
            kernel = _row_kernel("linear_dense_softmax", Z)
            if kernel is not None:
                mode = _linear_mode("RESIDUAL" if gradient else "LOSS")
                loss = kernel(Z, None, _index(y), _weights(sw, Z.dtype), self.label_smoothing, mode, None)
                return loss, (Z if gradient else None)
        rows, k = Z.shape
        if mask is not None:
            Z *= mask
        log_softmax(Z, axis=-1, out=Z)
        flat = Z.reshape(-1)
        at_target = np.arange(rows) * k + y
        per_row = -flat[at_target].astype(np.float64)
        eps = self.label_smoothing
        if eps:
            per_row *= 1.0 - eps
            per_row -= (eps / k) * Z.sum(axis=1, dtype=np.float64)
        loss = float(per_row.sum() if sw is None else per_row @ sw.astype(np.float64, copy=False))
        if not gradient:
            return loss, None
        self._probabilities(Z)
        if eps:
            Z -= Z.dtype.type(eps / k)
            flat[at_target] -= Z.dtype.type(1.0 - eps)
        else:
            flat[at_target] -= 1
        if sw is not None:
            Z *= sw[:, None]
        if mask is not None:
            Z *= mask
        return loss, Z

    def curvature(self, Z, y):
        """The state the Hessian products at these logits need: the probabilities ``p (rows, K)``."""
        kernel = _row_kernel("linear_dense_softmax", Z)
        if kernel is not None:
            kernel(Z, None, None, None, 0.0, _linear_mode("PROBABILITIES"), None)
            return Z
        log_softmax(Z, axis=-1, out=Z)
        self._probabilities(Z)
        return Z

    def curvature_product(self, P, U, y, sw):
        """``w_i (diag p_i - p_i p_iᵀ) u_i`` written over ``U (rows, K)``."""
        kernel = _row_kernel("linear_dense_curvature_product", U)
        if kernel is not None and P.flags.c_contiguous and P.dtype == U.dtype:
            kernel(P, U, None, _weights(sw, U.dtype), None)
            return U
        pu = np.einsum("ij,ij->i", P, U)
        U -= pu[:, None]
        U *= P
        if sw is not None:
            U *= sw[:, None]
        return U

    def hessian_product(self, Z, U, y, sw):
        """``w_i (diag p_i - p_i p_iᵀ) u_i`` written over ``U (rows, K)``; overwrites the logits ``Z``."""
        P = self.curvature(Z, y)
        return self.curvature_product(np.ascontiguousarray(P), U, y, sw)

    # -- the compiled passes: a CSR row loop (csrc/linear.h), a fused dense tile loop (linear_dense.h) -----
    def csr_sums(self, X, y, sw, coef_t, intercept, gradient):
        """``(Σ w_i CE_i, Σ w_i (p_i - q_i) x_iᵀ, Σ w_i (p_i - q_i))`` of a CSR block by the compiled
        row loop (logits, head and gradient scatter per row), or None when the reference must run."""
        kernel = _csr_kernel("linear_csr_softmax", X, coef_t)
        if kernel is None:
            return None
        block = (X.data, X.indices, _indptr(X), coef_t.shape[1])
        return _compiled_sums(kernel, block, coef_t, True, y, sw, intercept, gradient, self.label_smoothing)

    def dense_sums(self, X, y, sw, coef_t, intercept, gradient):
        """The same sums of a dense block in one pass over it by the fused kernel (logits, head and
        gradient per register tile), or None when the BLAS path must run."""
        kernel = _dense_kernel("linear_dense_sums", X, coef_t, coef_t.shape[1])
        if kernel is None:
            return None
        return _compiled_sums(kernel, (X,), coef_t, False, y, sw, intercept, gradient, self.label_smoothing)

    def csr_hessp(self, X, sw, WVt, intercept, vec_intercept, state=None, make_state=True):
        """The Hessian-vector sums ``(Σ r_i x_iᵀ, Σ r_i)`` of a CSR block by the compiled kernel, or None.

        ``make_state``: ``WVt = [W; V]ᵀ`` (n_features × 2K), the probabilities are computed (into
        ``state (rows, K)`` when given); otherwise ``WVt = Vᵀ`` and ``state`` holds them (Newton-CG's
        later products at the same point).
        """
        kernel = _csr_kernel("linear_csr_softmax_hessp", X, WVt)
        if kernel is None:
            return None
        block = (X.data, X.indices, _indptr(X), X.shape[0])
        return _compiled_hessp(kernel, block, WVt, True, sw, intercept, vec_intercept, state, make_state)

    def dense_hessp(self, X, sw, WVt, intercept, vec_intercept, state=None, make_state=True):
        """The same Hessian-vector sums of a dense block by the fused kernel, or None."""
        kernel = _dense_kernel("linear_dense_hessp", X, WVt, _hessp_classes(WVt, make_state))
        if kernel is None:
            return None
        return _compiled_hessp(kernel, (X,), WVt, False, sw, intercept, vec_intercept, state, make_state)


def _hessp_classes(WVt, make_state):
    return WVt.shape[1] // 2 if make_state else WVt.shape[1]


def _compiled_sums(kernel, block, coef_t, flat, y, sw, intercept, gradient, label_smoothing):
    """Runs a compiled loss-and-gradient pass of the softmax head over one block (``block``: the
    kernel's leading arguments for it; ``flat``: the kernel takes its arrays raveled) and returns
    ``(loss, gradient (K, n_features), intercept gradient)``."""
    d, k = coef_t.shape
    dt = coef_t.dtype
    Gt = np.zeros((d, k), dtype=dt) if gradient else None
    gb = np.zeros(k) if gradient and intercept is not None else None
    loss = kernel(
        *block,
        coef_t.reshape(-1) if flat else coef_t,
        _weights(intercept, dt),
        _index(y),
        _weights(sw, dt),
        label_smoothing,
        gradient,
        None if Gt is None else (Gt.reshape(-1) if flat else Gt),
        gb,
    )
    if not gradient:
        return loss, None, None
    return loss, Gt.T, (None if gb is None else gb.astype(dt))


def _compiled_hessp(kernel, block, WVt, flat, sw, intercept, vec_intercept, state, make_state):
    """Runs a compiled Hessian-vector pass over one block (arguments as :func:`_compiled_sums`) and
    returns ``(Σ r_i x_iᵀ (K, n_features), Σ r_i)``."""
    d, k = WVt.shape[0], _hessp_classes(WVt, make_state)
    dt = WVt.dtype
    Ht = np.zeros((d, k), dtype=dt)
    hb = np.zeros(k) if intercept is not None else None
    kernel(
        *block,
        WVt,
        _weights(intercept, dt),
        _weights(vec_intercept, dt),
        None if state is None else (state.reshape(-1) if flat else state),
        make_state,
        _weights(sw, dt),
        Ht.reshape(-1) if flat else Ht,
        hb,
    )
    return Ht.T, (None if hb is None else hb.astype(dt))


def _linear_mode(name):
    from .._kernels import _linear

    return getattr(_linear, name)


def _row_kernel(op, Z):
    """The compiled kernel ``op`` for a logit block ``Z`` (contiguous rows), or None."""
    if Z.ndim != 2 or (Z.shape[1] > 1 and Z.strides[1] != Z.itemsize):
        return None
    return _dispatch.lookup(op, Z)


def _csr_kernel(op, X, coef_t):
    """The compiled kernel ``op`` for CSR block ``X`` and coefficients ``coef_t (n_features, K)``, or
    None (the reference runs): other dtypes, or indices that are neither int32 nor int64."""
    if X.indices.dtype not in (np.int32, np.int64) or coef_t.dtype != X.dtype:
        return None
    if not (coef_t.flags.c_contiguous and X.data.flags.c_contiguous and X.indices.flags.c_contiguous):
        return None
    return _dispatch.lookup(op, X.data, size=X.nnz * coef_t.shape[1])


# float32 blocks with fewer classes than this keep the BLAS path: K <= 16 fills one float32 vector, and
# the fused kernel ran slower than BLAS + head there (one 5242 x 100 block, one thread, under load:
# K = 8: 0.83 against 0.63 ms, K = 16: 0.83 against 0.72 ms; 2,000 x 5,000, K = 10, a whole pass: 17
# against 8 ms), faster from K = 17 on (K = 20: 0.61 against 1.04 ms). float64 is faster or level at
# every K measured (8, 16, 20, 33; 2,000 x 5,000 K = 10: 16 against 17 ms).
_DENSE_F32_MIN_CLASSES = 17


def _dense_kernel(op, X, coef_t, n_classes):
    """The fused kernel ``op`` for a dense block ``X`` (rows contiguous, any row stride) and coefficients
    ``coef_t (n_features, ·)`` of the same dtype, C-contiguous; or None (the BLAS path runs)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or coef_t.dtype != X.dtype:
        return None
    if X.dtype == np.float32 and n_classes < _DENSE_F32_MIN_CLASSES:
        return None
    if not coef_t.flags.c_contiguous:
        return None
    item = X.itemsize
    rows_ok = X.flags.c_contiguous or (
        X.strides[1] == item and X.strides[0] % item == 0 and X.strides[0] >= X.shape[1] * item
    )
    if not rows_ok:
        return None
    return _dispatch.lookup(op, X, size=X.shape[0] * n_classes)


def _index(y):
    return np.ascontiguousarray(y, dtype=np.intp)


def _weights(w, dtype):
    return None if w is None else np.ascontiguousarray(w, dtype=dtype)


def _indptr(X):
    """A CSR block's row pointers as int64, starting at 0 (a copy of ``rows + 1`` entries at most)."""
    indptr = X.indptr
    if indptr[0] != 0:
        indptr = indptr - indptr[0]
    return np.ascontiguousarray(indptr, dtype=np.int64)


def linear_block_sums(head, X, t, sw, coef, intercept, *, gradient=True, mask=None, coef_t=None):
    """``(Σ w_i ℓ_i, Σ w_i ∂ℓ_i/∂z_i x_iᵀ, Σ w_i ∂ℓ_i/∂z_i)`` of one row block for any head.

    ``coef_t`` is ``coef.T`` made C-contiguous (an evaluation makes it once for all its blocks).
    """
    coef_t = np.ascontiguousarray(coef.T) if coef_t is None else coef_t
    if sp.issparse(X) and mask is None and hasattr(head, "csr_sums"):
        sums = head.csr_sums(X, t, sw, coef_t, intercept, gradient)
        if sums is not None:
            return sums
    if not sp.issparse(X) and mask is None and hasattr(head, "dense_sums"):
        sums = head.dense_sums(X, t, sw, coef_t, intercept, gradient)
        if sums is not None:
            return sums
    Z = _logits(X, coef_t, intercept)
    loss, G = head.loss_gradient(Z, t, sw, gradient, mask)
    if not gradient:
        return loss, None, None
    return loss, _times_x(G, X), (G.sum(axis=0) if intercept is not None else None)


def linear_block_hessp(head, X, t, sw, coef, intercept, vec_coef, vec_intercept, *, stacked=None):
    """The Hessian-vector sums ``(Σ r_i x_iᵀ, Σ r_i)`` of one row block for any head.

    The logits and the directional logits come from one product ``X_b @ [W; V]ᵀ``; ``stacked`` is
    ``[W; V]ᵀ`` made once per evaluation (a CSR block of a head with compiled kernels gathers its rows).
    """
    k = coef.shape[0]
    if stacked is None:
        stacked = np.ascontiguousarray(np.concatenate([coef, vec_coef]).T)
    if sp.issparse(X) and hasattr(head, "csr_hessp"):
        sums = head.csr_hessp(X, sw, stacked, intercept, vec_intercept)
        if sums is not None:
            return sums
    if not sp.issparse(X) and hasattr(head, "dense_hessp"):
        sums = head.dense_hessp(X, sw, stacked, intercept, vec_intercept)
        if sums is not None:
            return sums
    both = _logits(X, stacked, None)
    Z, U = both[:, :k], both[:, k:]
    if intercept is not None:
        Z += intercept
    if vec_intercept is not None:
        U += vec_intercept
    R = head.hessian_product(Z, U, t, sw)
    return _times_x(R, X), (R.sum(axis=0) if intercept is not None else None)


# -- the block contract of softmax regression (the Dask evaluator's entry points) ---------------------


def block_loss_gradient(
    X_block,
    y_block,
    sample_weight_block,
    coef,
    intercept,
    *,
    label_smoothing=0.0,
    logit_mask=None,
    compute_gradient=True,
    coef_t=None,
):
    """Weighted cross-entropy sum and gradient sums of one row block (see the module docstring).

    Parameters
    ----------
    X_block : ndarray or CSR matrix, shape (rows, n_features)
    y_block : ndarray of int, shape (rows,)
        Class indices in ``[0, n_classes)``.
    sample_weight_block : ndarray, shape (rows,), or None
        ``None`` weighs every row 1.
    coef : ndarray, shape (n_classes, n_features)
        Same dtype as ``X_block``.
    intercept : ndarray, shape (n_classes,), or None
        ``None`` fits no intercept.
    label_smoothing : float in [0, 1), default 0
        Targets ``(1 - ε)·onehot + ε/n_classes``.
    logit_mask : ndarray, shape (n_classes, rows), optional
        Multiplies the logits before the softmax (logit dropout: entries ``0`` or ``1/(1 - p)``); the
        gradient is taken through the mask.
    compute_gradient : bool, default True
        Return ``(loss_sum, None, None)`` without the gradient when False.
    coef_t : ndarray, shape (n_features, n_classes), optional
        ``coef.T`` made C-contiguous, when the caller has it (one per evaluation, not one per block).

    Returns
    -------
    loss_sum : float
        ``Σ w_i CE_i`` (float64 accumulation).
    grad_coef : ndarray, shape (n_classes, n_features), or None
        ``Σ w_i (p_i - q_i) x_iᵀ``.
    grad_intercept : ndarray, shape (n_classes,), or None
        ``Σ w_i (p_i - q_i)``; None without intercept or gradient.

    Examples
    --------
    Two rows at zero coefficients: each costs ``log 2``, and the intercept gradients cancel.

    >>> import numpy as np
    >>> from luce.models._objective import block_loss_gradient
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); y = np.array([0, 1])
    >>> loss, gW, gb = block_loss_gradient(X, y, None, np.zeros((2, 2)), np.zeros(2))
    >>> round(loss, 6)
    1.386294
    >>> gW
    array([[-0.5,  0.5],
           [ 0.5, -0.5]])
    >>> gb
    array([0., 0.])
    """
    mask = None if logit_mask is None else np.asarray(logit_mask).T
    y_block = np.asarray(y_block, dtype=np.intp)
    return linear_block_sums(
        SoftmaxHead(label_smoothing),
        X_block,
        y_block,
        sample_weight_block,
        coef,
        intercept,
        gradient=compute_gradient,
        mask=mask,
        coef_t=coef_t,
    )


def block_hessp(X_block, sample_weight_block, coef, intercept, vec_coef, vec_intercept):
    """Hessian-vector product sums of the data term on one row block (see the module docstring).

    Returns ``(hv_coef (n_classes, n_features), hv_intercept (n_classes,) or None)``:
    ``Σ w_i r_i x_iᵀ`` and ``Σ w_i r_i`` with ``r_i = p_i ⊙ (u_i - p_iᵀ u_i)``, ``u_i = V x_i + v``.
    Label smoothing does not change the Hessian (the targets sum to one).

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._objective import block_hessp
    >>> X = np.array([[1.0]]); W = np.zeros((2, 1)); V = np.array([[1.0], [0.0]])
    >>> block_hessp(X, None, W, None, V, None)[0]  # p = (1/2, 1/2): r = p * (u - p.u) = (1/4, -1/4)
    array([[ 0.25],
           [-0.25]])
    """
    return linear_block_hessp(
        SoftmaxHead(), X_block, None, sample_weight_block, coef, intercept, vec_coef, vec_intercept
    )


def block_gram(X_block, sample_weight_block, fit_intercept, *, diagonal=False):
    """``Σ w_i x̃_i x̃_iᵀ`` (or only its diagonal) of one row block, computed in float64.

    ``x̃_i = [x_i, 1]`` with an intercept. The result has shape ``(d, d)`` or ``(d,)`` with
    ``d = n_features + fit_intercept``.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._objective import block_gram
    >>> block_gram(np.array([[1.0, 2.0]]), None, True)
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    w = sample_weight_block
    # Always float64: a one-time pass, and float32 products of large features would overflow or round.
    X_block = X_block.astype(np.float64, copy=False)
    w = None if w is None else np.asarray(w, dtype=np.float64)
    if sp.issparse(X_block):
        Xw = X_block if w is None else sp.csr_matrix(X_block.multiply(w[:, None]))
        if diagonal:
            xx = np.asarray(Xw.multiply(X_block).sum(axis=0), dtype=np.float64).ravel()
        else:
            xx = np.asarray((X_block.T @ Xw).toarray(), dtype=np.float64)
        col = np.asarray(Xw.sum(axis=0), dtype=np.float64).ravel()
    else:
        Xw = X_block if w is None else X_block * w[:, None]
        if diagonal:
            xx = np.einsum("ij,ij->j", Xw, X_block, dtype=np.float64)
        else:
            xx = np.asarray(X_block.T @ Xw, dtype=np.float64)
        col = np.sum(Xw, axis=0, dtype=np.float64)
    if not fit_intercept:
        return xx
    total = float(X_block.shape[0] if w is None else np.sum(w, dtype=np.float64))
    if diagonal:
        return np.append(xx, total)
    d = xx.shape[0]
    out = np.empty((d + 1, d + 1))
    out[:d, :d] = xx
    out[:d, d] = out[d, :d] = col
    out[d, d] = total
    return out


def unpack_params(theta, n_classes, n_features, fit_intercept):
    """``(coef, intercept)`` views of the flat parameter vector (``coef.ravel()`` then ``intercept``)."""
    n_coef = n_classes * n_features
    coef = theta[:n_coef].reshape(n_classes, n_features)
    return coef, (theta[n_coef:] if fit_intercept else None)


class ParameterVector:
    """The flat parameter vector (``pack``/``unpack``) and the finishing arithmetic of the block sums
    (weighted mean, penalty), shared by the in-memory and the Dask objectives.

    The class using it sets ``n_classes``, ``n_features``, ``n_coef``, ``n_params``, ``fit_intercept``,
    ``reg_strength`` and ``dtype``.
    """

    def finish_sums(self, coef, loss, g_coef, g_int, sw_sum):
        """``(f, ∇f)`` from the block sums: ``f = loss / Σw + λ/2 ‖W‖²``, ``∇_W f = g_coef / Σw + λ W``,
        ``∇_b f = g_int / Σw`` (``∇f`` None when ``g_coef`` is None; flat, data dtype)."""
        value = loss / sw_sum + 0.5 * self.reg_strength * float(np.sum(coef * coef, dtype=np.float64))
        if g_coef is None:
            return value, None
        grad = np.empty(self.n_params, dtype=self.dtype)
        _scaled_plus(g_coef, 1.0 / sw_sum, self.reg_strength, coef, grad[: self.n_coef].reshape(coef.shape))
        if self.fit_intercept:
            np.multiply(g_int, np.asarray(1.0 / sw_sum, dtype=self.dtype), out=grad[self.n_coef :])
        return value, grad

    def finish_hessp(self, v_coef, h_coef, h_int, sw_sum):
        """``H·v`` (flat, data dtype) from the block sums: ``h_coef / Σw + λ V`` and ``h_int / Σw``."""
        out = np.empty(self.n_params, dtype=self.dtype)
        _scaled_plus(
            h_coef, 1.0 / sw_sum, self.reg_strength, v_coef, out[: self.n_coef].reshape(v_coef.shape)
        )
        if self.fit_intercept and h_int is not None:
            np.multiply(h_int, np.asarray(1.0 / sw_sum, dtype=self.dtype), out=out[self.n_coef :])
        return out

    def unpack(self, theta):
        """``(coef, intercept)`` views of ``theta`` in the data dtype (``intercept`` None without one)."""
        theta = np.asarray(theta, dtype=self.dtype)
        return unpack_params(theta, self.n_classes, self.n_features, self.fit_intercept)

    def pack(self, coef, intercept=None):
        """The flat parameter vector of ``coef`` and ``intercept`` (data dtype)."""
        theta = np.zeros(self.n_params, dtype=self.dtype)
        theta[: self.n_coef] = np.asarray(coef).ravel()
        if self.fit_intercept and intercept is not None:
            theta[self.n_coef :] = intercept
        return theta


def _default_block_rows(X, n_classes):
    """Rows per block: ``_BLOCK_BYTES`` of a dense ``X``; for CSR, enough nonzeros to fill that and to
    make the dense partial gradient cheap to add (``_SPARSE_NNZ_PER_FEATURE``), in an even number of
    equal blocks: CSR blocks are few and long (4 at 100k × 50k), and 3.4 blocks' worth of rows cut as
    3 full blocks and a short one keep one of two threads waiting for a fifth of the pass."""
    n, p = X.shape
    if sp.issparse(X):
        per_row = max(X.nnz / max(n, 1), 1.0)
        nnz = max(_BLOCK_BYTES / (X.data.itemsize + X.indices.itemsize), _SPARSE_NNZ_PER_FEATURE * p)
        rows = max(64, math.ceil(nnz / per_row))
        n_blocks = math.ceil(n / rows)
        if n_blocks > 1:
            rows = max(64, math.ceil(n / (n_blocks + n_blocks % 2)))
        return rows
    rows = min(_BLOCK_BYTES // max(p * X.dtype.itemsize, 1), _BLOCK_ELEMENTS // max(n_classes, 1))
    return max(64, int(rows))


def _scaled_plus(g, scale, reg, coef, out):
    """``out = scale·g + reg·coef`` (``reg`` 0: no second term), the scalars in the data dtype.

    ``g`` of the CSR kernels is the transpose of a C-contiguous ``(n_features, K)`` sum: a tiled
    compiled transpose replaces NumPy's strided copy (3-10x slower at 50k × 50)."""
    dt = out.dtype
    if g.flags.f_contiguous and not g.flags.c_contiguous and g.dtype == dt and coef.flags.c_contiguous:
        kernel = _dispatch.lookup("linear_transpose_scale_add", out)
        if kernel is not None:
            kernel(g.T, float(dt.type(scale)), float(dt.type(reg)), coef if reg else None, out)
            return
    np.multiply(g, np.asarray(scale, dtype=dt), out=out)
    if reg:
        out += np.asarray(reg, dtype=dt) * coef


def _csr_rows(X, start, stop):
    """Rows ``start:stop`` of CSR ``X`` on views of ``X``'s data and indices (SciPy's slicing copies)."""
    a, b = X.indptr[start], X.indptr[stop]
    shape = (stop - start, X.shape[1])
    return _compressed_view(sp.csr_matrix, X.data[a:b], X.indices[a:b], X.indptr[start : stop + 1] - a, shape)


class LinearObjective(ParameterVector):
    r"""The shared linear part: ``theta``, weights, penalty, intercept, row blocks and their reductions.

    A subclass sets ``y`` (the targets, row-indexed), ``n_classes`` (the number of weight vectors) and
    ``head`` (see the module docstring), then calls :meth:`_setup`. The weighted mean, the ``λ/2 ‖W‖²``
    penalty, mini-batches, the Gram matrix, the flat parameter vector (``coef.ravel()`` then
    ``intercept``) and the threaded block engine are then the same for every head.

    Two hooks evaluate one block and may be overridden by a head that needs more than its logits:
    :meth:`_block_sums` ``(X_b, t_b, w_b, coef, intercept, gradient, rng) -> (loss_sum, grad_coef,
    grad_intercept)`` and :meth:`_block_hessp` ``(rows_slice, coef, intercept, vec_coef, vec_intercept)
    -> (hv_coef, hv_intercept)``. They run on worker threads, so they must not modify shared state.
    """

    logit_dropout = 0.0  # read by the gd/sgd solvers; a subclass with dropout overrides it
    head = None

    def _setup(self, X, sample_weight, reg_strength, fit_intercept, block_rows, n_threads=None):
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = np.dtype(X.dtype)
        if sample_weight is None:
            self.sample_weight = None
            self.sw_sum = float(self.n_samples)
        else:
            self.sample_weight = scaled_sample_weight(sample_weight, self.n_samples).astype(self.dtype)
            self.sw_sum = float(np.sum(self.sample_weight, dtype=np.float64))
        self.reg_strength = float(reg_strength)
        self.fit_intercept = bool(fit_intercept)
        if block_rows is None:
            block_rows = _default_block_rows(X, self.n_classes)
        self.block_rows = max(1, int(block_rows))
        self.n_threads = None if n_threads is None else max(1, int(n_threads))
        self.n_coef = self.n_classes * self.n_features
        self.n_params = self.n_coef + (self.n_classes if self.fit_intercept else 0)
        self._slices = list(self._blocks())
        # CSR blocks are made once, as views: slicing a CSR matrix would copy X every evaluation.
        self._csr_blocks = (
            {s.start: _csr_rows(X, s.start, s.stop) for s in self._slices} if sp.issparse(X) else None
        )
        self._cache = {}

    def _blocks(self, n_rows=None):
        n_rows = self.n_samples if n_rows is None else n_rows
        for start in range(0, n_rows, self.block_rows):
            yield slice(start, min(start + self.block_rows, n_rows))

    def _x_block(self, s):
        """Rows ``s`` of ``X`` (a view; a precomputed one for CSR)."""
        if self._csr_blocks is not None and s.start in self._csr_blocks:
            block = self._csr_blocks[s.start]
            if block.shape[0] == s.stop - s.start:
                return block
        return self.X[s]

    def engine_threads(self):
        """How many threads evaluate the blocks: ``n_threads``, or the current BLAS thread limit."""
        if self.n_threads is not None:
            return self.n_threads
        if self._csr_blocks is not None and not self._csr_compiled():
            # SciPy's sparse products hold the GIL (measured: two CSR x dense products on two threads
            # take as long as one after the other), so more threads would only queue behind it.
            return 1
        return blas_threads()

    def _csr_compiled(self):
        """Whether CSR blocks run the head's compiled kernels (which release the GIL)."""
        if self._csr_blocks is None or not hasattr(self.head, "csr_sums"):
            return False
        return (
            _dispatch.lookup("linear_csr_softmax", self.X.data, size=self.X.nnz * self.n_classes) is not None
        )

    def _mask(self, rng, rows):
        """The logit-dropout mask ``(n_classes, rows)`` of one block, or None (no dropout / no rng)."""
        if rng is None or not self.logit_dropout:
            return None
        keep = 1.0 - self.logit_dropout
        # Inverted dropout: kept logits are divided by the keep probability, so E[mask] = 1.
        draws = rng.random((self.n_classes, rows), dtype=self.dtype.type)
        return (draws < keep).astype(self.dtype) / np.asarray(keep, dtype=self.dtype)

    def _transposed(self, *coefs):
        """``[coefs...]ᵀ`` C-contiguous, made once per evaluation and shared by its blocks."""
        cached = self._cache.get("t")
        same = cached is not None and len(cached[0]) == len(coefs)
        if not same or any(a is not b for a, b in zip(cached[0], coefs, strict=True)):
            stacked = coefs[0] if len(coefs) == 1 else np.concatenate(coefs)
            cached = (coefs, np.ascontiguousarray(stacked.T))
            self._cache["t"] = cached
        return cached[1]

    def _release_transposed(self):
        """Drop the evaluation's transposed coefficients: kept, they (and the parameter vector they
        were made from) would stay alive between evaluations, two weight-sized arrays at large K."""
        self._cache.pop("t", None)

    # -- the per-block hooks ----------------------------------------------------------------------------
    def _block_sums(self, X, y, sw, coef, intercept, gradient, rng):
        mask = self._mask(rng, X.shape[0])
        return linear_block_sums(
            self.head,
            X,
            y,
            sw,
            coef,
            intercept,
            gradient=gradient,
            mask=None if mask is None else mask.T,
            coef_t=self._transposed(coef),
        )

    def _block_hessp(self, s, coef, intercept, vec_coef, vec_intercept):
        sw = None if self.sample_weight is None else self.sample_weight[s]
        return linear_block_hessp(
            self.head,
            self._x_block(s),
            self.y[s],
            sw,
            coef,
            intercept,
            vec_coef,
            vec_intercept,
            stacked=self._transposed(coef, vec_coef),
        )

    # -- evaluation -------------------------------------------------------------------------------------
    def _sums(self, X, y, sw, coef, intercept, gradient, rng):
        full = X is self.X
        slices = self._slices if full else list(self._blocks(X.shape[0]))

        def task(s):
            Xb = self._x_block(s) if full else X[s]
            return self._block_sums(Xb, y[s], None if sw is None else sw[s], coef, intercept, gradient, rng)

        # Dropout masks are drawn from rng in block order: those evaluations stay on this thread.
        threads = 1 if rng is not None or not full else self.engine_threads()
        self._transposed(coef)
        total = reduce_blocks(task, slices, threads)
        self._release_transposed()
        if total is None:  # no rows
            g_coef = np.zeros_like(coef) if gradient else None
            g_int = np.zeros_like(intercept) if gradient and intercept is not None else None
            return 0.0, g_coef, g_int
        return total[0], total[1], total[2]

    def loss_gradient(self, theta, *, rng=None):
        """``(f(theta), ∇f(theta))``: a float and a flat array in the data dtype, in one pass over ``X``.

        ``rng`` (a NumPy Generator) switches logit dropout on for this evaluation (when there is any).
        """
        coef, intercept = self.unpack(theta)
        loss, g_coef, g_int = self._sums(self.X, self.y, self.sample_weight, coef, intercept, True, rng)
        return self.finish_sums(coef, loss, g_coef, g_int, self.sw_sum)

    def loss(self, theta):
        """``f(theta)`` (a float)."""
        coef, intercept = self.unpack(theta)
        loss, _, _ = self._sums(self.X, self.y, self.sample_weight, coef, intercept, False, None)
        return self.finish_sums(coef, loss, None, None, self.sw_sum)[0]

    def gradient(self, theta):
        """``∇f(theta)`` (flat, data dtype)."""
        return self.loss_gradient(theta)[1]

    def _curvature_cache(self, theta):
        """Per-block curvature states at ``theta`` (filled by the first product there), or None.

        Newton-CG asks for many products at one point: keeping each block's head state (softmax: the
        probabilities) makes the later products one GEMM pair each, without the logits of ``W`` or
        the softmax. Only for the default hooks and when the states (``n_samples × n_classes``) take
        no more memory than ``X``.
        """
        if type(self)._block_hessp is not LinearObjective._block_hessp or not hasattr(self.head, "curvature"):
            return None
        x_bytes = self.X.data.nbytes + self.X.indices.nbytes if sp.issparse(self.X) else self.X.nbytes
        if sp.issparse(self.X):
            # Up to twice X for CSR: text-like rows hold fewer nonzeros than there are classes (100k ×
            # 50k, ~27 nonzeros per row, K = 50: the states take 1.2 X), and without them every product
            # computes the logits of W and the softmax again (there, one thread, CPU time under load:
            # 222-315 ms per product without the states, 136-208 ms with them).
            x_bytes *= 2
        if self.n_samples * self.n_classes * self.dtype.itemsize > x_bytes:
            return None
        cached = self._cache.get("curvature")
        if cached is None or not np.array_equal(cached[0], theta):
            cached = (np.array(theta, copy=True), [None] * len(self._slices))
            self._cache["curvature"] = cached
        return cached[1]

    def _block_hessp_cached(self, i, states, coef, intercept, vec_coef, vec_intercept):
        s = self._slices[i]
        X = self._x_block(s)
        t = self.y[s]
        sw = None if self.sample_weight is None else self.sample_weight[s]
        if self._csr_compiled():
            compiled = self.head.csr_hessp
        else:
            compiled = None if sp.issparse(X) else getattr(self.head, "dense_hessp", None)
        if compiled is not None:
            make = states[i] is None
            state = np.empty((X.shape[0], self.n_classes), dtype=self.dtype) if make else states[i]
            WVt = self._transposed(coef, vec_coef) if make else self._transposed(vec_coef)
            sums = compiled(X, sw, WVt, intercept, vec_intercept, state, make)
            if sums is not None:
                states[i] = state
                return sums
        if states[i] is None:
            both = _logits(X, self._transposed(coef, vec_coef), None)
            k = coef.shape[0]
            Z, U = both[:, :k], both[:, k:]
            if intercept is not None:
                Z += intercept
            states[i] = np.ascontiguousarray(self.head.curvature(Z, t))
        else:
            U = _logits(X, self._transposed(vec_coef), None)
        if vec_intercept is not None:
            U += vec_intercept
        R = self.head.curvature_product(states[i], U, t, sw)
        return _times_x(R, X), (R.sum(axis=0) if intercept is not None else None)

    def hessp(self, theta, vec):
        """The Hessian-vector product ``∇²f(theta) @ vec`` (flat, data dtype), in one pass over ``X``."""
        coef, intercept = self.unpack(theta)
        v_coef, v_int = self.unpack(vec)
        states = self._curvature_cache(theta)
        if states is None:
            self._transposed(coef, v_coef)
            total = reduce_blocks(
                lambda s: self._block_hessp(s, coef, intercept, v_coef, v_int),
                self._slices,
                self.engine_threads(),
            )
        else:
            self._transposed(coef, v_coef) if any(x is None for x in states) else self._transposed(v_coef)
            total = reduce_blocks(
                lambda i: self._block_hessp_cached(i, states, coef, intercept, v_coef, v_int),
                range(len(self._slices)),
                self.engine_threads(),
            )
        self._release_transposed()
        h_coef = np.zeros_like(coef) if total is None else total[0]
        h_int = None if intercept is None else (np.zeros_like(intercept) if total is None else total[1])
        return self.finish_hessp(v_coef, h_coef, h_int, self.sw_sum)

    def batch_loss_gradient(self, theta, rows, *, rng=None):
        """Objective and gradient on the rows ``rows`` only (a mini-batch), normalised by their weight.

        The penalty is the full ``λ/2 ‖W‖²``, so the mini-batch objective is an estimate of ``f``.
        """
        coef, intercept = self.unpack(theta)
        X = self.X[rows]
        y = self.y[rows]
        sw = None if self.sample_weight is None else self.sample_weight[rows]
        sw_sum = float(len(y)) if sw is None else float(np.sum(sw, dtype=np.float64))
        loss, g_coef, g_int = self._sums(X, y, sw, coef, intercept, True, rng)
        if sw_sum <= 0:  # a batch of zero-weight rows: only the penalty acts
            loss, sw_sum = 0.0, 1.0
            g_coef[...] = 0
            if g_int is not None:
                g_int[...] = 0
        return self.finish_sums(coef, loss, g_coef, g_int, sw_sum)

    def gram(self, *, diagonal=False):
        """``Σ w_i x̃_i x̃_iᵀ / Σ w_i`` (float64): the engine's blocks, their sums added in block order."""
        sw = self.sample_weight

        def task(s):
            return (
                block_gram(
                    self._x_block(s), None if sw is None else sw[s], self.fit_intercept, diagonal=diagonal
                ),
            )

        total = reduce_blocks(task, self._slices, self.engine_threads())
        if total is None:
            size = self.n_features + self.fit_intercept
            return np.zeros(size if diagonal else (size, size))
        return total[0] / self.sw_sum


class Objective(LinearObjective):
    r"""The regularised weighted mean cross-entropy of softmax regression on one data set.

    .. math:: f(\theta) = \frac{1}{\sum_i w_i}\sum_i w_i\,\mathrm{CE}(\mathrm{softmax}(W x_i + b), q_i)
              + \frac{\lambda}{2}\lVert W\rVert^2

    :class:`LinearObjective` with the :class:`SoftmaxHead`. The parameter vector ``theta`` is flat:
    ``coef.ravel()`` (C order, ``n_classes × n_features``) followed by ``intercept`` when
    ``fit_intercept``. Every method is one pass over ``X`` in row blocks (memory
    ``O(block_rows × n_classes)`` per thread beyond ``X``); solvers only call these methods.

    Parameters
    ----------
    X : ndarray or CSR matrix, shape (n_samples, n_features)
        float32 or float64; every data-sized computation stays in this dtype.
    y : ndarray of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    sample_weight : ndarray, shape (n_samples,), optional
        Finite and non-negative, with a positive sum (any scale: the objective is their weighted mean).
    reg_strength : float, default 0
        ``λ`` of the L2 penalty on ``coef`` (never on the intercept).
    fit_intercept : bool, default True
    label_smoothing : float in [0, 1), default 0
    logit_dropout : float in [0, 1), default 0
        Probability of zeroing each logit; applied only when a method receives ``rng``.
    block_rows : int, optional
        Rows per block; by default about 4 MiB of ``X`` (see the module docstring).
    n_threads : int, optional
        Threads of the block engine; by default the current BLAS thread limit. The results are bitwise
        the same for any value.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._objective import Objective
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = np.array([0, 1, 1])
    >>> obj = Objective(X, y, 2, reg_strength=0.1)
    >>> theta = np.zeros(obj.n_params)
    >>> round(obj.loss(theta), 6)  # log 2 at zero parameters
    0.693147
    """

    def __init__(
        self,
        X,
        y,
        n_classes,
        *,
        sample_weight=None,
        reg_strength=0.0,
        fit_intercept=True,
        label_smoothing=0.0,
        logit_dropout=0.0,
        block_rows=None,
        n_threads=None,
    ):
        self.y = np.asarray(y, dtype=np.intp)
        self.n_classes = int(n_classes)
        self._setup(X, sample_weight, reg_strength, fit_intercept, block_rows, n_threads)
        self.label_smoothing = float(label_smoothing)
        self.logit_dropout = float(logit_dropout)
        self.head = SoftmaxHead(self.label_smoothing)

    def _block_sums(self, X, y, sw, coef, intercept, gradient, rng):
        # Through the block contract: the in-memory and the Dask fits run the same block function.
        return block_loss_gradient(
            X,
            y,
            sw,
            coef,
            intercept,
            label_smoothing=self.label_smoothing,
            logit_mask=self._mask(rng, X.shape[0]),
            compute_gradient=gradient,
            coef_t=self._transposed(coef),
        )

    def lazy_sgd(self, theta, *, momentum=0.0, velocity=None, learning_rate=None, n_steps=0):
        """Steps of SGD that cost O(batch nonzeros × n_classes) each (CSR ``X`` and the compiled
        kernels), starting at ``theta``: a :class:`LazySparseSGD` (no momentum) or a
        :class:`LazyMomentumSGD` (heavy-ball ``momentum`` from ``velocity``, one ``learning_rate``
        for ``n_steps`` steps); None when they do not apply."""
        if not sp.issparse(self.X) or self.X.indices.dtype not in (np.int32, np.int64):
            return None
        size = self.X.nnz * self.n_classes
        if _dispatch.lookup("linear_csr_softmax_rows", self.X.data, size=size) is None:
            return None
        if momentum:
            return LazyMomentumSGD(self, theta, velocity, momentum, learning_rate, n_steps)
        return LazySparseSGD(self, theta)


def _batch_columns(X):
    """A CSR batch by columns, only its non-empty ones: ``(values, row numbers, column pointers,
    columns)``, rows increasing within a column (a stable sort of the indices; O(nnz log nnz))."""
    order = np.argsort(X.indices, kind="stable")
    by_column = X.indices[order]
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))[order]
    cols, starts = np.unique(by_column, return_index=True)
    pointers = np.append(starts, by_column.size).astype(np.int64)
    return np.ascontiguousarray(X.data[order]), rows, pointers, cols.astype(np.int64)


class LazySparseSGD:
    r"""Plain mini-batch SGD steps on CSR rows in O(batch nonzeros × n_classes) each (issue 17).

    A step ``θ ← θ - η ∇f_B(θ)`` of the mini-batch objective ``f_B = Σ_B w ℓ / Σ_B w + λ/2 ‖W‖²`` moves
    only the columns of ``W`` that the batch's rows touch, apart from the weight decay ``W ← (1 - ηλ) W``,
    which touches all of them. The decay is kept as a scalar: ``W = s·V`` with ``V`` stored
    ``(n_features, n_classes)`` (a feature's class weights contiguous, for the kernels' gathers and
    scatters), so a step is ``s ← (1 - ηλ) s`` and ``V[j] -= η/(s Σ_B w) · Σ_i x_ij r_i`` for the touched
    ``j`` (the scaled representation of Shalev-Shwartz et al., "Pegasos", ICML 2007, and of Bottou,
    "Stochastic gradient descent tricks", 2012). ``s`` is folded back into ``V`` when it falls below
    ``_FOLD_SCALE``. ``‖V‖²`` for the penalty term of ``f_B`` is kept up to date from the touched columns.
    The same steps as the dense-gradient path up to rounding (tests/test_solvers.py checks it);
    momentum and Adam move every parameter at every step, so they stay on the dense path.
    """

    _FOLD_SCALE = 1e-6

    def __init__(self, objective, theta):
        self.obj = objective
        from .._kernels import _linear

        self._kernels = _linear
        coef, intercept = objective.unpack(theta)
        self.V = np.empty(coef.shape[::-1], dtype=objective.dtype)
        _linear.transpose_scale_add(np.ascontiguousarray(coef), 1.0, 0.0, None, self.V)
        self.scale = 1.0
        self.intercept = None if intercept is None else np.array(intercept, copy=True)
        self.sq_norm = float(np.sum(self.V * self.V, dtype=np.float64))

    def step(self, rows, learning_rate):
        """One step on the rows ``rows`` (sorted); returns ``(f_B before the step, finite)``, where
        ``finite`` is False when the loss, the gradient or the new coefficients are not finite (the
        coefficients are then unusable: the caller restarts from a snapshot)."""
        o, dt = self.obj, self.obj.dtype
        X = o.X[rows]
        y = np.ascontiguousarray(o.y[rows])
        sw = None if o.sample_weight is None else np.ascontiguousarray(o.sample_weight[rows])
        sw_sum = float(len(rows)) if sw is None else float(np.sum(sw, dtype=np.float64))
        indptr = _indptr(X)
        R = np.empty((len(rows), o.n_classes), dtype=dt)
        loss = self._kernels.csr_softmax_rows(
            X.data, X.indices, indptr, self.V, self.scale, self.intercept, y, sw, o.label_smoothing, R
        )
        if sw_sum <= 0:  # a batch of zero-weight rows: only the penalty acts
            loss, sw_sum = 0.0, 1.0
            R[...] = 0
        value = loss / sw_sum + 0.5 * o.reg_strength * self.scale**2 * self.sq_norm
        if not math.isfinite(value) or not np.all(np.isfinite(R)):
            return value, False
        decay = 1.0 - learning_rate * o.reg_strength
        if decay == 0.0:
            self.V[...] = 0
            self.scale, self.sq_norm, decay = 1.0, 0.0, 1.0
        elif abs(self.scale * decay) < self._FOLD_SCALE:
            self.V *= dt.type(self.scale * decay)
            self.scale, decay = 1.0, 1.0
            self.sq_norm = float(np.sum(self.V * self.V, dtype=np.float64))
        self.scale *= decay
        alpha = -learning_rate / (sw_sum * self.scale)
        self.sq_norm += self._kernels.csc_update(*_batch_columns(X), R, alpha, self.V)
        if self.intercept is not None:
            g_int = R.sum(axis=0) * dt.type(1.0 / sw_sum)
            self.intercept -= dt.type(learning_rate) * g_int
        finite = math.isfinite(self.scale) and math.isfinite(self.sq_norm)  # not if a weight is not
        return value, bool(finite and (self.intercept is None or np.all(np.isfinite(self.intercept))))

    def theta(self):
        """The flat parameter vector ``[s·Vᵀ, b]`` (data dtype)."""
        o = self.obj
        theta = np.empty(o.n_params, dtype=o.dtype)
        coef = theta[: o.n_coef].reshape(o.n_classes, o.n_features)
        self._kernels.transpose_scale_add(self.V, float(o.dtype.type(self.scale)), 0.0, None, coef)
        if self.intercept is not None:
            theta[o.n_coef :] = self.intercept
        return theta


class LazyMomentumSGD:
    r"""Heavy-ball SGD steps on CSR rows in O(batch nonzeros × n_classes) each (issue 17).

    The dense step is ``v ← βv - η(g_B + λθ)``, ``θ ← θ + v`` for every parameter. A column ``j`` of
    ``W`` that the batch does not touch has ``g_B = 0``, so its pair ``(θ_j, v_j)`` follows the same
    linear map ``M = [[1 - ηλ, β], [-ηλ, β]]`` at every such step. Each column keeps the step it was
    last brought to (its stamp); a batch applies ``M^m`` (``m`` steps missed, powers precomputed for
    the epoch) and its gradient to the columns it touches only, and the epoch's end brings every
    column up to date. The penalty ``λ/2 ‖W‖²`` of each mini-batch objective comes from the 2 × 2 Gram
    matrix of the pairs over all columns, kept up to date in O(1) per step: the untouched columns'
    part moves by ``M G Mᵀ``, the touched ones' is measured before and after their step. The same
    steps as the dense-gradient path up to rounding (tests/test_solvers.py); weights and velocity
    stored ``(n_features, n_classes)``. Adam's per-coordinate scaling has no such closed form: it
    stays on the dense path.
    """

    def __init__(self, objective, theta, velocity, momentum, learning_rate, n_steps):
        from .._kernels import _linear

        self._kernels = _linear
        o = self.obj = objective
        self.learning_rate, self.momentum = float(learning_rate), float(momentum)
        coef, intercept = o.unpack(theta)
        v_coef, v_int = o.unpack(np.zeros(o.n_params, o.dtype) if velocity is None else velocity)
        self.W = np.empty((o.n_features, o.n_classes), dtype=o.dtype)
        self.V = np.empty_like(self.W)
        _linear.transpose_scale_add(np.ascontiguousarray(coef), 1.0, 0.0, None, self.W)
        _linear.transpose_scale_add(np.ascontiguousarray(v_coef), 1.0, 0.0, None, self.V)
        self.intercept = None if intercept is None else np.array(intercept, copy=True)
        self.v_intercept = None if v_int is None else np.array(v_int, copy=True)
        self.stamps = np.zeros(o.n_features, dtype=np.int64)
        decay = self.learning_rate * o.reg_strength
        M = np.array([[1.0 - decay, self.momentum], [-decay, self.momentum]])
        self.powers = np.empty((n_steps + 2, 4))
        P = np.eye(2)
        for m in range(n_steps + 2):
            self.powers[m] = P.ravel()
            P = M @ P
        self.M = M
        W, V = self.W.ravel(), self.V.ravel()
        # The 2 × 2 Gram matrix [[θ·θ, θ·v], [θ·v, v·v]] of all columns as of the current step (stale
        # ones included: an untouched column's pair moves by M, its Gram matrix by M G Mᵀ).
        self.gram = self._gram(W @ W, W @ V, V @ V)
        self.t = 0

    @staticmethod
    def _gram(w_w, w_v, v_v):
        return np.array([[w_w, w_v], [w_v, v_v]])

    def step(self, rows, learning_rate):
        """One step on the rows ``rows`` (sorted); returns ``(f_B before the step, finite)``."""
        o, dt = self.obj, self.obj.dtype
        if learning_rate != self.learning_rate:
            raise ValueError("LazyMomentumSGD runs one learning rate per epoch")
        X = o.X[rows]
        y = np.ascontiguousarray(o.y[rows])
        sw = None if o.sample_weight is None else np.ascontiguousarray(o.sample_weight[rows])
        sw_sum = float(len(rows)) if sw is None else float(np.sum(sw, dtype=np.float64))
        columns = _batch_columns(X)
        # The batch's columns to this step first: the logits read them.
        self._kernels.momentum_catch_up(self.W, self.V, columns[3], self.stamps, self.t, self.powers)
        R = np.empty((len(rows), o.n_classes), dtype=dt)
        loss = self._kernels.csr_softmax_rows(
            X.data, X.indices, _indptr(X), self.W, 1.0, self.intercept, y, sw, o.label_smoothing, R
        )
        if sw_sum <= 0:  # a batch of zero-weight rows: only the penalty acts
            loss, sw_sum = 0.0, 1.0
            R[...] = 0
        value = loss / sw_sum + 0.5 * o.reg_strength * float(self.gram[0, 0])
        if not math.isfinite(value) or not np.all(np.isfinite(R)):
            return value, False
        alpha = -learning_rate / sw_sum
        before, after = self._kernels.csc_momentum_update(
            *columns, R, alpha, self.W, self.V, self.stamps, self.t, self.powers
        )
        self.gram = self.M @ (self.gram - self._gram(*before)) @ self.M.T + self._gram(*after)
        self.t += 1
        if self.intercept is not None:
            g_int = R.sum(axis=0) * dt.type(1.0 / sw_sum)
            self.v_intercept *= dt.type(self.momentum)
            self.v_intercept -= dt.type(learning_rate) * g_int
            self.intercept += self.v_intercept
        finite = bool(np.all(np.isfinite(after)))
        return value, finite and (self.intercept is None or bool(np.all(np.isfinite(self.intercept))))

    def finish(self):
        """``(theta, velocity)`` flat, every column brought to the last step."""
        o = self.obj
        every = np.arange(o.n_features, dtype=np.int64)
        self._kernels.momentum_catch_up(self.W, self.V, every, self.stamps, self.t, self.powers)
        out = []
        for name, b in (("W", self.intercept), ("V", self.v_intercept)):
            flat = np.empty(o.n_params, dtype=o.dtype)
            coef = flat[: o.n_coef].reshape(o.n_classes, o.n_features)
            self._kernels.transpose_scale_add(getattr(self, name), 1.0, 0.0, None, coef)
            setattr(self, name, None)  # one weight-sized array fewer at the peak (the last call)
            if b is not None:
                flat[o.n_coef :] = b
            out.append(flat)
        return out[0], out[1]
