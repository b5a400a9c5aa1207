"""linear_cross_entropy: against the plain logits-then-log-softmax path, torch, finite differences."""

import tracemalloc

import numpy as np
import pytest
import scipy.special
from scipy.special import logsumexp

import luce
from luce.heads import _linear_ce


def plain(X, W, t, b=None, eps=0.0, ignore_index=None, reduction="mean"):
    """The N×V path in float64, written out: logits, log-softmax, smoothed NLL and its gradient."""
    X, W = np.asarray(X, np.float64), np.asarray(W, np.float64)
    batch_shape = np.shape(t)
    t = np.asarray(t).reshape(-1)
    Xf = X.reshape(-1, X.shape[-1])
    z = Xf @ W.T + (0.0 if b is None else np.asarray(b, np.float64))
    V = W.shape[0]
    valid = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    logp = z - logsumexp(z, axis=1, keepdims=True)
    q = np.full(z.shape, eps / V)
    rows = np.flatnonzero(valid)
    q[rows, t[rows]] += 1.0 - eps
    per_row = np.where(valid, -(q * logp).sum(axis=1), 0.0)
    if reduction == "none":
        return per_row.reshape(batch_shape), None
    n_valid = valid.sum()
    scale = 1.0 / n_valid if reduction == "mean" else 1.0
    loss = per_row.sum() * scale
    G = (np.exp(logp) - q) * (scale * valid)[:, None]
    return loss, (G @ W, G.T @ Xf, G.sum(axis=0))


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 40, 1000], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0], ids=lambda e: f"smooth{e}")
def test_matches_plain_path_with_gradients(dtype, chunk_size, eps, rng):
    n, d, V = 33, 6, 40
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((V, d)).astype(dtype)
    b = rng.standard_normal(V).astype(dtype)
    t = rng.integers(0, V, n)
    loss, (dX, dW, db) = luce.linear_cross_entropy(
        X, W, t, b, chunk_size=chunk_size, label_smoothing=eps, return_grad=True
    )
    ref_loss, (rX, rW, rb) = plain(X, W, t, b, eps)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss.dtype == dtype and dX.dtype == dW.dtype == db.dtype == dtype
    assert dX.shape == X.shape and dW.shape == W.shape and db.shape == b.shape
    assert abs(float(loss) - ref_loss) <= tol * abs(ref_loss)
    for got, ref in [(dX, rX), (dW, rW), (db, rb)]:
        assert rel_err(got, ref) <= tol


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reductions_and_leading_axes(reduction, rng):
    X = rng.standard_normal((3, 4, 5))
    W = rng.standard_normal((9, 5))
    t = rng.integers(0, 9, (3, 4))
    out = luce.linear_cross_entropy(X, W, t, reduction=reduction, chunk_size=4)
    ref, _ = plain(X, W, t, reduction=reduction)
    if reduction == "none":
        assert out.shape == (3, 4)
    np.testing.assert_allclose(out, ref, rtol=1e-13)
    if reduction != "none":
        _, (dX, _dW, db) = luce.linear_cross_entropy(X, W, t, reduction=reduction, return_grad=True)
        assert dX.shape == X.shape and db is None
        np.testing.assert_allclose(dX.reshape(-1, 5), plain(X, W, t, reduction=reduction)[1][0], rtol=1e-12)


def test_against_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, d, V = 50, 8, 300
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = (0.5 * rng.standard_normal((V, d))).astype(np.float32)
    b = rng.standard_normal(V).astype(np.float32)
    t = rng.integers(0, V, n)
    t[::7] = -100
    for reduction in ("mean", "sum"):
        Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
        ref = F.cross_entropy(
            Xt @ Wt.T + bt, torch.tensor(t), ignore_index=-100, label_smoothing=0.2, reduction=reduction
        )
        ref.backward()
        loss, grads = luce.linear_cross_entropy(
            X, W, t, b, ignore_index=-100, label_smoothing=0.2, reduction=reduction, return_grad=True,
            chunk_size=64,
        )  # fmt: skip
        assert abs(float(loss) - ref.item()) <= 1e-5 * abs(ref.item())
        for got, ref_t in zip(grads, (Xt, Wt, bt), strict=True):
            assert rel_err(got, ref_t.grad.numpy()) <= 1e-5


def test_finite_differences(rng):
    n, d, V = 4, 3, 5
    X, W, b = rng.standard_normal((n, d)), rng.standard_normal((V, d)), rng.standard_normal(V)
    t = np.array([0, 4, 2, 4])

    def f(X, W, b):
        return float(luce.linear_cross_entropy(X, W, t, b, label_smoothing=0.3, chunk_size=2))

    _, (dX, dW, db) = luce.linear_cross_entropy(
        X, W, t, b, label_smoothing=0.3, chunk_size=2, return_grad=True
    )
    h = 1e-5
    for k, (arr, grad) in enumerate([(X, dX), (W, dW), (b, db)]):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            vals = []
            for step in (2, 1, -1, -2):
                args = [X.copy(), W.copy(), b.copy()]
                args[k][idx] += step * h
                vals.append(f(*args))
            fd[idx] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-8, atol=1e-10)


def test_ignore_index(rng):
    X, W = rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
    t = np.array([1, 0, 3, 0, 4, 0])
    # ignore_index may be a real class (padding id 0): those rows drop out of loss, mean and gradient
    loss, (dX, dW, _) = luce.linear_cross_entropy(X, W, t, ignore_index=0, return_grad=True, chunk_size=2)
    keep = t != 0
    ref_loss, (rX, rW, _) = plain(X[keep], W, t[keep])
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_array_equal(dX[~keep], 0.0)
    np.testing.assert_allclose(dX[keep], rX, rtol=1e-12)
    np.testing.assert_allclose(dW, rW, rtol=1e-12)
    none = luce.linear_cross_entropy(X, W, t, ignore_index=0, reduction="none")
    np.testing.assert_array_equal(none[~keep], 0.0)
    # every row ignored: mean is NaN and gradients are zero (as torch), sum is 0
    loss, (dX, dW, _) = luce.linear_cross_entropy(X, W, np.full(6, -1), ignore_index=-1, return_grad=True)
    assert np.isnan(loss) and not dX.any() and not dW.any()
    assert luce.linear_cross_entropy(X, W, np.full(6, -1), ignore_index=-1, reduction="sum") == 0.0


def test_empty_batch():
    loss = luce.linear_cross_entropy(np.zeros((0, 3)), np.ones((4, 3)), np.zeros(0, int))
    assert np.isnan(loss)
    assert (
        luce.linear_cross_entropy(np.zeros((0, 3)), np.ones((4, 3)), np.zeros(0, int), reduction="sum") == 0
    )


def test_max_shift_keeps_large_logits_finite(rng):
    # Logits around 300-600 overflow exp() in float32 (and 1e3 in float64) without the max shift.
    X = (100 * rng.standard_normal((5, 4))).astype(np.float32)
    W = rng.standard_normal((30, 4)).astype(np.float32)
    t = rng.integers(0, 30, 5)
    loss, (dX, dW, _) = luce.linear_cross_entropy(X, W, t, chunk_size=8, return_grad=True)
    ref, (rX, rW, _) = plain(X, W, t)
    assert np.isfinite(loss) and abs(float(loss) - ref) <= 1e-5 * ref
    assert rel_err(dX, rX) <= 1e-5 and rel_err(dW, rW) <= 1e-5


def test_minus_inf_bias_masks_classes(rng):
    X, W = rng.standard_normal((8, 3)), rng.standard_normal((20, 3))
    b = np.zeros(20)
    b[:8] = -np.inf  # a whole first chunk of masked classes
    b[15] = -np.inf
    t = rng.integers(8, 15, 8)
    loss, (dX, dW, db) = luce.linear_cross_entropy(X, W, t, b, chunk_size=8, return_grad=True)
    mask = np.ones(20, bool)
    mask[:8] = mask[15] = False
    ref, (rX, rW, _rb) = plain(X, W[mask], np.searchsorted(np.flatnonzero(mask), t))
    assert loss == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(dX, rX, rtol=1e-12)
    np.testing.assert_allclose(dW[mask], rW, rtol=1e-12)
    np.testing.assert_array_equal(dW[~mask], 0.0)
    np.testing.assert_array_equal(db[~mask], 0.0)
    # a target on a masked class has infinite loss
    assert luce.linear_cross_entropy(X[:1], W, [3], b) == np.inf


def test_nan_propagates(rng):
    X, W = rng.standard_normal((3, 2)), rng.standard_normal((6, 2))
    X[1, 0] = np.nan
    out = luce.linear_cross_entropy(X, W, [0, 1, 2], reduction="none", chunk_size=4)
    assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2]]))


def test_dtypes_and_inputs_untouched(rng):
    X16 = rng.standard_normal((4, 3)).astype(np.float16)
    W16 = rng.standard_normal((5, 3)).astype(np.float16)
    loss, (dX, dW, _) = luce.linear_cross_entropy(X16, W16, [0, 1, 2, 3], return_grad=True)
    assert loss.dtype == np.float16 and dX.dtype == np.float16 and dW.dtype == np.float16
    assert luce.linear_cross_entropy(np.ones((2, 3), int), np.eye(3, dtype=int), [0, 1]).dtype == np.float64
    mixed = luce.linear_cross_entropy(X16.astype(np.float32), W16.astype(np.float64), [0, 1, 2, 3])
    assert mixed.dtype == np.float64
    # read-only, Fortran-ordered and strided inputs; nothing is written to them
    X = rng.standard_normal((6, 8))[:, ::2]
    W = np.asfortranarray(rng.standard_normal((7, 4)))
    X.flags.writeable = W.flags.writeable = False
    before = X.copy(), W.copy()
    loss, (dX, dW, _) = luce.linear_cross_entropy(X, W, [0, 1, 2, 3, 4, 5], return_grad=True)
    ref, (_rX, rW, _) = plain(X, W, [0, 1, 2, 3, 4, 5])
    assert loss == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(dW, rW, rtol=1e-12)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(W, before[1])


def test_memory_never_holds_the_logits(rng, monkeypatch):
    # A small budget forces many blocks; the peak extra memory must stay far below n·V.
    monkeypatch.setattr(_linear_ce, "BLOCK_BUDGET", 256 * 1024)
    n, d, V = 2048, 16, 4096
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((V, d)).astype(np.float32)
    t = rng.integers(0, V, n)
    logits_bytes = n * V * 4  # 32 MiB
    tracemalloc.start()
    try:
        _loss, (dX, dW, _) = luce.linear_cross_entropy(X, W, t, return_grad=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = dX.nbytes + dW.nbytes
    assert peak - outputs < 1024 * 1024 < logits_bytes / 16
    sub = slice(0, 64)
    ref, _ = plain(X[sub], W, t[sub])
    assert float(luce.linear_cross_entropy(X[sub], W, t[sub])) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"W": np.ones(3)}, ValueError, r"W must have shape \(n_classes, n_features\)"),
        ({"W": np.ones((4, 2))}, ValueError, "n_features = 3"),
        ({"W": np.ones((0, 3))}, ValueError, "at least one row"),
        ({"X": np.ones((2, 3), complex)}, TypeError, "X must be real"),
        ({"X": 1.0}, ValueError, "X must have shape"),
        ({"target": [0.0, 1.0]}, TypeError, "target must be an integer array"),
        ({"target": [0, 1, 2]}, ValueError, r"target must have shape X.shape\[:-1\] = \(2,\)"),
        ({"target": [0, 4]}, ValueError, r"class indices in \[0, 4\).*got 4"),
        ({"target": [-1, 0]}, ValueError, "got -1"),
        ({"bias": np.ones(3)}, ValueError, r"bias must have shape \(n_classes,\) = \(4,\)"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing must be in"),
        ({"label_smoothing": "a"}, TypeError, "label_smoothing"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
        ({"reduction": "none", "return_grad": True}, ValueError, "needs a scalar loss"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be a positive int"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an int"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"X": np.ones((2, 3)), "W": np.ones((4, 3)), "target": [0, 1]} | kwargs
    X, W, target = args.pop("X"), args.pop("W"), args.pop("target")
    with pytest.raises(error, match=match):
        luce.linear_cross_entropy(X, W, target, **args)


def test_plan_keeps_the_block_within_budget():
    budget = _linear_ce.BLOCK_BUDGET
    # many rows and a narrow vocabulary chunk (every BLAS product has two large dimensions)
    rows, chunk = _linear_ce._plan(8192, 65536, 4, None)
    assert rows == 8192 and rows * chunk * 4 <= budget
    rows, chunk = _linear_ce._plan(100_000, 1 << 22, 8, None)
    assert rows * chunk * 8 <= budget and chunk >= 128
    # a small vocabulary is one chunk: one pass, the exponentials reused for the gradient
    assert _linear_ce._plan(512, 1000, 4, None) == (512, 1000)
    assert _linear_ce._plan(10, 50, 4, 7) == (10, 7)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_no_features_gives_the_cross_entropy_of_the_bias(chunk_size):
    # d = 0: every logit is the bias. Found by fuzzing (a reshape of (-1, 0) and BLAS with k = 0 failed).
    bias = np.array([0.0, 1.0, -2.0, 3.0])
    target = np.array([[0, 3, 1], [2, 2, 0]])
    loss, (dX, dW, db) = luce.linear_cross_entropy(
        np.ones((2, 3, 0)), np.ones((4, 0)), target, bias=bias, chunk_size=chunk_size, return_grad=True
    )
    logits = np.broadcast_to(bias, (6, 4))
    expected = -scipy.special.log_softmax(logits, axis=1)[np.arange(6), target.ravel()].mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-14)
    grad = (scipy.special.softmax(logits, axis=1) - np.eye(4)[target.ravel()]) / 6
    np.testing.assert_allclose(db, grad.sum(axis=0), rtol=1e-12, atol=1e-15)
    assert dX.shape == (2, 3, 0) and dW.shape == (4, 0)


def test_concurrent_small_calls_leave_the_blas_thread_count_as_it_was(rng):
    # Small products run on one BLAS thread; that limit is process-wide. Interleaved save/restore from
    # several threads used to leave SciPy's BLAS at one thread for the rest of the process.
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    X, W = rng.normal(size=(16, 8)), rng.normal(size=(10, 8))
    target = rng.integers(0, 10, 16)
    expected = luce.linear_cross_entropy(X, W, target)
    results = []

    def work():
        results.extend(luce.linear_cross_entropy(X, W, target) for _ in range(200))

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert blas_threads() == before
    assert len(results) == 1600 and all(r == expected for r in results)


def test_interleaved_blas_limits_restore_the_original_count():
    # The interleaving of two threads' calls, made deterministic: A enters, B enters, A leaves, B leaves.
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    luce.linear_cross_entropy(np.ones((2, 2)), np.ones((3, 2)), [0, 1])  # SciPy's BLAS is loaded
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        first, second = _linear_ce._blas_threads(1), _linear_ce._blas_threads(1)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert set(blas_threads()) == {1}  # the second call is still running small products
        second.__exit__(None, None, None)
        assert blas_threads() == before
