r"""The softmax-regression objective: one object with loss, gradient, loss_gradient and hessp.

.. math::
    f(W, b) = \frac{1}{\sum_i w_i} \sum_i w_i \, \mathrm{CE}\big(\mathrm{softmax}(W x_i + b),\, q_i\big)
              + \frac{\lambda}{2} \lVert W \rVert_F^2

with ``W = coef (n_classes, n_features)``, ``b = intercept (n_classes,)`` (never penalised), ``w_i`` the
sample weights (class weights already multiplied in), ``λ = reg_strength`` and ``q_i`` the target
distribution: the one-hot vector of ``y_i``, or ``(1 - ε)·onehot + ε/K`` with label smoothing ``ε``.
One weight vector per class (the symmetric parameterisation scikit-learn uses). scikit-learn's
``LogisticRegression(C)`` minimises the same function with ``C = 1 / (λ · Σ w_i)`` for three or more
classes; for two classes its single vector ``w`` is ``W[1] - W[0]`` and ``C = 2 / (λ · Σ w_i)``.

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

with ``sw_sum = Σ w_i`` over all rows. Memory per block is ``O(block_rows × n_classes)``; the blocks of
a dense C- or F-ordered ``X`` are views, so ``X`` is never copied.

The logits of a block are laid out ``(n_classes, block_rows)``: every per-row reduction over classes is
then a reduction over the first axis, which NumPy performs as vectorised elementwise operations across
``n_classes`` contiguous rows instead of a slow loop over short rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Objective",
    "ParameterVector",
    "block_gram",
    "block_hessp",
    "block_loss_gradient",
    "unpack_params",
]

# Logits per block: blocks of (n_classes x rows) stay in the L2/L3 cache while the softmax runs.
_BLOCK_ELEMENTS = 1 << 18
# Subnormal guard: shifted logits are clamped at log(K · smallest normal) + 1 before exp, so that no
# probability exp(.)/s (s <= K) is subnormal. Subnormal operands make the BLAS products with X about
# 20x slower (measured with OpenBLAS, float32); the clamp moves each probability by at most
# e·K·1.2e-38 (float32) or e·K·2.2e-308 (float64).
_LOG_TINY = {np.dtype(t): float(np.log(np.finfo(t).tiny)) + 1.0 for t in (np.float32, np.float64)}


def _shift_inplace(z):
    """``z <- z - max z`` per column of ``z (K, rows)``."""
    # Max shift (standard): the exponents are <= 0, the largest exactly 0 -- no overflow for any logits.
    z -= z.max(axis=0)


def _exp_inplace(z):
    """``z <- exp(z)`` for shifted logits ``z (K, rows)``, clamped so that ``exp(z)/s`` is never subnormal."""
    np.maximum(z, _LOG_TINY[z.dtype] + np.log(z.shape[0]), out=z)
    np.exp(z, out=z)


def _logits_t(X, coef, intercept):
    """``(coef @ X.T + intercept[:, None])``, the logits transposed to ``(n_classes, rows)``."""
    if sp.issparse(X):
        z = np.ascontiguousarray((X @ coef.T).T)
    else:
        z = coef @ X.T
    if intercept is not None:
        z += intercept[:, None]
    return z


def _times_x(G, X):
    """``G @ X`` for ``G (n_classes, rows)`` and dense or CSR ``X (rows, n_features)``."""
    if sp.issparse(X):
        return np.ascontiguousarray((X.T @ G.T).T)
    return G @ X


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
    z = _logits_t(X_block, coef, intercept)
    n_classes, rows = z.shape
    if logit_mask is not None:
        z *= logit_mask
    cols = np.arange(rows)
    _shift_inplace(z)
    target = z[y_block, cols]
    if label_smoothing:
        eps = float(label_smoothing)
        target = (1.0 - eps) * target + (eps / n_classes) * z.sum(axis=0)
    _exp_inplace(z)
    norm = z.sum(axis=0)  # >= 1 after the shift, so log(norm) is accurate
    z /= norm  # z now holds the probabilities p
    per_row = np.log(norm) - target
    if sample_weight_block is None:
        loss_sum = float(np.sum(per_row, dtype=np.float64))
    else:
        loss_sum = float(np.sum(per_row * sample_weight_block, dtype=np.float64))
    if not compute_gradient:
        return loss_sum, None, None
    # p - q in place.
    if label_smoothing:
        z -= np.asarray(eps / n_classes, dtype=z.dtype)
        z[y_block, cols] -= np.asarray(1.0 - eps, dtype=z.dtype)
    else:
        z[y_block, cols] -= 1
    if sample_weight_block is not None:
        z *= sample_weight_block
    if logit_mask is not None:
        z *= logit_mask
    grad_coef = _times_x(z, X_block)
    grad_intercept = z.sum(axis=1) if intercept is not None else None
    return loss_sum, grad_coef, grad_intercept


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
    p = _logits_t(X_block, coef, intercept)
    _shift_inplace(p)
    _exp_inplace(p)
    p /= p.sum(axis=0)
    u = _logits_t(X_block, vec_coef, vec_intercept)
    u -= (p * u).sum(axis=0)
    u *= p
    if sample_weight_block is not None:
        u *= sample_weight_block
    hv_coef = _times_x(u, X_block)
    hv_intercept = u.sum(axis=1) if intercept is not None else None
    return hv_coef, hv_intercept


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
    """``pack``/``unpack`` of the flat parameter vector, for the in-memory and the Dask objectives.

    The class using it sets ``n_classes``, ``n_features``, ``n_coef``, ``n_params``, ``fit_intercept``
    and ``dtype``.
    """

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


class _LinearObjective(ParameterVector):
    r"""What every row-block linear objective shares: ``theta``, the penalty, and the block reductions.

    A subclass sets ``y`` and ``n_classes`` (the number of weight vectors), calls :meth:`_setup`, and
    implements :meth:`_block_sums` (one row block's ``(loss_sum, grad_coef, grad_intercept)``) and
    :meth:`_block_hessp` (one block's Hessian-vector sums). The weighted mean, the ``λ/2 ‖W‖²`` penalty,
    mini-batches, the Gram matrix and the flat parameter vector (``coef.ravel()`` then ``intercept``)
    are then the same for every loss.
    """

    logit_dropout = 0.0  # read by the gd/sgd solvers; a subclass with dropout overrides it

    def _setup(self, X, sample_weight, reg_strength, fit_intercept, block_rows):
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = np.dtype(X.dtype)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype=self.dtype)
        if self.sample_weight is None:
            self.sw_sum = float(self.n_samples)
        else:
            self.sw_sum = float(np.sum(self.sample_weight, dtype=np.float64))
        self.reg_strength = float(reg_strength)
        self.fit_intercept = bool(fit_intercept)
        if block_rows is None:
            block_rows = max(64, _BLOCK_ELEMENTS // max(self.n_classes, 1))
        self.block_rows = int(block_rows)
        self.n_coef = self.n_classes * self.n_features
        self.n_params = self.n_coef + (self.n_classes if self.fit_intercept else 0)

    def _blocks(self, n_rows=None):
        n_rows = self.n_samples if n_rows is None else n_rows
        for start in range(0, n_rows, self.block_rows):
            yield slice(start, min(start + self.block_rows, n_rows))

    # -- evaluation -------------------------------------------------------------------------------
    def _sums(self, X, y, sw, coef, intercept, gradient, rng):
        loss = 0.0
        g_coef = np.zeros_like(coef) if gradient else None
        g_int = np.zeros_like(intercept) if gradient and intercept is not None else None
        for s in self._blocks(X.shape[0]):
            l_b, gc_b, gi_b = self._block_sums(
                X[s], y[s], None if sw is None else sw[s], coef, intercept, gradient, rng
            )
            loss += l_b
            if gradient:
                g_coef += gc_b
                if g_int is not None:
                    g_int += gi_b
        return loss, g_coef, g_int

    def _finish(self, coef, loss, g_coef, g_int, sw_sum):
        value = loss / sw_sum + 0.5 * self.reg_strength * float(np.sum(coef * coef, dtype=np.float64))
        if g_coef is None:
            return value, None
        grad = np.empty(self.n_params, dtype=self.dtype)
        gc = grad[: self.n_coef].reshape(coef.shape)
        np.multiply(g_coef, np.asarray(1.0 / sw_sum, dtype=self.dtype), out=gc)
        if self.reg_strength:
            gc += np.asarray(self.reg_strength, dtype=self.dtype) * coef
        if self.fit_intercept:
            np.multiply(g_int, np.asarray(1.0 / sw_sum, dtype=self.dtype), out=grad[self.n_coef :])
        return value, grad

    def loss_gradient(self, theta, *, rng=None):
        """``(f(theta), ∇f(theta))``: a float and a flat array in the data dtype.

        ``rng`` (a NumPy Generator) switches logit dropout on for this evaluation (when there is any).
        """
        coef, intercept = self.unpack(theta)
        loss, g_coef, g_int = self._sums(self.X, self.y, self.sample_weight, coef, intercept, True, rng)
        return self._finish(coef, loss, g_coef, g_int, self.sw_sum)

    def loss(self, theta):
        """``f(theta)`` (a float)."""
        coef, intercept = self.unpack(theta)
        loss, _, _ = self._sums(self.X, self.y, self.sample_weight, coef, intercept, False, None)
        return self._finish(coef, loss, None, None, self.sw_sum)[0]

    def gradient(self, theta):
        """``∇f(theta)`` (flat, data dtype)."""
        return self.loss_gradient(theta)[1]

    def hessp(self, theta, vec):
        """The Hessian-vector product ``∇²f(theta) @ vec`` (flat, data dtype)."""
        coef, intercept = self.unpack(theta)
        v_coef, v_int = self.unpack(vec)
        h_coef = np.zeros_like(coef)
        h_int = np.zeros_like(intercept) if intercept is not None else None
        for s in self._blocks():
            hc, hi = self._block_hessp(s, coef, intercept, v_coef, v_int)
            h_coef += hc
            if h_int is not None:
                h_int += hi
        out = np.empty(self.n_params, dtype=self.dtype)
        oc = out[: self.n_coef].reshape(coef.shape)
        np.multiply(h_coef, np.asarray(1.0 / self.sw_sum, dtype=self.dtype), out=oc)
        if self.reg_strength:
            oc += np.asarray(self.reg_strength, dtype=self.dtype) * v_coef
        if h_int is not None:
            np.multiply(h_int, np.asarray(1.0 / self.sw_sum, dtype=self.dtype), out=out[self.n_coef :])
        return out

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
        return self._finish(coef, loss, g_coef, g_int, sw_sum)

    def gram(self, *, diagonal=False):
        """``Σ w_i x̃_i x̃_iᵀ / Σ w_i`` (float64), blockwise with ``O(block × n_features)`` temporaries."""
        rows = max(1, _BLOCK_ELEMENTS // max(self.n_features, 1))
        size = self.n_features + self.fit_intercept
        out = np.zeros(size if diagonal else (size, size))
        sw = self.sample_weight
        for start in range(0, self.n_samples, rows):
            s = slice(start, min(start + rows, self.n_samples))
            out += block_gram(self.X[s], None if sw is None else sw[s], self.fit_intercept, diagonal=diagonal)
        return out / self.sw_sum


class Objective(_LinearObjective):
    r"""The regularised weighted mean cross-entropy of softmax regression on one data set.

    .. math:: f(\theta) = \frac{1}{\sum_i w_i}\sum_i w_i\,\mathrm{CE}(\mathrm{softmax}(W x_i + b), q_i)
              + \frac{\lambda}{2}\lVert W\rVert^2

    The parameter vector ``theta`` is flat: ``coef.ravel()`` (C order, ``n_classes × n_features``)
    followed by ``intercept`` when ``fit_intercept``. Every method evaluates the rows in blocks of
    ``block_rows`` (memory ``O(block_rows × n_classes)`` beyond ``X``) through the pure block functions of
    this module; solvers only call these methods. The reductions over blocks, the penalty and the
    parameter vector are ``_LinearObjective``'s, shared with the sigmoid objective.

    Parameters
    ----------
    X : ndarray or CSR matrix, shape (n_samples, n_features)
        float32 or float64; every data-sized computation stays in this dtype.
    y : ndarray of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    sample_weight : ndarray, shape (n_samples,), optional
        Non-negative, with a positive sum.
    reg_strength : float, default 0
        ``λ`` of the L2 penalty on ``coef`` (never on the intercept).
    fit_intercept : bool, default True
    label_smoothing : float in [0, 1), default 0
    logit_dropout : float in [0, 1), default 0
        Probability of zeroing each logit; applied only when a method receives ``rng``.
    block_rows : int, optional
        Rows per block; by default about ``2**18 / n_classes``.

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
    ):
        self.y = np.asarray(y, dtype=np.intp)
        self.n_classes = int(n_classes)
        self._setup(X, sample_weight, reg_strength, fit_intercept, block_rows)
        self.label_smoothing = float(label_smoothing)
        self.logit_dropout = float(logit_dropout)

    def _mask(self, rng, rows):
        if rng is None or not self.logit_dropout:
            return None
        keep = 1.0 - self.logit_dropout
        # Inverted dropout: kept logits are divided by the keep probability, so E[mask] = 1.
        draws = rng.random((self.n_classes, rows), dtype=self.dtype.type)
        return (draws < keep).astype(self.dtype) / np.asarray(keep, dtype=self.dtype)

    # -- evaluation (the row-block reductions are in _LinearObjective) ----------------------------
    def _block_sums(self, X, y, sw, coef, intercept, gradient, rng):
        return block_loss_gradient(
            X,
            y,
            sw,
            coef,
            intercept,
            label_smoothing=self.label_smoothing,
            logit_mask=self._mask(rng, X.shape[0]),
            compute_gradient=gradient,
        )

    def _block_hessp(self, s, coef, intercept, vec_coef, vec_intercept):
        sw = None if self.sample_weight is None else self.sample_weight[s]
        return block_hessp(self.X[s], sw, coef, intercept, vec_coef, vec_intercept)
