"""sigmoid, log_sigmoid and hardmax against SciPy, mpmath and their definitions."""

import mpmath
import numpy as np
import pytest
import scipy.special

import luce

mpmath.mp.dps = 50


def test_sigmoid_matches_mpmath_everywhere():
    x = np.concatenate([np.linspace(-745, 745, 2001), [-1e300, 1e300, 0.0, -0.0, 1e-300]])
    exact = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in x])
    got = luce.sigmoid(x)
    normal = exact > np.finfo(float).tiny
    np.testing.assert_allclose(got[normal], exact[normal], rtol=4e-16)
    # SciPy flushes subnormal results to 0; luce keeps them (checked against mpmath above).
    np.testing.assert_allclose(got[normal], scipy.special.expit(x)[normal], rtol=4e-16, atol=0)


def test_log_sigmoid_matches_mpmath_in_the_tails():
    x = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 700.0, 800.0])
    exact = np.array([float(-mpmath.log1p(mpmath.exp(-mpmath.mpf(v)))) for v in x])
    np.testing.assert_allclose(luce.log_sigmoid(x), exact, rtol=1e-15)
    # log(sigmoid(700)) rounds to 0, yet the true value -exp(-700) is kept.
    assert luce.log_sigmoid(700.0) == pytest.approx(-np.exp(-700.0), rel=1e-15)


def test_sigmoid_edges_and_dtypes():
    np.testing.assert_array_equal(luce.sigmoid([-np.inf, np.inf]), [0.0, 1.0])
    assert np.isnan(luce.sigmoid(np.nan)) and np.isnan(luce.log_sigmoid(np.nan))
    assert luce.log_sigmoid(-np.inf) == -np.inf and luce.log_sigmoid(np.inf) == 0
    assert luce.sigmoid(np.float32(3)).dtype == np.float32
    assert luce.sigmoid(np.ones(2, np.float16)).dtype == np.float16
    assert luce.sigmoid([1, 2]).dtype == np.float64


def test_sigmoid_is_the_two_class_softmax(rng):
    x = 10 * rng.standard_normal(50)
    pair = np.stack([x, np.zeros_like(x)], axis=-1)
    np.testing.assert_allclose(luce.sigmoid(x), luce.softmax(pair)[:, 0], rtol=1e-14)
    np.testing.assert_allclose(luce.log_sigmoid(x), luce.log_softmax(pair)[:, 0], rtol=1e-13)


@pytest.mark.parametrize("axis", [0, -1])
def test_hardmax(axis):
    x = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0], [np.nan, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    expected = np.array([[0, 1, 0], [0.5, 0.5, 0], [np.nan] * 3, [0, 0, 0]])
    if axis == 0:
        x, expected = x.T, expected.T
    np.testing.assert_array_equal(luce.hardmax(x, axis=axis), expected)


def test_hardmax_masks_and_inf():
    x = np.array([3.0, 9.0, 3.0, np.inf])
    np.testing.assert_array_equal(luce.hardmax(x), [0, 0, 0, 1])
    np.testing.assert_array_equal(luce.hardmax(x, where=np.array([1, 0, 1, 0], bool)), [0.5, 0, 0.5, 0])
    np.testing.assert_array_equal(luce.hardmax(x, where=np.zeros(4, bool)), [0, 0, 0, 0])
    assert luce.hardmax(np.ones((2, 0))).shape == (2, 0)
