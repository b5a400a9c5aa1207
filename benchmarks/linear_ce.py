"""linear_cross_entropy against the plain logits-then-cross-entropy path (NumPy, torch), in one run.

Problem: N=8192 rows, d=512 features, V=65536 classes, float32 — the plain path holds 2 GiB of logits
(and reuses or allocates as much again for their gradient). Each method runs in its own process, so its
peak memory is its own: "peak above inputs" is the resident-set peak minus the resident set just before
the call (inputs already in memory), and for the NumPy-based methods also the tracemalloc peak of
NumPy's allocations. The gradients themselves (dX 16 MiB + dW 128 MiB + dbias) are outputs every
method must hold; "workspace" is the peak minus those outputs. Times (forward + gradients) are
medians over ``--repeat`` rounds in which every method runs once (round robin, one process per call),
BLAS limited to 2 threads for every method, and also given as a ratio to ``np.copyto`` of the inputs
X and W (the cost of touching the data once). The machine is shared, so timings are noisy.

Run: python benchmarks/linear_ce.py [--n 8192 --d 512 --v 65536 --repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

THREADS = 2
MIB = 1024 * 1024


def make_inputs(n, d, v):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    W = rng.standard_normal((v, d), dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(v, dtype=np.float32) * np.float32(0.1)
    t = rng.integers(0, v, n)
    return X, W, b, t


def plain_numpy(X, W, b, t, grad=True):
    """The N×V path, written as efficiently as NumPy allows (in place, one logits buffer)."""
    n = X.shape[0]
    z = X @ W.T  # (N, V): 2 GiB in float32
    z += b
    rows = np.arange(n)
    zt = z[rows, t].astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    z -= m
    np.exp(z, out=z)
    s = z.sum(axis=1, dtype=np.float64)
    loss = float(np.mean(np.log(s) + m[:, 0] - zt))
    if not grad:
        return loss, None
    z *= (1.0 / (n * s)).astype(np.float32)[:, None]  # softmax / N
    z[rows, t] -= np.float32(1.0 / n)
    dX = z @ W
    dW = z.T @ X
    db = z.sum(axis=0)
    return loss, (dX, dW, db)


def luce_path(X, W, b, t, grad=True):
    import luce

    out = luce.linear_cross_entropy(X, W, t, b, return_grad=grad)
    return (float(out[0]), out[1]) if grad else (float(out), None)


def torch_path(X, W, b, t, grad=True):
    import torch

    F = torch.nn.functional
    Xt, Wt, bt = (torch.from_numpy(a).requires_grad_(grad) for a in (X, W, b))
    loss = F.cross_entropy(Xt @ Wt.T + bt, torch.from_numpy(t))
    if not grad:
        return float(loss), None
    loss.backward()
    return float(loss), (Xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy())


METHODS = {
    "luce.linear_cross_entropy": (luce_path, True),
    "plain NumPy (logits + CE)": (plain_numpy, True),
    "torch plain (logits + F.cross_entropy)": (torch_path, True),
    "luce, loss only": (luce_path, False),
    "plain NumPy, loss only": (plain_numpy, False),
}


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def reset_peak_rss():
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux, or not permitted: the peak then includes earlier allocations
        pass


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(name, n, d, v, repeat):
    from threadpoolctl import threadpool_limits

    fn, grad = METHODS[name]
    if fn is torch_path:
        import torch

        torch.set_num_threads(THREADS)
    else:
        import scipy.linalg.blas  # noqa: F401  (imported before the clock starts, as luce is)

        import luce  # noqa: F401
    X, W, b, t = make_inputs(n, d, v)
    with threadpool_limits(THREADS):
        reset_peak_rss()
        base_rss = rss_bytes()
        tracemalloc.start()
        t0 = time.perf_counter()
        loss, grads = fn(X, W, b, t, grad)
        times = [time.perf_counter() - t0]
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_rss = peak_rss_bytes()
        outputs = sum(g.nbytes for g in grads) if grads else 0
        checksum = [float(np.abs(g).sum(dtype=np.float64)) for g in grads] if grads else []
        del grads
        for _ in range(repeat - 1):
            t0 = time.perf_counter()
            fn(X, W, b, t, grad)
            times.append(time.perf_counter() - t0)
        # time of touching the inputs once, the unit of the ratio column (after the memory peak)
        dst_x, dst_w = np.empty_like(X), np.empty_like(W)
        copies = []
        for _ in range(5):
            t0 = time.perf_counter()
            np.copyto(dst_x, X)
            np.copyto(dst_w, W)
            copies.append(time.perf_counter() - t0)
    return {
        "time": float(np.median(times)),
        "copyto": float(np.median(copies)),
        "rss_extra": peak_rss - base_rss,
        "traced_extra": traced_peak if fn is not torch_path else None,
        "outputs": outputs,
        "loss": loss,
        "checksum": checksum,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--v", type=int, default=65536)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.d, args.v, args.repeat)))
        return

    try:
        import torch  # noqa: F401

        names = list(METHODS)
    except ImportError:
        names = [m for m in METHODS if not m.startswith("torch")]
    print(
        f"linear cross-entropy, N={args.n}, d={args.d}, V={args.v}, float32, {THREADS} BLAS threads "
        f"(logits would be {args.n * args.v * 4 / MIB:.0f} MiB); median of {args.repeat}"
    )
    # Round robin: one call per method per round, each in a fresh process, so a change in the load of
    # the (shared) machine affects every method alike; the median over the rounds is reported.
    runs = {name: [] for name in names}
    for _ in range(args.repeat):
        for name in names:
            cmd = [sys.executable, __file__, "--worker", name, "--n", str(args.n), "--d", str(args.d)]
            cmd += ["--v", str(args.v), "--repeat", "1"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    results = {}
    for name, rs in runs.items():
        r = dict(rs[0])
        for key in ("time", "copyto"):
            r[key] = float(np.median([x[key] for x in rs]))
        for key in ("rss_extra", "traced_extra"):
            r[key] = None if r[key] is None else max(x[key] for x in rs)
        results[name] = r

    ref_full = results["plain NumPy (logits + CE)"]
    ref_fwd = results["plain NumPy, loss only"]
    header = (
        f"{'method':40s} {'time s':>8s} {'x plain':>8s} {'x copyto':>9s} {'peak RSS':>10s} "
        f"{'tracemalloc':>12s} {'workspace':>10s} {'loss':>11s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        ref = ref_full if r["outputs"] else ref_fwd
        traced = "-" if r["traced_extra"] is None else f"{r['traced_extra'] / MIB:9.0f} MiB"
        work = (r["traced_extra"] if r["traced_extra"] is not None else r["rss_extra"]) - r["outputs"]
        print(
            f"{name:40s} {r['time']:8.2f} {r['time'] / ref['time']:8.2f} {r['time'] / r['copyto']:9.0f} "
            f"{r['rss_extra'] / MIB:6.0f} MiB {traced:>12s} {work / MIB:6.0f} MiB {r['loss']:11.6f}"
        )
    luce_r = results["luce.linear_cross_entropy"]
    diffs = [abs(a - b) / b for a, b in zip(luce_r["checksum"], ref_full["checksum"], strict=True)]
    loss_diff = abs(luce_r["loss"] - ref_full["loss"]) / ref_full["loss"]
    print(
        f"\nluce vs plain NumPy: loss rel. diff {loss_diff:.1e}, "
        f"sum|grad| rel. diffs (dX, dW, dbias) {', '.join(f'{x:.1e}' for x in diffs)}"
    )
    print(
        f"targets: luce workspace <= 64 MiB (got {(luce_r['traced_extra'] - luce_r['outputs']) / MIB:.0f}), "
        f"time <= 1.25x plain (got {luce_r['time'] / ref_full['time']:.2f}x)"
    )
    print("peak RSS / tracemalloc: peak above the inputs, gradient outputs included; workspace: without them")


if __name__ == "__main__":
    main()
