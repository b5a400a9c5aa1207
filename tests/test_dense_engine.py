"""The fused dense kernels of the fit engine (csrc/linear_dense.h through luce._kernels._linear).

Each result is held to an independent reference: the objective written out with
scipy.special.log_softmax / softmax in float64, the engine's NumPy/BLAS path (backend "reference"),
and finite differences.
"""

import numpy as np
import pytest

from linear_reference import (
    assert_backends_agree,
    assert_matches_finite_differences,
    assert_sums_match,
    scipy_hessp,
    scipy_sums,
)
from luce._kernels import _linear, use_backend
from luce.models._objective import Objective, SoftmaxHead, block_hessp, block_loss_gradient


def _problem(rng, n, d, K, dtype, intercept=True, weights=True):
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, K, n)
    sw = rng.uniform(0.2, 3.0, n).astype(dtype) if weights else None
    W = (0.4 * rng.standard_normal((K, d))).astype(dtype)
    V = rng.standard_normal((K, d)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if intercept else None
    v = rng.standard_normal(K).astype(dtype) if intercept else None
    return X, y, sw, W, b, V, v


def _tolerances(dtype):
    return (1e-12, 1e-11) if dtype == np.float64 else (2e-5, 2e-4)


def _fused_sums(X, y, sw, W, b, eps=0.0):
    """The fused kernel itself (any K and dtype), as SoftmaxHead.dense_sums calls it."""
    K, d = W.shape
    Gt = np.empty((d, K), dtype=X.dtype)
    gb = None if b is None else np.zeros(K)
    loss = _linear.dense_sums(
        X, np.ascontiguousarray(W.T), b, np.asarray(y, dtype=np.intp), sw, eps, True, Gt, gb
    )
    return loss, Gt.T, (None if gb is None else gb.astype(X.dtype))


def _fused_hessp(X, sw, W, b, V, v):
    K, d = W.shape
    Ht = np.empty((d, K), dtype=X.dtype)
    hb = None if b is None else np.zeros(K)
    _linear.dense_hessp(X, np.ascontiguousarray(np.concatenate([W, V]).T), b, v, None, True, sw, Ht, hb)
    return Ht.T, (None if hb is None else hb.astype(X.dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K", [2, 3, 7, 8, 9, 20, 33])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no-intercept"])
def test_fused_sums_and_hessp_match_scipy(rng, dtype, K, intercept):
    # 71 rows: not a multiple of the 8-row tile nor of the 32-row panel; 13 features: odd.
    X, y, sw, W, b, V, v = _problem(rng, 71, 13, K, dtype, intercept)
    rtol, atol = _tolerances(dtype)
    with use_backend("compiled"):
        loss, gW, gb = _fused_sums(X, y, sw, W, b)
        hW, hb = _fused_hessp(X, sw, W, b, V, v)
    assert gW.dtype == dtype and hW.dtype == dtype and gW.shape == (K, 13)
    assert_sums_match(
        (loss, gW, gb),
        (hW, hb),
        scipy_sums(X, y, sw, W, b),
        scipy_hessp(X, sw, W, b, V, v),
        rtol,
        atol,
        intercept,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n, d, K, weights, eps",
    [
        (1, 5, 3, True, 0.0),  # one row
        (9, 1, 4, False, 0.0),  # one feature
        (200, 700, 33, True, 0.0),  # d·K far above the L1 cache; K over three vectors (float64)
        (150, 37, 20, False, 0.1),  # label smoothing, unit weights
        (64, 24, 20, True, 0.25),  # whole tiles and panels
    ],
)
def test_fused_sums_shapes_weights_and_smoothing(rng, dtype, n, d, K, weights, eps):
    X, y, sw, W, b, V, v = _problem(rng, n, d, K, dtype, True, weights)
    rtol, atol = _tolerances(dtype)
    with use_backend("compiled"):
        loss, gW, gb = _fused_sums(X, y, sw, W, b, eps)
        hW, hb = _fused_hessp(X, sw, W, b, V, v)
    ref = scipy_sums(X, y, sw, W, b, eps)
    ref_h = scipy_hessp(X, sw, W, b, V, v)
    assert loss == pytest.approx(ref[0], rel=rtol)
    for got, want in zip((gW, gb, hW, hb), (*ref[1:], *ref_h), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * max(1, d / 50))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_engine_equals_the_reference_engine(rng, dtype):
    """Whole evaluations at the benchmark's K = 20 (several blocks, two threads) on both paths, and
    Newton-CG's later Hessian products at one point (the stored probabilities)."""
    X, y, sw, *_ = _problem(rng, 900, 31, 20, dtype)
    theta = (0.3 * rng.standard_normal(20 * 31 + 20)).astype(dtype)
    vec = rng.standard_normal(theta.size).astype(dtype)
    assert_backends_agree(
        lambda: Objective(X, y, 20, sample_weight=sw, reg_strength=0.05, block_rows=250, n_threads=2),
        theta, vec, rtol=1e-12 if dtype == np.float64 else 2e-5,
    )  # fmt: skip


def test_fused_gradient_and_hessp_match_finite_differences(rng):
    X, y, sw, *_ = _problem(rng, 90, 9, 7, np.float64)
    with use_backend("compiled"):
        obj = Objective(X, y, 7, sample_weight=sw, reg_strength=0.1, label_smoothing=0.05, block_rows=40)
        theta = 0.5 * rng.standard_normal(obj.n_params)
        vec = rng.standard_normal(obj.n_params)
        assert SoftmaxHead().dense_sums(X[:40], y[:40], sw[:40], np.zeros((9, 7)), None, True) is not None
        hv_fd = assert_matches_finite_differences(obj, theta, vec, 1e-5)
        np.testing.assert_allclose(obj.hessp(theta, vec), hv_fd, rtol=1e-6, atol=1e-8)  # stored probabilities


def test_fused_float32_gradient_is_summed_in_float64():
    """100,000 equal float32 terms (x = 1, p - q = (-2/3, 1/3, 1/3)) in one block: a running float32
    sum drifts by 7e-4 relative (np.cumsum in float32 shows it); the kernel's float32 panels added
    into float64 sums stay within float32 rounding of the exact sums."""
    n, d, K = 100_000, 2, 3
    X = np.ones((n, d), dtype=np.float32)
    y = np.zeros(n, dtype=np.intp)
    W = np.zeros((K, d), dtype=np.float32)
    with use_backend("compiled"):
        loss, gW, gb = _fused_sums(X, y, None, W, np.zeros(K, dtype=np.float32))
    p = np.float64(np.float32(1 / 3))  # the float32 probabilities
    exact = n * np.array([p - 1, p, p])
    np.testing.assert_allclose(gW, np.repeat(exact[:, None], d, axis=1), rtol=1e-6)
    np.testing.assert_allclose(gb, exact, rtol=1e-6)
    assert loss == pytest.approx(n * np.log(3), rel=1e-6)


def test_fused_huge_logits_stay_finite_and_nan_propagates(rng):
    X, y, _, W, _, _, _ = _problem(rng, 50, 5, 3, np.float64)
    with use_backend("compiled"):
        loss, gW, _ = _fused_sums(X * 1e4, y, None, W, None)
        ref = scipy_sums(X * 1e4, y, None, W, None)
        assert loss == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(gW, ref[1], rtol=1e-12, atol=1e-6)
        Xn = X.copy()
        Xn[17, 2] = np.nan
        assert np.isnan(_fused_sums(Xn, y, None, W, None)[0])
        Xi = X.copy()
        Xi[3, 1] = np.inf
        loss_inf = _fused_sums(Xi, y, None, W, None)[0]
        with use_backend("reference"), np.errstate(invalid="ignore", over="ignore"):
            ref_inf = block_loss_gradient(Xi, y, None, W, None)[0]
        assert not np.isfinite(loss_inf) and not np.isfinite(ref_inf)


def test_fused_probabilities_are_never_subnormal():
    X = np.array([[1.0, 0.0, 0.0]] * 4, dtype=np.float32)
    W = np.array([[60.0, 0, 0], [-60.0, 0, 0], [0, 0, 0]], dtype=np.float32)
    with use_backend("compiled"):
        _, gW, _ = _fused_sums(X, np.array([0, 1, 2, 0]), None, W, None)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((gW != 0) & (np.abs(gW) < tiny))


def test_fused_kernel_reads_strided_rows_and_skips_other_layouts(rng):
    """Rows of a wider array (a row stride > n_features) take the kernel; Fortran order takes BLAS."""
    X, y, sw, W, b, V, v = _problem(rng, 40, 11, 5, np.float64)
    wide = np.zeros((40, 16))
    wide[:, :11] = X
    with use_backend("compiled"):
        got = _fused_sums(wide[:, :11], y, sw, W, b)
        Wt = np.ascontiguousarray(W.T)
        assert SoftmaxHead().dense_sums(np.asfortranarray(X), y, sw, Wt, b, True) is None
        fortran = block_loss_gradient(np.asfortranarray(X), y, sw, W, b)
        hv = block_hessp(wide[:, :11], sw, W, b, V, v)
    ref = scipy_sums(X, y, sw, W, b)
    for a, r in zip((got, fortran), (ref, ref), strict=True):
        assert a[0] == pytest.approx(r[0], rel=1e-12)
        np.testing.assert_allclose(a[1], r[1], rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(hv[0], scipy_hessp(X, sw, W, b, V, v)[0], rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_engine_is_bitwise_the_same_for_any_thread_count(rng, dtype):
    X, y, sw, *_ = _problem(rng, 700, 19, 20, dtype)
    theta = (0.3 * rng.standard_normal(20 * 19 + 20)).astype(dtype)
    out = []
    with use_backend("compiled"):
        for n_threads in (1, 2, 3):
            obj = Objective(X, y, 20, sample_weight=sw, reg_strength=0.01, block_rows=64, n_threads=n_threads)
            f, g = obj.loss_gradient(theta)
            out.append((f, g, obj.hessp(theta, g), obj.hessp(theta, theta)))
    for res in out[1:]:
        assert res[0] == out[0][0]
        for a, b in zip(res[1:], out[0][1:], strict=True):
            np.testing.assert_array_equal(a, b)


def test_the_head_routes_blocks_to_the_fused_kernel_where_it_is_faster(rng):
    """float64 at any K and float32 from 17 classes take the fused kernel; float32 with K <= 16 (one
    vector of classes, where it measured slower) and Fortran-ordered X keep the BLAS path."""
    head = SoftmaxHead()
    with use_backend("compiled"):
        for dtype, K, fused in ((np.float64, 3, True), (np.float32, 16, False), (np.float32, 17, True)):
            X, y, sw, W, b, V, v = _problem(rng, 30, 6, K, dtype)
            Wt = np.ascontiguousarray(W.T)
            assert (head.dense_sums(X, y, sw, Wt, b, True) is not None) == fused
            WVt = np.ascontiguousarray(np.concatenate([W, V]).T)
            assert (head.dense_hessp(X, sw, WVt, b, v) is not None) == fused
