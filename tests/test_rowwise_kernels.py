"""The compiled row-wise kernels (luce._kernels._losses, _sparse) against the NumPy reference path.

Each public function that reaches a kernel (cross_entropy in all its target kinds, topk_softmax,
sparsemax, entmax15, entmax_bisect) runs on backend "compiled" and on backend "reference" (NumPy only,
no kernel) over small float32/float64 inputs that mix ordinary rows with the rows the kernels hand back
(NaN, +inf, all -inf) and rows with -inf entries; row lengths cover every remainder modulo the kernels'
16 lanes. Also: the dispatch table, the flags the kernels set, results independent of the thread
count, concurrent calls from Python threads, and the wrappers' argument checks.
"""

import threading

import numpy as np
import pytest

import luce
from luce._kernels import _dispatch, use_backend

DTYPES = [np.float32, np.float64]
OPS = ["cross_entropy", "topk_softmax", "sparsemax", "entmax15", "entmax_bisect"]


def _rows(rng, n_rows, n, dtype, special=True):
    x = (rng.standard_normal((n_rows, n)) * 3).astype(dtype)
    if special and n_rows >= 6:
        x[1, n // 2] = np.nan
        x[2, 0] = np.inf
        x[2, -1] = np.inf
        x[3] = -np.inf
        x[4, ::2] = -np.inf  # -inf entries in an ordinary row
        x[5, :] = x[5, 0]  # all tied
    return x


def _both(fn):
    with use_backend("compiled"):
        got = fn()
    with use_backend("reference"):
        want = fn()
    return got, want


def _close(got, want, dtype, rtol64=1e-12, rtol32=2e-5, atol32=1e-6):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    if dtype == np.float64:
        np.testing.assert_allclose(got[fin], want[fin], rtol=rtol64, atol=1e-15)
    else:
        np.testing.assert_allclose(got[fin], want[fin], rtol=rtol32, atol=atol32)


def test_every_op_has_a_compiled_kernel_and_respects_the_backend():
    small = np.zeros((2, 3))
    for op in OPS:
        with use_backend("compiled"):
            assert callable(_dispatch.lookup(op, small))
            assert _dispatch.lookup(op, small.astype(np.float16)) is None
        with use_backend("reference"):
            assert _dispatch.lookup(op, small) is None
        with use_backend("auto"):
            assert _dispatch.lookup(op, small) is None  # below MIN_ROWWISE_SIZE
            assert callable(_dispatch.lookup(op, np.zeros((4, _dispatch.MIN_ROWWISE_SIZE // 4))))


def test_kernels_are_reached(monkeypatch):
    # Each public call on the compiled backend runs its kernel (the spy counts), whatever the size.
    calls = []
    real = _dispatch.lookup

    def spy(op, x, size=None):
        kernel = real(op, x, size)
        if kernel is None:
            return None

        def counted(*args):
            calls.append(op)
            return kernel(*args)

        return counted

    monkeypatch.setattr(_dispatch, "lookup", spy)
    x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    with use_backend("compiled"):
        luce.cross_entropy(x, [0, 2])
        luce.topk_softmax(x, 2)
        luce.sparsemax(x)
        luce.entmax15(x)
        luce.entmax_bisect(x, alpha=1.7)
    assert calls == OPS


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 33, 100])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.1},
        {"temperature": 0.7},
        {"weight": "w"},
        {"weight": "w", "label_smoothing": 0.2, "temperature": 2.0},
        {"ignore_index": -1},
    ],
)
def test_cross_entropy_index_targets(dtype, n, options, rng):
    x = _rows(rng, 9, n, dtype)
    y = rng.integers(0, n, 9)
    options = dict(options)
    if options.get("weight") == "w":
        options["weight"] = rng.uniform(0.0, 2.0, n)
    if "ignore_index" in options:
        y[[0, 7]] = -1
    got, want = _both(lambda: luce.cross_entropy(x, y, reduction="none", return_grad=True, **options))
    _close(got[0], want[0], dtype)
    _close(got[1], want[1], dtype)
    mean, want_mean = _both(lambda: luce.cross_entropy(x[6:], y[6:], return_grad=True, **options))
    _close(mean[0], want_mean[0], dtype)
    _close(mean[1], want_mean[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 16, 37])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.3, "weight": "w", "temperature": 1.5}])
def test_cross_entropy_probability_targets(dtype, n, options, rng):
    x = _rows(rng, 8, n, dtype)
    q = rng.dirichlet(np.ones(n), 8)
    q[0, :2] = [1.0, 0.0] if n > 1 else q[0, :2]
    q[0] /= q[0].sum()
    options = dict(options)
    if options.get("weight") == "w":
        options["weight"] = rng.uniform(0.5, 2.0, n)
    got, want = _both(lambda: luce.cross_entropy(x, q, reduction="none", return_grad=True, **options))
    _close(got[0], want[0], dtype)
    _close(got[1], want[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 5, 16, 17, 40])
def test_cross_entropy_without_gradient(dtype, n, rng):
    x = _rows(rng, 8, n, dtype)
    y = rng.integers(0, n, 8)
    got, want = _both(lambda: luce.cross_entropy(x, y, label_smoothing=0.05, reduction="none"))
    _close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "k"), [(1, 1), (7, 3), (16, 16), (17, 5), (50, 1), (200, 40)])
def test_topk_softmax(dtype, n, k, rng):
    x = _rows(rng, 8, n, dtype)
    if n >= 10:
        x[6, 3:9] = x[6].max() + 1  # ties among the largest: increasing index order
    (p, i), (pw, iw) = _both(lambda: luce.topk_softmax(x, k))
    _close(p, pw, dtype)
    finite = np.isfinite(x).all(axis=1) & ~np.isnan(x).any(axis=1)
    np.testing.assert_array_equal(i[finite], iw[finite])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 64, 301])
@pytest.mark.parametrize("name", ["sparsemax", "entmax15", "entmax_bisect"])
def test_sparse_maps(dtype, n, name, rng):
    x = _rows(rng, 8, n, dtype)
    x[7] *= 1e-3  # every entry a candidate
    fn = getattr(luce, name)
    got, want = _both(lambda: fn(x))
    # entmax_bisect: the reference takes the same Newton-bisection steps vectorised over rows.
    _close(got, want, dtype, rtol64=1e-10, atol32=2e-6)
    support = np.asarray(want) > 0
    np.testing.assert_array_equal(np.asarray(got)[np.isfinite(want)] > 0, support[np.isfinite(want)])


def test_kernels_flag_exactly_the_special_rows(rng):
    from luce._kernels import _losses, _sparse

    for dtype in DTYPES:
        x = _rows(rng, 7, 20, dtype)
        special = np.array([0, 1, 1, 1, 0, 0, 0], dtype=np.uint8)  # NaN, +inf, all -inf
        flags = np.zeros(7, dtype=np.uint8)
        _sparse.sparsemax_rows(x, np.empty_like(x), flags, 2)
        np.testing.assert_array_equal(flags, special)
        flags[:] = 0
        _losses.topk_rows(x, 3, np.empty((7, 3)), np.empty((7, 3), dtype=np.int64), flags, 2)
        np.testing.assert_array_equal(flags, special)
        flags[:] = 0
        loss, grad = np.zeros(7), np.empty_like(x)
        index, active = np.zeros(7, dtype=np.int64), np.ones(7, dtype=bool)
        _losses.ce_rows(x, index, None, None, active, 0.0, 1.0, 1.0, grad, loss, flags, 2)
        np.testing.assert_array_equal(flags, special)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_the_thread_count(dtype, rng):
    from luce._kernels import _losses, _sparse

    # 37 rows of 2000: enough work for 3 threads (csrc/luce_tuning.h, LUCE_ROW_WORK_PER_THREAD).
    x = _rows(rng, 37, 2000, dtype, special=False)
    index, active = rng.integers(0, 2000, 37), np.ones(37, dtype=bool)
    results = []
    for threads in (1, 2, 3):
        out, flags = np.empty_like(x), np.zeros(37, dtype=np.uint8)
        _sparse.entmax15_rows(x, out, flags, threads)
        probs, idx = np.empty((37, 7)), np.empty((37, 7), dtype=np.int64)
        _losses.topk_rows(x, 7, probs, idx, flags, threads)
        loss, grad = np.zeros(37), np.empty_like(x)
        _losses.ce_rows(x, index, None, None, active, 0.1, 1.0, 1.0, grad, loss, flags, threads)
        results.append((out, probs, idx, loss, grad))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_concurrent_calls_from_python_threads(rng):
    # The kernels release the GIL and share nothing: concurrent calls give the serial results.
    x = _rows(rng, 64, 500, np.float32, special=False)
    y = rng.integers(0, 500, 64)
    with use_backend("compiled"):
        want = (luce.cross_entropy(x, y, return_grad=True)[1], luce.sparsemax(x), luce.topk_softmax(x, 5)[0])
    errors = []

    def work():
        try:
            with use_backend("compiled"):
                for _ in range(5):
                    got = (luce.cross_entropy(x, y, return_grad=True)[1], luce.sparsemax(x))
                    got = (*got, luce.topk_softmax(x, 5)[0])
                    for a, b in zip(got, want, strict=True):
                        np.testing.assert_array_equal(a, b)
        except Exception as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_read_only_and_strided_inputs(rng):
    x = _rows(rng, 12, 40, np.float64, special=False)
    ro = x.copy()
    ro.flags.writeable = False
    y = rng.integers(0, 12, 40)
    for arr in (ro, np.asfortranarray(x)):
        got, want = _both(lambda a=arr: luce.sparsemax(a, axis=0))
        _close(got, want, np.float64)
        got, want = _both(lambda a=arr: luce.cross_entropy(a, y, axis=0, return_grad=True))
        _close(got[1], want[1], np.float64)


def test_wrappers_check_their_arguments():
    from luce._kernels import _losses, _sparse

    x = np.zeros((3, 4))
    flags = np.zeros(3, dtype=np.uint8)
    with pytest.raises(ValueError, match="out must be"):
        _sparse.sparsemax_rows(x, np.empty((3, 4), dtype=np.float32), flags, 1)
    with pytest.raises(ValueError, match="alpha must be > 1"):
        _sparse.entmax_bisect_rows(x, 1.0, 10, np.empty_like(x), flags, 1)
    with pytest.raises(ValueError, match="k must be in"):
        _losses.topk_rows(x, 5, np.empty((3, 5)), np.empty((3, 5), dtype=np.int64), flags, 1)
    with pytest.raises(ValueError, match="grad must be"):
        _losses.ce_rows(x, np.zeros(3, dtype=np.int64), None, None, np.ones(3, dtype=bool), 0.0, 1.0, 1.0,
                        np.empty((3, 5)), np.zeros(3), flags, 1)  # fmt: skip
