"""SoftmaxRegression: multinomial logistic regression with the scikit-learn estimator API.

The estimator validates, orchestrates and stores; the math is the :class:`~._objective.Objective`
and the optimisation lives in :mod:`._solvers`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ..functional import log_softmax, softmax
from . import _collections, _solvers
from . import _validation as v
from ._base import PARAMETERS, LinearClassifier, Targets, _blas_threads_for, settings_of
from ._objective import Objective

__all__ = ["SoftmaxRegression"]


class SoftmaxRegression(LinearClassifier):
    r"""Softmax (multinomial logistic) regression: the tutorial classifier grown into an estimator.

    Minimises the weighted mean cross-entropy plus L2 weight decay,

    .. math:: f(W, b) = \frac{1}{\sum_i w_i}\sum_i w_i\,
              \mathrm{CE}\big(\mathrm{softmax}(W x_i + b), y_i\big) + \frac{\lambda}{2}\lVert W\rVert^2,

    with one weight vector per class (``coef_`` of shape ``(n_classes, n_features)``, two vectors for
    binary problems) and an unpenalised intercept. ``w_i`` is the sample weight times the class weight.
    The same optimum as scikit-learn's ``LogisticRegression(C=1 / (reg_strength · Σ w_i))`` for three or
    more classes, ``C = 2 / (reg_strength · Σ w_i)`` for two (scikit-learn's single vector is
    ``coef_[1] - coef_[0]``).

    Parameters
    ----------
    reg_strength : float >= 0, default 1e-4
        ``λ``, the L2 penalty on ``coef_`` (never on ``intercept_``).
    solver : {"lbfgs", "newton-cg", "gd", "sgd"}, default "lbfgs"
        ``"lbfgs"`` and ``"newton-cg"``: SciPy's L-BFGS-B / Newton-CG on a Kronecker-preconditioned
        parameterisation (see :mod:`luce.models._solvers`). ``"gd"``: full-batch gradient descent (the
        tutorial). ``"sgd"``: mini-batch epochs with momentum or Adam; on CSR input a plain or
        heavy-ball step (``sgd`` and ``partial_fit``) costs O(batch nonzeros × n_classes), an Adam
        step O(n_features × n_classes).
    learning_rate : float > 0 or "auto", default "auto"
        Step size of gd/sgd. ``"auto"`` is ``1/L`` with ``L = λ_max(X̃ᵀWX̃/Σw)/2 + reg_strength`` (a bound
        on the curvature), or ``1e-3`` with Adam.
    threshold : float, optional
        gd/sgd stop as soon as the training loss falls below it (the tutorial's stopping rule, which
        then replaces the ``tol`` rule). Ignored by lbfgs and newton-cg.
    max_iter : int >= 1, optional
        Iterations (lbfgs, newton-cg, gd) or epochs (sgd). Default: 100 for lbfgs and newton-cg, 10 000
        for gd, 200 for sgd. Reaching it warns with ``ConvergenceWarning``.
    tol : float >= 0, default 1e-4
        lbfgs/newton-cg: stop when the largest absolute gradient entry is ``<= tol`` (as scikit-learn's
        LogisticRegression). gd/sgd without ``threshold``: stop when the loss has not improved by
        ``tol`` for ``n_iter_no_change`` iterations/epochs (as scikit-learn's MLPClassifier).
    batch_size : int >= 1 or "auto", default "auto"
        Mini-batch size of sgd and ``partial_fit``; ``"auto"`` is ``min(200, n_samples)``.
    momentum : float in [0, 1) or "adam", default 0.9
        Heavy-ball momentum of sgd, or ``"adam"`` for Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8).
    fit_intercept : bool, default True
    class_weight : dict, "balanced" or None, default None
        Multiplies each sample's weight by the weight of its class (``"balanced"``:
        ``n_samples / (n_classes · count)``, weighted by ``sample_weight``).
    label_smoothing : float in [0, 1), default 0.0
        Trains on the targets ``(1 - ε)·onehot + ε/n_classes``.
    logit_dropout : float in [0, 1), default 0.0
        gd/sgd only: each logit is zeroed with this probability during training (the others scaled by
        ``1/(1 - p)``), a regulariser. Evaluation and prediction never drop.
    early_stopping : bool, default False
        gd/sgd: hold out ``validation_fraction`` of the rows (stratified) and stop when the validation
        loss has not improved by ``tol`` for ``n_iter_no_change`` iterations; the best coefficients are
        kept. Ignored by lbfgs and newton-cg.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int >= 1, default 10
    warm_start : bool, default False
        Start ``fit`` from the previous ``coef_`` and ``intercept_`` (same classes and features).
    random_state : int, RandomState or None, default None
        Shuffling (sgd), the validation split and the dropout masks.
    verbose : int >= 0 or callable, default 0
        ``1`` prints ``Iter(Epoch): i, Loss: cost`` every 100 iterations, ``2`` every iteration; a
        callable receives ``(iteration, loss)`` every iteration.

    Attributes
    ----------
    coef_ : ndarray, shape (n_classes, n_features)
        float32 when trained on float32 input, else float64.
    intercept_ : ndarray, shape (n_classes,)
        Zeros without ``fit_intercept``.
    classes_ : ndarray, shape (n_classes,)
    n_iter_ : int
        Iterations (epochs for sgd) run by the last ``fit``; ``partial_fit`` adds one per call.
    loss_curve_ : list of float
        The training objective per iteration: after ``i`` iterations for lbfgs, newton-cg and gd
        (``loss_curve_[0]`` at the start), the mean mini-batch objective of each epoch for sgd.
    temperature_ : float
        Divides the logits in ``predict_proba``/``predict_log_proba``: 1.0 after ``fit``, set by
        :meth:`calibrate`.
    learning_rate_ : float or None
        The step size gd/sgd ended with (after ``"auto"`` and any halving); None for lbfgs/newton-cg.
    validation_loss_curve_, best_validation_loss_ : list of float, float, or None
        With ``early_stopping``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (pandas).

    Notes
    -----
    Inputs: NumPy arrays, pandas DataFrames and SciPy sparse matrices (converted to CSR, never
    densified); labels of any type. float32 input trains in float32 (SciPy's L-BFGS-B keeps its
    iterate in float64; every data-sized computation is float32). The fitted state is NumPy arrays and
    JSON-able scalars and lists, so :meth:`save` can write it without pickle.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from luce import SoftmaxRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxRegression(reg_strength=1e-2).fit(X, y)
    >>> clf.predict(X[[0, 60, 120]])
    array([0, 1, 2])
    >>> clf.predict_proba(X[:1]).round(3)
    array([[0.975, 0.025, 0.   ]])
    >>> round(clf.score(X, y), 3)
    0.973

    References
    ----------
    R. D. Luce, *Individual Choice Behavior*, 1959; J. S. Bridle, "Probabilistic interpretation of
    feedforward classification network outputs", 1990.
    """

    def __init__(
        self,
        reg_strength=1e-4,
        *,
        solver="lbfgs",
        learning_rate="auto",
        threshold=None,
        max_iter=None,
        tol=1e-4,
        batch_size="auto",
        momentum=0.9,
        fit_intercept=True,
        class_weight=None,
        label_smoothing=0.0,
        logit_dropout=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.reg_strength = reg_strength
        self.solver = solver
        self.learning_rate = learning_rate
        self.threshold = threshold
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.momentum = momentum
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.logit_dropout = logit_dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    _parameters: ClassVar[dict] = {
        **PARAMETERS,
        "class_weight": v.ClassWeight(),
        "label_smoothing": v.Real(0.0, 1.0, high_open=True),
        "logit_dropout": v.Real(0.0, 1.0, high_open=True),
    }

    def _check_settings(self, settings):
        if settings.logit_dropout and settings.solver not in ("gd", "sgd"):
            raise ValueError(
                f"logit_dropout={self.logit_dropout!r} needs solver='gd' or 'sgd' (it makes the objective "
                f"random); got solver={settings.solver!r}"
            )

    # -- the two seams of the fit skeleton (LinearClassifier.fit) ---------------------------------
    def _encode_targets(self, y, dtype):
        check_classification_targets(y)
        classes, y_idx = v.unique_labels(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {v.label_repr(classes[0])}"
            )
        return Targets(y_idx, classes, y_idx)

    def _make_objective(self, X, targets, sample_weight, settings, validation):
        if validation:  # early stopping watches the plain validation cross-entropy
            return Objective(
                X, targets.values, targets.classes.shape[0], sample_weight=sample_weight,
                fit_intercept=settings.fit_intercept,
            )  # fmt: skip
        return Objective(
            X,
            targets.values,
            targets.classes.shape[0],
            sample_weight=sample_weight,
            reg_strength=settings.reg_strength,
            fit_intercept=settings.fit_intercept,
            label_smoothing=settings.label_smoothing,
            logit_dropout=settings.logit_dropout,
        )

    def _after_fit(self, result, rng):
        self.temperature_ = 1.0
        self._optimizer_state = result.state
        self._sgd_rng = rng

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of multinomial mini-batch steps on ``(X, y)`` (whatever ``solver`` is).

        Uses ``learning_rate``, ``momentum`` (the optimiser's memory carries over between calls),
        ``batch_size``, ``label_smoothing`` and ``logit_dropout``. ``classes`` must list every label on
        the first call (or come from a previous ``fit``).

        Returns
        -------
        self
        """
        p = settings_of(self)
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y = self._validate_xy(X, y, reset=first)
        cls, y_idx, sw = self._stream_targets(y, classes, sample_weight, p, X.shape[0])
        if sw is not None:
            sw = sw.astype(X.dtype)
        if first:
            self.classes_ = cls
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.temperature_ = 1.0
            self.validation_loss_curve_ = None
            self.best_validation_loss_ = None
            self._optimizer_state = {}
        objective = self._make_objective(X, Targets(y_idx, cls, y_idx), sw, p, False)
        if not hasattr(self, "coef_"):
            theta = np.zeros(objective.n_params, dtype=objective.dtype)
        else:
            theta = objective.pack(self.coef_.astype(X.dtype), self.intercept_.astype(X.dtype))
        lr = getattr(self, "learning_rate_", None)
        if lr is None:
            lr = p.learning_rate
            if lr == "auto":
                lr = self._auto_learning_rate(objective, p)
        if not hasattr(self, "_sgd_rng"):
            self._sgd_rng = self._rng()
        state = getattr(self, "_optimizer_state", None)
        state = {} if state is None else state
        with _blas_threads_for(objective):
            result = self._partial_step(objective, theta, lr, p, state)
        self._optimizer_state = result.state
        self._store(objective, result.theta, X.dtype)
        self.n_iter_ += 1
        self.learning_rate_ = float(result.learning_rate)
        return self

    def _partial_step(self, objective, theta, lr, p, state):
        return _solvers.sgd(
            objective,
            theta,
            learning_rate=lr,
            momentum=p.momentum,
            batch_size=p.batch_size,
            max_iter=1,
            tol=0.0,
            n_iter_no_change=1,
            threshold=None,
            callback=self._reporter(p.verbose, self.loss_curve_, offset=self.n_iter_),
            rng=self._sgd_rng,
            state=state,
        )

    # -- prediction (the logits are LinearClassifier._logits) -------------------------------------
    def decision_function(self, X):
        """The logits ``X @ coef_.T + intercept_``, shape (n_samples, n_classes).

        For binary problems, as scikit-learn, the 1-D logit difference ``z₁ - z₀`` (positive means
        ``classes_[1]``). The temperature is not applied.
        """
        fitter = _collections.fitter_for(X)
        if fitter is not None:  # e.g. a lazy dask array, chunk for chunk
            return fitter.predict(self, X, "decision_function")
        z = self._logits(X)
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    def predict(self, X):
        """The most probable class of each row, shape (n_samples,)."""
        fitter = _collections.fitter_for(X)
        if fitter is not None:  # e.g. a lazy dask array, chunk for chunk
            return fitter.predict(self, X, "predict")
        z = self._logits(X)
        return self.classes_[np.argmax(z, axis=1)]

    def _tempered(self, X):
        z = self._logits(X)
        t = float(getattr(self, "temperature_", 1.0))
        if t != 1.0:
            z = z / np.asarray(t, dtype=z.dtype)
        return z

    def predict_proba(self, X):
        """``softmax(logits / temperature_)``, shape (n_samples, n_classes), columns in ``classes_`` order."""
        fitter = _collections.fitter_for(X)
        if fitter is not None:  # e.g. a lazy dask array, chunk for chunk
            return fitter.predict(self, X, "predict_proba")
        return softmax(self._tempered(X), axis=1)

    def predict_log_proba(self, X):
        """``log_softmax(logits / temperature_)`` computed without forming the probabilities."""
        fitter = _collections.fitter_for(X)
        if fitter is not None:  # e.g. a lazy dask array, chunk for chunk
            return fitter.predict(self, X, "predict_log_proba")
        return log_softmax(self._tempered(X), axis=1)

    # -- calibration ------------------------------------------------------------------------------
    def calibrate(self, X_val, y_val, sample_weight=None):
        """Fit ``temperature_ > 0`` by minimising the validation negative log-likelihood.

        ``T`` minimises ``Σ w_i CE(softmax(z_i / T), y_i)`` over held-out rows (temperature scaling,
        Guo et al. 2017). Predictions (``argmax``) do not change; probabilities become calibrated.
        When every validation row is classified right the data give no finite temperature: ``T`` stays
        1 with a ``ConvergenceWarning`` (see :class:`TemperatureScaling`). ``temperature_status_`` and
        ``temperature_message_`` record which case happened.

        Returns
        -------
        self
        """
        from ._calibration import fit_temperature_report

        z = self._logits(X_val)
        y = np.asarray(y_val)
        if y.ndim != 1 or y.shape[0] != z.shape[0]:
            raise ValueError(f"y_val must have shape ({z.shape[0]},) to match X_val, got shape {y.shape}")
        idx = np.clip(np.searchsorted(self.classes_, y), 0, self.classes_.shape[0] - 1)
        if not np.all(self.classes_[idx] == y):
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(f"y_val contains labels not in classes_: {unknown!r}")
        sw = v.check_sample_weight(sample_weight, z.shape[0], np.float64)
        fit = fit_temperature_report(z, idx, sw, _stacklevel=3)
        self.temperature_ = float(fit.temperature)
        # Whether T was estimated or kept (separated rows keep T = 1), as TemperatureScaling records it.
        self.temperature_status_, self.temperature_message_ = fit.status, fit.message
        return self
