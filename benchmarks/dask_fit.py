"""SoftmaxRegression on a Dask cluster, on data larger than the cluster's memory, in one run.

A 2-worker ``distributed.LocalCluster`` (1 thread each, ``--memory-limit`` per worker, 400 MB by default)
trains on ``--rows × --features`` float32 features (3.75 M × 100 = 1.5 GB by default: about twice the
workers' total memory limit) with ``--classes`` labels. The data are generated lazily chunk by chunk:
every chunk is a pure function of (seed, chunk index) -- labels drawn uniformly, features the class mean
plus Gaussian noise, then scaled and shifted per column -- so ``luce.persist="auto"`` streams them (each
pass regenerates the chunks; no more than a few chunks are in memory at once) and a worker that dies can
recompute its chunks.

Rows of the table:

* ``np.copyto`` of the in-memory sample: the cost of touching those bytes once (the ratio column's unit).
* ``luce in memory``: ``SoftmaxRegression.fit`` on a NumPy sample (``--sample-rows``) in this process.
* ``luce dask, persisted``: the same sample as a dask array; it fits in the workers' memory, so "auto"
  persists it and every pass reads it from the workers' memory: the cost of distribution alone.
* ``luce dask, streamed``: the whole data set, larger than the cluster's memory, so "auto" streams it:
  every pass regenerates the chunks (generation included in the time).

``s/iter`` is the median wall time of a solver iteration (from the ``verbose`` callback; an L-BFGS iteration
is one pass over the data, plus line-search passes when it backtracks), ``ns/row/iter`` that time per row,
and ``vs copyto`` the per-row time of an iteration over the per-row time of ``np.copyto``. Peak worker memory
is the largest resident set of a worker process while the fit ran (sampled every 20 ms in each worker),
next to its memory limit. Accuracy is measured on held-out chunks (rows the fit never saw).

With ``--dask-ml PYTHON``, a Python executable of a separate environment with dask-ml installed, the same
chunks (regenerated there from the same seed) are also fitted by ``dask_ml.linear_model.LogisticRegression``
and its held-out accuracy is printed beside luce's.

The machine is shared by other jobs (2 cores): timings are noisy, compare ratios rather than seconds.

Run: python benchmarks/dask_fit.py [--rows 3750000 --features 100 --classes 10 --chunk-rows 50000]
     python benchmarks/dask_fit.py --quick   (a 20-second smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
import warnings

import numpy as np

from _common import copyto_time

MB = 1_000_000


# -- the data: pure functions of (seed, chunk index) -----------------------------------------------


def _params(features, classes, seed):
    rng = np.random.default_rng(seed)
    means = (0.15 * rng.standard_normal((classes, features))).astype(np.float32)
    scales = np.linspace(0.5, 3.0, features, dtype=np.float32)
    offset = rng.uniform(-1.0, 1.0, features).astype(np.float32)
    return means, scales, offset


def labels_chunk(rows, classes, seed, block_id=None, offset_blocks=0):
    index = block_id[0] + offset_blocks
    return np.random.default_rng([seed, index, 1]).integers(0, classes, rows[index - offset_blocks])


def features_chunk(rows, features, classes, seed, block_id=None, offset_blocks=0):
    index = block_id[0] + offset_blocks
    means, scales, offset = _params(features, classes, seed)
    y = labels_chunk(rows, classes, seed, block_id, offset_blocks)
    X = np.random.default_rng([seed, index, 0]).standard_normal((len(y), features), dtype=np.float32)
    X += means[y]
    X *= scales
    X += offset
    return X


def make_data(n_rows, features, classes, chunk_rows, seed, first_block=0):
    """Lazy ``(X, y)`` dask arrays: chunk ``i`` is generated from ``(seed, first_block + i)``."""
    import dask.array as da

    rows = (chunk_rows,) * (n_rows // chunk_rows) + ((n_rows % chunk_rows,) if n_rows % chunk_rows else ())
    X = da.map_blocks(
        features_chunk,
        rows,
        features,
        classes,
        seed,
        offset_blocks=first_block,
        chunks=(rows, (features,)),
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
    )
    y = da.map_blocks(
        labels_chunk,
        rows,
        classes,
        seed,
        offset_blocks=first_block,
        chunks=(rows,),
        dtype=np.int64,
        meta=np.empty((0,), dtype=np.int64),
    )
    return X, y


# -- measurements ------------------------------------------------------------------------------------


def _start_sampler(dask_worker):
    """Record the worker process's peak resident set every 20 ms (until told to stop)."""
    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "stop": threading.Event()}

    def sample():
        while not state["stop"].wait(0.02):
            state["peak"] = max(state["peak"], proc.memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker._luce_peak = state


def _stop_sampler(dask_worker):
    state = dask_worker._luce_peak
    state["stop"].set()
    return state["peak"]


class IterationClock:
    """A ``verbose`` callable: the wall time of every solver iteration."""

    def __init__(self):
        self.times = []

    def __call__(self, i, loss):
        self.times.append(time.perf_counter())

    def per_iteration(self):
        steps = np.diff(self.times)
        return float(np.median(steps)) if steps.size else float("nan")


def fit_timed(make_model, X, y):
    clock = IterationClock()
    model = make_model(clock)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning at max_iter is reported in the table
        model.fit(X, y)
    return model, time.perf_counter() - t, clock.per_iteration()


def dask_ml_accuracy(python, args):
    """dask-ml's LogisticRegression on the same chunks, in another environment (its own process)."""
    code = f"""
import sys, json, warnings, numpy as np
warnings.simplefilter("ignore")
import dask, dask.array
sys.path.append({os.path.dirname(os.path.abspath(__file__))!r})
from dask_fit import make_data
from dask_ml.linear_model import LogisticRegression
X, y = make_data({args.sample_rows}, {args.features}, {args.classes}, {args.chunk_rows}, {args.seed})
Xt, yt = make_data({args.test_rows}, {args.features}, {args.classes}, {args.chunk_rows}, {args.seed},
                   first_block=10**6)
with dask.config.set(scheduler="threads"):
    X, y, Xt, yt = dask.persist(X, y, Xt, yt)
    model = LogisticRegression(C={1.0 / (args.reg_strength * args.sample_rows)!r}, max_iter=100).fit(X, y)
    pred = np.asarray(model.predict(Xt))
    print(json.dumps({{"accuracy": float((pred == np.asarray(yt)).mean()),
                      "n_distinct_predictions": int(len(np.unique(pred)))}}))
"""
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=1800)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the run -----------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_750_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--sample-rows", type=int, default=300_000)
    parser.add_argument("--test-rows", type=int, default=200_000)
    parser.add_argument("--memory-limit", default="400MB")
    parser.add_argument("--reg-strength", type=float, default=1e-4)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dask-ml", metavar="PYTHON", help="a python with dask-ml installed")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.features, args.classes = 200_000, 20, 5
        args.chunk_rows, args.sample_rows, args.test_rows = 10_000, 50_000, 20_000

    import dask
    from distributed import Client, LocalCluster

    from luce import SoftmaxRegression

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=":0",  # any free port: never collides with another cluster on the machine
        host="127.0.0.1",
    )
    client = Client(cluster)
    try:
        limit = sum(w["memory_limit"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
        X, y = make_data(args.rows, args.features, args.classes, args.chunk_rows, args.seed)
        Xs, ys = make_data(args.sample_rows, args.features, args.classes, args.chunk_rows, args.seed)
        Xt, yt = make_data(args.test_rows, args.features, args.classes, args.chunk_rows, args.seed, 10**6)
        print(
            f"data: {args.rows:,} x {args.features} float32 = {X.nbytes / MB:,.0f} MB in {X.numblocks[0]} "
            f"lazily generated chunks, {args.classes} classes; cluster: 2 workers x {args.memory_limit} "
            f"(total limit {limit / MB:,.0f} MB); in-memory sample {args.sample_rows:,} rows "
            f"({Xs.nbytes / MB:,.0f} MB); held-out {args.test_rows:,} rows",
            flush=True,
        )
        X_np, y_np = dask.compute(Xs, ys)
        Xt_np, yt_np = dask.compute(Xt, yt)

        def model(clock):
            return SoftmaxRegression(args.reg_strength, max_iter=args.max_iter, verbose=clock)

        rows = []
        t_copy = copyto_time(X_np)
        rows.append(("np.copyto (sample)", args.sample_rows, t_copy, None, None, None, None))

        print("fitting in memory ...", flush=True)
        m_mem, total, per_iter = fit_timed(model, X_np, y_np)
        acc = float((m_mem.predict(Xt_np) == yt_np).mean())
        rows.append(("luce in memory", args.sample_rows, per_iter, m_mem.n_iter_, total, None, acc))

        from luce.distributed import _dask

        client.run(lambda: __import__("luce.distributed._dask"))  # warm the workers' imports
        for name, (Xd, yd) in (("sample", (Xs, ys)), ("full data", (X, y))):
            row_bytes = args.features * 4 + 8
            kept = _dask._should_persist("auto", client, Xd.shape[0] * row_bytes)  # what "auto" does
            label = f"luce dask, {'persisted' if kept else 'streamed'}"
            print(f"fitting {label} ({name}) ...", flush=True)
            pids = client.run(os.getpid)
            client.run(_start_sampler)
            m, total, per_iter = fit_timed(model, Xd, yd)
            peak = max(client.run(_stop_sampler).values())
            restarted = pids != client.run(os.getpid)
            acc = float((m.predict(Xt) == yt).mean().compute())
            n = Xd.shape[0]
            rows.append((label, n, per_iter, m.n_iter_, total, (peak, restarted), acc))
            if name == "sample":
                gap = np.abs(m.predict_proba(Xt_np) - m_mem.predict_proba(Xt_np)).max()
                print(f"  persisted vs in memory, same sample: max |Δ probability| = {gap:.1e}", flush=True)

        per_row_copy = t_copy / args.sample_rows
        print()
        print(
            f"{'run':<22} {'rows':>10} {'s/iter':>8} {'ns/row/iter':>12} {'vs copyto':>10} {'iters':>6} "
            f"{'fit s':>7} {'peak worker MB':>15} {'accuracy':>9}"
        )
        for label, n, per_iter, iters, total, mem, acc in rows:
            mem_text = "" if mem is None else f"{mem[0] / MB:,.0f}" + (" (restart!)" if mem[1] else "")
            print(
                f"{label:<22} {n:>10,} {per_iter:>8.3f} {per_iter / n * 1e9:>12.1f} "
                f"{per_iter / n / per_row_copy:>10.1f} {'' if iters is None else iters:>6} "
                f"{'' if total is None else f'{total:.1f}':>7} {mem_text:>15} "
                f"{'' if acc is None else f'{acc:.4f}':>9}"
            )
        mem_row = rows[1]
        for label, n, per_iter, *_ in rows[2:]:
            ratio = per_iter / n / (mem_row[2] / mem_row[1])
            print(f"overhead per row and iteration, {label} vs in memory: {ratio:.2f}x")
        print(
            f"worker memory limit: {limit / 2 / MB:,.0f} MB each; data {X.nbytes / limit:.1f}x the total "
            "limit"
        )
        if args.dask_ml:
            print("fitting dask-ml LogisticRegression on the in-memory sample's chunks ...", flush=True)
            result = dask_ml_accuracy(args.dask_ml, args)
            print(
                f"dask-ml LogisticRegression (sample): {result}; luce in memory (same sample): "
                f"{rows[1][6]:.4f}"
            )
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
