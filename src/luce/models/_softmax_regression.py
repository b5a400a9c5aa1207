"""SoftmaxRegression: multinomial logistic regression with the scikit-learn estimator API.

The estimator validates, orchestrates and stores; the math is the :class:`~._objective.Objective`
and the optimisation lives in :mod:`._solvers`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ..distributed import fit_dask, is_dask_collection, predict_dask  # imports no dask
from ..functional import log_softmax, softmax
from . import _solvers
from . import _validation as v
from ._base import DTYPES, LinearClassifier
from ._objective import Objective

__all__ = ["SoftmaxRegression"]

# Below this many multiply-adds per pass (rows x features x classes) BLAS threads cost more than they
# save: thread hand-offs dominate (measured: iris fits 15x slower with 2 OpenBLAS threads on a busy host).
_SINGLE_THREAD_WORK = 1 << 22
_THREADPOOLS = None


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
        tutorial). ``"sgd"``: mini-batch epochs with momentum or Adam.
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

    # -- hyper-parameters (the shared ones are checked in LinearClassifier._params) ---------------
    def _check_solver_extras(self, p, name):
        p["threshold"] = None if self.threshold is None else v.check_real(self.threshold, "threshold", name)

    def _check_model_extras(self, p, name):
        cw = self.class_weight
        if not (cw is None or isinstance(cw, dict) or (isinstance(cw, str) and cw == "balanced")):
            raise ValueError(
                f"The 'class_weight' parameter of {name} must be an instance of 'dict', a str among "
                f"{{'balanced'}} or None. Got {cw!r} instead."
            )
        p["label_smoothing"] = v.check_real(
            self.label_smoothing, "label_smoothing", name, low=0.0, high=1.0, high_open=True
        )
        p["logit_dropout"] = v.check_real(
            self.logit_dropout, "logit_dropout", name, low=0.0, high=1.0, high_open=True
        )
        if p["logit_dropout"] and p["solver"] not in ("gd", "sgd"):
            raise ValueError(
                f"logit_dropout={self.logit_dropout!r} needs solver='gd' or 'sgd' (it makes the objective "
                f"random); got solver={p['solver']!r}"
            )

    # -- data -------------------------------------------------------------------------------------
    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse="csr", dtype=DTYPES)
        try:
            check_classification_targets(y)
        except TypeError:
            raise _mixed_labels(y) from None
        if sp.issparse(X):
            X = X.tocsr()
        return X, y

    def _class_sample_weight(self, y_idx, sample_weight, classes, y):
        """sample_weight times class_weight (None when both are absent)."""
        if self.class_weight is None:
            return sample_weight
        if isinstance(self.class_weight, dict):
            cw = compute_class_weight(self.class_weight, classes=classes, y=y)
        else:
            cw = compute_class_weight("balanced", classes=classes, y=y, sample_weight=sample_weight)
        base = np.ones(len(y_idx)) if sample_weight is None else sample_weight
        return (base * cw[y_idx]).astype(base.dtype if sample_weight is not None else np.float64)

    def _objective(self, X, y_idx, sw, p, n_classes):
        return Objective(
            X,
            y_idx,
            n_classes,
            sample_weight=sw,
            reg_strength=p["reg_strength"],
            fit_intercept=p["fit_intercept"],
            label_smoothing=p["label_smoothing"],
            logit_dropout=p["logit_dropout"],
        )

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X (n_samples, n_features)`` and labels ``y (n_samples,)``.

        Parameters
        ----------
        X : array-like or sparse matrix, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
            Labels of any type; at least two classes.
        sample_weight : array-like, shape (n_samples,), optional
            Non-negative weights (scaled freely: only their ratios and ``Σ w`` in the ``C`` mapping
            matter).

        Returns
        -------
        self
        """
        if is_dask_collection(X, y, sample_weight):  # blockwise on the dask workers (luce.distributed)
            return fit_dask(self, X, y, sample_weight)
        p = self._params()
        X, y = self._validate_xy(X, y, reset=True)
        classes, y_idx = _unique_labels(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {v.label_repr(classes[0])}"
            )
        sw = v.check_sample_weight(sample_weight, X.shape[0], X.dtype)
        sw = self._class_sample_weight(y_idx, sw, classes, y)
        if sw is not None:
            sw = np.asarray(sw, dtype=X.dtype)
            v.check_two_weighted_classes(np.bincount(y_idx, weights=sw, minlength=classes.shape[0]), classes)
        v.check_warm_start_classes(self, p["warm_start"], classes)
        self.classes_ = classes
        n_classes = classes.shape[0]
        solver = p["solver"]
        rng = self._rng()

        validation = None
        if p["early_stopping"] and solver in ("gd", "sgd"):
            train, val = _split(y_idx, p["validation_fraction"], rng)
            val_obj = Objective(
                X[val],
                y_idx[val],
                n_classes,
                sample_weight=None if sw is None else sw[val],
                fit_intercept=p["fit_intercept"],
            )
            validation = val_obj
            X_fit, y_fit, sw_fit = X[train], y_idx[train], None if sw is None else sw[train]
            if sw_fit is not None and not np.any(sw_fit > 0):
                raise ValueError(
                    "the training part of the early-stopping split has no positive sample_weight"
                )
        else:
            X_fit, y_fit, sw_fit = X, y_idx, sw
        objective = self._objective(X_fit, y_fit, sw_fit, p, n_classes)
        theta0 = self._start(objective, p["warm_start"])
        curve = []
        report = self._reporter(p["verbose"], curve)

        with _blas_threads_for(X_fit, n_classes):
            result = self._run_solver(objective, theta0, p, rng, validation, report)
        self._store(objective, result.theta, X.dtype)
        self._record(result, curve)
        self.temperature_ = 1.0
        self._warn_unconverged(result, solver)
        return self

    def _run_solver(self, objective, theta0, p, rng, validation, report):
        result = super()._run_solver(objective, theta0, p, rng, validation, report, threshold=p["threshold"])
        self._optimizer_state = result.state
        self._sgd_rng = rng
        return result

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of multinomial mini-batch steps on ``(X, y)`` (whatever ``solver`` is).

        Uses ``learning_rate``, ``momentum`` (the optimiser's memory carries over between calls),
        ``batch_size``, ``label_smoothing`` and ``logit_dropout``. ``classes`` must list every label on
        the first call (or come from a previous ``fit``).

        Returns
        -------
        self
        """
        p = self._params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y = self._validate_xy(X, y, reset=first)
        if classes is not None:
            cls = np.unique(np.asarray(classes))
            if cls.shape[0] < 2:
                raise ValueError(f"classes must hold at least 2 classes, got {cls!r}")
            if not first and not (cls.shape == self.classes_.shape and np.all(cls == self.classes_)):
                raise ValueError(
                    f"`classes={cls!r}` is not the same as on the last call to partial_fit: {self.classes_!r}"
                )
        else:
            cls = self.classes_
        y_idx = np.searchsorted(cls, y)
        y_idx = np.clip(y_idx, 0, cls.shape[0] - 1)
        if not np.all(cls[y_idx] == y):
            unknown = np.setdiff1d(np.unique(y), cls)
            raise ValueError(f"y contains labels not in classes: {unknown!r} (classes are {cls!r})")
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit (the class frequencies of a stream "
                "are unknown); pass a dict, e.g. from sklearn.utils.class_weight.compute_class_weight"
            )
        sw = v.check_sample_weight(sample_weight, X.shape[0], X.dtype)
        if isinstance(self.class_weight, dict):
            sw = self._class_sample_weight(y_idx, sw, cls, y).astype(X.dtype)
        n_classes = cls.shape[0]
        if first:
            self.classes_ = cls
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.temperature_ = 1.0
            self.validation_loss_curve_ = None
            self.best_validation_loss_ = None
            self._optimizer_state = {}
        objective = self._objective(X, y_idx, sw, p, n_classes)
        if not hasattr(self, "coef_"):
            theta = np.zeros(objective.n_params, dtype=objective.dtype)
        else:
            theta = objective.pack(self.coef_.astype(X.dtype), self.intercept_.astype(X.dtype))
        lr = getattr(self, "learning_rate_", None)
        if lr is None:
            lr = p["learning_rate"]
            if lr == "auto":
                lr = self._auto_learning_rate(objective, p)
        if not hasattr(self, "_sgd_rng"):
            self._sgd_rng = self._rng()
        state = getattr(self, "_optimizer_state", None)
        state = {} if state is None else state
        with _blas_threads_for(X, n_classes):
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
            momentum=p["momentum"],
            batch_size=p["batch_size"],
            max_iter=1,
            tol=0.0,
            n_iter_no_change=1,
            threshold=None,
            callback=self._reporter(p["verbose"], self.loss_curve_, offset=self.n_iter_),
            rng=self._sgd_rng,
            state=state,
        )

    # -- prediction (the logits are LinearClassifier._logits) -------------------------------------
    def decision_function(self, X):
        """The logits ``X @ coef_.T + intercept_``, shape (n_samples, n_classes).

        For binary problems, as scikit-learn, the 1-D logit difference ``z₁ - z₀`` (positive means
        ``classes_[1]``). The temperature is not applied.
        """
        if is_dask_collection(X):  # a lazy dask array, chunk for chunk
            return predict_dask(self, X, "decision_function")
        z = self._logits(X)
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    def predict(self, X):
        """The most probable class of each row, shape (n_samples,)."""
        if is_dask_collection(X):  # a lazy dask array, chunk for chunk
            return predict_dask(self, X, "predict")
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
        if is_dask_collection(X):  # a lazy dask array, chunk for chunk
            return predict_dask(self, X, "predict_proba")
        return softmax(self._tempered(X), axis=1)

    def predict_log_proba(self, X):
        """``log_softmax(logits / temperature_)`` computed without forming the probabilities."""
        if is_dask_collection(X):  # a lazy dask array, chunk for chunk
            return predict_dask(self, X, "predict_log_proba")
        return log_softmax(self._tempered(X), axis=1)

    # -- calibration ------------------------------------------------------------------------------
    def calibrate(self, X_val, y_val, sample_weight=None):
        """Fit ``temperature_ > 0`` by minimising the validation negative log-likelihood.

        ``T`` minimises ``Σ w_i CE(softmax(z_i / T), y_i)`` over held-out rows (temperature scaling,
        Guo et al. 2017). Predictions (``argmax``) do not change; probabilities become calibrated.

        Returns
        -------
        self
        """
        from ._calibration import fit_temperature

        z = self._logits(X_val)
        y = np.asarray(y_val)
        if y.ndim != 1 or y.shape[0] != z.shape[0]:
            raise ValueError(f"y_val must have shape ({z.shape[0]},) to match X_val, got shape {y.shape}")
        idx = np.clip(np.searchsorted(self.classes_, y), 0, self.classes_.shape[0] - 1)
        if not np.all(self.classes_[idx] == y):
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            raise ValueError(f"y_val contains labels not in classes_: {unknown!r}")
        sw = v.check_sample_weight(sample_weight, z.shape[0], np.float64)
        self.temperature_ = float(fit_temperature(z, idx, sw))
        return self


@contextlib.contextmanager
def _blas_threads_for(X, n_classes):
    """Single-threaded BLAS while fitting small problems (a no-op for large ones)."""
    global _THREADPOOLS
    if X.shape[0] * X.shape[1] * n_classes >= _SINGLE_THREAD_WORK:
        yield
        return
    if _THREADPOOLS is None:
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS = ThreadpoolController()
    with _THREADPOOLS.limit(limits=1, user_api="blas"):
        yield


def _unique_labels(y):
    """Sorted classes and the class index of each label; mixed label types are a TypeError."""
    try:
        classes, y_idx = np.unique(y, return_inverse=True)
    except TypeError:
        raise _mixed_labels(y) from None
    return classes, y_idx.reshape(-1)


def _mixed_labels(y):
    kinds = sorted({type(v).__name__ for v in np.asarray(y, dtype=object).ravel()})
    return TypeError(
        f"y mixes label types {kinds}: labels must be mutually comparable (all str or all numbers)"
    )


def _split(y_idx, fraction, rng):
    """Stratified train/validation row indices (plain random when a class is too small to stratify)."""
    n = y_idx.shape[0]
    n_val = max(1, round(fraction * n))
    if n - n_val < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows out of {n}")
    order = rng.permutation(n)
    counts = np.bincount(y_idx)
    if np.all(counts[counts > 0] >= 2):
        # Stratified: take about `fraction` of each class, at least one, never all.
        val = []
        for k in np.flatnonzero(counts):
            rows = order[y_idx[order] == k]
            take = min(max(1, round(fraction * rows.shape[0])), rows.shape[0] - 1)
            val.append(rows[:take])
        val = np.sort(np.concatenate(val))
    else:
        val = np.sort(order[:n_val])
    train = np.setdiff1d(np.arange(n), val)
    return train, val
