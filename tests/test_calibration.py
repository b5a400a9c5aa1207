"""TemperatureScaling: exact minimiser of the NLL, recovery of a known temperature, the over-confident case.

References: a brute-force grid of the NLL (scipy.special.log_softmax), scipy.optimize.minimize_scalar on
log T, scikit-learn's log_loss and LogisticRegression, and logits drawn from softmax(z / T0).
"""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logsumexp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from luce.metrics import expected_calibration_error
from luce.models import SoftmaxRegression
from luce.models._calibration import TemperatureScaling, fit_temperature


def nll(logits, y, t, w=None):
    """The weighted mean NLL of softmax(logits / t), by SciPy."""
    per_row = -log_softmax(np.asarray(logits, dtype=np.float64) / t, axis=1)[np.arange(len(y)), y]
    return np.average(per_row, weights=w)


@pytest.fixture
def noisy_logits(rng):
    n, k = 400, 4
    z = rng.normal(scale=3.0, size=(n, k))
    y = np.where(rng.random(n) < 0.6, z.argmax(axis=1), rng.integers(0, k, n))
    return z, y


# -- the minimiser ---------------------------------------------------------------------------------
def test_matches_brute_force_grid(noisy_logits):
    z, y = noisy_logits
    t = fit_temperature(z, y)
    grid = np.exp(np.linspace(np.log(0.1), np.log(20.0), 20001))
    rows = np.arange(len(y))
    values = np.concatenate(
        [  # the NLL at 1000 temperatures at a time, by SciPy
            -log_softmax(z / g[:, None, None], axis=2)[:, rows, y].mean(axis=1)
            for g in np.array_split(grid, 20)
        ]
    )
    best = int(values.argmin())
    assert 0 < best < len(grid) - 1, "the grid must bracket the minimum"
    assert grid[best - 1] <= t <= grid[best + 1]
    assert nll(z, y, t) <= values.min() + 1e-12


def test_matches_scipy_minimize_scalar_to_high_precision(noisy_logits, rng):
    z, y = noisy_logits
    w = rng.uniform(0.1, 3.0, size=len(y))
    res = minimize_scalar(
        lambda u: nll(z, y, np.exp(u), w), bounds=(-5, 5), method="bounded", options={"xatol": 1e-12}
    )
    t = fit_temperature(z, y, sample_weight=w)
    # Bounded Brent on the function value resolves u only to ~sqrt(eps): compare loosely, then check
    # that the derivative in T vanishes at our T to near machine precision (central differences).
    np.testing.assert_allclose(t, np.exp(res.x), rtol=1e-6)
    h = 1e-4 * t
    slope = (nll(z, y, t + h, w) - nll(z, y, t - h, w)) / (2 * h)
    assert abs(slope) < 1e-8


@pytest.mark.parametrize("t0", [0.4, 1.0, 2.5])
def test_recovers_a_known_temperature(rng, t0):
    n, k = 20000, 5
    z = rng.normal(scale=3.0, size=(n, k))
    p = np.exp(log_softmax(z / t0, axis=1))
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)  # inverse-CDF draw from softmax(z / T0)
    t = TemperatureScaling().fit(z, y).temperature_
    assert abs(t - t0) / t0 < 0.04


def test_closed_form_two_class_case():
    # Three of four right at margin 4: the fit gives confidence 3/4, so sigmoid(4/T) = 3/4.
    t = fit_temperature([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]], [0, 1, 1, 0])
    np.testing.assert_allclose(t, 4.0 / np.log(3.0), rtol=1e-13)


def test_sample_weight_equals_repetition_and_zero_weight_equals_dropping(noisy_logits, rng):
    z, y = noisy_logits
    reps = rng.integers(0, 4, size=len(y))
    t_weighted = fit_temperature(z, y, sample_weight=reps)
    t_repeated = fit_temperature(np.repeat(z, reps, axis=0), np.repeat(y, reps))
    np.testing.assert_allclose(t_weighted, t_repeated, rtol=1e-12)
    # A zero-weight row with a -inf true logit is ignored, not an error.
    z_bad = np.vstack([z, [-np.inf, 0.0, 0.0, 0.0]])
    y_bad = np.append(y, 0)
    w = np.append(np.ones(len(y)), 0.0)
    np.testing.assert_allclose(fit_temperature(z_bad, y_bad, sample_weight=w), fit_temperature(z, y))


def test_binary_log_odds_equal_two_column_logits(rng):
    d = rng.normal(scale=4.0, size=300)
    y = (rng.random(300) < expit(d / 2.0)).astype(int)
    two = np.column_stack([np.zeros_like(d), d])
    np.testing.assert_allclose(fit_temperature(d, y), fit_temperature(two, y), rtol=1e-14)
    ts = TemperatureScaling().fit(d, y)
    np.testing.assert_allclose(ts.predict_proba(d)[:, 1], expit(d / ts.temperature_), rtol=1e-13)
    assert ts.transform(d).shape == d.shape


def test_minus_inf_logits_are_impossible_classes(noisy_logits):
    z, y = noisy_logits
    padded = np.column_stack([z, np.full(len(y), -np.inf)])
    np.testing.assert_allclose(fit_temperature(padded, y), fit_temperature(z, y), rtol=1e-13)
    ts = TemperatureScaling().fit(padded, y)
    assert np.all(ts.predict_proba(padded)[:, -1] == 0.0)


def test_row_blocks_give_the_same_fit(noisy_logits, rng, monkeypatch):
    import luce.models._calibration as calibration

    z, y = noisy_logits
    z = np.column_stack([z, np.where(rng.random(len(y)) < 0.1, -np.inf, 0.0)])  # some masked entries
    w = rng.uniform(0.0, 2.0, size=len(y))
    whole = fit_temperature(z, y, sample_weight=w)
    monkeypatch.setattr(calibration, "_BLOCK", 35)  # 7 rows of 5 classes per block, a ragged last block
    np.testing.assert_allclose(fit_temperature(z, y, sample_weight=w), whole, rtol=1e-12)


def test_shift_invariance_of_logits(noisy_logits, rng):
    z, y = noisy_logits
    shifted = z + rng.normal(scale=50.0, size=(len(y), 1))
    np.testing.assert_allclose(fit_temperature(shifted, y), fit_temperature(z, y), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(noisy_logits, dtype):
    z, y = noisy_logits
    ts = TemperatureScaling().fit(z.astype(dtype), y)
    np.testing.assert_allclose(ts.temperature_, fit_temperature(z.astype(dtype).astype(np.float64), y))
    for out in (
        ts.predict_proba(z.astype(dtype)),
        ts.predict_log_proba(z.astype(dtype)),
        ts.transform(z.astype(dtype)),
    ):
        assert out.dtype == dtype
    expected = np.exp(log_softmax(z.astype(dtype).astype(np.float64) / ts.temperature_, axis=1))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ts.predict_proba(z.astype(dtype)), expected, rtol=rtol, atol=1e-30)


def test_predictions_never_change(noisy_logits):
    z, y = noisy_logits
    ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ != 1.0
    np.testing.assert_array_equal(ts.predict(z), z.argmax(axis=1))
    np.testing.assert_array_equal(ts.predict_proba(z).argmax(axis=1), z.argmax(axis=1))
    assert ts.score(z, y) == np.mean(z.argmax(axis=1) == y)


# -- degenerate data: separated rows and the bounds --------------------------------------------------
def test_perfectly_separated_rows_keep_the_models_temperature_with_a_warning():
    # Every true class has the largest logit: the NLL falls all the way to T -> 0 (no finite estimate).
    z = np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    assert nll(z, [0, 1], 0.05) < nll(z, [0, 1], 0.1) < nll(z, [0, 1], 1.0)  # SciPy: still falling
    with pytest.warns(ConvergenceWarning, match="perfectly separated.*keeping T=1"):
        t = fit_temperature(z, [0, 1], bounds=(0.05, 10.0))
    assert t == 1.0
    with pytest.warns(ConvergenceWarning, match="perfectly separated"):
        ts = TemperatureScaling().fit(z, [0, 1])
    assert (ts.temperature_, ts.temperature_status_) == (1.0, "separated")
    assert "perfectly separated" in ts.temperature_message_
    # T = 1 outside the bounds: the nearest bound, never a sharper one than the bounds force.
    with pytest.warns(ConvergenceWarning, match="keeping T=2"):
        assert fit_temperature(z, [0, 1], bounds=(2.0, 10.0)) == 2.0


def test_ties_with_the_true_class_are_separated_too():
    # A tie costs log 2 at every T and the other row gains from T -> 0: still no finite minimiser.
    with pytest.warns(ConvergenceWarning, match="perfectly separated"):
        assert fit_temperature([[1.0, 1.0], [0.0, 2.0]], [0, 1]) == 1.0


def test_a_minimiser_below_the_search_interval_returns_the_lower_bound_with_a_warning():
    z = np.array([[3.0, 0.0], [0.0, 2.0], [0.0, 0.01]])  # the last row is wrong: a finite minimiser
    t_star = minimize_scalar(lambda lt: nll(z, [0, 1, 0], np.exp(lt)), bounds=(-5, 3), method="bounded").x
    assert np.exp(t_star) < 0.5
    with pytest.warns(ConvergenceWarning, match="smallest temperature"):
        ts = TemperatureScaling(bounds=(0.5, 10.0)).fit(z, [0, 1, 0])
    assert (ts.temperature_, ts.temperature_status_) == (0.5, "lower_bound")


def test_huge_margins_are_separated_not_constant():
    # exp(-800) underflows: every gradient term is exactly 0, yet the rows are separated, not constant.
    with pytest.warns(ConvergenceWarning, match="perfectly separated"):
        assert fit_temperature([[800.0, 0.0], [0.0, 900.0]], [0, 1]) == 1.0
    with pytest.warns(ConvergenceWarning, match="largest temperature"):
        assert fit_temperature([[-800.0, 0.0], [0.0, -900.0]], [0, 1]) == 1e3


def test_anti_predicting_logits_hit_the_upper_bound_with_a_warning():
    z = np.array([[3.0, 0.0], [0.0, 2.0]])
    with pytest.warns(ConvergenceWarning, match="largest temperature"):
        t = fit_temperature(z, [1, 0], bounds=(0.05, 10.0))
    assert t == 10.0


def test_constant_logits_leave_the_temperature_at_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_temperature(np.full((5, 3), 2.0), [0, 1, 2, 0, 1]) == 1.0
        ts = TemperatureScaling().fit(np.full((5, 3), 2.0), [0, 1, 2, 0, 1])
    assert (ts.temperature_status_, ts.temperature_message_) == ("constant", "")


def test_an_ordinary_fit_is_estimated_without_a_message(noisy_logits):
    z, y = noisy_logits
    ts = TemperatureScaling().fit(z, y)
    assert (ts.temperature_status_, ts.temperature_message_) == ("estimated", "")


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("logits", "y", "kwargs", "error", "match"),
    [
        ([[1.0, np.nan], [0.0, 1.0]], [0, 1], {}, ValueError, "NaN or \\+inf"),
        ([[1.0, np.inf], [0.0, 1.0]], [0, 1], {}, ValueError, "NaN or \\+inf"),
        ([[-np.inf, 1.0], [0.0, 1.0]], [0, 1], {}, ValueError, "true class is -inf in row 0"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 2], {}, ValueError, "class indices in \\[0, 2\\)"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1, 1], {}, ValueError, "y must have shape \\(2,\\)"),
        ([[1.0, 0.0], [0.0, 1.0]], ["a", "b"], {}, TypeError, "integer class indices"),
        ([[1.0, 0.0], [0.0, 1.0]], [0.5, 1.0], {}, ValueError, "integer class indices"),
        ([[1.0], [0.0]], [0, 0], {}, ValueError, "at least 2 classes"),
        (np.zeros((2, 2, 2)), [0, 1], {}, ValueError, "shape \\(n_samples, n_classes\\)"),
        ([[1.0 + 1j, 0.0]], [0], {}, TypeError, "complex"),
        (np.zeros((0, 3)), [], {}, ValueError, "at least one row"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"sample_weight": [1.0, -1.0]}, ValueError, "non-negative"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"sample_weight": [0.0, 0.0]}, ValueError, "positive sum"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"sample_weight": [1.0]}, ValueError, "sample_weight must have"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"bounds": (2.0, 1.0)}, ValueError, "0 < T_min < T_max"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"bounds": 3.0}, TypeError, "pair of numbers"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"bounds": ("0.1", 10.0)}, TypeError, "T_min"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"bounds": (0.5, True)}, TypeError, "T_max"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"max_iter": 2.5}, TypeError, "max_iter"),
        ([[1.0, 0.0], [0.0, 1.0]], [0, 1], {"max_iter": 0}, ValueError, "max_iter"),
    ],
    ids=[
        "nan",
        "plus-inf",
        "true-class-minus-inf",
        "index-out-of-range",
        "y-length",
        "string-y",
        "fractional-y",
        "one-class",
        "3d",
        "complex",
        "empty",
        "negative-weight",
        "zero-weights",
        "weight-length",
        "bounds-order",
        "bounds-scalar",
        "string-bound",
        "bool-bound",
        "float-max-iter",
        "zero-max-iter",
    ],
)
def test_bad_input_is_named(logits, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_temperature(logits, y, **kwargs)


def test_estimator_errors(rng):
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(NotFittedError):
        TemperatureScaling(LogisticRegression()).fit(X, y)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        TemperatureScaling(clf).fit(X, np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match="response_method must be one of"):
        TemperatureScaling(clf, response_method="predict").fit(X, y)
    with pytest.raises(NotFittedError):
        TemperatureScaling().predict_proba(X)
    ts = TemperatureScaling().fit(rng.normal(size=(10, 3)), rng.integers(0, 3, 10))
    with pytest.raises(ValueError, match="fitted with 3"):
        ts.predict_proba(rng.normal(size=(4, 5)))


# -- on fitted classifiers --------------------------------------------------------------------------
def test_binary_sklearn_classifier_uses_its_decision_function(rng):
    X = rng.normal(size=(200, 4))
    y = np.where(X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=200) > 0, "yes", "no")
    clf = LogisticRegression(C=1e6).fit(X[:100], y[:100])
    ts = TemperatureScaling(clf).fit(X[100:], y[100:])
    d = clf.decision_function(X[100:])
    np.testing.assert_allclose(
        ts.temperature_, fit_temperature(d, (y[100:] == "yes").astype(int)), rtol=1e-14
    )
    np.testing.assert_allclose(ts.predict_proba(X)[:, 1], expit(clf.decision_function(X) / ts.temperature_))
    np.testing.assert_array_equal(ts.predict(X), clf.predict(X))
    assert list(ts.classes_) == ["no", "yes"]


def test_log_proba_response_gives_the_same_temperature_as_logits(rng):
    X = rng.normal(size=(300, 5))
    y = (X[:, :3] @ [1.0, 1.0, 1.0] + rng.normal(size=300)).round().clip(-1, 1).astype(int)
    clf = LogisticRegression(C=100.0).fit(X[:150], y[:150])
    t_dec = TemperatureScaling(clf).fit(X[150:], y[150:]).temperature_
    t_log = TemperatureScaling(clf, response_method="predict_log_proba").fit(X[150:], y[150:]).temperature_
    t_prob = TemperatureScaling(clf, response_method="predict_proba").fit(X[150:], y[150:]).temperature_
    np.testing.assert_allclose([t_log, t_prob], t_dec, rtol=1e-8)


def test_clone_gives_an_unfitted_calibrator_with_the_same_params():
    ts = TemperatureScaling(bounds=(0.5, 5.0))
    twin = clone(ts)
    assert twin.get_params()["bounds"] == (0.5, 5.0)
    assert not hasattr(twin, "temperature_")


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    perm = np.random.default_rng(20261122).permutation(len(y))
    train, val, test = perm[:150], perm[150:750], perm[750:]
    return X[train], y[train], X[val], y[val], X[test], y[test]


def test_calibration_fixes_an_overconfident_sklearn_model(digits_split):
    X_tr, y_tr, X_val, y_val, X_te, y_te = digits_split
    # Practically unregularised on 150 rows of 64 features: separable, so the logits blow up.
    clf = LogisticRegression(C=1e8, max_iter=1000).fit(X_tr, y_tr)
    ts = TemperatureScaling(clf).fit(X_val, y_val)
    assert ts.temperature_ > 2.0
    before, after = clf.predict_proba(X_te), ts.predict_proba(X_te)
    np.testing.assert_array_equal(ts.predict(X_te), clf.predict(X_te))
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert expected_calibration_error(y_te, after) < 0.6 * expected_calibration_error(y_te, before)
    assert log_loss(y_te, after) < 0.8 * log_loss(y_te, before)


def test_calibration_fixes_an_overconfident_softmax_regression(digits_split):
    X_tr, y_tr, X_val, y_val, X_te, y_te = digits_split
    clf = SoftmaxRegression(reg_strength=0.0).fit(X_tr, y_tr)
    before, pred_before = clf.predict_proba(X_te), clf.predict(X_te)
    wrapper = TemperatureScaling(clf).fit(X_val, y_val)
    assert clf.calibrate(X_val, y_val) is clf
    # SoftmaxRegression.calibrate and TemperatureScaling are the same fit on the same raw logits.
    np.testing.assert_allclose(clf.temperature_, wrapper.temperature_, rtol=1e-12)
    assert clf.temperature_ > 1.5
    after = clf.predict_proba(X_te)
    np.testing.assert_allclose(after, wrapper.predict_proba(X_te), rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(clf.predict(X_te), pred_before)
    assert clf.score(X_te, y_te) == np.mean(pred_before == y_te)
    assert expected_calibration_error(y_te, after) < 0.5 * expected_calibration_error(y_te, before)
    assert log_loss(y_te, after) < 0.9 * log_loss(y_te, before)


def test_a_separated_validation_split_does_not_ruin_held_out_predictions(digits_split):
    # The case: validation rows the model classifies 100 % right. Fitting T to them used to
    # return T ~ 1e-3 and multiply the test log-loss several times over; now T = 1 is kept.
    X_tr, y_tr, X_val, y_val, X_te, y_te = digits_split
    clf = LogisticRegression(max_iter=2000).fit(X_tr, y_tr)
    right = clf.predict(X_val) == y_val
    assert right.mean() < 1.0  # the split holds mistakes; the rows kept are the right ones
    with pytest.warns(ConvergenceWarning, match="perfectly separated"):
        ts = TemperatureScaling(clf).fit(X_val[right], y_val[right])
    assert ts.temperature_status_ == "separated"
    before = log_loss(y_te, clf.predict_proba(X_te))
    assert log_loss(y_te, ts.predict_proba(X_te)) <= 1.01 * before


def test_a_random_forest_with_zero_probabilities_calibrates_without_warnings(digits_split):
    from sklearn.ensemble import RandomForestClassifier

    X_tr, y_tr, X_val, y_val, X_te, y_te = digits_split
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_tr, y_tr)
    assert (forest.predict_proba(X_val) == 0).any()  # exact zeros, also for some true classes
    for method in ("auto", "predict_proba", "predict_log_proba"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "divide by zero encountered in log" may escape
            ts = TemperatureScaling(forest, response_method=method).fit(X_val, y_val)
            proba = ts.predict_proba(X_te)
        assert ts.temperature_status_ == "estimated"
        assert np.isfinite(log_loss(y_te, proba))
        # The calibrated forest is better on held-out rows than the raw one (clipped as log_loss does).
        assert log_loss(y_te, proba) < log_loss(y_te, forest.predict_proba(X_te))


def test_big_endian_float32_logits_give_float32_probabilities(noisy_logits):
    z, y = noisy_logits
    big = z.astype(">f4")
    ts = TemperatureScaling().fit(big, y)
    assert ts.predict_proba(big).dtype == np.float32
    native = TemperatureScaling().fit(z.astype(np.float32), y)
    np.testing.assert_allclose(ts.temperature_, native.temperature_)


def test_softmax_regression_calibrate_records_whether_it_estimated_a_temperature():
    """calibrate keeps T = 1 on separated rows (with a warning) and otherwise minimises the NLL."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    clf = SoftmaxRegression(reg_strength=1e-3).fit(X[:1000], y[:1000])
    right = np.flatnonzero(clf.predict(X[1000:]) == y[1000:])[:40] + 1000
    with pytest.warns(ConvergenceWarning, match="perfectly separated"):
        clf.calibrate(X[right], y[right])
    assert (clf.temperature_, clf.temperature_status_) == (1.0, "separated")
    assert "separated" in clf.temperature_message_

    clf.calibrate(X[1000:], y[1000:])
    z = clf.decision_function(X[1000:])
    idx = np.searchsorted(clf.classes_, y[1000:])

    def nll(t):
        s = z / t
        return np.mean(logsumexp(s, axis=1) - s[np.arange(len(idx)), idx])

    reference = minimize_scalar(nll, bounds=(1e-2, 1e2), method="bounded", options={"xatol": 1e-10}).x
    assert clf.temperature_status_ == "estimated" and clf.temperature_message_ == ""
    assert clf.temperature_ == pytest.approx(reference, rel=1e-5)
