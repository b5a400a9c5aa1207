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
import warnings
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ..functional import log_sigmoid, logsumexp, sigmoid
from . import _solvers
from . import _validation as v
from ._base import PARAMETERS, LinearClassifier, Targets
from ._objective import LinearObjective, linear_block_hessp, linear_block_sums

__all__ = ["SigmoidHead", "SigmoidObjective", "SigmoidRegression", "block_hessp", "block_loss_gradient"]


# -- the objective ----------------------------------------------------------------------------------


class SigmoidHead:
    r"""Binary cross-entropy per label: ``ℓ(z, t) = Σ_j π_j t_j softplus(-z_j) + (1 - t_j) softplus(z_j)``.

    Gradient ``a_j σ(z_j) - π_j t_j`` and diagonal Hessian ``a_j σ(z_j)(1 - σ(z_j))`` with
    ``a_j = π_j t_j + 1 - t_j``. ``softplus(±z) = -log σ(∓z)`` is luce's :func:`~luce.functional.log_sigmoid`
    (exact for large ``|z|``, no cancellation). The head of :class:`SigmoidObjective` (the module
    docstring of :mod:`luce.models._objective` gives the contract).

    Parameters
    ----------
    pos_weight : ndarray, shape (n_labels,), or None
        Weight ``π_j`` of the positive term of each label (None: 1).

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._sigmoid import SigmoidHead
    >>> loss, G = SigmoidHead().loss_gradient(np.zeros((1, 2)), np.array([[1.0, 0.0]]), None, True)
    >>> round(loss, 6), G   # 2 log 2; σ(0) - t
    (1.386294, array([[-0.5,  0.5]]))
    """

    def __init__(self, pos_weight=None):
        self.pos_weight = pos_weight

    def _weights(self, T):
        """``(π t, a = π t + 1 - t)`` (``a`` None without ``pos_weight``: it is then 1)."""
        if self.pos_weight is None:
            return T, None
        tp = T * self.pos_weight
        return tp, tp + (1 - T)

    def loss_gradient(self, Z, T, sw, gradient, mask=None):
        """``(Σ_i w_i Σ_j ℓ_ij, G)`` of a logit block ``Z (rows, L)``, overwritten with ``G = w ∂ℓ/∂z``."""
        if mask is not None:
            raise ValueError("sigmoid regression has no logit dropout")
        tp, a = self._weights(T)
        per = tp * log_sigmoid(Z)
        per += (1 - T) * log_sigmoid(-Z)
        per_row = per.sum(axis=1, dtype=np.float64)
        loss = -float(per_row.sum() if sw is None else per_row @ sw.astype(np.float64, copy=False))
        if not gradient:
            return loss, None
        G = sigmoid(Z)
        if a is not None:
            G *= a
        G -= tp
        if sw is not None:
            G *= sw[:, None]
        return loss, G

    def curvature(self, Z, T):
        """The diagonal curvature ``a σ(z)(1 - σ(z))`` of each label, ``(rows, L)``."""
        s = sigmoid(Z)
        s *= 1 - s
        _, a = self._weights(T)
        if a is not None:
            s *= a
        return s

    def curvature_product(self, curvature, U, T, sw):
        """``w_i c_ij u_ij`` written over ``U (rows, L)``."""
        U *= curvature
        if sw is not None:
            U *= sw[:, None]
        return U

    def hessian_product(self, Z, U, T, sw):
        """``w_i a_ij σ(z_ij)(1 - σ(z_ij)) u_ij`` written over ``U (rows, L)``."""
        return self.curvature_product(self.curvature(Z, T), U, T, sw)


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
    return linear_block_sums(
        SigmoidHead(pos_weight),
        X_block,
        Y_block,
        sample_weight_block,
        coef,
        intercept,
        gradient=compute_gradient,
    )


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
    return linear_block_hessp(
        SigmoidHead(pos_weight),
        X_block,
        Y_block,
        sample_weight_block,
        coef,
        intercept,
        vec_coef,
        vec_intercept,
    )


class SigmoidObjective(LinearObjective):
    r"""The regularised weighted mean of ``n_labels`` binary cross-entropies (see the module docstring).

    :class:`~luce.models._objective.LinearObjective` (the block engine, weights, penalty, intercept and
    parameter vector shared with :class:`~luce.models._objective.Objective`) with the
    :class:`SigmoidHead`. ``n_classes`` is the number of weight vectors (``n_labels``), the name the
    solvers read.

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
    n_threads : int, optional
        As in :class:`~luce.models._objective.Objective`.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.models._sigmoid import SigmoidObjective
    >>> obj = SigmoidObjective(np.eye(2), np.array([[1, 0], [1, 1]]))
    >>> round(obj.loss(np.zeros(obj.n_params)), 6)   # two labels at σ = 1/2: 2 log 2
    1.386294
    """

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
        n_threads=None,
    ):
        self.y = np.asarray(Y, dtype=X.dtype)
        if self.y.ndim != 2 or self.y.shape[0] != X.shape[0]:
            raise ValueError(f"Y must have shape ({X.shape[0]}, n_labels), got {self.y.shape}")
        self.n_classes = self.y.shape[1]
        self._setup(X, sample_weight, reg_strength, fit_intercept, block_rows, n_threads)
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=self.dtype)
        self.head = SigmoidHead(self.pos_weight)


# -- the estimator ----------------------------------------------------------------------------------


def _logit(p):
    """``log(p / (1 - p))`` elementwise for thresholds in (0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


class _LossThreshold(v.NoneOr):
    """``threshold`` is the loss that stops gd/sgd; a per-label array is the old decision threshold."""

    def __init__(self):
        super().__init__(v.Real())

    def __call__(self, value, name, owner):
        if not self.accepts(value):
            raise TypeError(
                f"The {name!r} parameter of {owner} is the training loss below which gd/sgd stop (a real "
                f"number or None). Got {value!r} instead; the decision threshold on the probability (one "
                "number or one per label) is decision_threshold"
            )
        return super().__call__(value, name, owner)


class SigmoidRegression(LinearClassifier):
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
      ``predict`` returns the indicator of ``predict_proba > decision_threshold``, ``predict_proba`` the
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
    decision_threshold : float in (0, 1) or array-like of shape (n_outputs,), default 0.5
        The per-label decision threshold on the probability: ``predict`` says 1 where
        ``predict_proba > decision_threshold`` (computed as ``logit > log(t / (1 - t))``, exact for any
        ``t``). Used for multi-label and binary targets (one-vs-rest takes the arg-max). It can be
        changed after ``fit`` with ``set_params`` (threshold tuning needs no refit).
    threshold : float, optional
        gd/sgd stop as soon as the training loss falls below it, as in every luce estimator (ignored by
        lbfgs and newton-cg). In luce 0.1 this parameter was the decision threshold: setting it
        warns with ``FutureWarning`` pointing to ``decision_threshold`` until luce 0.3.
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
        decision_threshold=0.5,
        threshold=None,
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
        self.decision_threshold = decision_threshold
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
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    # pos_weight and decision_threshold have one entry per output: checked with the targets.
    _parameters: ClassVar[dict] = {**PARAMETERS, "threshold": _LossThreshold()}

    def _check_settings(self, settings):
        if settings.threshold is not None:
            warnings.warn(
                "SigmoidRegression's threshold now stops gd/sgd when the training loss falls below it (as "
                "in every luce estimator); the decision threshold on the probability is decision_threshold. "
                "This warning is removed in luce 0.3",
                FutureWarning,
                stacklevel=4,
            )

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

    # -- the two seams of the fit skeleton (LinearClassifier.fit) -----------------------------------
    def _validate_xy(self, X, y, reset):
        return super()._validate_xy(X, y, reset, multi_output=True, y_numeric=False)

    def _encode_targets(self, y, dtype):
        """``Y (n, n_outputs)`` 0/1 in ``dtype`` from a 1-D or indicator target, with the classes."""
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            Y = y.toarray() if sp.issparse(y) else np.asarray(y)
            out_dtype = Y.dtype if Y.dtype.kind in "iuf" else np.dtype(np.int64)
            targets = Targets(Y.astype(dtype), np.arange(Y.shape[1]).astype(out_dtype), None)
        else:
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
                    f"contains only one class: {v.label_repr(classes[0])}"
                )
            if classes.shape[0] == 2:
                Y = (idx == 1).astype(dtype)[:, None]
            else:
                Y = np.zeros((idx.shape[0], classes.shape[0]), dtype=dtype)
                Y[np.arange(idx.shape[0]), idx] = 1
            targets = Targets(Y, classes, idx)
        n_outputs = targets.values.shape[1]
        pos_weight = self._per_output(self.pos_weight, "pos_weight", n_outputs, low=0.0, default=1.0)
        self._per_output(
            self.decision_threshold, "decision_threshold", n_outputs, low=0.0, high=1.0, default=0.5
        )
        extra = {"multilabel_": targets.index is None, "_pos_weight": pos_weight}
        return Targets(targets.values, targets.classes, targets.index, extra)

    def _check_warm_start(self, settings, previous, targets, n_features):
        if settings.warm_start and previous is not None:
            multilabel = targets.index is None
            if getattr(self, "multilabel_", multilabel) != multilabel:
                kinds = {True: "a multi-label indicator", False: "a 1-D class vector"}
                raise ValueError(
                    f"warm_start=True continues the previous fit, trained on {kinds[self.multilabel_]}; "
                    f"y is {kinds[multilabel]}. Fit with warm_start=False to start over"
                )
        super()._check_warm_start(settings, previous, targets, n_features)

    def _make_objective(self, X, targets, sample_weight, settings, validation):
        pos_weight = targets.extra["_pos_weight"]
        return SigmoidObjective(
            X,
            targets.values,
            sample_weight=sample_weight,
            pos_weight=None if np.all(pos_weight == 1.0) else pos_weight,
            # Early stopping watches the data loss of the held-out rows, as in every luce estimator.
            reg_strength=0.0 if validation else settings.reg_strength,
            fit_intercept=settings.fit_intercept,
        )

    def _auto_learning_rate(self, objective, settings):
        momentum = settings.momentum if settings.solver == "sgd" else 0.0
        pos_weight = 1.0 if objective.pos_weight is None else float(np.max(objective.pos_weight))
        if momentum == "adam":
            return 1e-3
        # The data-term curvature of each label is a·σ(1-σ) <= max(1, π)/4 times the Gram matrix.
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            lipschitz = max(1.0, pos_weight) / 4.0 * _solvers.gram_norm(objective)
        lipschitz += objective.reg_strength
        if not math.isfinite(lipschitz):
            raise ValueError(
                "learning_rate='auto' cannot be computed: the features are so large that X^T X overflows; "
                "scale the features or pass a numeric learning_rate"
            )
        # Heavy-ball momentum β multiplies the effective step by 1/(1 - β): keep it at 1/L.
        return (1.0 - momentum) / lipschitz if lipschitz > 0 else 1.0 - momentum

    # -- prediction (the logits are LinearClassifier._logits) ---------------------------------------
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
        """Multi-label: the 0/1 indicator of ``predict_proba > decision_threshold`` (dtype of the training
        ``y``). Binary: ``classes_[proba > decision_threshold]``. One-vs-rest: the largest sigmoid's class."""
        z = self._logits(X)
        if not self.multilabel_ and not self._binary():
            return self.classes_[np.argmax(z, axis=1)]
        t = self._per_output(
            self.decision_threshold, "decision_threshold", z.shape[1], low=0.0, high=1.0, default=0.5
        )
        above = z > _logit(t)
        if self.multilabel_:
            return above.astype(self.classes_.dtype)
        return self.classes_[above[:, 0].astype(np.intp)]
