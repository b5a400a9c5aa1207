"""Fitting benchmark: luce.SoftmaxRegression against scikit-learn's LogisticRegression, in one run.

The problem of issue 5: make_classification(n_samples=200_000, n_features=100, n_informative=60,
n_classes=20, n_clusters_per_class=1, random_state=0), scikit-learn LogisticRegression(C=1.0, tol=1e-6,
max_iter=1000) against SoftmaxRegression(reg_strength=1/(C·n), tol=1e-6, max_iter=1000), which
minimises the same objective. For each case the table gives the median wall time, that time as a
multiple of ``np.copyto`` of the same data (a machine-independent scale), the iterations, the final
objective (evaluated independently with scipy.special.log_softmax in float64) and its relative
difference to scikit-learn's. Cases: float64 dense, float32 dense, and CSR input (the same data with
entries ``|x| < 1`` set to zero, about a third of the entries left).

Run: ``python benchmarks/fit.py`` (``--n-samples 20000`` for a quick look). Timings on a shared
machine are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from _common import copyto_time, timed
from luce import SoftmaxRegression


def objective(coef, intercept, X, y, reg):
    """The shared objective in float64: mean cross-entropy + reg/2 ||W||^2."""
    z = np.asarray(X.astype(np.float64) @ coef.astype(np.float64).T) + intercept.astype(np.float64)
    return float(
        -log_softmax(z, axis=1)[np.arange(len(y)), y].mean() + 0.5 * reg * np.sum(coef.astype(float) ** 2)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=1, help="fits per case (the median is reported)")
    parser.add_argument("--cases", default="float64,float32,sparse")
    args = parser.parse_args()

    X, y = make_classification(
        n_samples=args.n_samples,
        n_features=100,
        n_informative=60,
        n_classes=20,
        n_clusters_per_class=1,
        random_state=0,
    )
    n = X.shape[0]
    C = 1.0
    reg = 1.0 / (C * n)
    cases = {
        "float64": X,
        "float32": X.astype(np.float32),
        "sparse": sp.csr_matrix(np.where(np.abs(X) >= 1.0, X, 0.0)),
    }
    header = (
        f"{'case':<9} {'library':<8} {'time s':>8} {'x copyto':>10} {'iter':>5} "
        f"{'objective':>20} {'rel. to sklearn':>16} {'speed-up':>9}"
    )
    print(f"n_samples={n}, n_features=100, n_classes=20; C={C}, reg_strength=1/(C n)={reg:.3g}; tol=1e-6")
    print(header)
    print("-" * len(header))
    for name in args.cases.split(","):
        data = cases[name]
        base = copyto_time(data.data if sp.issparse(data) else data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t_sk, sk = timed(
                lambda data=data: LogisticRegression(C=C, tol=1e-6, max_iter=1000).fit(data, y), args.repeats
            )
            t_lu, lu = timed(
                lambda data=data: SoftmaxRegression(reg_strength=reg, tol=1e-6, max_iter=1000).fit(data, y),
                args.repeats,
            )
        f_sk = objective(sk.coef_, sk.intercept_, data, y, reg)
        f_lu = objective(lu.coef_, lu.intercept_, data, y, reg)
        for lib, t, it, f in (
            ("sklearn", t_sk, int(np.max(sk.n_iter_)), f_sk),
            ("luce", t_lu, lu.n_iter_, f_lu),
        ):
            rel = (f - f_sk) / f_sk
            print(
                f"{name:<9} {lib:<8} {t:>8.2f} {t / base:>10.0f} {it:>5d} {f:>20.15f} {rel:>+16.2e} "
                f"{t_sk / t:>8.1f}x"
            )


if __name__ == "__main__":
    main()
