"""Temperature scaling (Guo et al. 2017): one temperature ``T > 0`` fitted on held-out logits.

The negative log-likelihood of ``softmax(z / T)`` is convex in the inverse temperature ``β = 1/T``
(a log-sum-exp of functions linear in β minus a linear term), so its minimiser is the single root of
the derivative, which is increasing in β. :func:`fit_temperature` finds that root with Newton's method
safeguarded by a bracket (``rtsafe``, Press et al., Numerical Recipes §9.4): the exact second derivative
(a weighted variance of the logits) gives quadratic convergence, and a geometric bisection step replaces
any Newton step that leaves the bracket. The fit keeps one float64 copy of the logits (relative to the
true class) and processes it in blocks of ``_BLOCK`` elements.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .. import _validation as v
from ..functional import log_softmax, softmax
from ._validation import check_sample_weight

__all__ = ["TemperatureFit", "TemperatureScaling", "fit_temperature", "fit_temperature_report"]

# Elements of the (classes x rows) temporaries processed at once: 1 MiB blocks stay in cache across the
# dozen passes of one evaluation (1.5x faster than 8 MiB blocks on 100k x 100 logits).
_BLOCK = 1 << 17
# The floor of probabilities read from predict_proba / predict_log_proba: float64 machine epsilon, the
# clip of sklearn.metrics.log_loss (a zero probability would make the log-loss infinite).
_LOG_EPS = math.log(np.finfo(np.float64).eps)
_RESPONSE_METHODS = ("auto", "decision_function", "predict_log_proba", "predict_proba")


def _check_logits(logits, name="logits"):
    """Validate logits and return ``(array, binary_1d)``; 1-D input means binary log-odds."""
    arr = np.asarray(logits)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if not arr.dtype.isnative:  # big-endian float32 stays float32
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind != "f" or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        return arr, True
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_classes) or (n_samples,) for binary log-odds, "
            f"got shape {arr.shape}"
        )
    if arr.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes along axis 1, got shape {arr.shape}")
    return arr, False


def _binary_to_two_columns(d):
    """Binary log-odds ``d`` as the two-class logits ``[0, d]`` (``softmax([0, d])[1] == sigmoid(d)``)."""
    out = np.zeros((d.shape[0], 2), dtype=d.dtype)
    out[:, 1] = d
    return out


def _check_class_indices(y, n_samples, n_classes):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"y must have shape ({n_samples},) to match the logits, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("y must hold integer class indices when fitting on logits")
        y = y.astype(np.intp)
    elif y.dtype.kind not in "iu":
        raise TypeError(
            f"y must hold integer class indices in [0, {n_classes}) when fitting on logits, "
            f"got dtype {y.dtype}; pass estimator= to fit on labels"
        )
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"y must hold class indices in [0, {n_classes}) for logits of {n_classes} classes, "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y.astype(np.intp, copy=False)


def _check_sample_weight(sample_weight, n_samples):
    if sample_weight is None:
        return np.ones(n_samples)
    return check_sample_weight(sample_weight, n_samples, np.float64)


def _check_bounds(bounds):
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be a pair of numbers (T_min, T_max), got {bounds!r}") from None
    lo = v.check_real(lo, "bounds[0] (T_min)", what="a real number")
    hi = v.check_real(hi, "bounds[1] (T_max)", what="a real number")
    if not (0 < lo < hi < math.inf):
        raise ValueError(f"bounds must satisfy 0 < T_min < T_max < inf, got {bounds!r}")
    return lo, hi


class _TemperatureObjective:
    """Weighted mean NLL of ``softmax(β z)`` and its first two derivatives in β.

    With ``c_ij = z_ij - z_{i,y_i}`` (so ``c_{i,y_i} = 0``), the per-row NLL is ``logsumexp_j(β c_ij)``,
    its derivative is the mean of ``c_i`` under ``p_i = softmax(β c_i)`` and its second derivative is
    their variance: convex, and increasing derivative. ``-inf`` logits (impossible classes) get
    probability 0 at every β and are left out.
    """

    def __init__(self, logits, y, w):
        n, k = logits.shape
        self.w = w / w.sum()
        self.blocks = []
        rows = max(1, _BLOCK // max(k, 1))
        for start in range(0, n, rows):
            z = np.asarray(logits[start : start + rows], dtype=np.float64)
            yb = y[start : start + rows]
            # Laid out (classes, rows): every reduction over classes is then a vectorised elementwise
            # operation across contiguous rows instead of a loop over short rows.
            c = np.ascontiguousarray((z - z[np.arange(z.shape[0]), yb][:, None]).T)
            finite = np.isfinite(c)
            self.blocks.append((start, np.where(finite, c, 0.0), None if finite.all() else finite))
        # Every logit equal to the true class's: the NLL is log(K) whatever T is.
        self.constant = not any(np.any(c != 0.0) for _, c, _ in self.blocks)
        # Every row's true class is a largest logit: the NLL decreases in β all the way to β → ∞
        # (T → 0), so the likelihood has no finite maximiser (the logistic-regression separation case).
        self.separated = not self.constant and all(np.all(c <= 0.0) for _, c, _ in self.blocks)

    def __call__(self, beta):
        f = g = h = 0.0
        for start, c, finite in self.blocks:
            w = self.w[start : start + c.shape[1]]
            s = beta * c
            if finite is not None:
                s[~finite] = -np.inf
            # Max shift (standard): the exponents s - m are <= 0; the true class has s = 0, so m >= 0.
            m = s.max(axis=0)
            s -= m
            e = np.exp(s, out=s)
            total = e.sum(axis=0)
            e /= total  # e now holds the probabilities p
            mean = (e * c).sum(axis=0)
            dev = c - mean
            dev *= dev
            dev *= e
            # Weighted sums by einsum, not BLAS dot: a multi-threaded ddot on 1-D vectors costs more in
            # thread start-up than it saves.
            f += np.einsum("i,i->", w, m + np.log(total))
            g += np.einsum("i,i->", w, mean)
            h += np.einsum("i,i->", w, dev.sum(axis=0))
        return f, g, h


class TemperatureFit(NamedTuple):
    """The outcome of a temperature fit: the temperature, how it was decided, and why.

    ``status`` is ``"estimated"`` (the minimiser of the NLL), ``"constant"`` (every row's logits are
    equal: ``T`` changes nothing, 1.0), ``"separated"`` (the held-out rows are perfectly separated: no
    finite estimate exists and the model's own temperature 1.0 is kept, clipped to the bounds),
    ``"lower_bound"`` or ``"upper_bound"`` (the minimiser lies beyond a bound of the search interval,
    which is returned). ``message`` explains the last three (it is the text of the warning) and is
    empty otherwise.
    """

    temperature: float
    status: str
    message: str


def fit_temperature(logits, y, sample_weight=None, *, bounds=(1e-3, 1e3), max_iter=200):
    r"""The temperature minimising the weighted NLL of ``softmax(logits / T)`` on labelled rows.

    .. math:: T^\star = \arg\min_{T \in [T_{min}, T_{max}]}
              \sum_i w_i \Big(\log \sum_j e^{z_{ij}/T} - z_{i,y_i}/T\Big)

    Parameters
    ----------
    logits : array_like, shape (n_samples, n_classes) or (n_samples,)
        Held-out logits; a 1-D array is binary log-odds ``d`` (the logits ``[0, d]``). ``-inf`` marks an
        impossible class; NaN, ``+inf`` and a ``-inf`` true class raise ``ValueError``.
    y : array_like of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    sample_weight : array_like, shape (n_samples,), optional
        Non-negative weights; the default weighs every row 1.
    bounds : (float, float), default (1e-3, 1e3)
        The interval searched. If the minimiser lies beyond a bound, that bound is returned with a
        ``ConvergenceWarning``.
    max_iter : int, default 200
        Safeguarded-Newton iterations (convergence takes about 6 to 10).

    Returns
    -------
    float
        The fitted temperature ``T``; 1.0 when every row's logits are constant (the NLL does not
        depend on ``T``) and when the rows are perfectly separated (see Notes).

    Notes
    -----
    **Separated rows.** When every held-out row's true class has the largest logit, the NLL keeps
    falling as ``T → 0``: the maximum-likelihood temperature does not exist (it is the boundary
    ``T = 0``), exactly as logistic regression has no finite estimate on separable data. Returning the
    smallest temperature searched would make every later prediction nearly one-hot, and a single
    mistake on new data would then cost a huge log-loss (digits: test log-loss 0.39 becomes 40). The
    rows only show that sharpening does not hurt *them*; they do not say by how much to sharpen. So
    the fit refuses to sharpen: it keeps the model's own temperature ``T = 1`` (clipped to
    ``bounds``) and warns (``ConvergenceWarning``). More validation rows, including some the model
    gets wrong, give an estimate. :func:`fit_temperature_report` says which case happened.

    Examples
    --------
    Three of four rows are right with margin 4, so the fit makes the confidence 3/4:
    ``sigmoid(4 / T) = 3/4``, ``T = 4 / log 3``.

    >>> import math
    >>> from luce.models._calibration import fit_temperature
    >>> fit_temperature([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]], [0, 1, 1, 0])
    3.6409569065073...
    >>> 4 / math.log(3)
    3.640956906507...

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
    A. Albert, J. A. Anderson, "On the existence of maximum likelihood estimates in logistic regression
    models", Biometrika 71 (1984): no finite estimate on separated data.
    """
    return fit_temperature_report(
        logits, y, sample_weight, bounds=bounds, max_iter=max_iter, _stacklevel=3
    ).temperature


@v.own_errstate
def fit_temperature_report(logits, y, sample_weight=None, *, bounds=(1e-3, 1e3), max_iter=200, _stacklevel=2):
    """:func:`fit_temperature` returning a :class:`TemperatureFit` ``(temperature, status, message)``.

    Warns as :func:`fit_temperature` does (``ConvergenceWarning`` unless ``status`` is
    ``"estimated"`` or ``"constant"``).

    Examples
    --------
    >>> import warnings
    >>> from luce.models._calibration import fit_temperature_report
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     fit = fit_temperature_report([[4.0, 0.0], [0.0, 4.0]], [0, 1])  # both rows right
    >>> fit.temperature, fit.status
    (1.0, 'separated')
    """
    z, binary = _check_logits(logits)
    if binary:
        z = _binary_to_two_columns(z)
    n, k = z.shape
    if n == 0:
        raise ValueError("logits must have at least one row to fit a temperature, got shape (0, ...)")
    yi = _check_class_indices(y, n, k)
    w = _check_sample_weight(sample_weight, n)
    t_min, t_max = _check_bounds(bounds)
    max_iter = v.check_int(max_iter, "max_iter", low=1)
    if np.isnan(z).any() or np.isposinf(z).any():
        raise ValueError("logits must not contain NaN or +inf")
    true = z[np.arange(n), yi]
    if np.isneginf(true[w > 0]).any():
        row = int(np.flatnonzero(np.isneginf(true) & (w > 0))[0])
        raise ValueError(
            f"the logit of the true class is -inf in row {row}: its likelihood is 0 at every temperature"
        )
    keep = w > 0
    if not keep.all():
        z, yi, w = z[keep], yi[keep], w[keep]
    objective = _TemperatureObjective(z, yi, w)
    fit = _solve(objective, t_min, t_max, max_iter)
    if fit.message:
        warnings.warn(fit.message, ConvergenceWarning, stacklevel=_stacklevel + 1)
    return fit


def _at_bound(bound, t):
    if bound == "max":
        message = (
            f"the NLL decreases up to the largest temperature T_max={t:g} (the logits carry no information "
            "about the labels, or anti-predict them); returning T_max"
        )
        return TemperatureFit(t, "upper_bound", message)
    message = (
        f"the NLL decreases down to the smallest temperature T_min={t:g} (the minimiser lies below the "
        "search interval); returning T_min"
    )
    return TemperatureFit(t, "lower_bound", message)


def _separated(t_min, t_max):
    t = min(max(1.0, t_min), t_max)
    message = (
        "every validation row is classified right by its largest logit (the rows are perfectly "
        "separated): the log-loss keeps falling as T -> 0, so the data give no finite temperature and "
        f"sharpening to the search bound would make new predictions overconfident; keeping T={t:g} "
        "(the model's own). Calibrate on more validation rows, including some the model gets wrong"
    )
    return TemperatureFit(t, "separated", message)


def _solve(objective, t_min, t_max, max_iter) -> TemperatureFit:
    """Root of the increasing derivative g(β) in [1/T_max, 1/T_min] by bracketed Newton.

    The bracket ends are the bounds until the iteration needs them: a bound is evaluated only when a
    Newton step would cross it (most fits never evaluate either), and the bracket then shrinks to the
    points already evaluated. Separated rows (no root at any finite β) are decided before iterating,
    from the logits, not from a derivative that underflows to 0 at large β.
    """
    if objective.constant:
        return TemperatureFit(1.0, "constant", "")  # all logits of every row are equal
    if objective.separated:
        return _separated(t_min, t_max)
    lo, hi = 1.0 / t_max, 1.0 / t_min  # the bracket in β = 1/T
    lo_checked = hi_checked = False
    beta = min(max(1.0, lo), hi)
    for _ in range(max_iter):
        _, g, h = objective(beta)
        if g == 0.0:
            break
        if g < 0.0:
            lo, lo_checked = beta, True
        else:
            hi, hi_checked = beta, True
        new = beta - g / h if h > 0.0 else math.nan
        if not lo < new < hi:
            # The step leaves the bracket: make sure the root lies inside it, then bisect geometrically
            # (the bracket can span decades).
            if g < 0.0 and not hi_checked:
                if objective(hi)[1] <= 0.0:
                    return _at_bound("min", t_min)
                hi_checked = True
            elif g > 0.0 and not lo_checked:
                if objective(lo)[1] >= 0.0:
                    return _at_bound("max", t_max)
                lo_checked = True
            new = math.sqrt(lo * hi)
        done = abs(new - beta) <= 4.0 * np.finfo(np.float64).eps * beta
        beta = new
        if done or (lo_checked and hi_checked and hi - lo <= 1e-15 * hi):
            break
    return TemperatureFit(float(1.0 / beta), "estimated", "")


class TemperatureScaling(ClassifierMixin, BaseEstimator):
    r"""Temperature scaling: calibrated probabilities ``softmax(logits / T)`` with one fitted ``T > 0``.

    .. math:: \hat p(x) = \mathrm{softmax}\big(z(x) / T\big), \qquad
              T = \arg\min_T \; -\sum_i w_i \log \mathrm{softmax}\big(z_i / T\big)_{y_i}

    fitted on held-out data. Dividing by a positive ``T`` never changes the arg-max, so predictions
    (and accuracy) stay exactly those of the model; only the confidence changes: ``T > 1`` softens an
    over-confident model.

    Two ways to use it:

    - on logits (``estimator=None``): ``fit(logits, y)`` with ``logits (n_samples, n_classes)`` (or
      ``(n_samples,)`` binary log-odds, meaning ``[0, d]``) and ``y`` integer class indices;
      ``predict_proba(logits)``;
    - on a fitted classifier (luce or scikit-learn): ``TemperatureScaling(clf).fit(X_val, y_val)`` with
      labels from ``clf.classes_``; ``predict_proba(X)``. The logits come from ``response_method``.

    Parameters
    ----------
    estimator : fitted classifier, optional
        A classifier with ``classes_``, never refitted. Leave it out to work on logits directly.
        (``sklearn.base.clone`` returns an unfitted copy of it: wrap it in
        ``sklearn.frozen.FrozenEstimator`` when the calibrator goes through ``clone``.)
    response_method : {"auto", "decision_function", "predict_log_proba", "predict_proba"}, default "auto"
        Where the estimator's logits come from. ``"auto"`` takes ``decision_function`` when the estimator
        has it (exact logits for softmax and logistic regression; a binary ``(n,)`` score ``d`` becomes
        ``[0, d]``), else ``predict_log_proba``, else the log of ``predict_proba``; probabilities are
        floored at the float64 machine epsilon first (as ``sklearn.metrics.log_loss`` clips them), so
        a class a forest gives probability 0 stays possible. For models that are
        not softmax models, ``softmax(decision_function / T)`` is itself a calibration map (for a binary
        model, Platt scaling without intercept), so ``predict_proba`` at ``T = 1`` need not equal the
        estimator's own.
    bounds : (float, float), default (1e-3, 1e3)
        The interval searched for ``T``; hitting a bound warns (``ConvergenceWarning``). Validation rows
        that are all classified right give no finite estimate: ``T = 1`` is kept, with a warning.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature.
    temperature_status_ : str
        How ``temperature_`` was decided: ``"estimated"`` (the NLL minimiser), ``"separated"`` (the
        validation rows are perfectly separated, so no finite estimate exists and ``T = 1`` is kept:
        see :func:`~luce.models._calibration.fit_temperature`), ``"constant"`` (logits constant in every
        row), ``"lower_bound"`` or ``"upper_bound"`` (the minimiser lies beyond ``bounds``).
    temperature_message_ : str
        Why, for the statuses other than ``"estimated"`` and ``"constant"`` (the text of the
        ``ConvergenceWarning`` issued by ``fit``); empty otherwise.
    classes_ : ndarray, shape (n_classes,)
        The estimator's classes, or ``arange(n_classes)`` on logits.
    n_features_in_ : int
        Columns of the input: features of the estimator, or ``n_classes`` on logits.
    feature_names_in_ : ndarray of str
        The estimator's, when it has them.

    Notes
    -----
    The dtype rule of luce holds: float32 logits give float32 probabilities. The temperature is fitted in
    float64 by a safeguarded Newton iteration on the derivative of the NLL in ``1/T``, where the NLL is
    convex (:func:`luce.models._calibration.fit_temperature`), to full float64 precision.

    Examples
    --------
    >>> import numpy as np
    >>> import luce
    >>> logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]])
    >>> ts = luce.TemperatureScaling().fit(logits, [0, 1, 1, 0])
    >>> round(ts.temperature_, 6)          # 4 / log(3): three of the four rows are right
    3.640957
    >>> ts.predict_proba([[4.0, 0.0], [-1.0, 1.0]]).round(3)
    array([[0.75 , 0.25 ],
           [0.366, 0.634]])
    >>> ts.predict([[4.0, 0.0], [-1.0, 1.0]])
    array([0, 1])

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
    """

    def __init__(self, estimator=None, *, response_method="auto", bounds=(1e-3, 1e3)):
        self.estimator = estimator
        self.response_method = response_method
        self.bounds = bounds

    # -- logits ---------------------------------------------------------------------------------
    def _raw_logits(self, X):
        """Uncalibrated logits: X itself, or the estimator's response, as (array, binary_1d)."""
        if self.estimator is None:
            return _check_logits(X, name="X (logits)")
        method = self.response_method
        if method not in _RESPONSE_METHODS:
            raise ValueError(f"response_method must be one of {_RESPONSE_METHODS}, got {method!r}")
        if method == "auto":
            for candidate in ("decision_function", "predict_log_proba", "predict_proba"):
                if hasattr(self.estimator, candidate):
                    method = candidate
                    break
            else:
                raise TypeError(
                    f"estimator {type(self.estimator).__name__} has none of decision_function, "
                    "predict_log_proba, predict_proba"
                )
        if not hasattr(self.estimator, method):
            raise TypeError(f"estimator {type(self.estimator).__name__} has no method {method!r}")
        # Probabilities of exactly 0 (a random forest's) would be -inf logits: log(0) is taken
        # deliberately, silently, and floored at log(eps) below.
        with np.errstate(divide="ignore"):
            out = getattr(self.estimator, method)(X)
            if method == "predict_proba":
                out = np.log(np.asarray(out))
        if method != "decision_function":
            out = np.asarray(out)
            if out.dtype.kind == "f":
                out = np.maximum(out, out.dtype.type(_LOG_EPS))
        return _check_logits(out, name=f"estimator.{method}(X)")

    def _logits(self, X):
        check_is_fitted(self, "temperature_")
        z, binary = self._raw_logits(X)
        if binary:
            z = _binary_to_two_columns(z)
        if z.shape[1] != len(self.classes_):
            raise ValueError(
                f"logits have {z.shape[1]} classes along axis 1 but the calibrator was fitted with "
                f"{len(self.classes_)}"
            )
        return z

    # -- fitting --------------------------------------------------------------------------------
    @v.own_errstate
    def fit(self, X, y, sample_weight=None):
        """Fit the temperature on held-out rows.

        Parameters
        ----------
        X : array_like
            Logits ``(n_samples, n_classes)`` / ``(n_samples,)`` without an estimator; the estimator's
            input otherwise.
        y : array_like, shape (n_samples,)
            Class indices on logits; labels from ``estimator.classes_`` otherwise.
        sample_weight : array_like, shape (n_samples,), optional
            Non-negative row weights.

        Returns
        -------
        self
        """
        if self.estimator is not None:
            check_is_fitted(self.estimator)
            if not hasattr(self.estimator, "classes_"):
                raise TypeError(
                    f"estimator {type(self.estimator).__name__} has no classes_: not a classifier"
                )
        z, binary = self._raw_logits(X)
        if binary:
            z = _binary_to_two_columns(z)
        if self.estimator is None:
            classes = np.arange(z.shape[1])
            y_idx = _check_class_indices(y, z.shape[0], z.shape[1])
            self.n_features_in_ = z.shape[1]
        else:
            classes = np.asarray(self.estimator.classes_)
            if len(classes) != z.shape[1]:
                raise ValueError(
                    f"the estimator has {len(classes)} classes but its logits have {z.shape[1]} columns"
                )
            y_idx = _labels_to_indices(y, classes, z.shape[0])
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(self.estimator, name):
                    setattr(self, name, getattr(self.estimator, name))
        self.classes_ = classes
        fit = fit_temperature_report(z, y_idx, sample_weight, bounds=_check_bounds(self.bounds))
        self.temperature_ = fit.temperature
        self.temperature_status_ = fit.status
        self.temperature_message_ = fit.message
        return self

    # -- prediction -----------------------------------------------------------------------------
    @v.own_errstate
    def decision_function(self, X):
        """Calibrated logits ``logits / T``, shape (n_samples, n_classes), in the dtype of the logits."""
        z = self._logits(X)
        return z / z.dtype.type(self.temperature_)

    @v.own_errstate
    def transform(self, X):
        """Calibrated logits ``logits / T`` in the input's shape: ``(n_samples,)`` stays 1-D.

        Same as :meth:`decision_function` except that binary 1-D log-odds keep their shape.
        """
        check_is_fitted(self, "temperature_")
        z, _ = self._raw_logits(X)
        return z / z.dtype.type(self.temperature_)

    @v.own_errstate
    def predict_proba(self, X):
        """Calibrated probabilities ``softmax(logits / T)``, shape (n_samples, n_classes)."""
        return softmax(self._logits(X), axis=1, temperature=self.temperature_)

    @v.own_errstate
    def predict_log_proba(self, X):
        """Calibrated log-probabilities ``log_softmax(logits / T)``, shape (n_samples, n_classes)."""
        return log_softmax(self._logits(X), axis=1, temperature=self.temperature_)

    def predict(self, X):
        """The arg-max class, unchanged by the temperature: ``classes_[argmax(logits)]``."""
        return self.classes_[np.argmax(self._logits(X), axis=1)]


def _labels_to_indices(y, classes, n_samples):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"y must have shape ({n_samples},) to match X, got shape {y.shape}")
    order = np.argsort(classes, kind="stable")
    try:
        pos = np.searchsorted(classes, y, sorter=order)
    except TypeError:
        raise TypeError(f"y of dtype {y.dtype} cannot be compared with classes_ {classes!r}") from None
    pos = np.minimum(pos, len(classes) - 1)
    idx = order[pos]
    bad = classes[idx] != y
    if np.any(bad):
        unknown = np.unique(y[bad])[:5]
        raise ValueError(f"y contains labels not in the estimator's classes_ {classes!r}: {unknown!r}")
    return idx
