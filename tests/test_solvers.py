"""Solvers: optimality against an independent gradient, the preconditioner, divergence handling.

The optimality reference is the gradient of the objective written out with scipy.special.softmax;
the curvature reference is numpy.linalg.eigvalsh of the dense Gram matrix.
"""

import math
import re
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from luce.models import _solvers
from luce.models._objective import Objective


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """These problems are tiny: BLAS threads only add hand-off latency (and noise on a busy host)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def reference_gradient(theta, X, y, K, reg):
    n, d = X.shape
    W, b = theta[: K * d].reshape(K, d), theta[K * d :]
    P = softmax(X @ W.T + b, axis=1)
    P[np.arange(n), y] -= 1
    return np.concatenate([(P.T @ X / n + reg * W).ravel(), P.mean(axis=0)])


def ill_conditioned(rng, n=150, d=6, K=3, decades=3, offset=50.0):
    """Correlated features on very different scales with an offset: hard for plain L-BFGS."""
    Z = rng.standard_normal((n, d))
    Z[:, 1] = Z[:, 0] + 0.05 * Z[:, 1]
    X = Z * np.logspace(0, decades, d) + offset
    y = np.argmax(Z[:, :K] + 0.5 * rng.standard_normal((n, K)), axis=1)
    return X, y


@pytest.mark.parametrize("solver", [_solvers.lbfgs, _solvers.newton_cg], ids=["lbfgs", "newton-cg"])
@pytest.mark.parametrize("precondition", ["auto", "diagonal", None])
def test_scipy_solvers_reach_the_tolerance(rng, solver, precondition):
    X, y = ill_conditioned(rng, decades=1, offset=2.0)
    obj = Objective(X, y, 3, reg_strength=1e-3)
    res = solver(obj, np.zeros(obj.n_params), max_iter=2000, tol=1e-7, precondition=precondition)
    assert res.converged, res.message
    assert np.all(np.isfinite(res.theta))
    g = reference_gradient(res.theta, X, y, 3, 1e-3)
    assert np.max(np.abs(g)) <= 1e-6


def test_preconditioning_cuts_lbfgs_iterations(rng):
    """The K-FAC-style preconditioner is what makes L-BFGS fast: without it, five times the iterations
    the preconditioned run needed do not reach the same tolerance."""
    X, y = ill_conditioned(rng, n=150)
    obj = Objective(X, y, 3, reg_strength=1e-3)
    with_p = _solvers.lbfgs(obj, np.zeros(obj.n_params), max_iter=1000, tol=1e-6, precondition="full")
    assert with_p.converged
    budget = 5 * with_p.n_iter
    without = _solvers.lbfgs(obj, np.zeros(obj.n_params), max_iter=budget, tol=1e-6, precondition=None)
    assert not without.converged and without.n_iter == budget
    assert obj.loss(with_p.theta) < obj.loss(without.theta)


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_reparametrization_round_trip_and_chain_rule(rng, mode):
    X, y = ill_conditioned(rng, n=50)
    obj = Objective(X, y, 3, reg_strength=1e-2)
    rp = _solvers.preconditioner(obj, mode)
    theta = rng.standard_normal(obj.n_params) * 1e-3
    np.testing.assert_allclose(rp.to_theta(rp.from_theta(theta)), theta, rtol=1e-9, atol=1e-15)
    v = rp.from_theta(theta)
    u = rng.standard_normal(v.size)
    h = 1e-6
    fd = (obj.loss(rp.to_theta(v + h * u)) - obj.loss(rp.to_theta(v - h * u))) / (2 * h)
    assert rp.to_v_grad(obj.gradient(theta)) @ u == pytest.approx(fd, rel=1e-5)


class _NaNBeyond:
    """A quadratic bowl centred at 3 that returns NaN once any coordinate exceeds 1: a hostile objective."""

    n_classes, n_features, fit_intercept, reg_strength, dtype = 2, 1, True, 0.0, np.dtype(np.float64)
    n_coef, n_params, logit_dropout = 2, 4, 0.0

    def loss_gradient(self, theta, rng=None):
        if np.any(theta > 1):
            return math.nan, np.full(4, math.nan)
        return float(np.sum((theta - 3) ** 2)), 2 * (theta - 3)

    def hessp(self, theta, vec):
        return 2 * vec

    def gram(self, diagonal=False):
        return np.ones(2) if diagonal else np.eye(2)


@pytest.mark.parametrize("solver", [_solvers.lbfgs, _solvers.newton_cg], ids=["lbfgs", "newton-cg"])
def test_scipy_solvers_never_return_non_finite_coefficients(solver):
    res = solver(_NaNBeyond(), np.zeros(4), max_iter=50, tol=1e-8, precondition=None)
    assert not res.converged
    assert np.all(np.isfinite(res.theta)) and np.all(res.theta <= 1)


def test_auto_learning_rate_is_one_over_the_curvature_bound(rng):
    X, y = ill_conditioned(rng, n=80, d=4)
    obj = Objective(X, y, 3, reg_strength=0.5)
    Xt = np.hstack([X, np.ones((80, 1))])
    lam = np.linalg.eigvalsh(Xt.T @ Xt / 80)[-1]
    assert _solvers.auto_learning_rate(obj, 0.9) == pytest.approx(1 / (0.5 * lam + 0.5), rel=1e-10)
    assert _solvers.auto_learning_rate(obj, "adam") == 1e-3


def test_power_iteration_for_many_features(rng):
    X = rng.standard_normal((200, 600)) + 0.3
    y = rng.integers(0, 3, 200)
    obj = Objective(X, y, 3)
    Xt = np.hstack([X, np.ones((200, 1))])
    lam = np.linalg.eigvalsh(Xt.T @ Xt / 200)[-1]
    assert lam <= _solvers.gram_norm(obj) <= 1.1 * lam


def test_gradient_descent_halves_a_diverging_learning_rate_and_warns_once(rng):
    X, y = ill_conditioned(rng, n=100, d=3)
    obj = Objective(X / 100, y, 3, reg_strength=1e-3)
    with pytest.warns(RuntimeWarning, match="learning_rate=1000.0") as record:
        res = _solvers.gradient_descent(
            obj, np.zeros(obj.n_params), learning_rate=1000.0, max_iter=200, tol=0.0, n_iter_no_change=10**6
        )
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert res.learning_rate < 1000.0
    assert np.all(np.isfinite(res.theta))
    assert obj.loss(res.theta) < obj.loss(np.zeros(obj.n_params))


@pytest.mark.parametrize("momentum", [0.0, 0.9, "adam"])
def test_sgd_recovers_from_an_exploding_learning_rate(rng, momentum):
    X, y = ill_conditioned(rng, n=100, d=3, decades=0, offset=0.0)
    obj = Objective(X, y, 3, reg_strength=1e-3)
    with pytest.warns(RuntimeWarning, match="learning_rate"):
        res = _solvers.sgd(
            obj,
            np.zeros(obj.n_params),
            learning_rate=1e6,
            momentum=momentum,
            batch_size=16,
            max_iter=5,
            tol=0.0,
            n_iter_no_change=100,
            rng=np.random.default_rng(0),
        )
    assert np.all(np.isfinite(res.theta)) and res.learning_rate < 1e6


def test_unrecoverable_divergence_names_learning_rate(rng):
    X, y = ill_conditioned(rng, n=30, d=3)
    obj = Objective(X * 1e200, y, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=re.escape("learning_rate=0.1")):
            _solvers.gradient_descent(
                obj, np.zeros(obj.n_params), learning_rate=0.1, max_iter=10, tol=0.0, n_iter_no_change=10
            )
        with pytest.raises(ValueError, match=re.escape("learning_rate=0.1")):
            _solvers.sgd(
                obj,
                np.zeros(obj.n_params),
                learning_rate=0.1,
                momentum=0.0,
                batch_size=8,
                max_iter=2,
                tol=0.0,
                n_iter_no_change=10,
                rng=np.random.default_rng(0),
            )
    with pytest.raises(ValueError, match="learning_rate='auto'"):
        _solvers.auto_learning_rate(obj, 0.9)


def test_sgd_step_is_the_multinomial_gradient_step(rng):
    """One epoch with a single batch and no momentum is theta - lr * (full gradient), by the reference."""
    X, y = ill_conditioned(rng, n=40, d=3)
    X = X / 1000
    obj = Objective(X, y, 3, reg_strength=0.1)
    theta0 = rng.standard_normal(obj.n_params) * 0.1
    loss, theta = _solvers.sgd_epoch(
        obj, theta0, {}, learning_rate=0.3, momentum=0.0, batch_size=40, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(theta, theta0 - 0.3 * reference_gradient(theta0, X, y, 3, 0.1), rtol=1e-12)
    assert loss == pytest.approx(obj.loss(theta0), rel=1e-13)


def test_newton_cg_reaches_scikit_learns_optimum_on_weakly_penalised_iris():
    """Issue 13: SciPy's Newton-CG stopped with a zero step (its absolute curvature cut-off) at
    coef[0, 2] = -10.48835 with max |gradient| ~1e-7; the optimum (scikit-learn, our lbfgs) is -10.5046."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import scale

    X, y = load_iris(return_X_y=True)
    X = scale(X)
    n = len(y)
    obj = Objective(X, y, 3, reg_strength=1 / (1e4 * n), fit_intercept=False)
    res = _solvers.newton_cg(obj, np.zeros(obj.n_params), max_iter=100, tol=1e-10)
    assert res.converged, res.message
    sk = LogisticRegression(C=1e4, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, y)
    W = res.theta.reshape(3, 4)
    assert W[0, 2] == pytest.approx(-10.5046, abs=5e-5)
    np.testing.assert_allclose(W, sk.coef_, atol=1e-4)
    g = reference_gradient(np.concatenate([res.theta, np.zeros(3)]), X, y, 3, 1 / (1e4 * n))[:12]
    assert np.max(np.abs(g)) <= 1e-9
    assert obj.loss(res.theta) <= obj.loss(sk.coef_.ravel()) + 1e-15


@pytest.mark.parametrize("solver", [_solvers.lbfgs, _solvers.newton_cg], ids=["lbfgs", "newton-cg"])
def test_non_finite_start_is_a_clear_error(rng, solver):
    """float32 features near the top of the range overflow the logits at the first evaluation: a
    ValueError saying so (it was an IndexError from deep inside the objective)."""
    X, y = ill_conditioned(rng, n=40, d=3, decades=0, offset=0.0)
    X = (X / np.abs(X).max() * 3e38).astype(np.float32)
    obj = Objective(X, y, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=r"not finite at the starting coefficients.*scale the features"):
            solver(obj, np.zeros(obj.n_params, dtype=np.float32), max_iter=10, tol=1e-6)


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e308], ids=["subnormal", "tiny", "huge"])
@pytest.mark.parametrize("solver", [_solvers.lbfgs, _solvers.newton_cg], ids=["lbfgs", "newton-cg"])
def test_sample_weights_are_free_to_scale(rng, solver, scale):
    """The objective is a weighted mean: weights of any size give the fit of the same weights near 1
    (5e-324 or 1e308 made the starting loss non-finite: an IndexError from the solver)."""
    X, y = ill_conditioned(rng, n=60, d=3, decades=0, offset=0.0)
    plain = solver(Objective(X, y, 3, reg_strength=1e-2), np.zeros(12), max_iter=100, tol=1e-8)
    equal = solver(
        Objective(X, y, 3, reg_strength=1e-2, sample_weight=np.full(60, scale)),
        np.zeros(12),
        max_iter=100,
        tol=1e-8,
    )
    assert plain.converged and equal.converged
    np.testing.assert_allclose(equal.theta, plain.theta, rtol=1e-7, atol=1e-9)
    if scale == 5e-324:
        return  # varied weights this small are rounded to a few subnormal values
    sw = rng.uniform(0.5, 2.0, 60)
    unit = solver(Objective(X, y, 3, reg_strength=1e-2, sample_weight=sw), np.zeros(12), tol=1e-8)
    scaled = solver(
        Objective(X, y, 3, reg_strength=1e-2, sample_weight=sw * (scale / 4)), np.zeros(12), tol=1e-8
    )
    np.testing.assert_allclose(scaled.theta, unit.theta, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "bad, message",
    [(np.nan, "sample_weight contains NaN"), (-1.0, "Negative values .* sample_weight"), (np.inf, "inf")],
    ids=["nan", "negative", "inf"],
)
def test_bad_sample_weights_name_the_argument(rng, bad, message):
    X, y = ill_conditioned(rng, n=20, d=3, decades=0, offset=0.0)
    sw = np.ones(20)
    sw[3] = bad
    with pytest.raises(ValueError, match=message):
        Objective(X, y, 3, sample_weight=sw)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", [_solvers.lbfgs, _solvers.newton_cg], ids=["lbfgs", "newton-cg"])
def test_fit_is_bitwise_the_same_with_one_and_two_threads(rng, solver, sparse):
    """The block partition and the order of the partial sums do not depend on the thread count."""
    import scipy.sparse as sp

    X, y = ill_conditioned(rng, n=3000, d=8, decades=1, offset=1.0)
    X[rng.random(X.shape) < 0.5] = 0.0
    data = sp.csr_matrix(X) if sparse else X
    sw = rng.uniform(0.5, 2.0, 3000)
    runs = []
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            # CSR runs on one thread by default (SciPy's sparse products hold the GIL): ask for more.
            threads = limit if sparse else None
            obj = Objective(data, y, 3, sample_weight=sw, reg_strength=1e-3, block_rows=97, n_threads=threads)
            assert obj.engine_threads() == limit
            res = solver(obj, np.zeros(obj.n_params), max_iter=200, tol=1e-9)
        runs.append(res.theta)
    np.testing.assert_array_equal(runs[0], runs[1])
    explicit = Objective(data, y, 3, sample_weight=sw, reg_strength=1e-3, block_rows=97, n_threads=3)
    np.testing.assert_array_equal(
        solver(explicit, np.zeros(obj.n_params), max_iter=200, tol=1e-9).theta, runs[0]
    )


# -- sparse SGD: O(batch nonzeros × K) steps (lazy weight decay) ---------------------------------------


def _sparse_problem(rng, dtype=np.float64, n=97, d=30, K=4):
    import scipy.sparse as sp

    X = rng.standard_normal((n, d))
    X[rng.random((n, d)) > 0.15] = 0.0
    y = rng.integers(0, K, n)
    sw = rng.uniform(0.2, 3.0, n)
    sw[3] = 0.0
    return sp.csr_matrix(X.astype(dtype)), y, sw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("lr", "reg", "momentum"),
    [(0.3, 0.05, 0.0), (0.5, 1.5, 0.0), (0.5, 2.0, 0.0), (0.3, 0.05, 0.9), (0.2, 0.5, 0.5)],
    ids=["decay", "fold-scale", "decay-to-zero", "momentum", "momentum-strong-decay"],
)
def test_sparse_sgd_steps_equal_the_dense_gradient_steps(rng, monkeypatch, dtype, lr, reg, momentum):
    """The lazy sparse steps (only touched columns move; plain: W = s·V; heavy-ball: stale columns
    caught up by powers of the step's linear map) against the dense-gradient steps of the reference
    path, same batches; 'fold-scale' folds s back into V, 'decay-to-zero' has ηλ = 1."""
    from luce._kernels import use_backend

    X, y, sw = _sparse_problem(rng, dtype)
    theta0 = (0.1 * rng.standard_normal(4 * 30 + 4)).astype(dtype)
    out = {}
    for backend in ("reference", "compiled"):
        obj = Objective(X, y, 4, sample_weight=sw, reg_strength=reg, label_smoothing=0.1)
        theta, losses, state = theta0, [], {}
        with use_backend(backend):
            if backend == "compiled":  # the lazy path never forms a dense gradient
                monkeypatch.setattr(obj, "batch_loss_gradient", None)
            epoch_rng = np.random.default_rng(5)
            for _ in range(3):
                loss, theta = _solvers.sgd_epoch(
                    obj, theta, state, learning_rate=lr, momentum=momentum, batch_size=10, rng=epoch_rng
                )
                losses.append(loss)
        out[backend] = (np.array(losses), theta, state.get("velocity"))
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out["compiled"][0], out["reference"][0], rtol=rtol)
    np.testing.assert_allclose(out["compiled"][1], out["reference"][1], rtol=rtol, atol=rtol)
    assert out["compiled"][1].dtype == dtype
    if momentum:
        np.testing.assert_allclose(out["compiled"][2], out["reference"][2], rtol=rtol, atol=rtol)


def test_sparse_sgd_keeps_adam_dropout_and_dense_data_on_the_dense_path(rng):
    X, y, _ = _sparse_problem(rng)
    obj = Objective(X, y, 4, reg_strength=0.01)
    theta = np.zeros(obj.n_params)
    assert type(_solvers._lazy_steps(obj, theta, 0.0)).__name__ == "LazySparseSGD"
    assert type(_solvers._lazy_steps(obj, theta, 0.9, {}, 0.1, 10)).__name__ == "LazyMomentumSGD"
    assert _solvers._lazy_steps(obj, theta, "adam") is None
    assert _solvers._lazy_steps(Objective(X, y, 4, logit_dropout=0.2), theta, 0.0) is None
    assert _solvers._lazy_steps(Objective(X.toarray(), y, 4), theta, 0.0) is None


def test_float32_lbfgs_reaches_the_float64_optimum_closely():
    """float32 L-BFGS stalls only at the noise of its float64-accumulated loss (about eps32 / sqrt(n)),
    not at eps32: on a wide standardised set it used to stop 6e-6 above the optimum (scikit-learn's
    float32 lbfgs: ~1e-8)."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        200, 500, n_informative=20, n_classes=5, n_clusters_per_class=1, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    reg = 1.0 / X.shape[0]
    obj64 = Objective(X, y, 5, reg_strength=reg)
    best = _solvers.lbfgs(obj64, np.zeros(obj64.n_params), max_iter=2000, tol=1e-10)
    f_best = obj64.loss(best.theta)
    obj32 = Objective(X.astype(np.float32), y, 5, reg_strength=reg)
    res = _solvers.lbfgs(obj32, np.zeros(obj32.n_params, np.float32), max_iter=2000, tol=1e-6)
    assert res.converged
    assert (obj64.loss(res.theta.astype(np.float64)) - f_best) / f_best < 1e-6


@pytest.mark.parametrize("estimator", ["softmax", "tree"])
def test_sgd_reference_loss_comes_from_rows_that_carry_weight(estimator):
    """90 % zero sample weights: a first batch of only zero-weight rows made the reference loss 0, after
    which every epoch looked divergent and the fit failed after 40 halvings."""
    from luce import HierarchicalSoftmaxClassifier, SoftmaxRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    sw = np.where(rng.random(200) < 0.9, 0.0, 1.0)
    for seed in range(6):
        if estimator == "softmax":
            model = SoftmaxRegression(solver="sgd", batch_size=4, random_state=seed, max_iter=20)
        else:
            model = HierarchicalSoftmaxClassifier(
                solver="sgd", momentum=0, batch_size=4, random_state=seed, max_iter=20
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # step halvings
            model.fit(X, y, sample_weight=sw)
        assert model.score(X, y, sample_weight=sw) > 0.6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("momentum, most", [(0.9, 8), (0.0, 7)])
def test_sparse_sgd_holds_a_bounded_number_of_weight_copies(momentum, most):
    # Every weight-sized array counts at large K (10,000 classes x 20,000 words: 1.6 GB each). The
    # run holds the start, the best epoch's start, the current point, the lazy steps' weights (and
    # velocity) and the epoch's result; it held up to 14 copies (a kept first-batch gradient, a
    # cached transpose, velocity snapshots that a rollback never used).
    import tracemalloc

    import scipy.sparse as sp

    import luce

    n, d, k = 400, 5000, 200
    X = sp.random(n, d, density=20 / d, format="csr", random_state=1, dtype=np.float64)
    y = np.arange(n) % k
    tracemalloc.start()
    try:
        luce.SoftmaxRegression(solver="sgd", max_iter=3, momentum=momentum).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / (k * d * 8) < most
