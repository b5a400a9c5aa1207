"""luce._threads: the one BLAS thread limit that concurrent callers share."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import luce
from luce._threads import one_blas_thread


def _blas_threads():
    return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_interleaved_limits_restore_the_original_count():
    # A enters, B enters, A leaves, B leaves: the limit holds until the last one leaves.
    luce.linear_cross_entropy(np.ones((2, 2)), np.ones((3, 2)), [0, 1])  # SciPy's BLAS is loaded
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert set(_blas_threads()) == {1}
        second.__exit__(None, None, None)
        assert _blas_threads() == before


def test_concurrent_fits_leave_blas_as_it_was_and_agree_with_a_serial_fit():
    # Small fits run with one BLAS thread, and the fit engine's workers too; from several threads at once
    # a save/restore of the process-wide limit used to leave BLAS at one thread for good.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, 60)
    expected = luce.SoftmaxRegression(reg_strength=1e-2).fit(X, y).coef_
    results = []

    def work():
        results.extend(luce.SoftmaxRegression(reg_strength=1e-2).fit(X, y).coef_ for _ in range(10))

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _blas_threads() == before
    assert len(results) == 60
    for coef in results:
        np.testing.assert_array_equal(coef, expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_large_fits_keep_blas_at_one_thread_and_the_engine_at_the_entry_limit(monkeypatch):
    # Switching OpenBLAS between one and two threads around every evaluation made SciPy's L-BFGS-B
    # update cost milliseconds: BLAS stays at one thread for the whole solver run, while the engine's
    # blocks keep the width the caller's limit gave.
    from luce.models import _objective

    widths = []
    reduce_blocks = _objective.reduce_blocks

    def spy(task, blocks, n_threads):
        widths.append(n_threads)
        return reduce_blocks(task, blocks, n_threads)

    monkeypatch.setattr(_objective, "reduce_blocks", spy)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 50))  # 20,000 x 50 x 5 multiply-adds: above the single-thread size
    y = rng.integers(0, 5, 20_000)
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        luce.SoftmaxRegression(max_iter=5, verbose=lambda i, loss: seen.append(_blas_threads())).fit(X, y)
        assert _blas_threads() == before
    assert seen and all(set(s) == {1} for s in seen)
    assert widths and set(widths) == {2}
