"""The first call of every public function in a fresh process, against its warm time (issue 16).

Each row runs in new Python processes (``--runs`` of them, 3 by default; the table shows medians): the
process imports the library (timed), builds the inputs (not timed: ``from luce import
SoftmaxRegression`` is part of the set-up, as it is of a user's script), then times the first call
(``cold``) and the median of ``--repeat`` further calls (``warm``) of the same function on the same
input. ``cold − warm`` is what a new process pays on its first call: compilation, lazy imports,
first-touch of code and caches. Issue 16's targets: ``cold − warm`` ≤ 20 ms for every row,
``import luce`` ≤ 150 ms.

Peers, each in its own fresh processes, where they have the function: torch (CPU, 2 threads) when it
imports. jax is skipped when it does not import (it is not installed here): the table says so.

Numba (for luce versions that still had Numba kernels, to compare with them): each process gets a new
empty ``NUMBA_CACHE_DIR``, the cache a new user, a fresh container or a new Dask worker has;
``--warm-numba-cache`` shares one cache folder between the processes instead (the first fills it).

An editable install (``pip install -e``, ``make`` here) runs a meson rebuild check at ``import luce``
(ninja over the build folder), which inflates the import time; the script says when it measured one.
Measure the targets on a regular ``pip install .``.

The machine may be shared: timings are noisy (the medians help); compare rows measured in one run.

Run: python benchmarks/cold_start.py [--runs 3] [--repeat 5] [--only softmax,fit] [--no-peers]
     [--warm-numba-cache] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

# name -> (set-up, call) in luce. Sizes: the 1000×1000 float32 rows for the softmax family.
LUCE = {
    "softmax f32 (1000×1000)": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.softmax(x)",
    ),
    "softmax f64 axis 0 (1000×1000)": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000))",
        "luce.softmax(x, axis=0)",
    ),
    "log_softmax f32": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.log_softmax(x)",
    ),
    "logsumexp f32": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.logsumexp(x)",
    ),
    "cross_entropy + gradient": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)\n"
        "t = np.random.default_rng(1).integers(0, 1000, 1000)",
        "luce.cross_entropy(x, t, return_grad=True)",
    ),
    "sparsemax": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.sparsemax(x)",
    ),
    "entmax15": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.entmax15(x)",
    ),
    "topk_softmax (k=10)": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)",
        "luce.topk_softmax(x, 10)",
    ),
    "sample": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)\n"
        "rng = np.random.default_rng(2)",
        "luce.sample(x, rng=rng)",
    ),
    "gumbel_softmax": (
        "x = np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)\n"
        "rng = np.random.default_rng(2)",
        "luce.gumbel_softmax(x, rng=rng)",
    ),
    "linear_cross_entropy + gradient": (
        "r = np.random.default_rng(0)\n"
        "X = r.standard_normal((512, 256), dtype=np.float32)\n"
        "W = r.standard_normal((4096, 256), dtype=np.float32) * 0.05\n"
        "t = r.integers(0, 4096, 512)",
        "luce.linear_cross_entropy(X, W, t, return_grad=True)",
    ),
    "SoftmaxRegression.fit (2000×20, 5 classes)": (
        "from luce import SoftmaxRegression\n"
        "r = np.random.default_rng(0)\n"
        "X = r.standard_normal((2000, 20)); y = np.argmax(X[:, :5] + r.gumbel(size=(2000, 5)), axis=1)",
        "SoftmaxRegression().fit(X, y)",
    ),
    "SoftmaxRegression.predict_proba": (
        "from luce import SoftmaxRegression\n"
        "r = np.random.default_rng(0)\n"
        "X = r.standard_normal((2000, 20)); y = np.argmax(X[:, :5] + r.gumbel(size=(2000, 5)), axis=1)\n"
        "import luce._kernels._dispatch as d\n"
        "with d.use_backend('reference'):  # the fit's own first calls stay out of the measured call\n"
        "    model = SoftmaxRegression().fit(X, y)",
        "model.predict_proba(X)",
    ),
    "HierarchicalSoftmaxClassifier.fit (2000×20, 20 classes)": (
        "from luce import HierarchicalSoftmaxClassifier\n"
        "r = np.random.default_rng(0)\n"
        "X = r.standard_normal((2000, 20)); y = np.argmax(X + r.gumbel(size=(2000, 20)), axis=1)",
        "HierarchicalSoftmaxClassifier().fit(X, y)",
    ),
}

# The same rows in torch (CPU), where it has the function; inputs converted before the timed call.
TORCH = {
    "softmax f32 (1000×1000)": ("x = torch.from_numpy(f32())", "torch.softmax(x, -1)"),
    "softmax f64 axis 0 (1000×1000)": ("x = torch.from_numpy(f64())", "torch.softmax(x, 0)"),
    "log_softmax f32": ("x = torch.from_numpy(f32())", "torch.log_softmax(x, -1)"),
    "logsumexp f32": ("x = torch.from_numpy(f32())", "torch.logsumexp(x, -1)"),
    "cross_entropy + gradient": (
        "x0 = torch.from_numpy(f32())\n"
        "t = torch.from_numpy(np.random.default_rng(1).integers(0, 1000, 1000))",
        "x = x0.clone().requires_grad_(); torch.nn.functional.cross_entropy(x, t).backward()",
    ),
    "topk_softmax (k=10)": (
        "x = torch.from_numpy(f32())",
        "v, i = torch.topk(x, 10, -1); torch.softmax(v, -1)",
    ),
    "sample": ("x = torch.from_numpy(f32())", "torch.multinomial(torch.softmax(x, -1), 1)"),
    "gumbel_softmax": ("x = torch.from_numpy(f32())", "torch.nn.functional.gumbel_softmax(x)"),
    "linear_cross_entropy + gradient": (
        "r = np.random.default_rng(0)\n"
        "X = torch.from_numpy(r.standard_normal((512, 256), dtype=np.float32))\n"
        "W0 = torch.from_numpy(r.standard_normal((4096, 256), dtype=np.float32) * 0.05)\n"
        "t = torch.from_numpy(r.integers(0, 4096, 512))",
        "W = W0.clone().requires_grad_(); torch.nn.functional.cross_entropy(X @ W.T, t).backward()",
    ),
}

_CHILD = """
import json, sys, time
start = time.perf_counter()
import {library}
import_s = time.perf_counter() - start
import numpy as np
{prologue}
{setup}
def call():
{call}
start = time.perf_counter(); call(); cold = time.perf_counter() - start
warm = []
for _ in range({repeat}):
    start = time.perf_counter(); call(); warm.append(time.perf_counter() - start)
editable = any("_luce_editable_loader" in m for m in sys.modules)
warm = sorted(warm)[len(warm) // 2]
print(json.dumps({{"import": import_s, "cold": cold, "warm": warm, "editable": editable}}))
"""

_TORCH_PROLOGUE = """torch.set_num_threads(2)
def f32(): return np.random.default_rng(0).standard_normal((1000, 1000), dtype=np.float32)
def f64(): return np.random.default_rng(0).standard_normal((1000, 1000))"""


def _child(library, setup, call, repeat):
    body = "\n".join("    " + line for line in call.splitlines())
    prologue = _TORCH_PROLOGUE if library == "torch" else ""
    return _CHILD.format(library=library, prologue=prologue, setup=setup, call=body, repeat=repeat)


def _run(code, env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"a measuring process failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(library, setup, call, *, runs, repeat, numba_cache):
    """Medians over ``runs`` fresh processes of the import, cold and warm times (seconds)."""
    results = []
    for _ in range(runs):
        env = dict(os.environ)
        with tempfile.TemporaryDirectory(prefix="luce-cold-numba-") as fresh:
            env["NUMBA_CACHE_DIR"] = numba_cache or fresh
            results.append(_run(_child(library, setup, call, repeat), env))
    merged = {k: statistics.median(r[k] for r in results) for k in ("import", "cold", "warm")}
    merged["editable"] = any(r["editable"] for r in results)
    return merged


def _ms(seconds):
    return f"{seconds * 1e3:9.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per row (medians)")
    parser.add_argument("--repeat", type=int, default=5, help="warm calls per process (median)")
    parser.add_argument("--only", help="comma-separated substrings of the row names to run")
    parser.add_argument("--no-peers", action="store_true", help="luce only")
    parser.add_argument("--warm-numba-cache", action="store_true", help="share one Numba cache folder")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    rows = [n for n in LUCE if not args.only or any(s.strip() in n for s in args.only.split(","))]
    shared = tempfile.mkdtemp(prefix="luce-cold-numba-shared-") if args.warm_numba_cache else None
    peers = []
    if not args.no_peers:
        for peer in ("torch", "jax"):
            found = (
                subprocess.run([sys.executable, "-c", f"import {peer}"], capture_output=True).returncode == 0
            )
            if found and peer == "torch":
                peers.append(peer)
            elif not found:
                print(f"note: {peer} does not import here: its rows are skipped")
            else:
                print(f"note: {peer} imports but has no rows in this script yet")

    imports = {"luce": measure("luce", "", "pass", runs=max(args.runs, 5), repeat=1, numba_cache=shared)}
    for peer in peers:
        imports[peer] = measure(peer, "", "pass", runs=max(args.runs, 5), repeat=1, numba_cache=None)
    results = {}
    for name in rows:
        setup, call = LUCE[name]
        results[name] = {
            "luce": measure("luce", setup, call, runs=args.runs, repeat=args.repeat, numba_cache=shared)
        }
        for peer in peers:
            if name in TORCH:
                p_setup, p_call = TORCH[name]
                results[name][peer] = measure(
                    peer, p_setup, p_call, runs=args.runs, repeat=args.repeat, numba_cache=None
                )
        print(f"  measured {name}", file=sys.stderr, flush=True)

    editable = imports["luce"]["editable"]
    print()
    print(f"import (median of {max(args.runs, 5)} fresh processes; target for luce: ≤ 150 ms)")
    for library, r in imports.items():
        mark = ("  ✓" if r["import"] <= 0.150 else "  ✗") if library == "luce" else ""
        print(f"  import {library:8s} {_ms(r['import'])} ms{mark}")
    if editable:
        print(
            "  note: luce is an editable install here: `import luce` ran meson-python's rebuild check "
            "(ninja), which a regular `pip install .` does not; measure the import target there"
        )
    print()
    print(
        f"first call in a fresh process (ms; medians of {args.runs} processes; target: cold − warm ≤ 20 ms)"
    )
    header = f"  {'function':52s} {'cold':>9s} {'warm':>9s} {'cold−warm':>9s}"
    for peer in peers:
        header += f" {peer + ' cold':>11s} {peer + ' warm':>11s}"
    print(header)
    for name, r in results.items():
        luce_r = r["luce"]
        gap = luce_r["cold"] - luce_r["warm"]
        mark = "✓" if gap <= 0.020 else "✗"
        line = f"  {name:52s} {_ms(luce_r['cold'])} {_ms(luce_r['warm'])} {_ms(gap)} {mark}"
        for peer in peers:
            p = r.get(peer)
            line += f" {_ms(p['cold']):>11s} {_ms(p['warm']):>11s}" if p else f" {'–':>11s} {'–':>11s}"
        print(line)
    print(
        "\nNumba cache: "
        + ("one shared folder (warm after the first process)" if shared else "a new empty folder per process")
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"imports": imports, "first_calls": results, "editable": editable}, f, indent=1)


if __name__ == "__main__":
    main()
