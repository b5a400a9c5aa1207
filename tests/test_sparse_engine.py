"""Newton-CG on sparse (CSR) data: the Hessian products at a cached point and the fit's optimum.

References are independent of the engine: the objective and its Hessian written out with
scipy.special on the densified data in float64, finite differences of the gradient, and
scikit-learn's LogisticRegression (lbfgs, tight tolerance) for the optimum.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_softmax, softmax

from luce import SoftmaxRegression
from luce.models import _solvers
from luce.models._objective import Objective


def _text_like(rng, n, p, nnz_per_row, K):
    """CSR rows like tf-idf: Zipf column frequencies, log1p counts, unit norm; planted softmax labels."""
    lengths = np.maximum(1, rng.poisson(nnz_per_row, n))
    cols = (rng.zipf(1.3, lengths.sum()) - 1) % p
    rows = np.repeat(np.arange(n), lengths)
    X = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(n, p))
    X.sum_duplicates()
    X.data = np.log1p(X.data)
    X = sp.csr_matrix(sp.diags(1.0 / np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())) @ X)
    logits = np.asarray(X @ (3.0 * rng.standard_normal((K, p))).T)
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    return X, np.unique(y, return_inverse=True)[1]


def _reference_hessp(X, theta, vec, K, reg):
    """``∇²f(theta) @ vec`` of the mean cross-entropy + reg/2 ‖W‖², from the dense formula in float64."""
    X = X.toarray()
    d = X.shape[1]
    W, b = theta[: K * d].reshape(K, d), theta[K * d :]
    V, v = vec[: K * d].reshape(K, d), vec[K * d :]
    P = softmax(X @ W.T + b, axis=1)
    U = X @ V.T + v
    R = P * (U - (P * U).sum(axis=1, keepdims=True)) / X.shape[0]
    return np.concatenate([(R.T @ X + reg * V).ravel(), R.sum(axis=0)])


def _objective_value(coef, intercept, X, y, reg):
    Z = np.asarray(X @ coef.T) + intercept
    return float(-log_softmax(Z, axis=1)[np.arange(len(y)), y].mean() + 0.5 * reg * np.sum(coef * coef))


def test_csr_products_keep_their_probabilities_when_they_take_up_to_twice_x(rng):
    # ~5 nonzeros per row and 12 classes: the probabilities (n × K) take more memory than X (nonzeros
    # × 12 bytes) but less than twice: Newton-CG's later products at one point reuse them.
    X, y = _text_like(rng, 400, 300, 5, 12)
    K = int(y.max()) + 1
    obj = Objective(X, y, K, reg_strength=1e-3)
    states_bytes = X.shape[0] * K * 8
    x_bytes = X.data.nbytes + X.indices.nbytes
    assert x_bytes < states_bytes <= 2 * x_bytes
    theta = 0.3 * rng.standard_normal(obj.n_params)
    assert obj._curvature_cache(theta) is not None
    for _ in range(3):  # the first product computes the probabilities, the later ones read them
        vec = rng.standard_normal(obj.n_params)
        np.testing.assert_allclose(
            obj.hessp(theta, vec), _reference_hessp(X, theta, vec, K, 1e-3), rtol=1e-10, atol=1e-13
        )
    assert all(state is not None for state in obj._cache["curvature"][1])


def test_csr_products_at_a_cached_point_match_finite_differences_of_the_gradient(rng):
    X, y = _text_like(rng, 300, 200, 6, 8)
    K = int(y.max()) + 1
    obj = Objective(X, y, K, reg_strength=1e-2)
    theta = 0.3 * rng.standard_normal(obj.n_params)
    obj.hessp(theta, rng.standard_normal(obj.n_params))  # fills the cache
    u = rng.standard_normal(obj.n_params)
    h = 1e-5
    fd = (obj.gradient(theta + h * u) - obj.gradient(theta - h * u)) / (2 * h)
    np.testing.assert_allclose(obj.hessp(theta, u), fd, rtol=1e-6, atol=1e-9)


def test_probabilities_above_twice_x_are_not_kept(rng):
    X, y = _text_like(rng, 300, 200, 2, 40)
    K = int(y.max()) + 1
    obj = Objective(X, y, K)
    assert X.shape[0] * K * 8 > 2 * (X.data.nbytes + X.indices.nbytes)
    assert obj._curvature_cache(np.zeros(obj.n_params)) is None


def test_identity_reparametrization_copies_and_round_trips(rng):
    X, y = _text_like(rng, 200, 500, 5, 4)
    obj = Objective(X, y, int(y.max()) + 1, reg_strength=1e-3)
    rp = _solvers.preconditioner(obj)
    assert rp.P is None  # many sparse features: no preconditioner (see the solvers' docstring)
    theta = rng.standard_normal(obj.n_params)
    v = rp.from_theta(theta)
    assert v is not theta and np.array_equal(v, theta)
    back = rp.to_theta(v)
    assert back is not v and np.array_equal(back, theta)
    np.testing.assert_array_equal(rp.to_v_grad(obj.gradient(theta)), obj.gradient(theta))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_newton_cg_on_text_like_csr_reaches_scikit_learns_optimum(rng):
    from sklearn.linear_model import LogisticRegression

    X, y = _text_like(rng, 1500, 800, 20, 6)
    n = X.shape[0]
    reg = 1.0 / n
    ours = SoftmaxRegression(reg_strength=reg, solver="newton-cg", tol=1e-8, max_iter=200).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = LogisticRegression(C=1.0 / (reg * n), tol=1e-12, max_iter=10_000).fit(X, y)
    f_ours = _objective_value(ours.coef_, ours.intercept_, X, y, reg)
    f_theirs = _objective_value(theirs.coef_, theirs.intercept_, X, y, reg)
    assert f_ours <= f_theirs + 1e-7 * abs(f_theirs)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4 * np.abs(theirs.coef_).max())


@pytest.mark.parametrize("n", [300_000, 500_000, 800_000])
def test_csr_rows_split_into_an_even_number_of_equal_blocks(rng, n):
    from luce.models._objective import _default_block_rows

    X = sp.random(n, 100, density=0.02, format="csr", random_state=0)  # ~2 nonzeros per row
    rows = _default_block_rows(X, 3)
    n_blocks = -(-n // rows)
    assert n_blocks > 1 and n_blocks % 2 == 0
    assert n - (n_blocks - 1) * rows >= rows - n_blocks  # the last block is not a short remainder


def test_fused_cg_updates_match_numpy(rng):
    from luce._kernels import _linear

    n = 100_003  # not a multiple of the kernel's 8 lanes
    x, r, d, hd = (rng.standard_normal(n) for _ in range(4))
    x0, r0, d0 = x.copy(), r.copy(), d.copy()
    rr, l1, linf = _linear.cg_update(x, r, d, hd, -0.37)
    np.testing.assert_allclose(x, x0 - 0.37 * d0, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(r, r0 - 0.37 * hd, rtol=1e-15, atol=1e-15)
    assert rr == pytest.approx(float(np.dot(r, r)), rel=1e-13)
    assert l1 == pytest.approx(float(np.sum(np.abs(r))), rel=1e-13)
    assert linf == np.max(np.abs(r))
    _linear.cg_direction(d, r, 0.61)
    np.testing.assert_allclose(d, 0.61 * d0 - r, rtol=1e-15, atol=1e-15)
    hd[7] = np.nan
    assert np.isnan(_linear.cg_update(x, r, d, hd, 1.0)[2])  # a NaN residual is never "small enough"


def test_conjugate_gradient_is_the_same_with_the_fused_updates_and_numpy(rng):
    from luce._kernels import use_backend

    n = 70_000  # above the fused kernels' threshold
    diag = rng.uniform(0.5, 4.0, n)
    w = rng.standard_normal(n) / np.sqrt(n)

    def hessp(u):  # a symmetric positive definite operator: diagonal plus rank one
        return diag * u + 3.0 * (w @ u) * w

    g = 1e-3 * rng.standard_normal(n)
    steps = {}
    for backend in ("compiled", "reference"):
        with use_backend(backend):
            steps[backend] = _solvers._conjugate_gradient(hessp, g, 60)
            steps[backend, "enough"] = _solvers._conjugate_gradient(hessp, g, 60, enough=1e-5)
    np.testing.assert_allclose(steps["compiled"], steps["reference"], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(
        steps["compiled", "enough"], steps["reference", "enough"], rtol=1e-9, atol=1e-14
    )
    g_norm = np.sum(np.abs(g))
    assert np.sum(np.abs(hessp(steps["compiled"]) + g)) <= min(0.5, np.sqrt(g_norm)) * g_norm


def test_conjugate_gradient_stops_when_the_model_gradient_is_small_enough(rng):
    n = 2_000
    diag = np.geomspace(1e-3, 1.0, n)  # ill-conditioned: the relative target takes many steps
    g = 1e-8 * rng.standard_normal(n)  # ‖g‖₁ ~ 2e-5: the relative target √‖g‖₁ is tight
    products = []

    def hessp(u):
        products.append(1)
        return diag * u

    full = _solvers._conjugate_gradient(hessp, g, 500)
    n_full = len(products)
    products.clear()
    enough = 0.2 * np.max(np.abs(g))
    early = _solvers._conjugate_gradient(hessp, g, 500, enough=enough)
    assert np.max(np.abs(diag * early + g)) <= enough
    assert len(products) < n_full
    assert np.max(np.abs(diag * full + g)) <= np.max(np.abs(diag * early + g))
