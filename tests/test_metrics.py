"""Calibration metrics against a direct per-sample loop and hand-computed values."""

import numpy as np
import pytest
import scipy.special

from luce.metrics import expected_calibration_error, reliability_curve


def _ece_loop(y, proba, n_bins):
    """The definition, one sample at a time, with exact bin membership (lo, hi]."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [
            i for i in range(len(y)) if (lo < proba[i].max() <= hi) or (b == 0 and proba[i].max() == 0)
        ]
        if not members:
            continue
        acc = np.mean([np.argmax(proba[i]) == y[i] for i in members])
        conf = np.mean([proba[i].max() for i in members])
        total += len(members) / len(y) * abs(acc - conf)
    return total


@pytest.mark.parametrize("n_bins", [1, 2, 10, 15])
@pytest.mark.parametrize("n_classes", [2, 5])
def test_matches_the_definition(rng, n_bins, n_classes):
    proba = scipy.special.softmax(2.0 * rng.normal(size=(300, n_classes)), axis=1)
    y = rng.integers(0, n_classes, size=300)
    assert expected_calibration_error(y, proba, n_bins) == pytest.approx(
        _ece_loop(y, proba, n_bins), abs=1e-14
    )


def test_hand_example():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.55, 0.45]])
    y = np.array([0, 1, 1, 0, 0])
    # bins of width 0.5: (0.5, 1] holds everything; conf = 3.55/5 = 0.71, acc = 3/5.
    assert expected_calibration_error(y, proba, n_bins=2) == pytest.approx(0.11)
    # bins of width 0.25: (0.5, 0.75] holds 0.7, 0.6, 0.55 (acc 2/3, conf 0.6167) and (0.75, 1] holds
    # 0.9, 0.8 (acc 1/2, conf 0.85).
    expected = 3 / 5 * abs(2 / 3 - 1.85 / 3) + 2 / 5 * abs(0.5 - 0.85)
    assert expected_calibration_error(y, proba, n_bins=4) == pytest.approx(expected)
    curve = reliability_curve(y, proba, n_bins=4)
    np.testing.assert_array_equal(curve.counts, [0, 0, 3, 2])
    np.testing.assert_allclose(curve.accuracy[2:], [2 / 3, 0.5])
    assert np.isnan(curve.confidence[:2]).all()
    np.testing.assert_allclose(curve.edges, [0, 0.25, 0.5, 0.75, 1.0])


def test_edges_belong_to_the_bin_they_close():
    proba = np.array([[0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])
    curve = reliability_curve([0, 0, 1], proba, n_bins=4)
    np.testing.assert_array_equal(curve.counts, [0, 1, 1, 1])


def test_labels_through_classes(rng):
    proba = scipy.special.softmax(rng.normal(size=(50, 3)), axis=1)
    idx = rng.integers(0, 3, size=50)
    names = np.array(["cat", "dog", "emu"])
    assert expected_calibration_error(names[idx], proba, classes=names) == expected_calibration_error(
        idx, proba
    )


def test_perfect_and_worst():
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error([0, 1, 2, 1], one_hot) == 0.0
    assert expected_calibration_error([1, 2, 0, 0], one_hot) == 1.0


def test_calibrated_sampling_gives_small_ece(rng):
    proba = scipy.special.softmax(rng.normal(size=(20000, 4)), axis=1)
    y = np.array([rng.choice(4, p=p) for p in proba])
    assert expected_calibration_error(y, proba) < 0.02
    assert expected_calibration_error(y, scipy.special.softmax(3 * np.log(proba), axis=1)) > 0.1


@pytest.mark.parametrize(
    ("y", "proba", "kwargs", "error", "match"),
    [
        ([0], [0.5, 0.5], {}, ValueError, r"proba must have shape \(n_samples, n_classes\), got \(2,\)"),
        ([], np.zeros((0, 2)), {}, ValueError, "proba has no samples"),
        ([0], [[np.nan, 1.0]], {}, ValueError, r"probabilities in \[0, 1\]"),
        ([0], [[1.5, 0.0]], {}, ValueError, r"probabilities in \[0, 1\]"),
        ([0, 1], [[1.0, 0.0]], {}, ValueError, r"y_true must have shape \(1,\)"),
        ([2], [[1.0, 0.0]], {}, ValueError, r"column indices in \[0, 2\)"),
        (["a"], [[1.0, 0.0]], {}, TypeError, "integer column indices"),
        (["c"], [[1.0, 0.0]], {"classes": ["a", "b"]}, ValueError, "labels not in classes: 'c'"),
        (["a"], [[1.0, 0.0]], {"classes": ["a"]}, ValueError, r"classes must have shape \(2,\)"),
        ([0], [[1.0, 0.0]], {"n_bins": 0}, ValueError, "n_bins must be a positive integer, got 0"),
        ([0], [["x", "y"]], {}, TypeError, "proba must be a real numeric array"),
    ],
    ids=["1d", "empty", "nan", "above-one", "length", "index", "str-no-classes", "unknown", "classes",
         "bins", "dtype"],
)  # fmt: skip
def test_bad_input(y, proba, kwargs, error, match):
    with pytest.raises(error, match=match):
        expected_calibration_error(y, proba, **kwargs)
