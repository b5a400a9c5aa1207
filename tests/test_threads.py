"""luce._threads: the one BLAS thread limit that concurrent callers share."""

import threading

import numpy as np
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
