"""Fitting benchmark: luce.SoftmaxRegression against scikit-learn and scikit-learn-intelex, in one run.

Every fit minimises the same objective, the mean cross-entropy plus ``λ/2 ‖W‖²`` (scikit-learn's
``LogisticRegression(C=1/(λ n))``), from zero, to ``max |gradient| <= tol``. For each data set, dtype
and solver the table gives the wall time, the iterations, the evaluations (loss-and-gradient passes,
``+h`` the Hessian-vector products; counted inside luce and scikit-learn, not visible in
scikit-learn-intelex), the time per pass, the objective reached (computed here for everyone in float64
with scipy.special.log_softmax) relative to the best of the row group, and the speed-up of luce's
fastest solver. The floor is one read of ``X`` (``np.sum`` over its arrays): an evaluation cannot be
faster than that.

Data (seeded, generated here):

* ``dense``: ``make_classification(200_000, 100, n_informative=60, n_classes=20,
  n_clusters_per_class=1)``, standardised (as in a Pipeline with StandardScaler); λ = 1e-4;
* ``raw``: the same features unstandardised;
* ``sparse``: CSR 100k × 50k, ~50 nonzeros per row at Zipf-distributed columns (text-like), values
  ``log1p(count)`` with unit-norm rows (tf-idf style), 50 classes drawn from a planted softmax model;
* ``wide``: ``make_classification(2_000, 5_000, n_informative=50, n_classes=10)``, standardised.

``--dense-engine blas`` runs luce's dense blocks on the path before the fused kernel (two BLAS GEMMs
around the compiled head) instead of the fused kernel (``csrc/linear_dense.h``), to compare the two.

``--sgd`` times instead one sgd epoch on sparse data with 2,000 classes for a growing number of rows
(compiled O(batch nonzeros × K) steps against the reference path's dense gradients).

Each fit is timed once, after an untimed small fit of the same estimator (one-time costs: luce loads
its compiled kernels, about 3 s in a fresh process). Run ``python benchmarks/fit.py`` (minutes) or
``--quick`` (small sizes, under a minute). The machines are shared and noisy: compare the ratios
within one run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from _common import median_time
from luce import SoftmaxRegression
from luce.models import _objective

SIZES = {
    # dense and wide: (n_samples, n_features, n_informative, n_classes); sparse: (n, p, nnz per row, classes)
    "full": {
        "dense": (200_000, 100, 60, 20),
        "sparse": (100_000, 50_000, 50, 50),
        "wide": (2_000, 5_000, 50, 10),
    },
    "quick": {"dense": (4_000, 30, 20, 5), "sparse": (3_000, 2_000, 20, 5), "wide": (200, 500, 20, 5)},
}


# -- data -------------------------------------------------------------------------------------------


def dense_data(n, p, informative, k, standardise):
    X, y = make_classification(
        n_samples=n,
        n_features=p,
        n_informative=informative,
        n_classes=k,
        n_clusters_per_class=1,
        random_state=0,
    )
    return (StandardScaler().fit_transform(X) if standardise else X), y


def sparse_data(n, p, nnz_per_row, k, seed=0):
    """Text-like CSR: Zipf column frequencies, log1p counts, unit-norm rows; labels from a planted
    softmax model on the same features."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(1, rng.poisson(nnz_per_row, n))
    cols = (rng.zipf(1.3, lengths.sum()) - 1) % p
    rows = np.repeat(np.arange(n), lengths)
    counts = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(n, p))  # duplicates add up
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    X = sp.csr_matrix(sp.diags(1.0 / norms) @ counts)
    W = rng.standard_normal((k, p)) * 3.0
    logits = np.asarray(X @ W.T)
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)  # a draw from softmax(logits)
    return X, np.unique(y, return_inverse=True)[1]  # classes never drawn are not classes


def datasets(sizes, which):
    out = {}
    if "dense" in which or "raw" in which:
        for name, standardise in (("dense", True), ("raw", False)):
            if name in which:
                X, y = dense_data(*sizes["dense"], standardise)
                out[name] = (X, y, 1e-4, 1e-6)
    if "sparse" in which:
        X, y = sparse_data(*sizes["sparse"])
        out["sparse"] = (X, y, 1.0 / X.shape[0], 1e-6)
    if "wide" in which:
        X, y = dense_data(*sizes["wide"], True)
        out["wide"] = (X, y, 1.0 / X.shape[0], 1e-6)
    return out


def cast(X, dtype):
    return X.astype(dtype) if sp.issparse(X) else np.ascontiguousarray(X, dtype=dtype)


def read_time(X):
    """One read of X: a sum over every array that holds it."""
    arrays = [X.data, X.indices] if sp.issparse(X) else [X]
    return median_time(lambda: [a.sum() for a in arrays], 5, warmup=True)


def objective(coef, intercept, X, y, reg):
    """The shared objective in float64: mean cross-entropy + reg/2 ||W||^2 (``y`` holds 0..K-1)."""
    W = np.asarray(coef, dtype=np.float64)
    z = np.asarray(X.astype(np.float64) @ W.T) + np.asarray(intercept, dtype=np.float64)
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean() + 0.5 * reg * np.sum(W * W))


# -- counting evaluations -------------------------------------------------------------------------------


@contextlib.contextmanager
def counting(counts):
    """Count loss/gradient passes (``eval``) and Hessian products (``hessp``) in luce and scikit-learn."""
    from sklearn.linear_model._linear_loss import LinearModelLoss

    patches = []

    def wrap(cls, name, key):
        original = getattr(cls, name)

        def counted(self, *args, **kwargs):
            counts[key] += 1
            return original(self, *args, **kwargs)

        patches.append((cls, name, original))
        setattr(cls, name, counted)

    for name in ("loss_gradient", "loss", "gradient"):
        wrap(_objective.LinearObjective, name, "eval")
        wrap(LinearModelLoss, name, "eval")
    wrap(_objective.LinearObjective, "hessp", "hessp")
    original_ghp = LinearModelLoss.gradient_hessian_product

    def ghp(self, *args, **kwargs):
        counts["eval"] += 1
        grad, hessp = original_ghp(self, *args, **kwargs)

        def counted_hessp(s):
            counts["hessp"] += 1
            return hessp(s)

        return grad, counted_hessp

    LinearModelLoss.gradient_hessian_product = ghp
    patches.append((LinearModelLoss, "gradient_hessian_product", original_ghp))
    try:
        yield
    finally:
        for cls, name, original in reversed(patches):
            setattr(cls, name, original)


# -- the fits --------------------------------------------------------------------------------------------


class IntelexPath(logging.Handler):
    """Records whether scikit-learn-intelex ran its own kernels or fell back to scikit-learn."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.path = None

    def emit(self, record):
        message = record.getMessage()
        if "LogisticRegression.fit" in message:
            self.path = "fallback" if "fallback" in message.lower() else "accelerated"


def intelex():
    """scikit-learn-intelex's LogisticRegression and a log handler, or (None, reason)."""
    try:
        from sklearnex.linear_model import LogisticRegression as IntelexLR
    except ImportError as exc:
        return None, f"not installed ({exc})"
    handler = IntelexPath()
    logger = logging.getLogger("sklearnex")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the path goes into the table, not onto the terminal
    return (IntelexLR, handler), None


def solvers(reg, tol, n, intelex_lr):
    C = 1.0 / (reg * n)
    out = {
        "luce lbfgs": lambda: SoftmaxRegression(reg_strength=reg, tol=tol, max_iter=2000),
        "luce newton-cg": lambda: SoftmaxRegression(
            reg_strength=reg, tol=tol, max_iter=2000, solver="newton-cg"
        ),
        "sklearn lbfgs": lambda: LogisticRegression(C=C, tol=tol, max_iter=2000),
        "sklearn newton-cg": lambda: LogisticRegression(C=C, tol=tol, max_iter=2000, solver="newton-cg"),
    }
    if intelex_lr is not None:
        out["sklearnex lbfgs"] = lambda: intelex_lr[0](C=C, tol=tol, max_iter=2000)
    return out


def warm_up(make, X, y):
    """One untimed small fit: one-time costs (luce loading its compiled kernels, scikit-learn-intelex
    its oneDAL tables) stay out of the timings."""
    rows = min(X.shape[0], 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make().set_params(max_iter=5).fit(X[:rows], y[:rows])


def run_fit(make, X, y):
    counts = collections.Counter()
    with warnings.catch_warnings(), counting(counts):
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model = make().fit(X, y)
        elapsed = time.perf_counter() - start
    return elapsed, model, counts


def sgd_scaling(quick):
    """One sgd epoch (a ``partial_fit`` call after a first one) on sparse text-like data with many
    classes, against the number of rows: a step costs O(batch nonzeros × K) on the compiled path
    (issue 17), O(n_features × K) on the reference path's dense gradient."""
    from luce._kernels import use_backend

    p, k, sizes = (2_000, 200, (500, 1_000)) if quick else (20_000, 2_000, (2_000, 4_000, 8_000))
    print(f"\nsgd epoch, CSR ~30 nonzeros/row, {p} features, {k} classes (partial_fit, one epoch)")
    print(f"{'rows':>6} {'backend':<10} {'momentum':>8} {'epoch s':>8} {'ms / 1000 rows':>15}")
    for n in sizes:
        X, y = sparse_data(n, p, 30, k)
        classes = np.unique(y)
        for backend in ("compiled", "reference"):
            if backend == "reference" and n > sizes[1]:
                continue  # minutes
            for momentum in (0.0, 0.9):
                clf = SoftmaxRegression(solver="sgd", momentum=momentum, learning_rate=0.5, random_state=0)
                with use_backend(backend), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clf.partial_fit(X, y, classes=classes)
                    start = time.perf_counter()
                    clf.partial_fit(X, y)
                    elapsed = time.perf_counter() - start
                print(f"{n:>6} {backend:<10} {momentum:>8} {elapsed:>8.2f} {1e6 * elapsed / n:>15.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--sgd", action="store_true", help="only the sparse sgd epoch against the rows")
    parser.add_argument("--datasets", default="dense,raw,sparse,wide")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument(
        "--solvers", default=None, help="comma-separated subset, e.g. 'luce lbfgs,sklearn lbfgs'"
    )
    parser.add_argument(
        "--dense-engine",
        choices=("fused", "blas"),
        default="fused",
        help="luce's dense blocks: the fused kernel (default) or BLAS GEMMs around the compiled head",
    )
    args = parser.parse_args()
    if args.dense_engine == "blas":
        _objective._dense_kernel = lambda *args: None  # the dense hooks then return None: BLAS + head
    if args.sgd:
        sgd_scaling(args.quick)
        return

    sizes = SIZES["quick" if args.quick else "full"]
    intelex_lr, why = intelex()
    print(f"scikit-learn-intelex: {'available' if intelex_lr else why}")
    data = datasets(sizes, args.datasets.split(","))
    header = (
        f"{'data':<7} {'dtype':<8} {'solver':<18} {'time s':>8} {'iter':>5} {'evals':>9} {'ms/pass':>8} "
        f"{'passes/read':>11} {'rel. objective':>15} {'luce speed-up':>13}  path"
    )
    print(header)
    print("-" * len(header))
    for name, (X64, y, reg, tol) in data.items():
        for dtype in args.dtypes.split(","):
            X = cast(X64, np.dtype(dtype))
            floor = read_time(X)
            rows = []
            for label, make in solvers(reg, tol, X.shape[0], intelex_lr).items():
                if args.solvers and label not in args.solvers.split(","):
                    continue
                warm_up(make, X, y)
                if intelex_lr is not None:
                    intelex_lr[1].path = None
                elapsed, model, counts = run_fit(make, X, y)
                f = objective(model.coef_, model.intercept_, X, y, reg)
                path = ""
                if label.startswith("sklearnex"):
                    path = intelex_lr[1].path or "unknown"
                rows.append((label, elapsed, int(np.max(model.n_iter_)), counts, f, path))
            best = min(r[4] for r in rows)
            luce_best = min((r[1] for r in rows if r[0].startswith("luce")), default=float("nan"))
            print(f"{name:<7} {dtype:<8} {'(one read of X)':<18} {floor:>8.4f}")
            for label, elapsed, n_iter, counts, f, path in rows:
                passes = counts["eval"] + counts["hessp"]
                evals = (
                    f"{counts['eval']}" + (f"+{counts['hessp']}h" if counts["hessp"] else "")
                    if passes
                    else "-"
                )
                per = f"{1e3 * elapsed / passes:>8.1f}" if passes else f"{'-':>8}"
                ratio = f"{elapsed / passes / floor:>11.1f}" if passes else f"{'-':>11}"
                print(
                    f"{name:<7} {dtype:<8} {label:<18} {elapsed:>8.2f} {n_iter:>5d} {evals:>9} {per} {ratio} "
                    f"{(f - best) / best:>+15.2e} {elapsed / luce_best:>12.2f}x  {path}"
                )


if __name__ == "__main__":
    main()
