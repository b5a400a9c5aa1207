r"""SigmoidRegression: independent sigmoids (one binary cross-entropy per label) for multi-label data.

The objective follows the contract of :class:`~luce.models._objective.Objective` (loss, gradient,
loss_gradient, hessp and batch_loss_gradient over row blocks, a flat parameter vector), so the same
solvers in :mod:`luce.models._solvers` train it:

.. math::
    f(W, b) = \frac{1}{\sum_i w_i} \sum_i w_i \sum_{j=1}^{L}
              \Big[\pi_j t_{ij} \,\mathrm{softplus}(-z_{ij}) + (1 - t_{ij})\,\mathrm{softplus}(z_{ij})\Big]
              + \frac{\lambda}{2} \lVert W \rVert_F^2, \qquad z_i = W x_i + b,

with ``t_ij ∈ {0, 1}`` the indicator of label ``j``, ``π_j`` its ``pos_weight`` and ``softplus(z) =
log(1 + e^z) = -log σ(-z)``. The labels share nothing but the penalty weight, so each row of ``W`` is
the optimum of its own binary logistic regression: scikit-learn's ``LogisticRegression(C=1 / (λ Σ w_i))``
on column ``j`` with sample weights ``w_i · (π_j if t_ij else 1)``.

Block contract (as in :mod:`luce.models._objective`): :func:`block_loss_gradient` returns
``(Σ_i w_i Σ_j ℓ_ij, Σ w_i g_i x_iᵀ, Σ w_i g_i)`` with ``g_ij = a_ij σ(z_ij) - π_j t_ij`` and
``a_ij = π_j t_ij + 1 - t_ij``; :func:`block_hessp` returns the data-term Hessian-vector sums with the
diagonal curvature ``a_ij σ(z_ij)(1 - σ(z_ij))``. Logits are laid out ``(n_labels, rows)``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..functional import log_sigmoid, logsumexp, sigmoid
from . import _solvers
from . import _validation as v
from ._objective import block_gram

__all__ = ["SigmoidObjective", "SigmoidRegression", "block_hessp", "block_loss_gradient"]

_SOLVERS = ("gd", "lbfgs", "newton-cg", "sgd")
_DEFAULT_MAX_ITER = {"lbfgs": 100, "newton-cg": 100, "gd": 10_000, "sgd": 200}
_DTYPES = [np.float64, np.float32]
# Logits per block, as in the softmax objective.
_BLOCK_ELEMENTS = 1 << 18


# -- the objective ----------------------------------------------------------------------------------


def _logits_t(X, coef, intercept):
    """``coef @ X.T + intercept[:, None]``: the logits transposed to ``(n_labels, rows)``."""
    z = np.ascontiguousarray((X @ coef.T).T) if sp.issparse(X) else coef @ X.T
    if intercept is not None:
        z += intercept[:, None]
    return z


def _times_x(G, X):
    """``G @ X`` for ``G (n_labels, rows)`` and dense or CSR ``X (rows, n_features)``."""
    return np.ascontiguousarray((X.T @ G.T).T) if sp.issparse(X) else G @ X


def block_loss_gradient(
    X_block, Y_block, sample_weight_block, coef, intercept, *, pos_weight=None, compute_gradient=True
):
    """Weighted binary cross-entropy sum and gradient sums of one row block.

    Parameters
    ----------
    X_block : ndarray or CSR matrix, shape (rows, n_features)
    Y_block : ndarray, shape (rows, n_labels)
        Targets in ``[0, 1]`` (a 0/1 indicator), in the dtype of ``X_block``.
    sample_weight_block : ndarray, shape (rows,), or None
    coef : ndarray, shape (n_labels, n_features)
    intercept : ndarray, shape (n_labels,), or None
    pos_weight : ndarray, shape (n_labels,), or None
        Weight of the positive term of each label (None: 1).
    compute_gradient : bool, default True

    Returns
    -------
    loss_sum : float
        ``Σ_i w_i Σ_j ℓ_ij`` accumulated in float64.
    grad_coef : ndarray, shape (n_labels, n_features), or None
    grad_intercept : ndarray, shape (n_labels,), or None

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from luce.models._sigmoid import block_loss_gradient
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> loss, gW, gb = block_loss_gradient(X, Y, None, np.zeros((2, 2)), np.zeros(2))
    >>> round(loss, 6), round(4 * math.log(2), 6)   # four sigmoids at 1/2
    (2.772589, 2.772589)
    >>> gb
    array([0., 0.])
    """
    z = _logits_t(X_block, coef, intercept)
    t = Y_block.T
    # softplus(±z) = max(±z, 0) + log1p(exp(-|z|)): both terms exact, no cancellation for large |z|.
    tail = np.log1p(np.exp(-np.abs(z)))
    pos_term = np.maximum(-z, 0) + tail  # -log σ(z)
    neg_term = np.maximum(z, 0) + tail  # -log(1 - σ(z))
    tp = t if pos_weight is None else t * pos_weight[:, None]
    per = tp * pos_term + (1 - t) * neg_term
    per_row = per.sum(axis=0, dtype=np.float64)
    if sample_weight_block is None:
        loss_sum = float(np.sum(per_row))
    else:
        loss_sum = float(np.einsum("i,i->", per_row, sample_weight_block.astype(np.float64)))
    if not compute_gradient:
        return loss_sum, None, None
    # d/dz [tp·softplus(-z) + (1 - t)·softplus(z)] = (tp + 1 - t)·σ(z) - tp.
    g = (tp + (1 - t)) * expit(z) - tp
    if sample_weight_block is not None:
        g *= sample_weight_block
    grad_coef = _times_x(g, X_block)
    grad_intercept = g.sum(axis=1) if intercept is not None else None
    return loss_sum, grad_coef, grad_intercept


def block_hessp(
    X_block, Y_block, sample_weight_block, coef, intercept, vec_coef, vec_intercept, *, pos_weight=None
):
    """Hessian-vector product sums of the data term on one row block.

    Returns ``(Σ w_i r_i x_iᵀ, Σ w_i r_i)`` with ``r_ij = a_ij σ(z_ij)(1 - σ(z_ij)) (V x_i + v)_j``.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._sigmoid import block_hessp
    >>> X = np.array([[2.0]]); Y = np.array([[1.0]])
    >>> block_hessp(X, Y, None, np.zeros((1, 1)), None, np.ones((1, 1)), None)[0]   # σ'(0) x² = 1/4 · 4
    array([[1.]])
    """
    z = _logits_t(X_block, coef, intercept)
    s = expit(z)
    curv = s * (1 - s)
    if pos_weight is not None:
        t = Y_block.T
        curv *= t * pos_weight[:, None] + (1 - t)
    u = _logits_t(X_block, vec_coef, vec_intercept)
    u *= curv
    if sample_weight_block is not None:
        u *= sample_weight_block
    return _times_x(u, X_block), (u.sum(axis=1) if intercept is not None else None)


class SigmoidObjective:
    r"""The regularised weighted mean of ``n_labels`` binary cross-entropies (see the module docstring).

    Same contract as :class:`~luce.models._objective.Objective`: a flat ``theta`` (``coef.ravel()``
    then ``intercept``), ``loss``, ``gradient``, ``loss_gradient``, ``hessp``, ``batch_loss_gradient``
    and ``gram``, evaluated over row blocks. ``n_classes`` is the number of weight vectors
    (``n_labels``), the name the solvers read.

    Parameters
    ----------
    X : ndarray or CSR matrix, shape (n_samples, n_features)
    Y : ndarray, shape (n_samples, n_labels)
        0/1 targets.
    sample_weight : ndarray, shape (n_samples,), optional
    pos_weight : ndarray, shape (n_labels,), optional
    reg_strength : float, default 0
    fit_intercept : bool, default True
    block_rows : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._sigmoid import SigmoidObjective
    >>> obj = SigmoidObjective(np.eye(2), np.array([[1, 0], [1, 1]]))
    >>> round(obj.loss(np.zeros(obj.n_params)), 6)   # two labels at σ = 1/2: 2 log 2
    1.386294
    """

    logit_dropout = 0.0  # read by the gd/sgd solvers; sigmoid regression has no dropout

    def __init__(
        self,
        X,
        Y,
        *,
        sample_weight=None,
        pos_weight=None,
        reg_strength=0.0,
        fit_intercept=True,
        block_rows=None,
    ):
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = np.dtype(X.dtype)
        self.y = np.asarray(Y, dtype=self.dtype)
        if self.y.ndim != 2 or self.y.shape[0] != self.n_samples:
            raise ValueError(f"Y must have shape ({self.n_samples}, n_labels), got {self.y.shape}")
        self.n_classes = self.y.shape[1]
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype=self.dtype)
        if self.sample_weight is None:
            self.sw_sum = float(self.n_samples)
        else:
            self.sw_sum = float(np.sum(self.sample_weight, dtype=np.float64))
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=self.dtype)
        self.reg_strength = float(reg_strength)
        self.fit_intercept = bool(fit_intercept)
        if block_rows is None:
            block_rows = max(64, _BLOCK_ELEMENTS // max(self.n_classes, 1))
        self.block_rows = int(block_rows)
        self.n_coef = self.n_classes * self.n_features
        self.n_params = self.n_coef + (self.n_classes if self.fit_intercept else 0)

    def unpack(self, theta):
        """``(coef, intercept)`` views of ``theta`` in the data dtype."""
        theta = np.asarray(theta, dtype=self.dtype)
        coef = theta[: self.n_coef].reshape(self.n_classes, self.n_features)
        return coef, (theta[self.n_coef :] if self.fit_intercept else None)

    def pack(self, coef, intercept=None):
        """The flat parameter vector of ``coef`` and ``intercept``."""
        theta = np.zeros(self.n_params, dtype=self.dtype)
        theta[: self.n_coef] = np.asarray(coef).ravel()
        if self.fit_intercept and intercept is not None:
            theta[self.n_coef :] = intercept
        return theta

    def _slices(self, n):
        for start in range(0, n, self.block_rows):
            yield slice(start, min(start + self.block_rows, n))

    def _sums(self, X, Y, sw, coef, intercept, gradient):
        loss = 0.0
        g_coef = np.zeros_like(coef) if gradient else None
        g_int = np.zeros_like(intercept) if gradient and intercept is not None else None
        for s in self._slices(X.shape[0]):
            l_b, gc, gi = block_loss_gradient(
                X[s], Y[s], None if sw is None else sw[s], coef, intercept,
                pos_weight=self.pos_weight, compute_gradient=gradient,
            )  # fmt: skip
            loss += l_b
            if gradient:
                g_coef += gc
                if g_int is not None:
                    g_int += gi
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
        """``(f(theta), ∇f(theta))``; ``rng`` is accepted for the solvers and unused (no dropout)."""
        coef, intercept = self.unpack(theta)
        loss, gc, gi = self._sums(self.X, self.y, self.sample_weight, coef, intercept, True)
        return self._finish(coef, loss, gc, gi, self.sw_sum)

    def loss(self, theta):
        """``f(theta)`` (a float)."""
        coef, intercept = self.unpack(theta)
        loss, _, _ = self._sums(self.X, self.y, self.sample_weight, coef, intercept, False)
        return self._finish(coef, loss, None, None, self.sw_sum)[0]

    def gradient(self, theta):
        """``∇f(theta)`` (flat, data dtype)."""
        return self.loss_gradient(theta)[1]

    def hessp(self, theta, vec):
        """``∇²f(theta) @ vec`` (flat, data dtype)."""
        coef, intercept = self.unpack(theta)
        v_coef, v_int = self.unpack(vec)
        h_coef = np.zeros_like(coef)
        h_int = np.zeros_like(intercept) if intercept is not None else None
        sw = self.sample_weight
        for s in self._slices(self.n_samples):
            hc, hi = block_hessp(
                self.X[s], self.y[s], None if sw is None else sw[s], coef, intercept, v_coef, v_int,
                pos_weight=self.pos_weight,
            )  # fmt: skip
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
        """Objective and gradient on the rows ``rows`` (a mini-batch), normalised by their weight."""
        coef, intercept = self.unpack(theta)
        sw = None if self.sample_weight is None else self.sample_weight[rows]
        sw_sum = float(len(rows)) if sw is None else float(np.sum(sw, dtype=np.float64))
        loss, gc, gi = self._sums(self.X[rows], self.y[rows], sw, coef, intercept, True)
        if sw_sum <= 0:  # a batch of zero-weight rows: only the penalty acts
            loss, sw_sum = 0.0, 1.0
            gc[...] = 0
            if gi is not None:
                gi[...] = 0
        return self._finish(coef, loss, gc, gi, sw_sum)

    def gram(self, *, diagonal=False):
        """``Σ w_i x̃_i x̃_iᵀ / Σ w_i`` (float64), for the solvers' preconditioner and step size."""
        rows = max(1, _BLOCK_ELEMENTS // max(self.n_features, 1))
        size = self.n_features + self.fit_intercept
        out = np.zeros(size if diagonal else (size, size))
        sw = self.sample_weight
        for start in range(0, self.n_samples, rows):
            s = slice(start, min(start + rows, self.n_samples))
            out += block_gram(self.X[s], None if sw is None else sw[s], self.fit_intercept, diagonal=diagonal)
        return out / self.sw_sum


# -- the estimator ----------------------------------------------------------------------------------


def _logit(p):
    """``log(p / (1 - p))`` elementwise for thresholds in (0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


class SigmoidRegression(ClassifierMixin, BaseEstimator):
    r"""Multi-label logistic regression: one independent sigmoid (binary cross-entropy) per label.

    .. math:: P(y_{ij} = 1 \mid x_i) = \sigma(w_j^\top x_i + b_j), \qquad
              f(W, b) = \frac{1}{\sum_i w_i}\sum_i w_i \sum_j \mathrm{BCE}_{\pi_j}(z_{ij}, y_{ij})
              + \frac{\lambda}{2}\lVert W\rVert^2

    where ``BCE_π(z, t) = -π t log σ(z) - (1 - t) log(1 - σ(z))`` (``π`` the label's ``pos_weight``).
    Each row ``coef_[j]`` equals scikit-learn's ``LogisticRegression(C=1 / (reg_strength · Σ w_i))``
    fitted on column ``j`` alone (with sample weights ``w_i · π_j`` on its positives); fitting them
    together shares one solver run, one pass over ``X`` per iteration.

    Targets:

    - a 2-D binary indicator ``y (n_samples, n_labels)`` (dense, sparse, or a list of lists): multi-label;
      ``predict`` returns the indicator of ``predict_proba > threshold``, ``predict_proba`` the
      ``(n_samples, n_labels)`` marginal probabilities (rows need not sum to one);
    - a 1-D label vector: binary (one sigmoid, as ``LogisticRegression``) or one-vs-rest for three or
      more classes (one sigmoid per class; ``predict`` takes the arg-max, ``predict_proba`` normalises
      the sigmoids to sum to one, as scikit-learn's one-vs-rest).

    Parameters
    ----------
    reg_strength : float >= 0, default 1e-4
        ``λ``, the L2 penalty on ``coef_`` (never on ``intercept_``), as in :class:`SoftmaxRegression`.
    solver : {"lbfgs", "newton-cg", "gd", "sgd"}, default "lbfgs"
        The solvers of :class:`SoftmaxRegression` (:mod:`luce.models._solvers`).
    pos_weight : float > 0, array-like of shape (n_outputs,), or None, default None
        Multiplies the loss of the positive examples of each label (``torch.nn.BCEWithLogitsLoss``'s
        ``pos_weight``): ``n_neg / n_pos`` balances a rare label. ``n_outputs`` is ``n_labels``, 1 for a
        binary 1-D target, ``n_classes`` for one-vs-rest.
    threshold : float in (0, 1) or array-like of shape (n_outputs,), default 0.5
        The per-label decision threshold on the probability: ``predict`` says 1 where
        ``predict_proba > threshold`` (computed as ``logit > log(t / (1 - t))``, exact for any ``t``).
        Used for multi-label and binary targets (one-vs-rest takes the arg-max). It can be changed
        after ``fit`` with ``set_params`` (threshold tuning needs no refit).
    learning_rate : float > 0 or "auto", default "auto"
        Step of gd/sgd; ``"auto"`` is ``1/L`` with ``L = max(1, max π)/4 · λ_max(X̃ᵀWX̃/Σw) + λ`` (the
        sigmoid's curvature is at most 1/4) for gd, ``(1 - momentum)/L`` for sgd (the same effective
        step with heavy-ball momentum), ``1e-3`` with Adam.
    max_iter : int >= 1, optional
        Default: 100 for lbfgs and newton-cg, 10 000 for gd, 200 (epochs) for sgd. Reaching it warns.
    tol : float >= 0, default 1e-4
        lbfgs/newton-cg: largest absolute gradient entry; gd/sgd: minimal loss improvement over
        ``n_iter_no_change`` iterations.
    batch_size : int >= 1 or "auto", default "auto"
        sgd mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    momentum : float in [0, 1) or "adam", default 0.9
    fit_intercept : bool, default True
    early_stopping : bool, default False
        gd/sgd: hold out ``validation_fraction`` of the rows and keep the coefficients with the best
        validation loss.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int >= 1, default 10
    warm_start : bool, default False
    random_state : int, RandomState or None, default None
    verbose : int >= 0 or callable, default 0
        As in :class:`SoftmaxRegression`.

    Attributes
    ----------
    coef_ : ndarray, shape (n_outputs, n_features)
        float32 when trained on float32 input.
    intercept_ : ndarray, shape (n_outputs,)
    classes_ : ndarray
        The labels of a 1-D target; ``arange(n_labels)`` for a multi-label target (in the dtype of
        ``y``, which ``predict`` returns; int64 for a boolean ``y``).
    multilabel_ : bool
        Whether ``y`` was a 2-D indicator.
    n_iter_ : int
    loss_curve_ : list of float
    learning_rate_ : float or None
    validation_loss_curve_, best_validation_loss_ : list of float, float, or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Notes
    -----
    Sparse CSR ``X`` is never densified; float32 ``X`` trains and predicts in float32. ``score`` is the
    subset accuracy for multi-label targets (every label of a row right), as scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> import luce
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 5)
    >>> Y = np.column_stack([X[:, 0], X[:, 0] * X[:, 1]]).astype(int)   # "x0", "x0 and x1"
    >>> clf = luce.SigmoidRegression(reg_strength=1e-3).fit(X, Y)
    >>> clf.predict([[1.0, 0.0], [1.0, 1.0]])
    array([[1, 0],
           [1, 1]])
    >>> clf.predict_proba([[0.0, 1.0]]).round(3)
    array([[0.016, 0.026]])

    References
    ----------
    D. R. Cox, "The regression analysis of binary sequences", J. R. Stat. Soc. B 20 (1958);
    G. Tsoumakas, I. Katakis, "Multi-label classification: an overview" (binary relevance), 2007.
    """

    def __init__(
        self,
        reg_strength=1e-4,
        *,
        solver="lbfgs",
        pos_weight=None,
        threshold=0.5,
        learning_rate="auto",
        max_iter=None,
        tol=1e-4,
        batch_size="auto",
        momentum=0.9,
        fit_intercept=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.reg_strength = reg_strength
        self.solver = solver
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.momentum = momentum
        self.fit_intercept = fit_intercept
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    # -- hyper-parameters ---------------------------------------------------------------------------
    def _params(self):
        name = type(self).__name__
        p = {}
        p["reg_strength"] = v.check_real(
            self.reg_strength, "reg_strength", name, low=0.0, high=math.inf, high_open=True
        )
        p["solver"] = v.check_option(self.solver, "solver", name, _SOLVERS)
        if isinstance(self.learning_rate, str):
            p["learning_rate"] = v.check_option(self.learning_rate, "learning_rate", name, ("auto",))
        else:
            p["learning_rate"] = v.check_real(
                self.learning_rate,
                "learning_rate",
                name,
                low=0.0,
                low_open=True,
                high=math.inf,
                high_open=True,
            )
        if self.max_iter is None:
            p["max_iter"] = _DEFAULT_MAX_ITER[p["solver"]]
        else:
            p["max_iter"] = v.check_int(self.max_iter, "max_iter", name, low=1)
        p["tol"] = v.check_real(self.tol, "tol", name, low=0.0, high=math.inf, high_open=True)
        if isinstance(self.batch_size, str):
            p["batch_size"] = v.check_option(self.batch_size, "batch_size", name, ("auto",))
        else:
            p["batch_size"] = v.check_int(self.batch_size, "batch_size", name, low=1)
        if isinstance(self.momentum, str):
            p["momentum"] = v.check_option(self.momentum, "momentum", name, ("adam",))
        else:
            p["momentum"] = v.check_real(self.momentum, "momentum", name, low=0.0, high=1.0, high_open=True)
        p["fit_intercept"] = v.check_bool(self.fit_intercept, "fit_intercept", name)
        p["early_stopping"] = v.check_bool(self.early_stopping, "early_stopping", name)
        p["validation_fraction"] = v.check_real(
            self.validation_fraction,
            "validation_fraction",
            name,
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        p["n_iter_no_change"] = v.check_int(self.n_iter_no_change, "n_iter_no_change", name, low=1)
        p["warm_start"] = v.check_bool(self.warm_start, "warm_start", name)
        rs = self.random_state
        if isinstance(rs, bool) or not (
            rs is None or isinstance(rs, numbers.Integral | np.random.RandomState)
        ):
            raise ValueError(
                f"The 'random_state' parameter of {name} must be an int, a numpy.random.RandomState or None. "
                f"Got {rs!r} instead."
            )
        vb = self.verbose
        if not callable(vb):
            vb = v.check_int(int(vb) if isinstance(vb, bool | np.bool_) else vb, "verbose", name, low=0)
        p["verbose"] = vb
        return p

    def _per_output(self, value, name, n_outputs, *, low, high=None, default):
        """A scalar or ``(n_outputs,)`` vector hyper-parameter, checked and broadcast to float64."""
        owner = type(self).__name__
        if value is None:
            return np.full(n_outputs, default)
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf" or arr.ndim > 1:
            raise ValueError(
                f"The {name!r} parameter of {owner} must be a number or a 1-D array of numbers. "
                f"Got {value!r} instead."
            )
        arr = arr.astype(np.float64)
        if arr.ndim == 1 and arr.shape[0] != n_outputs:
            raise ValueError(
                f"The {name!r} parameter of {owner} has {arr.shape[0]} entries but the model has {n_outputs} "
                "outputs (labels, or classes for one-vs-rest, or 1 for a binary target)"
            )
        ok = np.isfinite(arr) & (arr > low) & (True if high is None else arr < high)
        if not np.all(ok):
            interval = f"({low:g}, {'inf' if high is None else f'{high:g}'})"
            raise ValueError(
                f"The {name!r} parameter of {owner} must lie in {interval}. Got {value!r} instead."
            )
        return np.broadcast_to(arr, (n_outputs,)).copy()

    def _reporter(self, verbose, curve):
        def report(i, loss):
            loss = float(loss)
            curve.append(loss)
            if callable(verbose):
                verbose(i, loss)
            elif verbose >= 2 or (verbose == 1 and i % 100 == 0):
                print(f"Iter(Epoch): {i}, Loss: {loss:.6f}", flush=True)

        return report

    # -- targets ------------------------------------------------------------------------------------
    def _targets(self, y, dtype):
        """``(Y (n, n_outputs) 0/1 in dtype, classes, multilabel)`` from a 1-D or indicator target."""
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            Y = y.toarray() if sp.issparse(y) else np.asarray(y)
            out_dtype = Y.dtype if Y.dtype.kind in "iuf" else np.dtype(np.int64)
            return Y.astype(dtype), np.arange(Y.shape[1]).astype(out_dtype), True
        check_classification_targets(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} needs a 1-D class vector or a 2-D binary indicator matrix "
                f"(multilabel-indicator) as y, got a target of type {kind!r}"
            )
        y = column_or_1d(y, warn=True)
        classes, idx = np.unique(y, return_inverse=True)
        idx = idx.reshape(-1)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes[0]!r}"
            )
        if classes.shape[0] == 2:
            return (idx == 1).astype(dtype)[:, None], classes, False
        Y = np.zeros((idx.shape[0], classes.shape[0]), dtype=dtype)
        Y[np.arange(idx.shape[0]), idx] = 1
        return Y, classes, False

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit one sigmoid per label (or per class) to ``X (n_samples, n_features)``.

        Parameters
        ----------
        X : array-like or sparse matrix, shape (n_samples, n_features)
        y : array-like or sparse matrix, shape (n_samples, n_labels) or (n_samples,)
            A 0/1 indicator (multi-label) or class labels (binary / one-vs-rest).
        sample_weight : array-like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        p = self._params()
        X, y = validate_data(
            self, X, y, reset=True, accept_sparse="csr", dtype=_DTYPES, multi_output=True, y_numeric=False
        )
        if sp.issparse(X):
            X = X.tocsr()
        Y, classes, multilabel = self._targets(y, X.dtype)
        n_outputs = Y.shape[1]
        pos_weight = self._per_output(self.pos_weight, "pos_weight", n_outputs, low=0.0, default=1.0)
        self._per_output(self.threshold, "threshold", n_outputs, low=0.0, high=1.0, default=0.5)
        sw = v.check_sample_weight(sample_weight, X.shape[0], X.dtype)
        if sw is not None and not multilabel:
            # Like SoftmaxRegression: weights that leave one class cannot define a 1-D classifier.
            weighted = Y[sw > 0]
            seen = (
                weighted.any(axis=0) if Y.shape[1] > 1 else np.array([weighted.any(), (weighted == 0).any()])
            )
            if seen.sum() < 2:
                raise ValueError(
                    "sample_weight leaves only one class with positive weight; fitting needs 2 classes"
                )
        rng = np.random.default_rng(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        solver = p["solver"]
        validation = None
        if p["early_stopping"] and solver in ("gd", "sgd"):
            n = X.shape[0]
            n_val = max(1, round(p["validation_fraction"] * n))
            if n - n_val < 1:
                raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training rows")
            order = rng.permutation(n)
            val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
            validation = self._objective(X[val], Y[val], None if sw is None else sw[val], pos_weight, p)
            X, Y, sw = X[train], Y[train], None if sw is None else sw[train]
            if sw is not None and not np.any(sw > 0):
                raise ValueError(
                    "the training part of the early-stopping split has no positive sample_weight"
                )
        objective = self._objective(X, Y, sw, pos_weight, p)
        theta0 = np.zeros(objective.n_params, dtype=objective.dtype)
        if (
            p["warm_start"]
            and hasattr(self, "coef_")
            and self.coef_.shape == (n_outputs, objective.n_features)
            and getattr(self, "multilabel_", None) == multilabel
        ):
            theta0 = objective.pack(self.coef_, self.intercept_)
        curve = []
        report = self._reporter(p["verbose"], curve)
        if solver in ("lbfgs", "newton-cg"):
            run = _solvers.lbfgs if solver == "lbfgs" else _solvers.newton_cg
            result = run(objective, theta0, max_iter=p["max_iter"], tol=p["tol"], callback=report)
        else:
            lr = p["learning_rate"]
            if lr == "auto":
                lr = self._auto_learning_rate(
                    objective, pos_weight, p["momentum"] if solver == "sgd" else 0.0
                )
            common = dict(
                learning_rate=lr, max_iter=p["max_iter"], tol=p["tol"],
                n_iter_no_change=p["n_iter_no_change"], callback=report, rng=rng, validation=validation,
            )  # fmt: skip
            if solver == "gd":
                result = _solvers.gradient_descent(objective, theta0, **common)
            else:
                result = _solvers.sgd(
                    objective, theta0, momentum=p["momentum"], batch_size=p["batch_size"], **common
                )

        coef, intercept = objective.unpack(result.theta)
        self.coef_ = np.array(coef, dtype=X.dtype, copy=True)
        self.intercept_ = (
            np.zeros(n_outputs, dtype=X.dtype)
            if intercept is None
            else np.array(intercept, dtype=X.dtype, copy=True)
        )
        self.classes_ = classes
        self.multilabel_ = multilabel
        self.n_iter_ = int(result.n_iter)
        self.loss_curve_ = curve
        self.learning_rate_ = None if result.learning_rate is None else float(result.learning_rate)
        self.validation_loss_curve_ = result.validation_loss_curve
        self.best_validation_loss_ = result.best_validation_loss
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__} (solver={solver!r}) did not converge: {result.message}. Increase "
                "max_iter, scale the features, or loosen tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    @staticmethod
    def _objective(X, Y, sw, pos_weight, p):
        return SigmoidObjective(
            X,
            Y,
            sample_weight=sw,
            pos_weight=None if np.all(pos_weight == 1.0) else pos_weight,
            reg_strength=p["reg_strength"],
            fit_intercept=p["fit_intercept"],
        )

    @staticmethod
    def _auto_learning_rate(objective, pos_weight, momentum):
        if momentum == "adam":
            return 1e-3
        # The data-term curvature of each label is a·σ(1-σ) <= max(1, π)/4 times the Gram matrix.
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            lipschitz = max(1.0, float(np.max(pos_weight))) / 4.0 * _solvers.gram_norm(objective)
        lipschitz += objective.reg_strength
        if not math.isfinite(lipschitz):
            raise ValueError(
                "learning_rate='auto' cannot be computed: the features are so large that X^T X overflows; "
                "scale the features or pass a numeric learning_rate"
            )
        # Heavy-ball momentum β multiplies the effective step by 1/(1 - β): keep it at 1/L.
        return (1.0 - momentum) / lipschitz if lipschitz > 0 else 1.0 - momentum

    # -- prediction ---------------------------------------------------------------------------------
    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=_DTYPES)
        z = X @ self.coef_.T
        z = np.asarray(z.toarray() if sp.issparse(z) else z)
        z += self.intercept_
        return z

    def _binary(self):
        return not self.multilabel_ and self.coef_.shape[0] == 1

    def decision_function(self, X):
        """The logits ``X @ coef_.T + intercept_``: (n_samples, n_outputs), or (n_samples,) for a binary
        1-D target (positive means ``classes_[1]``)."""
        z = self._logits(X)
        return z[:, 0] if self._binary() else z

    def predict_proba(self, X):
        """``σ(logits)`` per label, shape (n_samples, n_labels); ``[1 - σ, σ]`` for a binary target and the
        normalised one-vs-rest sigmoids (rows sum to one) for a multi-class target."""
        z = self._logits(X)
        if self.multilabel_:
            return sigmoid(z)
        if self._binary():
            # σ(-z) and σ(z) each computed directly: neither is 1 - (the other), so tiny ones stay exact.
            return np.column_stack([sigmoid(-z[:, 0]), sigmoid(z[:, 0])])
        p = sigmoid(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """``log`` of :meth:`predict_proba`, computed with ``log σ(z) = -softplus(-z)`` (no log of 0)."""
        z = self._logits(X)
        if self.multilabel_:
            return log_sigmoid(z)
        if self._binary():
            return np.column_stack([log_sigmoid(-z[:, 0]), log_sigmoid(z[:, 0])])
        ls = log_sigmoid(z)
        return ls - logsumexp(ls, axis=1)[:, None]

    def predict(self, X):
        """Multi-label: the 0/1 indicator of ``predict_proba > threshold`` (dtype of the training ``y``).
        Binary: ``classes_[proba > threshold]``. One-vs-rest: the class of the largest sigmoid."""
        z = self._logits(X)
        if not self.multilabel_ and not self._binary():
            return self.classes_[np.argmax(z, axis=1)]
        t = self._per_output(self.threshold, "threshold", z.shape[1], low=0.0, high=1.0, default=0.5)
        above = z > _logit(t)
        if self.multilabel_:
            return above.astype(self.classes_.dtype)
        return self.classes_[above[:, 0].astype(np.intp)]

    def save(self, path):
        """Write the fitted model to ``path`` with :func:`luce.save` (safetensors + JSON, no pickle)."""
        from luce.io import save

        return save(self, path)
