"""BLAS thread limits that concurrent callers can share.

BLAS thread limits are process-wide. Two threads that each save the limit, set it to one and restore
it can leave BLAS at one thread for the rest of the process (the second restores the first's "one").
Every part of luce that wants single-threaded BLAS for a while (small products, the fit engine's
block workers, a local Dask scheduler) takes this one counted limit: the first caller sets it, the
last to leave restores the original.
"""

from __future__ import annotations

import contextlib
import sys
import threading

__all__ = ["blas_controller", "blas_threads", "one_blas_thread"]

_lock = threading.Lock()
_users = 0
_limiter = None
_controllers = {}


def blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded now: NumPy's, and SciPy's once
    ``scipy.linalg`` is imported (a scan costs ~10 ms; importing SciPy's BLAS to see it cost ~400 ms
    on the first call of functions that never use it, such as ``linear_cross_entropy``)."""
    scipy_blas = "scipy.linalg" in sys.modules
    controller = _controllers.get(scipy_blas)
    if controller is None:
        from threadpoolctl import ThreadpoolController

        controller = _controllers[scipy_blas] = ThreadpoolController().select(user_api="blas")
    return controller


def blas_threads():
    """The current BLAS thread limit (what ``threadpoolctl.threadpool_limits`` sets); 1 without BLAS."""
    libs = blas_controller().lib_controllers
    return max([lib.num_threads for lib in libs] + [1]) if libs else 1


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with BLAS on one thread; safe to enter from several threads at once."""
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = blas_controller().limit(limits=1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
