"""HierarchicalSoftmaxClassifier against the full SoftmaxRegression, both trained by sgd, in one run.

Problem: K = 10,000 classes with Zipf-distributed labels (P(k) ∝ 1/k^1.1, so the Huffman tree puts the
frequent classes near the root), a Gaussian mixture in d dimensions (class means ~ N(0, s²I), unit
noise): n training rows (one of every class, the rest drawn from the Zipf law) and n/4 test rows.
Both models run the same number of sgd epochs with the same batch size; the time of an epoch is the
median interval between the per-epoch callbacks (``verbose=callable``) after the first, so setup
(validation, the tree, the automatic learning rate) is left out; "fit s" is the whole fit. Accuracy is
top-1 and top-5 on the test rows, and top-1 on the test rows of the 100 most frequent classes. Per-epoch
times are also given as ratios to ``np.copyto`` of the training matrix. The machine is shared, so
timings are noisy.

Run: python benchmarks/hierarchical.py [--n 40000 --d 64 --k 10000 --epochs 4]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

THREADS = 2


def make_data(n, n_test, d, k, spread, zipf, seed=0):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, k + 1) ** zipf
    p /= p.sum()
    means = spread * rng.standard_normal((k, d))
    # one training row of every class (so all K are present, as in a vocabulary), the rest Zipf
    y = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=p)])
    y = rng.permutation(y)
    y_test = rng.choice(k, size=n_test, p=p)
    X = means[y] + rng.standard_normal((n, d))
    X_test = means[y_test] + rng.standard_normal((n_test, d))
    return X, y, X_test, y_test


def timed_fit(est, X, y):
    stamps = []
    est.set_params(verbose=lambda it, loss: stamps.append((time.perf_counter(), loss)))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed epoch budget: ConvergenceWarning is expected
        est.fit(X, y)
    total = time.perf_counter() - t0
    times = np.diff([t0] + [s[0] for s in stamps])
    # the first interval also holds the setup before epoch 1 (validation, tree, learning rate)
    per_epoch = float(np.median(times[1:])) if len(times) > 1 else float(times[0])
    return {
        "total": total,
        "per_epoch": per_epoch,
        "epochs": len(stamps),
        "loss": stamps[-1][1],
    }


def topk_accuracy(est, X, y, k):
    if hasattr(est, "predict_topk"):
        top = est.predict_topk(X, k)
    else:
        proba = est.predict_proba(X)
        top = est.classes_[np.argsort(-proba, axis=1)[:, :k]]
    return float(np.mean(np.any(top == y[:, None], axis=1)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--k", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--spread", type=float, default=1.0)
    p.add_argument("--zipf", type=float, default=1.1)
    args = p.parse_args()

    from luce import HierarchicalSoftmaxClassifier, SoftmaxRegression

    X, y, Xt, yt = make_data(args.n, args.n // 4, args.d, args.k, args.spread, args.zipf)
    present = np.unique(y)
    keep = np.isin(yt, present)  # test rows of classes never seen in training cannot be predicted
    Xt, yt = Xt[keep], yt[keep]
    head = yt < 100
    print(
        f"K={args.k} classes (Zipf {args.zipf}; {present.size} present in training), d={args.d}, "
        f"n={args.n} train / {yt.size} test, sgd: {args.epochs} epochs, batch {args.batch_size}, "
        f"{THREADS} threads"
    )
    dst = np.empty_like(X)
    copies = []
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, X)
        copies.append(time.perf_counter() - t0)
    copy_time = float(np.median(copies))

    common = {"solver": "sgd", "max_iter": args.epochs, "tol": 0.0, "batch_size": args.batch_size}
    models = {
        "luce.HierarchicalSoftmaxClassifier": HierarchicalSoftmaxClassifier(
            reg_strength=1e-6, random_state=0, n_iter_no_change=args.epochs + 1, **common
        ),
        "luce.SoftmaxRegression (full softmax)": SoftmaxRegression(
            reg_strength=1e-6, random_state=0, n_iter_no_change=args.epochs + 1, **common
        ),
        # the tree model's own optimum: how much of the accuracy gap is the model, not the epochs
        "HierarchicalSoftmax, lbfgs 300 iter. *": HierarchicalSoftmaxClassifier(
            reg_strength=1e-6, solver="lbfgs", max_iter=300
        ),
    }
    rows = {}
    with threadpool_limits(THREADS):
        for name, est in models.items():
            r = timed_fit(est, X, y)
            t0 = time.perf_counter()
            pred = est.predict(Xt)
            r["predict"] = time.perf_counter() - t0
            r["acc"] = float(np.mean(pred == yt))
            r["acc_head"] = float(np.mean(pred[head] == yt[head]))
            r["top5"] = topk_accuracy(est, Xt, yt, 5)
            rows[name] = r

    full = rows["luce.SoftmaxRegression (full softmax)"]
    header = (
        f"{'model':38s} {'s/epoch':>8s} {'x copyto':>9s} {'speed-up':>9s} {'fit s':>8s} "
        f"{'train loss':>10s} {'top-1':>7s} {'top-5':>7s} {'top-1 head':>10s} {'predict s':>9s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        speed_up = "-" if name.endswith("*") else f"{full['per_epoch'] / r['per_epoch']:.1f}x"
        print(
            f"{name:38s} {r['per_epoch']:8.3f} {r['per_epoch'] / copy_time:9.0f} "
            f"{speed_up:>9s} {r['total']:8.2f} {r['loss']:10.4f} "
            f"{r['acc']:7.3f} {r['top5']:7.3f} {r['acc_head']:10.3f} {r['predict']:9.2f}"
        )
    print(
        "speed-up: the full softmax's time per epoch over this model's (target >= 10x); "
        f"'head': test rows of the 100 most frequent classes ({head.mean():.0%} of them)\n"
        f"* lbfgs ({rows['HierarchicalSoftmax, lbfgs 300 iter. *']['epochs']} iterations; "
        "s/epoch is per iteration): near the best this tree model can do on the training objective"
    )


if __name__ == "__main__":
    main()
