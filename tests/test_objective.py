"""The softmax-regression Objective and its block functions.

References: the objective written out with scipy.special.log_softmax, torch's cross_entropy with
label_smoothing (when importable), 4th-order central finite differences of the loss (gradient) and of
the gradient (Hessian-vector product), and the Gram matrix formed densely by NumPy.
"""

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_softmax, softmax
from threadpoolctl import threadpool_limits

from luce._kernels import _dispatch
from luce.models import _objective
from luce.models._objective import Objective, block_gram, block_hessp, block_loss_gradient


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """These problems are tiny: BLAS threads only add hand-off latency (and noise on a busy host)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def reference_objective(theta, X, y, K, sw=None, reg=0.0, fit_intercept=True, eps=0.0):
    """f(theta) by SciPy in float64 (dense X)."""
    n, d = X.shape
    W = theta[: K * d].reshape(K, d)
    b = theta[K * d :] if fit_intercept else np.zeros(K)
    logp = log_softmax(np.asarray(X, dtype=np.float64) @ W.T + b, axis=1)
    q = np.full((n, K), eps / K)
    q[np.arange(n), y] += 1.0 - eps
    ce = -(q * logp).sum(axis=1)
    w = np.ones(n) if sw is None else sw
    return float(w @ ce / w.sum() + 0.5 * reg * np.sum(W * W))


def fd_gradient(f, theta, h=1e-4):
    """4th-order central differences."""
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (12 * h)
    return g


def problem(rng, n=40, d=5, K=4, weights=True):
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n)
    y[:K] = np.arange(K)
    sw = rng.uniform(0.1, 3.0, n) if weights else None
    return X, y, sw


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("weights", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["onehot", "smoothed"])
def test_loss_and_gradient_match_scipy_and_finite_differences(rng, fit_intercept, weights, eps):
    X, y, sw = problem(rng, weights=weights)
    obj = Objective(
        X, y, 4, sample_weight=sw, reg_strength=0.3, fit_intercept=fit_intercept, label_smoothing=eps
    )
    theta = rng.standard_normal(obj.n_params)
    ref = lambda t: reference_objective(t, X, y, 4, sw, 0.3, fit_intercept, eps)  # noqa: E731
    f, g = obj.loss_gradient(theta)
    assert f == pytest.approx(ref(theta), rel=1e-13)
    assert obj.loss(theta) == pytest.approx(f, rel=1e-14)
    np.testing.assert_allclose(g, fd_gradient(ref, theta), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(obj.gradient(theta), g, rtol=1e-15)


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_hessp_matches_finite_differences_of_the_gradient(rng, fit_intercept):
    X, y, sw = problem(rng)
    obj = Objective(
        X, y, 4, sample_weight=sw, reg_strength=0.2, fit_intercept=fit_intercept, label_smoothing=0.05
    )
    theta = rng.standard_normal(obj.n_params)
    vec = rng.standard_normal(obj.n_params)
    h = 1e-3
    g = obj.gradient
    fd = (
        -g(theta + 2 * h * vec) + 8 * g(theta + h * vec) - 8 * g(theta - h * vec) + g(theta - 2 * h * vec)
    ) / (12 * h)
    np.testing.assert_allclose(obj.hessp(theta, vec), fd, rtol=1e-7, atol=1e-10)


def test_label_smoothing_matches_torch(rng):
    torch = pytest.importorskip("torch")
    X, y, _ = problem(rng, n=30, d=3, K=5)
    obj = Objective(X, y, 5, label_smoothing=0.2)
    theta = rng.standard_normal(obj.n_params)
    W, b = obj.unpack(theta)
    logits = torch.tensor(X @ W.T + b, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y), label_smoothing=0.2)
    loss.backward()
    f, g = obj.loss_gradient(theta)
    assert f == pytest.approx(loss.item(), rel=1e-13)
    dz = logits.grad.numpy()
    np.testing.assert_allclose(g[: W.size].reshape(W.shape), dz.T @ X, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g[W.size :], dz.sum(axis=0), rtol=1e-12, atol=1e-15)


def test_blocks_sum_to_the_objective(rng):
    """The block contract: summing the block sums over any split, plus the penalty, is the objective."""
    X, y, sw = problem(rng, n=53)
    obj = Objective(X, y, 4, sample_weight=sw, reg_strength=0.7)
    theta = rng.standard_normal(obj.n_params)
    W, b = obj.unpack(theta)
    V, v = obj.unpack(rng.standard_normal(obj.n_params))
    loss, gW, gb, hW, hb = 0.0, 0.0, 0.0, 0.0, 0.0
    for s in (slice(0, 10), slice(10, 11), slice(11, 53)):
        lb, gwb, gbb = block_loss_gradient(X[s], y[s], sw[s], W, b)
        hwb, hbb = block_hessp(X[s], sw[s], W, b, V, v)
        loss, gW, gb, hW, hb = loss + lb, gW + gwb, gb + gbb, hW + hwb, hb + hbb
    f, g = obj.loss_gradient(theta)
    assert loss / sw.sum() + 0.35 * np.sum(W * W) == pytest.approx(f, rel=1e-14)
    np.testing.assert_allclose(
        np.concatenate([(gW / sw.sum() + 0.7 * W).ravel(), gb / sw.sum()]), g, rtol=1e-13
    )
    hv = obj.hessp(theta, obj.pack(V, v))
    np.testing.assert_allclose(
        np.concatenate([(hW / sw.sum() + 0.7 * V).ravel(), hb / sw.sum()]), hv, rtol=1e-12
    )


@pytest.mark.parametrize("block_rows", [1, 7, 1000])
def test_block_size_does_not_change_the_result(rng, block_rows):
    X, y, sw = problem(rng, n=50)
    theta = rng.standard_normal(4 * 6)
    whole = Objective(X, y, 4, sample_weight=sw, reg_strength=0.1, block_rows=50)
    split = Objective(X, y, 4, sample_weight=sw, reg_strength=0.1, block_rows=block_rows)
    f1, g1 = whole.loss_gradient(theta)
    f2, g2 = split.loss_gradient(theta)
    assert f2 == pytest.approx(f1, rel=1e-14)
    np.testing.assert_allclose(g2, g1, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(split.hessp(theta, g1), whole.hessp(theta, g1), rtol=1e-13, atol=1e-16)


def test_blocks_are_bounded_by_block_rows(rng, monkeypatch):
    """Memory: every block the math sees has at most block_rows rows."""
    X, y, _ = problem(rng, n=100)
    seen = []
    real = _objective.block_loss_gradient

    def spy(Xb, *args, **kwargs):
        seen.append(Xb.shape[0])
        return real(Xb, *args, **kwargs)

    monkeypatch.setattr(_objective, "block_loss_gradient", spy)
    Objective(X, y, 4, block_rows=16).loss_gradient(np.zeros(24))
    assert max(seen) == 16 and sum(seen) == 100


def test_max_shift_keeps_huge_logits_finite(rng):
    """Without the max shift exp(1e4) overflows; the loss must stay exact."""
    X, y, _ = problem(rng, n=20, d=3, K=3)
    obj = Objective(X * 1e4, y, 3)
    theta = rng.standard_normal(obj.n_params)
    f, g = obj.loss_gradient(theta)
    assert np.isfinite(f) and np.all(np.isfinite(g))
    assert f == pytest.approx(reference_objective(theta, X * 1e4, y, 3), rel=1e-12)


def test_no_subnormal_probabilities_reach_blas(rng, monkeypatch):
    """The subnormal guard: p - q never holds subnormal numbers (they make the gemm ~20x slower)."""
    X, y, _ = problem(rng, n=64, d=3, K=3)
    X = X.astype(np.float32)
    W = np.array([[60.0, 0, 0], [-60.0, 0, 0], [0, 0, 0]], dtype=np.float32)
    captured = []
    real = _objective._times_x
    monkeypatch.setattr(_objective, "_times_x", lambda G, Xb: captured.append(G.copy()) or real(G, Xb))
    block_loss_gradient(X, y, None, W, np.zeros(3, np.float32))
    G = captured[0].T  # the engine's blocks are (rows, n_classes); this test reads (n_classes, rows)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((G != 0) & (np.abs(G) < tiny))
    # ... while the probabilities still agree with float64 SciPy to float32 accuracy.
    p64 = softmax(X.astype(np.float64) @ W.T.astype(np.float64), axis=1)
    p64[np.arange(64), y] -= 1
    np.testing.assert_allclose(G.T, p64, atol=1e-6)


@pytest.mark.parametrize("weights", [False, True], ids=["unweighted", "weighted"])
def test_sparse_equals_dense(rng, weights):
    X, y, sw = problem(rng, n=60, d=8)
    X[rng.random(X.shape) < 0.6] = 0.0
    dense = Objective(X, y, 4, sample_weight=sw, reg_strength=0.1, label_smoothing=0.1, block_rows=17)
    sparse = Objective(
        sp.csr_matrix(X), y, 4, sample_weight=sw, reg_strength=0.1, label_smoothing=0.1, block_rows=17
    )
    theta = rng.standard_normal(dense.n_params)
    vec = rng.standard_normal(dense.n_params)
    f1, g1 = dense.loss_gradient(theta)
    f2, g2 = sparse.loss_gradient(theta)
    assert f2 == pytest.approx(f1, rel=1e-14)
    np.testing.assert_allclose(g2, g1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse.hessp(theta, vec), dense.hessp(theta, vec), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse.gram(), dense.gram(), rtol=1e-13)
    np.testing.assert_allclose(sparse.gram(diagonal=True), dense.gram(diagonal=True), rtol=1e-13)


def test_float32_stays_float32(rng):
    X, y, sw = problem(rng)
    obj = Objective(X.astype(np.float32), y, 4, sample_weight=sw, reg_strength=0.1)
    theta = rng.standard_normal(obj.n_params)
    f, g = obj.loss_gradient(theta)
    assert g.dtype == np.float32 and obj.hessp(theta, theta).dtype == np.float32
    W, b = obj.unpack(theta)
    _, gW, gb = block_loss_gradient(X.astype(np.float32), y, sw.astype(np.float32), W, b)
    assert gW.dtype == np.float32 and gb.dtype == np.float32
    assert f == pytest.approx(reference_objective(theta, X.astype(np.float32), y, 4, sw, 0.1), rel=1e-5)


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
def test_gram_matches_numpy(rng, fit_intercept, diagonal):
    X, y, sw = problem(rng, n=30, d=4)
    Xt = np.hstack([X, np.ones((30, 1))]) if fit_intercept else X
    ref = (Xt * sw[:, None]).T @ Xt / sw.sum()
    got = Objective(X, y, 4, sample_weight=sw, fit_intercept=fit_intercept).gram(diagonal=diagonal)
    np.testing.assert_allclose(got, np.diag(ref) if diagonal else ref, rtol=1e-13)
    np.testing.assert_allclose(
        block_gram(X, sw, fit_intercept, diagonal=diagonal) / sw.sum(), got, rtol=1e-13
    )


def test_logit_mask_gradient_is_the_gradient_of_the_masked_loss(rng):
    X, y, sw = problem(rng, n=20, d=3, K=3)
    W = rng.standard_normal((3, 3))
    b = rng.standard_normal(3)
    mask = (rng.random((3, 20)) < 0.7) / 0.7

    def masked(theta):
        Wt, bt = theta[:9].reshape(3, 3), theta[9:]
        z = (X @ Wt.T + bt) * mask.T
        return float(-(sw * log_softmax(z, axis=1)[np.arange(20), y]).sum())

    loss, gW, gb = block_loss_gradient(X, y, sw, W, b, logit_mask=mask)
    theta = np.concatenate([W.ravel(), b])
    assert loss == pytest.approx(masked(theta), rel=1e-13)
    np.testing.assert_allclose(
        np.concatenate([gW.ravel(), gb]), fd_gradient(masked, theta), rtol=1e-7, atol=1e-9
    )
    ones = block_loss_gradient(X, y, sw, W, b, logit_mask=np.ones((3, 20)))
    plain = block_loss_gradient(X, y, sw, W, b)
    assert ones[0] == pytest.approx(plain[0], rel=1e-15)
    np.testing.assert_allclose(ones[1], plain[1], rtol=1e-15)


def test_dropout_only_with_rng(rng):
    X, y, _ = problem(rng)
    obj = Objective(X, y, 4, logit_dropout=0.5)
    theta = rng.standard_normal(obj.n_params)
    plain = Objective(X, y, 4).loss_gradient(theta)
    det = obj.loss_gradient(theta)
    assert det[0] == plain[0]
    noisy = obj.loss_gradient(theta, rng=np.random.default_rng(0))
    again = obj.loss_gradient(theta, rng=np.random.default_rng(0))
    assert noisy[0] != plain[0] and noisy[0] == again[0]


def test_batch_loss_gradient_is_the_objective_of_the_rows(rng):
    X, y, sw = problem(rng, n=30)
    rows = np.array([0, 3, 4, 10, 29])
    full = Objective(X, y, 4, sample_weight=sw, reg_strength=0.2)
    sub = Objective(X[rows], y[rows], 4, sample_weight=sw[rows], reg_strength=0.2)
    theta = rng.standard_normal(full.n_params)
    f1, g1 = full.batch_loss_gradient(theta, rows)
    f2, g2 = sub.loss_gradient(theta)
    assert f1 == pytest.approx(f2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-14)


def test_pack_unpack_round_trip(rng):
    X, y, _ = problem(rng)
    obj = Objective(X, y, 4)
    W, b = rng.standard_normal((4, 5)), rng.standard_normal(4)
    W2, b2 = obj.unpack(obj.pack(W, b))
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(b2, b)


# -- every head through the same contract: dense and CSR, against finite differences ------------------


def _heads(rng, n=45, d=5, K=3):
    """(name, make(X) -> objective) for each head, with weights, penalty and (sigmoid) pos_weight."""
    from luce.models._sigmoid import SigmoidObjective

    y = rng.integers(0, K, n)
    Y = (rng.random((n, K)) < 0.4).astype(np.float64)
    sw = rng.uniform(0.2, 3.0, n)
    pw = rng.uniform(0.5, 2.0, K)
    return {
        "softmax": lambda X, **kw: Objective(
            X, y, K, sample_weight=sw, reg_strength=0.3, label_smoothing=0.1, block_rows=11, **kw
        ),
        "sigmoid": lambda X, **kw: SigmoidObjective(
            X, Y.astype(X.dtype), sample_weight=sw, pos_weight=pw, reg_strength=0.3, block_rows=11, **kw
        ),
    }


def _features(rng, n=45, d=5, sparse=False):
    X = rng.standard_normal((n, d))
    if sparse:
        X[rng.random(X.shape) < 0.6] = 0.0
        return sp.csr_matrix(X)
    return X


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_every_head_gradient_and_hessp_match_finite_differences(rng, head, sparse):
    X = _features(rng, sparse=sparse)
    obj = _heads(rng)[head](X)
    theta = rng.standard_normal(obj.n_params)
    vec = rng.standard_normal(obj.n_params)
    f, g = obj.loss_gradient(theta)
    assert f == pytest.approx(obj.loss(theta), rel=1e-14)
    np.testing.assert_allclose(g, fd_gradient(obj.loss, theta), rtol=1e-7, atol=1e-9)
    h = 1e-3
    grad = obj.gradient
    fd = (
        -grad(theta + 2 * h * vec)
        + 8 * grad(theta + h * vec)
        - 8 * grad(theta - h * vec)
        + grad(theta - 2 * h * vec)
    ) / (12 * h)
    np.testing.assert_allclose(obj.hessp(theta, vec), fd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_every_head_stays_float32(rng, head, sparse):
    X = _features(rng, sparse=sparse)
    X32 = X.astype(np.float32)
    obj32 = _heads(rng)[head](X32)
    obj64 = _heads(np.random.default_rng(0))[head](X)  # same targets: the generator state repeats below
    obj32 = _heads(np.random.default_rng(0))[head](X32)
    theta = rng.standard_normal(obj64.n_params)
    f32, g32 = obj32.loss_gradient(theta.astype(np.float32))
    f64, g64 = obj64.loss_gradient(theta)
    assert g32.dtype == np.float32 and obj32.hessp(theta, theta).dtype == np.float32
    assert f32 == pytest.approx(f64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_every_head_is_bitwise_the_same_for_any_thread_count(rng, head, sparse):
    X = _features(rng, n=400, sparse=sparse)
    make = _heads(np.random.default_rng(1), n=400)[head]
    theta = rng.standard_normal(make(X).n_params)
    results = []
    for n_threads in (1, 2, 3):
        obj = make(X, n_threads=n_threads)
        f, g = obj.loss_gradient(theta)
        results.append((f, g, obj.hessp(theta, g)))
    for f, g, hv in results[1:]:
        assert f == results[0][0]
        np.testing.assert_array_equal(g, results[0][1])
        np.testing.assert_array_equal(hv, results[0][2])


def test_csr_blocks_share_the_data_of_x(rng):
    """No copy of X per evaluation: the CSR blocks are views of X's data and indices."""
    X = _features(rng, n=200, sparse=True)
    obj = Objective(X, rng.integers(0, 3, 200), 3, block_rows=64)
    blocks = [obj._x_block(s) for s in obj._slices]
    assert len(blocks) == 4
    assert all(np.shares_memory(b.data, X.data) and np.shares_memory(b.indices, X.indices) for b in blocks)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_repeated_hessian_products_reuse_the_curvature_only_at_the_same_point(rng, head, sparse):
    """Newton-CG's products at one point keep the blocks' curvature; a new point recomputes it."""
    X = _features(rng, d=12, sparse=sparse)  # the states (45 x 3) take less memory than X
    make = _heads(np.random.default_rng(2))[head]
    obj = make(X)
    theta, theta2 = rng.standard_normal((2, obj.n_params))
    v1, v2 = rng.standard_normal((2, obj.n_params))
    obj.hessp(theta, v1)
    assert obj._cache.get("curvature") is not None  # the states are kept ...
    np.testing.assert_allclose(obj.hessp(theta, v2), make(X).hessp(theta, v2), rtol=1e-13, atol=1e-15)
    # ... and replaced at another point.
    np.testing.assert_allclose(obj.hessp(theta2, v2), make(X).hessp(theta2, v2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(obj.hessp(theta, v1), make(X).hessp(theta, v1), rtol=1e-13, atol=1e-15)


def _loss_in_child(args):
    X, y = args
    return Objective(X, y, 3, block_rows=16, n_threads=2).loss(np.zeros(3 * X.shape[1] + 3))


def test_a_forked_child_gets_its_own_worker_threads(rng):
    """The pool's threads do not survive fork: a child reusing the parent's pool would wait forever."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    X, y, _ = problem(rng, n=100, d=4, K=3)
    expected = Objective(X, y, 3, block_rows=16, n_threads=2).loss(np.zeros(15))  # the parent's pool exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map_async(_loss_in_child, [(X, y)]).get(timeout=60) == [expected]


def test_block_workers_follow_the_callers_backend(rng, monkeypatch):
    """use_backend is a context variable: the engine's worker threads must see the caller's choice."""
    seen = set()
    lookup = _dispatch.lookup

    def spy(op, x, size=None):
        seen.add((threading.current_thread().name.startswith("luce-block"), _dispatch.get_backend()))
        return lookup(op, x, size)

    monkeypatch.setattr(_dispatch, "lookup", spy)
    X, y = rng.standard_normal((400, 5)), rng.integers(0, 3, 400)
    objective = Objective(X, y, 3, block_rows=50, n_threads=2)
    with _dispatch.use_backend("reference"):
        objective.loss_gradient(np.zeros(objective.n_params))
    assert (True, "reference") in seen
    assert {backend for _, backend in seen} == {"reference"}
