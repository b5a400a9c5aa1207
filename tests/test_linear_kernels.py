"""The fit engine's compiled block kernels (csrc/linear.h through luce._kernels._linear).

Each compiled path is held to an independent reference: the objective written out with
scipy.special.log_softmax / softmax on the densified data in float64, the NumPy/SciPy block path of
the engine (backend "reference"), and finite differences of the compiled gradient.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from linear_reference import (
    assert_backends_agree,
    assert_matches_finite_differences,
    assert_sums_match,
    scipy_hessp,
    scipy_sums,
)
from luce._kernels import use_backend
from luce.models._objective import Objective, block_hessp, block_loss_gradient


def _data(rng, n=300, d=40, K=6, density=0.15, dtype=np.float64):
    X = rng.standard_normal((n, d))
    X[rng.random(X.shape) > density] = 0.0
    X[5] = 0.0  # an empty row
    y = rng.integers(0, K, n)
    sw = rng.uniform(0.2, 3.0, n)
    return X.astype(dtype), y, sw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["onehot", "smoothed"])
@pytest.mark.parametrize("layout", ["dense", "csr", "csr-int64"])
def test_block_sums_match_scipy(rng, dtype, intercept, eps, layout):
    X, y, sw = _data(rng, dtype=dtype)
    K, d = 6, X.shape[1]
    W = rng.standard_normal((K, d)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if intercept else None
    V = rng.standard_normal((K, d)).astype(dtype)
    v = rng.standard_normal(K).astype(dtype) if intercept else None
    Xb = X
    if layout != "dense":
        Xb = sp.csr_matrix(X)
        if layout == "csr-int64":
            Xb.indices = Xb.indices.astype(np.int64)
            Xb.indptr = Xb.indptr.astype(np.int64)
    with use_backend("compiled"):
        loss, gW, gb = block_loss_gradient(Xb, y, sw.astype(dtype), W, b, label_smoothing=eps)
        hW, hb = block_hessp(Xb, sw.astype(dtype), W, b, V, v)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    atol = 1e-11 if dtype == np.float64 else 2e-4
    assert gW.dtype == dtype and hW.dtype == dtype
    assert_sums_match(
        (loss, gW, gb),
        (hW, hb),
        scipy_sums(X, y, sw, W, b, eps),
        scipy_hessp(X, sw, W, b, V, v),
        rtol,
        atol,
        intercept,
    )


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_engine_equals_the_reference_engine(rng, sparse, dtype):
    """Whole evaluations (several blocks, weights, smoothing, penalty, two threads) on both paths."""
    X, y, sw = _data(rng, n=500, dtype=dtype)
    X = sp.csr_matrix(X) if sparse else X
    theta = (0.3 * rng.standard_normal(6 * 40 + 6)).astype(dtype)
    vec = rng.standard_normal(theta.size).astype(dtype)
    assert_backends_agree(
        lambda: Objective(X, y, 6, sample_weight=sw, reg_strength=0.05, label_smoothing=0.1, block_rows=97,
                          n_threads=2),
        theta, vec, rtol=1e-12 if dtype == np.float64 else 1e-5,
    )  # fmt: skip


def test_compiled_csr_gradient_and_hessp_match_finite_differences(rng):
    X, y, sw = _data(rng, n=80, d=7, K=3, density=0.5)
    with use_backend("compiled"):
        obj = Objective(sp.csr_matrix(X), y, 3, sample_weight=sw, reg_strength=0.1, block_rows=23)
        theta = rng.standard_normal(obj.n_params)
        vec = rng.standard_normal(obj.n_params)
        assert_matches_finite_differences(obj, theta, vec, 1e-4)


def test_compiled_csr_keeps_huge_logits_finite_and_nan_propagates(rng):
    X, y, _ = _data(rng, n=50, d=5, K=3, density=0.6)
    Xs = sp.csr_matrix(X * 1e4)
    W = rng.standard_normal((3, 5))
    with use_backend("compiled"):
        loss, gW, _ = block_loss_gradient(Xs, y, None, W, None)
        ref = scipy_sums(X * 1e4, y, np.ones(50), W, None, 0.0)
        assert loss == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(gW, ref[1], rtol=1e-12, atol=1e-6)
        Xn = Xs.copy()
        Xn.data[0] = np.nan
        assert np.isnan(block_loss_gradient(Xn, y, None, W, None)[0])


def test_compiled_probabilities_are_never_subnormal(rng):
    """As the reference path: p - q holds no subnormal number (they slow the products ~20x)."""
    X = sp.csr_matrix(np.array([[1.0, 0.0, 0.0]] * 4, dtype=np.float32))
    W = np.array([[60.0, 0, 0], [-60.0, 0, 0], [0, 0, 0]], dtype=np.float32)
    with use_backend("compiled"):
        _, gW, _ = block_loss_gradient(X, np.array([0, 1, 2, 0]), None, W, None)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((gW != 0) & (np.abs(gW) < tiny))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_compiled_engine_is_bitwise_the_same_for_any_thread_count(rng, sparse):
    X, y, sw = _data(rng, n=700)
    X = sp.csr_matrix(X) if sparse else X
    theta = 0.3 * rng.standard_normal(6 * 40 + 6)
    out = []
    with use_backend("compiled"):
        for n_threads in (1, 2, 3):
            obj = Objective(X, y, 6, sample_weight=sw, reg_strength=0.01, block_rows=64, n_threads=n_threads)
            f, g = obj.loss_gradient(theta)
            out.append((f, g, obj.hessp(theta, g)))
    for f, g, hv in out[1:]:
        assert f == out[0][0]
        np.testing.assert_array_equal(g, out[0][1])
        np.testing.assert_array_equal(hv, out[0][2])
