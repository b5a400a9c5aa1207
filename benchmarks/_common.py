"""Timing helpers every benchmark script shares (imported as ``_common``: the scripts run from here).

The machines are shared and noisy, so every number is a median of repeated runs, and the floor for a
memory-bound operation is ``np.copyto`` of the same array into a preallocated one.
"""

from __future__ import annotations

import time

import numpy as np


def timed(fn, repeat, *, warmup=False):
    """``(median seconds, result of the last call)`` over ``repeat`` calls of ``fn``; ``warmup`` makes
    one untimed call first (compilation, first-touch of caches)."""
    if warmup:
        fn()
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def median_time(fn, repeat, *, warmup=False):
    """Median seconds of ``repeat`` calls of ``fn`` (see :func:`timed`)."""
    return timed(fn, repeat, warmup=warmup)[0]


def copyto_time(a, repeat=5):
    """Median seconds of ``np.copyto`` of ``a`` into a preallocated array: read once, write once."""
    out = np.empty_like(a)
    return median_time(lambda: np.copyto(out, a), repeat)
