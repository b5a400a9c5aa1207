"""The fit skeleton every linear estimator shares (luce.models._base): inputs a new user tries get an
answer (a fit, or a clear error naming what is wrong), the same for every estimator."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import scale

from luce.models import HierarchicalSoftmaxClassifier, SigmoidRegression, SoftmaxRegression

ESTIMATORS = [SoftmaxRegression, SigmoidRegression, HierarchicalSoftmaxClassifier]
WITH_CLASS_WEIGHT = [SoftmaxRegression, HierarchicalSoftmaxClassifier]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return scale(X), y


def _coef(est):
    return est.node_coef_ if hasattr(est, "node_coef_") else est.coef_


@pytest.mark.parametrize("weight", [5e-324, 1e-300, 1e308], ids=["subnormal", "tiny", "huge"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_weights_are_freely_scalable(cls, weight, iris):
    # The objective is the weighted mean, so a constant weight of any size is the unweighted fit.
    X, y = iris
    plain = cls(reg_strength=1e-2, tol=1e-8).fit(X, y)
    weighted = cls(reg_strength=1e-2, tol=1e-8).fit(X, y, sample_weight=np.full(len(y), weight))
    np.testing.assert_allclose(_coef(weighted), _coef(plain), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_huge_and_tiny_weights_together_keep_their_ratio(cls, iris):
    X, y = iris
    sw = np.where(np.arange(len(y)) % 2 == 0, 1e308, 0.5e308)
    ref = cls(reg_strength=1e-2, tol=1e-8).fit(X, y, sample_weight=np.where(sw > 0.7e308, 2.0, 1.0))
    got = cls(reg_strength=1e-2, tol=1e-8).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(_coef(got), _coef(ref), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_features_that_overflow_the_dtype_are_a_clear_error(cls, iris):
    X, y = iris
    X32 = (X * 3e38 / np.abs(X).max()).astype(np.float32)
    if cls is HierarchicalSoftmaxClassifier:  # trains in float64: these features fit (slowly: unscaled)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = cls().fit(X32, y)
        assert np.all(np.isfinite(est.node_coef_)) and est.score(X32, y) > 0.9
        return
    with pytest.raises(ValueError, match=r"X holds values up to 3e\+38: in float32 the gradient sums"):
        cls().fit(X32, y)


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.nan, r"Input X contains NaN: \w+ does not accept missing values"), (-np.inf, r"infinity \(-inf\)")],
    ids=["nan", "-inf"],
)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_non_finite_features_are_a_clear_error_in_fit_and_partial_fit(cls, sparse, value, message, iris):
    X, y = iris
    bad = X.copy()
    bad[7, 2] = value
    bad = sp.csr_matrix(bad) if sparse else bad
    with pytest.raises(ValueError, match=message):
        cls().fit(bad, y)
    if hasattr(cls, "partial_fit"):
        with pytest.raises(ValueError, match=message):
            cls().partial_fit(bad, y, classes=np.unique(y))


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf, "heavy"], ids=["nan", "negative", "inf", "str"])
@pytest.mark.parametrize("cls", WITH_CLASS_WEIGHT, ids=lambda c: c.__name__)
def test_bad_class_weights_are_refused(cls, bad, iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"'class_weight' parameter of \w+ must map each class to a finite"):
        cls(class_weight={0: bad}).fit(X, y)


@pytest.mark.parametrize("cls", WITH_CLASS_WEIGHT, ids=lambda c: c.__name__)
def test_zero_class_weight_drops_the_class_mass(cls, iris):
    # A zero class weight is the same fit as a zero sample weight on that class's rows.
    X, y = iris
    a = cls(reg_strength=1e-2, tol=1e-8, class_weight={0: 0.0, 1: 2.0}).fit(X, y)
    b = cls(reg_strength=1e-2, tol=1e-8).fit(X, y, sample_weight=np.select([y == 0, y == 1], [0.0, 2.0], 1.0))
    np.testing.assert_allclose(_coef(a), _coef(b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_warm_start_with_other_features_is_refused(cls, iris):
    X, y = iris
    est = cls(warm_start=True).fit(X, y)
    with pytest.raises(
        ValueError, match="warm_start=True continues the previous fit, which had 4 features; X has 3"
    ):
        est.fit(X[:, :3], y)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_warm_start_with_other_classes_is_refused(cls, iris):
    X, y = iris
    est = cls(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=re.escape("warm_start=True needs the classes of the previous fit")):
        est.fit(X, np.where(y == 2, 7, y))


def test_sigmoid_warm_start_with_another_kind_of_target_is_refused(iris):
    X, y = iris
    est = SigmoidRegression(warm_start=True).fit(X, y)
    Y = np.eye(3, dtype=int)[y]
    with pytest.raises(ValueError, match="trained on a 1-D class vector; y is a multi-label indicator"):
        est.fit(X, Y)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_mixed_and_missing_labels_are_named(cls, iris):
    X, _ = iris
    X = X[:6]
    with pytest.raises(TypeError, match=re.escape("y mixes label types ['int', 'str']")):
        cls().fit(X, np.array([1, "a", 2, "b", 1, "a"], dtype=object))
    with pytest.raises(ValueError, match=r"y contains a missing label \(<NA>\) at position 2"):
        cls().fit(X, pd.Series([1, 2, pd.NA, 1, 2, 1], dtype=object))
    with pytest.raises(ValueError, match=r"y contains a missing label \(None\) at position 0"):
        cls().fit(X, [None, "a", "b", "a", "b", "a"])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_threshold_stops_gradient_descent_below_the_loss(cls, iris):
    # The tutorial's rule, the same in every estimator: stop as soon as the training loss is below it.
    X, y = iris
    threshold = 0.7 if cls is SigmoidRegression else 0.5  # a sum of three binary losses: larger
    kwargs = {"solver": "gd", "learning_rate": 0.1, "threshold": threshold, "max_iter": 5000}
    if cls is SigmoidRegression:
        with pytest.warns(FutureWarning, match="decision threshold on the probability is decision_threshold"):
            est = cls(**kwargs).fit(X, y)
    else:
        est = cls(**kwargs).fit(X, y)
    assert est.loss_curve_[-1] < threshold <= min(est.loss_curve_[:-1])


def test_sigmoid_decision_threshold_is_the_parameter_shown():
    est = SigmoidRegression(decision_threshold=0.3)
    params = est.get_params()
    assert params["decision_threshold"] == 0.3 and params["threshold"] is None
    with pytest.raises(TypeError, match=r"decision threshold on the probability .* is decision_threshold"):
        SigmoidRegression(threshold=[0.3, 0.5]).fit(np.eye(2), [0, 1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_early_stopping_split_is_stratified(cls, iris, monkeypatch):
    # A class of 10 rows in 110: a 10% stratified split holds exactly 1 of them, 5 of each other class
    # (a plain random split misses the small class about a third of the time).
    from luce.models import _base

    X, y = iris
    rows = np.concatenate([np.flatnonzero(y == 0)[:10], np.flatnonzero(y != 0)[:100]])
    X, y = X[rows], y[rows]
    splits = []
    real = _base._split
    monkeypatch.setattr(_base, "_split", lambda *a: splits.append(real(*a)) or splits[-1])
    for seed in range(10):
        est = cls(solver="gd", early_stopping=True, validation_fraction=0.1, random_state=seed, max_iter=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        assert len(est.validation_loss_curve_) == est.n_iter_ + 1  # gd: the start, then each step
    assert len(splits) == 10
    for _, val in splits:
        assert np.bincount(y[val]).tolist() == [1, 5, 5]
