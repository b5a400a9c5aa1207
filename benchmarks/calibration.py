"""Calibration and multi-label: luce beside the usual implementations, in one run.

1. Fitting one temperature on held-out logits (N rows, K classes, float64): luce's safeguarded Newton
   (``TemperatureScaling``), SciPy's bounded Brent on log T (``minimize_scalar``, the common recipe), and
   torch's L-BFGS on T (Guo et al.'s reference code) when torch is importable. Each row gives the median
   time, its ratio to ``np.copyto`` of the logits, and the NLL reached minus luce's (>= 0 means no better).
2. Multi-label fit (N rows, d features, L labels, float64, the same L2 penalty): ``SigmoidRegression``
   (lbfgs, one solver run over all labels) beside scikit-learn's ``MultiOutputClassifier(LogisticRegression)``
   (one L-BFGS per label), both at tol=1e-6; max |difference| of the probabilities.

The machine is shared, so timings are noisy. Run: python benchmarks/calibration.py [--repeat 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from _common import copyto_time, timed


def nll(z, y, t):
    return float(-log_softmax(z / t, axis=1)[np.arange(len(y)), y].mean())


def temperature_table(n, k, repeat):
    from luce import TemperatureScaling

    rng = np.random.default_rng(0)
    z = rng.normal(scale=4.0, size=(n, k))
    p = np.exp(log_softmax(z / 2.5, axis=1))
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    copy_time = copyto_time(z, max(repeat, 5))

    rows = []
    t, fit = timed(lambda: TemperatureScaling().fit(z, y).temperature_, repeat)
    rows.append(("luce TemperatureScaling", t, fit))

    def brent():
        res = minimize_scalar(
            lambda u: nll(z, y, np.exp(u)), bounds=(np.log(1e-3), np.log(1e3)), method="bounded"
        )
        return float(np.exp(res.x))

    t, fit = timed(brent, repeat)
    rows.append(("scipy minimize_scalar(log T)", t, fit))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:

        def torch_lbfgs():
            logits, labels = torch.from_numpy(z), torch.from_numpy(y)
            temp = torch.ones(1, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([temp], lr=0.01, max_iter=50)
            loss_fn = torch.nn.CrossEntropyLoss()

            def closure():
                opt.zero_grad()
                loss = loss_fn(logits / temp, labels)
                loss.backward()
                return loss

            opt.step(closure)
            return float(temp.item())

        t, fit = timed(torch_lbfgs, repeat)
        rows.append(("torch LBFGS on T (Guo et al.)", t, fit))

    base = nll(z, y, rows[0][2])
    print(
        f"\nTemperature fit: N={n}, K={k} float64 logits (true T = 2.5); np.copyto = {copy_time * 1e3:.2f} ms"
    )
    print(f"{'method':32s} {'median ms':>10s} {'x copyto':>9s} {'T':>9s} {'NLL - luce':>12s}")
    for name, t, fit in rows:
        print(f"{name:32s} {t * 1e3:10.2f} {t / copy_time:9.1f} {fit:9.5f} {nll(z, y, fit) - base:12.3e}")


def multilabel_table(n, d, n_labels, repeat):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    from luce import SigmoidRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(n_labels, d)) / np.sqrt(d)
    Y = (X @ W.T + rng.normal(scale=0.5, size=(n, n_labels)) > 0.3).astype(int)
    lam = 1e-3
    copy_time = copyto_time(X, max(repeat, 5))
    t_luce, luce_model = timed(lambda: SigmoidRegression(lam, tol=1e-6).fit(X, Y), repeat)
    sk = MultiOutputClassifier(LogisticRegression(C=1 / (lam * n), tol=1e-6, max_iter=1000))
    t_sk, sk_model = timed(lambda: sk.fit(X, Y), repeat)
    p_luce = luce_model.predict_proba(X)
    p_sk = np.column_stack([p[:, 1] for p in sk_model.predict_proba(X)])
    print(f"\nMulti-label fit: N={n}, d={d}, L={n_labels} float64; np.copyto(X) = {copy_time * 1e3:.2f} ms")
    print(f"{'method':44s} {'median s':>9s} {'x copyto':>9s}")
    print(f"{'luce SigmoidRegression (lbfgs)':44s} {t_luce:9.3f} {t_luce / copy_time:9.0f}")
    print(f"{'sklearn MultiOutputClassifier(LogisticRegression)':44s} {t_sk:9.3f} {t_sk / copy_time:9.0f}")
    print(f"max |p_luce - p_sklearn| = {np.abs(p_luce - p_sk).max():.2e}; speed-up {t_sk / t_luce:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--ml-rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    temperature_table(args.rows, args.classes, args.repeat)
    multilabel_table(args.ml_rows, args.features, args.labels, args.repeat)


if __name__ == "__main__":
    main()
