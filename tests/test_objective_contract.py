"""Every objective the fit skeleton trains (softmax, sigmoid, label tree, Dask) through the same checks:
loss_gradient against 4th-order finite differences of loss, hessp against finite differences of the
gradient, and batch_loss_gradient on all rows equal to loss_gradient (scikit-learn's loss registry
style: one contract, one test)."""

import numpy as np
import pytest

from luce.heads._hierarchical import huffman_tree
from luce.models import Objective
from luce.models._hierarchical import TreeObjective
from luce.models._sigmoid import SigmoidObjective


def _data(rng, n=40, d=3, k=4):
    X = rng.standard_normal((n, d))
    y = np.arange(n) % k
    sw = rng.uniform(0.5, 2.0, n)
    return X, y, sw


def softmax(rng):
    X, y, sw = _data(rng)
    return Objective(X, y, 4, sample_weight=sw, reg_strength=0.1, block_rows=16)


def sigmoid(rng):
    X, _, sw = _data(rng)
    Y = (rng.random((40, 3)) < 0.4).astype(float)
    return SigmoidObjective(X, Y, sample_weight=sw, pos_weight=np.array([1.0, 2.0, 0.5]), reg_strength=0.1)


def tree(rng):
    X, y, sw = _data(rng, k=5)
    t = huffman_tree(np.bincount(y, minlength=5) + np.arange(5))
    return TreeObjective(X, y, t, sample_weight=sw, reg_strength=0.1, block_rows=16)


def tree_without_intercept(rng):
    X, y, sw = _data(rng, k=5)
    return TreeObjective(X, y, huffman_tree(np.arange(1.0, 6.0)), sample_weight=sw, fit_intercept=False)


def dask(rng):
    pytest.importorskip("dask")
    import dask as dk

    from luce.distributed import DaskObjective

    X, y, sw = _data(rng)
    blocks = [dk.delayed((X[s], y[s], sw[s])) for s in (slice(0, 15), slice(15, 40))]
    with dk.config.set(scheduler="sync"):
        return DaskObjective(blocks, n_features=3, n_classes=4, dtype=np.float64, reg_strength=0.1)


OBJECTIVES = [softmax, sigmoid, tree, tree_without_intercept, dask]


def _fd(f, theta, h=1e-4):
    out = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        out[j] = (-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (12 * h)
    return out


@pytest.mark.parametrize("make", OBJECTIVES, ids=lambda f: f.__name__)
def test_gradient_and_hessp_match_finite_differences(make, rng):
    import dask

    obj = make(rng)
    theta = rng.standard_normal(obj.n_params)
    vec = rng.standard_normal(obj.n_params)
    with dask.config.set(scheduler="sync"):
        f, g = obj.loss_gradient(theta)
        assert f == pytest.approx(obj.loss(theta), rel=1e-12)
        np.testing.assert_allclose(g, _fd(obj.loss, theta), rtol=1e-6, atol=1e-8)
        hv = obj.hessp(theta, vec)
        fd_hv = (obj.gradient(theta + 1e-5 * vec) - obj.gradient(theta - 1e-5 * vec)) / 2e-5
        np.testing.assert_allclose(hv, fd_hv, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("make", [softmax, sigmoid, tree], ids=lambda f: f.__name__)
def test_batch_of_all_rows_is_the_full_objective(make, rng):
    obj = make(rng)
    theta = rng.standard_normal(obj.n_params)
    f, g = obj.loss_gradient(theta)
    fb, gb = obj.batch_loss_gradient(theta, np.arange(obj.n_samples))
    assert fb == pytest.approx(f, rel=1e-12)
    np.testing.assert_allclose(gb, g, rtol=1e-12, atol=1e-14)
