"""softmax, log_softmax and logsumexp: luce's kernels beside NumPy, SciPy, torch, ONNX Runtime and a copy.

For float32 and float64 and three shapes (4096×32000 along the last axis, a 32k-vocabulary batch;
32000×4096 along axis 0; 65536×16, many short rows), one run prints the median time of

* luce (``luce.softmax`` … with the default backend: the compiled kernels at these sizes), and the same
  call writing into a preallocated array (``luce→out``: ``luce.softmax(x, out=buf)``),
* numpy naive (``exp(x - max) / sum``: the textbook formula, several full-size temporaries),
* ``scipy.special`` (``softmax``, ``log_softmax``, ``logsumexp``),
* torch CPU (``torch.softmax`` …, ``torch.set_num_threads(2)``) when torch is importable, also with
  ``out=`` (``torch→out``),
* ONNX Runtime (CPUExecutionProvider, 2 intra-op threads) when importable: a one-node ``Softmax`` /
  ``LogSoftmax`` / ``ReduceLogSumExp`` model (opset 13, ``axis`` attribute) built with ``onnx.helper``,
  run with ``run_with_ort_values`` on an ``OrtValue`` wrapping the input (no copy in),
* ``np.copyto`` of the same array into a preallocated one: read once, write once, the floor for a
  memory-bound operation (``logsumexp`` only reads, so it can go below it),
* ``x.copy()``: the same copy into a freshly allocated array. Every function here returns a new array,
  whose pages the OS must fault in and zero on first touch; on some machines (VMs) that costs more
  than the copy itself, and it is included in every row but ``np.copyto``,

and luce's time as a ratio to ``np.copyto`` and to each peer (``3.1x`` = luce is 3.1 times faster;
``luce→out`` is compared with ``torch→out``, everything else with ``luce``).
First-call (cold start) times are measured by benchmarks/cold_start.py.

The machine may be shared: timings are noisy, medians of ``--repeat`` runs (5). ``--quick`` uses
shapes 16× smaller. ``--crossover`` times small arrays on both backends instead (to tune
``luce._kernels._dispatch.MIN_SOFTMAX_SIZE``); ``--widths`` times float32 and float64 rows of 16 to
4096 elements (a classifier's class counts) against torch, both writing into ``out``.

Run: python benchmarks/softmax.py [--quick] [--repeat 5] [--crossover | --widths]
"""

from __future__ import annotations

import argparse
import os

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


def onnx_session(op, x, axis, threads=2):
    """A one-node ONNX Runtime model computing ``op`` of ``x`` along ``axis`` (keepdims=0 for
    logsumexp), on the CPU with ``threads`` intra-op threads; returns a function of no arguments."""
    import onnxruntime as ort
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    if op == "logsumexp":  # opset 13: axes is an attribute
        node = helper.make_node("ReduceLogSumExp", ["x"], ["y"], axes=[axis], keepdims=0)
        out_shape = [n for i, n in enumerate(x.shape) if i != axis % x.ndim]
    else:
        node = helper.make_node("Softmax" if op == "softmax" else "LogSoftmax", ["x"], ["y"], axis=axis)
        out_shape = list(x.shape)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", elem, list(x.shape))],
        [helper.make_tensor_value_info("y", elem, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    value = ort.OrtValue.ortvalue_from_numpy(x)
    return lambda: session.run_with_ort_values(["y"], {"x": value})


def peers(x, axis, torch, onnx_ok):
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
    if onnx_ok:
        out["onnxruntime"] = {op: onnx_session(op, x, axis) for op in OPS}
    return out


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def table(shapes, repeat, torch, onnx_ok):
    names = ["luce", "luce→out", "numpy", "scipy"] + (["torch", "torch→out"] if torch is not None else [])
    names += ["onnxruntime"] if onnx_ok else []
    head = ["shape", "axis", "dtype", "op", "copyto ms", "x.copy() ms"]
    head += [f"{n} ms (×copyto)" for n in names]
    head += [f"{_ours(n)} vs {n}" for n in names[2:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for shape, axis in shapes:
        for dtype in (np.float32, np.float64):
            for cells in table_rows(shape, axis, dtype, names, repeat, torch, onnx_ok):
                print("| " + " | ".join(cells) + " |", flush=True)


def _ours(peer):
    """The luce column a peer is compared with: writing into ``out`` against ``out``."""
    return "luce→out" if peer.endswith("→out") else "luce"


def table_rows(shape, axis, dtype, names, repeat, torch, onnx_ok):
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32).astype(dtype)
    x *= 4
    t_copy = copyto_time(x, repeat)
    t_alloc = median_time(lambda: x.copy(), repeat, warmup=True)
    fns = peers(x, axis, torch, onnx_ok)
    for op in OPS:
        times = {n: median_time(fns[n][op], repeat, warmup=True) for n in names}
        cells = ["×".join(map(str, shape)), str(axis), np.dtype(dtype).name, op]
        cells += [fmt_ms(t_copy), fmt_ms(t_alloc)]
        cells += [f"{fmt_ms(times[n])} ({times[n] / t_copy:.2f}×)" for n in names]
        cells += [f"{times[n] / times[_ours(n)]:.1f}x" for n in names[2:]]
        yield cells


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
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    try:
        import onnx  # noqa: F401
        import onnxruntime

        onnx_ok = True
    except ImportError:
        onnx_ok = False
    from luce._kernels import _runtime

    print(
        f"luce kernels: {_runtime.isa()}, {_runtime.max_threads()} OpenMP threads; torch: "
        f"{'not installed' if torch is None else f'{torch.__version__}, 2 threads'}; onnxruntime: "
        f"{onnxruntime.__version__ + ', 2 threads' if onnx_ok else 'not installed'}; "
        f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}\n"
    )
    if args.crossover:
        crossover(args.repeat)
        return
    if args.widths:
        widths(args.repeat, torch)
        return
    div = 16 if args.quick else 1
    shapes = [((4096 // div, 32000), -1), ((32000, 4096 // div), 0), ((65536 // div, 16), -1)]
    table(shapes, args.repeat, torch, onnx_ok)


if __name__ == "__main__":
    main()
