"""softmax, log_softmax and logsumexp: luce's kernels beside NumPy, SciPy, torch and a plain copy.

For float32 and float64 and three shapes (4096×32000 along the last axis, a 32k-vocabulary batch;
32000×4096 along axis 0; 65536×16, many short rows), one run prints the median time of

* luce (``luce.softmax`` … with the default backend: the Numba kernels at these sizes), and the same
  call writing into a preallocated array (``luce→out``: ``luce.softmax(x, out=buf)``),
* numpy naive (``exp(x - max) / sum``: the textbook formula, several full-size temporaries),
* ``scipy.special`` (``softmax``, ``log_softmax``, ``logsumexp``),
* torch CPU (``torch.softmax`` …, ``torch.set_num_threads(2)``) when torch is importable, also with
  ``out=`` (``torch→out``),
* ``np.copyto`` of the same array into a preallocated one: read once, write once, the floor for a
  memory-bound operation (``logsumexp`` only reads, so it can go below it),
* ``x.copy()``: the same copy into a freshly allocated array. Every function here returns a new array,
  whose pages the OS must fault in and zero on first touch; on some machines (VMs) that costs more
  than the copy itself, and it is included in every row but ``np.copyto``,

and luce's time as a ratio to ``np.copyto`` and to each peer (``3.1x`` = luce is 3.1 times faster;
``luce→out`` is compared with ``torch→out``, everything else with ``luce``).
It also measures the kernels' first-call time: cold (compiling, in a fresh Numba cache) and warm
(loading the on-disk cache), each in a subprocess.

The machine may be shared: timings are noisy, medians of ``--repeat`` runs (5). ``--quick`` uses
shapes 16× smaller. ``--crossover`` times small arrays on both backends instead (to tune
``luce._kernels._dispatch.MIN_KERNEL_SIZE``); ``--widths`` times float32 and float64 rows of 16 to
4096 elements (a classifier's class counts) against torch, both writing into ``out``.

Run: python benchmarks/softmax.py [--quick] [--repeat 5] [--crossover | --widths] [--no-compile-time]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.special

import luce
from _common import copyto_time, median_time
from luce._kernels import use_backend

OPS = ("softmax", "log_softmax", "logsumexp")


def numpy_naive(op, x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    if op == "softmax":
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)
    if op == "log_softmax":
        s = x - m
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def peers(x, axis, torch):
    result = np.empty_like(x)
    reduced = np.empty(np.delete(x.shape, axis), x.dtype)
    out = {
        "luce": {op: (lambda op=op: getattr(luce, op)(x, axis)) for op in OPS},
        "luce→out": {
            op: (lambda op=op: getattr(luce, op)(x, axis, out=reduced if op == "logsumexp" else result))
            for op in OPS
        },
        "numpy": {op: (lambda op=op: numpy_naive(op, x, axis)) for op in OPS},
        "scipy": {op: (lambda op=op: getattr(scipy.special, op)(x, axis=axis)) for op in OPS},
    }
    if torch is not None:
        t = torch.from_numpy(x)
        t_result, t_reduced = torch.from_numpy(result), torch.from_numpy(reduced)
        out["torch"] = {
            "softmax": lambda: torch.softmax(t, dim=axis),
            "log_softmax": lambda: torch.log_softmax(t, dim=axis),
            "logsumexp": lambda: torch.logsumexp(t, dim=axis),
        }
        out["torch→out"] = {
            "softmax": lambda: torch.softmax(t, dim=axis, out=t_result),
            "log_softmax": lambda: torch.log_softmax(t, dim=axis, out=t_result),
            "logsumexp": lambda: torch.logsumexp(t, dim=axis, out=t_reduced),
        }
    return out


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def table(shapes, repeat, torch):
    names = ["luce", "luce→out", "numpy", "scipy"] + (["torch", "torch→out"] if torch is not None else [])
    head = ["shape", "axis", "dtype", "op", "copyto ms", "x.copy() ms"]
    head += [f"{n} ms (×copyto)" for n in names]
    head += [f"{_ours(n)} vs {n}" for n in names[2:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for shape, axis in shapes:
        for dtype in (np.float32, np.float64):
            for cells in table_rows(shape, axis, dtype, names, repeat, torch):
                print("| " + " | ".join(cells) + " |", flush=True)


def _ours(peer):
    """The luce column a peer is compared with: writing into ``out`` against ``out``."""
    return "luce→out" if peer.endswith("→out") else "luce"


def table_rows(shape, axis, dtype, names, repeat, torch):
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32).astype(dtype)
    x *= 4
    t_copy = copyto_time(x, repeat)
    t_alloc = median_time(lambda: x.copy(), repeat, warmup=True)
    fns = peers(x, axis, torch)
    for op in OPS:
        times = {n: median_time(fns[n][op], repeat, warmup=True) for n in names}
        cells = ["×".join(map(str, shape)), str(axis), np.dtype(dtype).name, op]
        cells += [fmt_ms(t_copy), fmt_ms(t_alloc)]
        cells += [f"{fmt_ms(times[n])} ({times[n] / t_copy:.2f}×)" for n in names]
        cells += [f"{times[n] / times[_ours(n)]:.1f}x" for n in names[2:]]
        yield cells


def compile_times():
    """First-call time of the kernels in a fresh Numba cache (compiling) and again (cache hit)."""
    code = (
        "import time, numpy as np, luce\n"
        "from luce._kernels import use_backend\n"
        "t = time.perf_counter()\n"
        "with use_backend('numba'):\n"
        "    for dt in (np.float32, np.float64):\n"
        "        for shape, axis in (((8, 100), -1), ((100, 8), 0)):\n"
        "            x = np.ones(shape, dt)\n"
        "            luce.softmax(x, axis); luce.log_softmax(x, axis); luce.logsumexp(x, axis)\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            runs.append(float(out.stdout.strip()) if out.returncode == 0 else float("nan"))
    print(
        f"First call (float32 and float64, rows and columns): cold {runs[0]:.1f} s (compiling), "
        f"warm {runs[1]:.2f} s (Numba cache on disk)\n"
    )


def crossover(repeat):
    """Reference vs kernels on small arrays: where the kernels start to pay."""
    rng = np.random.default_rng(0)
    print("| elements | shape | axis | reference µs | kernels µs |")
    print("|---|---|---|---|---|")
    for size in (64, 256, 1024, 4096, 16384, 65536):
        for n, axis in ((16, -1), (1024, -1), (1024, 0)):
            if size < n:
                continue
            shape = (size // n, n) if axis == -1 else (n, size // n)
            x = rng.standard_normal(shape)
            with use_backend("reference"):
                t_ref = median_time(lambda: luce.softmax(x, axis), 20 * repeat, warmup=True)  # noqa: B023
            with use_backend("compiled"):
                t_ker = median_time(lambda: luce.softmax(x, axis), 20 * repeat, warmup=True)  # noqa: B023
            print(f"| {size} | {shape} | {axis} | {t_ref * 1e6:.0f} | {t_ker * 1e6:.0f} |", flush=True)


def widths(repeat, torch):
    """Rows of many widths (a classifier's class counts), 2^22 elements each (2^21 in float64), into
    ``out``."""
    print("| dtype | n | copyto ms | softmax ms (×copyto) | torch→out ", end="")
    print("| log_softmax ms (×copyto) | torch→out |")
    print("|---|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        size = (1 << 24) // np.dtype(dtype).itemsize
        for n in (16, 32, 64, 100, 256, 1000, 4096):
            x = (4 * np.random.default_rng(0).standard_normal((size // n, n))).astype(dtype)
            out = np.empty_like(x)
            t_copy = median_time(lambda: np.copyto(out, x), 4 * repeat, warmup=True)  # noqa: B023
            cells = [dtype.__name__, str(n), fmt_ms(t_copy)]
            for op in ("softmax", "log_softmax"):
                t = median_time(lambda: getattr(luce, op)(x, out=out), 4 * repeat, warmup=True)  # noqa: B023
                cells.append(f"{fmt_ms(t)} ({t / t_copy:.2f}×)")
                if torch is None:
                    cells.append("-")
                    continue
                tx, tout = torch.from_numpy(x), torch.from_numpy(out)
                fn = getattr(torch, op)
                t_torch = median_time(lambda: fn(tx, dim=-1, out=tout), 4 * repeat, warmup=True)  # noqa: B023
                cells.append(f"{fmt_ms(t_torch)} (luce {t_torch / t:.2f}x)")
            print("| " + " | ".join(cells) + " |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shapes 16 times smaller")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--crossover", action="store_true", help="small arrays on both backends")
    parser.add_argument("--widths", action="store_true", help="rows of 16 to 4096 elements, float32 and 64")
    parser.add_argument("--no-compile-time", action="store_true")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    import numba

    print(
        f"numba threads: {numba.get_num_threads()}, torch: "
        f"{'not installed' if torch is None else f'{torch.__version__}, 2 threads'}, "
        f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}\n"
    )
    if not args.no_compile_time:
        compile_times()
    if args.crossover:
        crossover(args.repeat)
        return
    if args.widths:
        widths(args.repeat, torch)
        return
    div = 16 if args.quick else 1
    shapes = [((4096 // div, 32000), -1), ((32000, 4096 // div), 0), ((65536 // div, 16), -1)]
    table(shapes, args.repeat, torch)


if __name__ == "__main__":
    main()
