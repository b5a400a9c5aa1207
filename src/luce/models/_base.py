"""What the linear estimators share: hyper-parameter checks, the solver run and the fitted state.

:class:`LinearClassifier` is the base of :class:`~luce.models._softmax_regression.SoftmaxRegression` and
:class:`~luce.models._sigmoid.SigmoidRegression`. Both minimise a row-block objective (the contract of
:class:`~luce.models._objective.Objective`) with the solvers of :mod:`luce.models._solvers` and store
``coef_``/``intercept_`` the same way; what differs (targets, class weights, per-label thresholds, the
probabilities) stays in each estimator's own module.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _solvers
from . import _validation as v

__all__ = ["DTYPES", "LinearClassifier"]

SOLVERS = ("gd", "lbfgs", "newton-cg", "sgd")
DEFAULT_MAX_ITER = {"lbfgs": 100, "newton-cg": 100, "gd": 10_000, "sgd": 200}
DTYPES = [np.float64, np.float32]


class LinearClassifier(ClassifierMixin, BaseEstimator):
    """Base of the luce linear classifiers (not an estimator by itself).

    A subclass defines ``__init__`` with the shared hyper-parameters (``reg_strength``, ``solver``,
    ``learning_rate``, ``max_iter``, ``tol``, ``batch_size``, ``momentum``, ``fit_intercept``,
    ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``warm_start``, ``random_state``,
    ``verbose``) and its own, checks its own in :meth:`_check_solver_extras` / :meth:`_check_model_extras`
    and gives the ``"auto"`` step size of gd/sgd in :meth:`_auto_learning_rate`.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- hyper-parameters -------------------------------------------------------------------------
    def _params(self):
        """Validate every hyper-parameter; return the resolved values."""
        name = type(self).__name__
        p = {}
        p["reg_strength"] = v.check_real(
            self.reg_strength, "reg_strength", name, low=0.0, high=math.inf, high_open=True
        )
        p["solver"] = v.check_option(self.solver, "solver", name, SOLVERS)
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
        self._check_solver_extras(p, name)
        if self.max_iter is None:
            p["max_iter"] = DEFAULT_MAX_ITER[p["solver"]]
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
        self._check_model_extras(p, name)
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
        if not (rs is None or isinstance(rs, numbers.Integral | np.random.RandomState)) or isinstance(
            rs, bool
        ):
            raise ValueError(
                f"The 'random_state' parameter of {name} must be an int, a numpy.random.RandomState or None. "
                f"Got {rs!r} instead."
            )
        vb = self.verbose
        if not callable(vb):
            if isinstance(vb, bool | np.bool_):
                vb = int(vb)
            vb = v.check_int(vb, "verbose", name, low=0)
        p["verbose"] = vb
        return p

    def _check_solver_extras(self, p, name):
        """Check the estimator's own solver settings into ``p`` (after ``learning_rate``)."""

    def _check_model_extras(self, p, name):
        """Check the estimator's own model settings into ``p`` (after ``fit_intercept``)."""

    def _rng(self):
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return np.random.default_rng(seed)

    # -- fitting ----------------------------------------------------------------------------------
    def _reporter(self, verbose, curve, offset=0):
        def report(i, loss):
            i += offset
            loss = float(loss)
            curve.append(loss)
            if callable(verbose):
                verbose(i, loss)
            elif verbose >= 2 or (verbose == 1 and i % 100 == 0):
                print(f"Iter(Epoch): {i}, Loss: {loss:.6f}", flush=True)

        return report

    def _start(self, objective, warm):
        """The previous ``coef_``/``intercept_`` with ``warm`` and matching shapes, else zeros."""
        if (
            warm
            and hasattr(self, "coef_")
            and self.coef_.shape == (objective.n_classes, objective.n_features)
        ):
            return objective.pack(self.coef_, self.intercept_)
        return np.zeros(objective.n_params, dtype=objective.dtype)

    def _store(self, objective, theta, dtype):
        coef, intercept = objective.unpack(theta)
        self.coef_ = np.array(coef, dtype=dtype, copy=True)
        if intercept is None:
            self.intercept_ = np.zeros(objective.n_classes, dtype=dtype)
        else:
            self.intercept_ = np.array(intercept, dtype=dtype, copy=True)

    def _auto_learning_rate(self, objective, p):
        """The step size of gd/sgd for ``learning_rate="auto"``."""
        return _solvers.auto_learning_rate(objective, p["momentum"])

    def _run_solver(self, objective, theta0, p, rng, validation, report, **stopping):
        """Run ``p["solver"]`` from ``theta0``; ``stopping`` goes to gd/sgd only (e.g. ``threshold``)."""
        solver = p["solver"]
        if solver in ("lbfgs", "newton-cg"):
            run = _solvers.lbfgs if solver == "lbfgs" else _solvers.newton_cg
            return run(objective, theta0, max_iter=p["max_iter"], tol=p["tol"], callback=report)
        lr = p["learning_rate"]
        if lr == "auto":
            lr = self._auto_learning_rate(objective, p)
        common = dict(
            learning_rate=lr,
            max_iter=p["max_iter"],
            tol=p["tol"],
            n_iter_no_change=p["n_iter_no_change"],
            callback=report,
            rng=rng,
            validation=validation,
            **stopping,
        )
        if solver == "gd":
            return _solvers.gradient_descent(objective, theta0, **common)
        return _solvers.sgd(objective, theta0, momentum=p["momentum"], batch_size=p["batch_size"], **common)

    def _record(self, result, curve):
        """The fitted attributes every solver run leaves (after ``coef_`` and ``intercept_``)."""
        self.n_iter_ = int(result.n_iter)
        self.loss_curve_ = curve
        self.learning_rate_ = None if result.learning_rate is None else float(result.learning_rate)
        self.validation_loss_curve_ = result.validation_loss_curve
        self.best_validation_loss_ = result.best_validation_loss

    def _warn_unconverged(self, result, solver):
        """``ConvergenceWarning`` (pointing at the caller of ``fit``) when the run did not converge."""
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__} (solver={solver!r}) did not converge: {result.message}. Increase "
                "max_iter, scale the features, or loosen tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -- prediction and persistence ---------------------------------------------------------------
    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=DTYPES)
        z = X @ self.coef_.T
        if sp.issparse(z):
            z = z.toarray()
        z = np.asarray(z)
        z += self.intercept_
        return z

    def save(self, path):
        """Write the fitted model to ``path`` with :func:`luce.save` (safetensors + JSON, no pickle)."""
        from luce.io import save

        return save(self, path)
