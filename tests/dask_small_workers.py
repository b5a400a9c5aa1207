"""SoftmaxRegression on 2 Dask workers of 400 MB each (docs/distributed.md's benchmark setting).

Run by tests/test_dask.py in a subprocess of its own, so that a hang is a timeout there (the process
group is killed) rather than a hung test run; also runnable by hand. It prints one JSON object: each
worker's resident memory (MiB) at start, after ``import luce``, after a first compiled kernel call,
after ``predict_proba`` and after ``fit`` on dask arrays, the heavy modules each step loaded in the
workers, and the wall time of each step.

Issue 16: with Numba, a worker's first softmax loads Numba and llvmlite and compiles: its memory went
205 → 309 MiB, past dask's pause threshold (80 % of 400 MB = 305 MiB), and the compute hung forever.

Run: python tests/dask_small_workers.py [--memory-limit 400MB] [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import time

HEAVY = ("numba", "llvmlite", "luce", "luce._kernels", "sklearn", "scipy", "pandas", "pyarrow", "torch")


def _rss_mib():
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _modules():
    import sys

    return [m for m in HEAVY if m in sys.modules]


def _import_luce():
    import luce  # noqa: F401

    return _rss_mib()


def _first_kernel():
    import numpy as np

    import luce

    # Above every size threshold: the compiled kernel runs (with Numba, it compiles here).
    x = np.linspace(-3.0, 3.0, 64 * 1024, dtype=np.float32).reshape(64, 1024)
    return float(luce.softmax(x, axis=-1).sum())


def _problem(n, d=20, k=5, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float64)
    y = np.argmax(X[:, :k] + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-limit", default="400MB")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per dask step")
    args = parser.parse_args(argv)

    import dask.array as da
    import distributed

    from luce import SoftmaxRegression

    report = {"memory_limit": args.memory_limit, "steps": []}
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=":0",
        host="127.0.0.1",
    )
    client = distributed.Client(cluster, set_as_default=False)

    def step(name, run):
        start = time.perf_counter()
        value = run()
        report["steps"].append(
            {
                "step": name,
                "seconds": round(time.perf_counter() - start, 2),
                "rss_mib": sorted(client.run(_rss_mib).values()),
                "modules": sorted(set().union(*client.run(_modules).values())),
            }
        )
        print(json.dumps(report["steps"][-1]), flush=True)  # progress, read if the next step hangs
        return value

    try:
        step("start", lambda: None)
        step("import luce", lambda: client.run(_import_luce))
        step("first softmax kernel", lambda: client.run(_first_kernel))
        X, y = _problem(args.rows)
        model = SoftmaxRegression(reg_strength=1e-3).fit(X[:2000], y[:2000])  # in this process
        Xd, yd = da.from_array(X, chunks=args.rows // 4), da.from_array(y, chunks=args.rows // 4)
        proba = step(
            "predict_proba",
            lambda: client.compute(model.predict_proba(Xd)).result(timeout=args.timeout),
        )
        report["predict_proba_max_error"] = float(abs(proba - model.predict_proba(X)).max())

        def fit():
            with client.as_current():
                return SoftmaxRegression(reg_strength=1e-3, tol=1e-8).fit(Xd, yd)

        fitted = step("fit", fit)
        reference = SoftmaxRegression(reg_strength=1e-3, tol=1e-8).fit(X, y)
        report["fit_max_coef_difference"] = float(abs(fitted.coef_ - reference.coef_).max())
    finally:
        client.close()
        cluster.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
