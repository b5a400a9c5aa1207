"""``luce train DATA --target COL``: a table Pipeline (luce.tables) fitted with a live progress bar,
reported on held-out rows, refitted on every row and saved."""

from __future__ import annotations

import enum
import math
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import DataError, app, console, show_warnings, warn
from ._data import check_finite, check_outputs, read_table, target_values
from ._report import (
    classification_metrics,
    metrics_table,
    multilabel_metrics,
    per_class_table,
    per_label_table,
)

# The iteration budget the estimators use when max_iter is None (for the progress bar's length).
_DEFAULT_MAX_ITER = {"lbfgs": 100, "newton-cg": 100, "gd": 10_000, "sgd": 200}
# --reg-strength auto: λ from strong to weak, so each fit starts from the previous (smoother) solution.
REG_GRID = tuple(float(v) for v in np.logspace(1, -6, 8))
_CV_FOLDS = 5
# What the CLI adds to the estimators' non-convergence advice, in its own options.
_CONVERGENCE_HINT = (
    "with luce train: raise --max-iter, loosen --tol (e.g. --tol 1e-3), and keep the default scaling "
    "(do not pass --no-scale)"
)


class Solver(enum.StrEnum):
    lbfgs = "lbfgs"
    newton_cg = "newton-cg"
    gd = "gd"
    sgd = "sgd"


class Impute(enum.StrEnum):
    median = "median"
    mean = "mean"


_LARGE_WEIGHTS_MB = 500  # above this, luce train --text says what the weight matrix may cost


class Vectorizer(enum.StrEnum):
    tfidf = "tfidf"
    hashing = "hashing"


class ClassWeight(enum.StrEnum):
    balanced = "balanced"


def loss_start(model) -> int:
    """0 when ``loss_curve_`` starts with the loss before the first iteration, else 1."""
    return max(0, int(model.n_iter_) - len(model.loss_curve_) + 1)


def _final(model):
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def show_fit_warnings(command: str, caught) -> None:
    from sklearn.exceptions import ConvergenceWarning

    show_warnings(command, [w for w in caught if not issubclass(w.category, ConvergenceWarning)])
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            warn(f"luce {command}", f"{w.message} ({_CONVERGENCE_HINT})")
            break


def fit_with_progress(model, X, y, out, *, command="train", label="training"):
    """Fit ``model`` (an estimator or a Pipeline ending in one) showing a Rich progress bar fed by its
    ``verbose`` callback; warnings become lines."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    estimator = _final(model)
    params = estimator.get_params()
    total = params.get("max_iter") or _DEFAULT_MAX_ITER.get(params.get("solver"), 100)
    unit = "epoch" if params.get("solver") == "sgd" else "iteration"
    columns = [
        TextColumn(f"[bold]{label}[/] {{task.fields[solver]}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{unit}s  loss [cyan]{{task.fields[loss]}}[/]"),
        TimeElapsedColumn(),
    ]
    start = time.perf_counter()
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("fit", total=total, loss="…", solver=params.get("solver", ""))

        def report(iteration, loss):
            progress.update(task, completed=min(iteration, total), loss=f"{loss:.6g}")

        estimator.set_params(verbose=report)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(X, y)
        finally:
            estimator.set_params(verbose=0)
        n_iter = int(getattr(estimator, "n_iter_", total))
        progress.update(task, total=max(n_iter, 1), completed=max(n_iter, 1))
    show_fit_warnings(command, caught)
    return time.perf_counter() - start


def split_rows(y, test_size: float, random_state: int, *, stratified=True):
    """Train/test row indices, stratified when every class has at least two rows."""
    n = len(y)
    rows = np.arange(n)
    if test_size == 0:
        return rows, rows[:0]
    n_test = math.ceil(test_size * n)
    if n - n_test < 2:
        raise DataError(
            f"--test-size {test_size} leaves {n - n_test} training rows out of {n}; use a smaller one"
        )
    from sklearn.model_selection import train_test_split

    stratify = None
    if stratified:
        counts = Counter(y.tolist())
        n_classes = len(counts)
        if min(counts.values()) >= 2 and n_test >= n_classes and n - n_test >= n_classes:
            stratify = y
    train, test = train_test_split(rows, test_size=n_test, random_state=random_state, stratify=stratify)
    return np.sort(train), np.sort(test)


def check_classes(y, target, source):
    classes = list(dict.fromkeys(y.tolist()))
    if len(classes) < 2:
        raise DataError(
            f"target column {target!r} of {source} has only one class ({classes[0]!r}); a classifier needs "
            "at least two"
        )


def _indicator(df, target, source) -> np.ndarray:
    """A multi-label target column as 0/1 (it must hold 0/1 or true/false)."""
    values = target_values(df, target, source)
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind in "iuf" and np.isin(values, (0, 1)).all():
        return values.astype(np.int64)
    text = np.char.lower(values.astype(str))
    if np.isin(text, ("true", "false")).all():
        return (text == "true").astype(np.int64)
    raise DataError(
        f"with several --target columns each must hold 0/1 or true/false; {target!r} of {source} holds "
        f"{', '.join(map(repr, sorted({str(v) for v in values.tolist()})[:5]))}"
    )


def _columns_text(plan, text) -> str:
    """ "2 numeric and 1 text columns"; with columns of documents, those first and no zero counts."""
    if not text:
        return f"{len(plan.numeric)} numeric and {len(plan.categorical)} text columns"
    parts = [(len(text), "of documents"), (len(plan.numeric), "numeric"), (len(plan.categorical), "text")]
    named = [
        f"{n} column{'s' if n > 1 else ''} {what}"
        if what == "of documents"
        else f"{n} {what} column{'s' * (n > 1)}"
        for n, what in parts
        if n
    ]
    return " and ".join(named)


def _features_arg(values: list[str] | None) -> list[str] | None:
    """``--features a --features b`` and ``--features a,b`` both name two columns."""
    if not values:
        return None
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def _parse_reg_strength(text: str) -> float | None:
    """A float >= 0, or None for "auto"."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a number nor 'auto'", param_hint="--reg-strength"
        ) from None
    if not (value >= 0 and math.isfinite(value)):
        raise typer.BadParameter(f"{text!r} must be a finite number >= 0", param_hint="--reg-strength")
    return value


def choose_reg_strength(pipeline, X, y, *, multilabel, random_state, out) -> float:
    """λ of REG_GRID with the lowest mean validation log-loss over _CV_FOLDS folds.

    In each fold the preprocessing is fitted once on the fold's training rows; the estimator then runs
    down the grid with ``warm_start=True``, each fit starting from the previous solution.
    """
    from sklearn.base import clone
    from sklearn.metrics import log_loss
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = Counter(y.tolist()) if not multilabel else {}
    folds = min(_CV_FOLDS, min(counts.values())) if counts else _CV_FOLDS
    if folds < 2:
        raise DataError("--reg-strength auto needs at least two rows of every class in the training rows")
    splitter = (KFold if multilabel else StratifiedKFold)(folds, shuffle=True, random_state=random_state)
    losses = np.zeros((folds, len(REG_GRID)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for f, (fit_rows, val_rows) in enumerate(splitter.split(X, y if not multilabel else None)):
            prep = clone(pipeline[:-1]).fit(X.iloc[fit_rows])
            X_fit, X_val = prep.transform(X.iloc[fit_rows]), prep.transform(X.iloc[val_rows])
            est = clone(pipeline[-1]).set_params(warm_start=True, verbose=0)
            for k, lam in enumerate(REG_GRID):
                est.set_params(reg_strength=lam).fit(X_fit, y[fit_rows])
                p = np.clip(est.predict_proba(X_val), 1e-15, 1 - 1e-15)
                if multilabel:
                    losses[f, k] = np.mean([log_loss(y[val_rows][:, j], p[:, j], labels=[0, 1])
                                            for j in range(y.shape[1])])  # fmt: skip
                else:
                    losses[f, k] = log_loss(y[val_rows], p, labels=est.classes_)
    show_fit_warnings("train", caught)
    mean = losses.mean(axis=0)
    best = int(np.argmin(mean))
    from rich.table import Table

    table = Table(title=f"--reg-strength auto: {folds}-fold cross-validation", title_justify="left")
    table.add_column("λ", justify="right")
    table.add_column("validation log-loss", justify="right")
    for k, lam in enumerate(REG_GRID):
        mark = "  ← chosen" if k == best else ""
        table.add_row(f"{lam:.0e}", f"{mean[k]:.4f}{mark}")
    out.print(table)
    return REG_GRID[best]


@app.command("train")
def train(
    data: Annotated[
        Path, typer.Argument(help="Training table: .csv, .tsv or .parquet (CSV/TSV may be compressed).")
    ],
    target: Annotated[
        list[str],
        typer.Option(
            "--target",
            "-y",
            help="The column holding the labels. Repeat for a multi-label model (0/1 columns).",
        ),
    ],
    model_path: Annotated[Path, typer.Option("--model", "-m", help="Where to save the model.")] = Path(
        "model.luce"
    ),
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            help="Use exactly these columns (repeat, or comma-separate). Names ID-like columns back in.",
        ),
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Never use these columns (repeat, or comma-separate).")
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            help="A column of documents (free text), read as a TF-IDF bag of words; other columns are "
            "then used only when named with --features. Repeat for several.",
        ),
    ] = None,
    vectorizer: Annotated[
        Vectorizer,
        typer.Option(
            "--vectorizer",
            help="With --text: 'tfidf' keeps the most frequent words (exports to ONNX); 'hashing' hashes "
            "every word into buckets (no vocabulary in memory, no ONNX export).",
        ),
    ] = Vectorizer.tfidf,
    vocabulary_size: Annotated[
        int,
        typer.Option(
            "--vocabulary-size", min=1, help="With --text: words kept (tfidf) or hash buckets (hashing)."
        ),
    ] = 50_000,  # luce.tables.VOCABULARY_SIZE (not imported here: the CLI starts without scikit-learn)
    scale: Annotated[
        bool, typer.Option("--scale/--no-scale", help="Standardise the numeric columns.")
    ] = True,
    impute: Annotated[
        Impute, typer.Option("--impute", help="How missing numbers are filled.")
    ] = Impute.median,
    solver: Annotated[Solver, typer.Option("--solver", help="Optimiser.")] = Solver.lbfgs,
    reg_strength: Annotated[
        str,
        typer.Option(
            "--reg-strength",
            help="L2 penalty λ on the weights, or 'auto' to choose it by 5-fold cross-validation.",
        ),
    ] = "1e-4",
    tol: Annotated[
        float, typer.Option("--tol", min=0.0, help="Stop when the optimiser's progress falls below this.")
    ] = 1e-4,
    max_iter: Annotated[
        int | None,
        typer.Option(
            "--max-iter",
            min=1,
            help="Iteration budget (default: 100 for lbfgs/newton-cg, 10000 gd, 200 sgd).",
        ),
    ] = None,
    class_weight: Annotated[
        ClassWeight | None,
        typer.Option("--class-weight", help="'balanced': weigh each class inversely to its frequency."),
    ] = None,
    test_size: Annotated[
        float,
        typer.Option(
            "--test-size", min=0.0, max=0.9, help="Fraction of rows held out for the test metrics (0: none)."
        ),
    ] = 0.2,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="After the held-out report, refit on all rows (--no-refit saves the split model).",
        ),
    ] = True,
    random_state: Annotated[
        int, typer.Option("--random-state", help="Seed of the split and of sgd's shuffling.")
    ] = 0,
    sep: Annotated[
        str | None, typer.Option("--sep", help="Field separator of a CSV/TSV file (e.g. ';').")
    ] = None,
    loss_plot: Annotated[
        Path | None,
        typer.Option(
            "--loss-plot", help="PNG of the loss curve (default: <model>-loss-curve.png beside the model)."
        ),
    ] = None,
) -> None:
    """Train a softmax-regression classifier on a table, report held-out metrics, save it.

    The model is a scikit-learn Pipeline that takes the raw table: numeric columns imputed and
    standardised, text columns one-hot encoded, ID-like and date columns left out (named in a note).
    With --text, a column of documents becomes a TF-IDF bag of words (a missing document is empty).

    Example: luce train iris.csv --target species --model iris.luce
    Example: luce train reviews.parquet --text review --target stars --model reviews.luce
    """
    from sklearn.pipeline import Pipeline

    from .. import SigmoidRegression, SoftmaxRegression
    from ..io import save
    from ..plots import plot_loss_curve
    from ..tables import ColumnPlan, check_text_columns, plan_columns, table_pipeline

    targets = list(dict.fromkeys(target))
    lam = _parse_reg_strength(reg_strength)
    check_outputs({"--model": model_path}, [data])
    plot_path = loss_plot or model_path.with_name(f"{model_path.stem}-loss-curve.png")
    check_outputs({"--loss-plot": plot_path}, [data, model_path])
    multilabel = len(targets) > 1
    if multilabel and class_weight is not None:
        raise DataError("--class-weight applies to one --target; a multi-label model weighs no classes")

    out = console()
    source = str(data)
    df = read_table(data, sep=sep)
    if multilabel:
        y = np.column_stack([_indicator(df, t, source) for t in targets])
    else:
        y = target_values(df, targets[0], source)
        check_classes(y, targets[0], source)
    X = df.drop(columns=targets)
    del df
    features, drop = _features_arg(features), _features_arg(drop) or []
    text = _features_arg(text) or []
    try:
        text = check_text_columns(X, text)
    except ValueError as e:
        message = e.args[0].replace("text:", "--text:", 1).replace(" in features", " with --features")
        raise DataError(f"{message} ({source})") from None
    try:
        if text and not features:
            plan = ColumnPlan(numeric=[], categorical=[])
        else:
            plan = plan_columns(X.drop(columns=text), features=features, drop=drop)
    except ValueError as e:
        raise DataError(f"{e} in {source}") from None
    note = plan.notice()
    if note is not None:
        out.print(f"note: {note.replace('in features (--features)', 'with --features')}")
    for c in text:
        empty = int(X[c].isna().sum())
        if empty:
            out.print(f"note: {empty} rows have no text in {c!r}; they are read as empty documents")
    common = dict(solver=solver.value, max_iter=max_iter, tol=tol, random_state=random_state)
    if multilabel:
        estimator = SigmoidRegression(reg_strength=lam or 0.0, **common)
    else:
        estimator = SoftmaxRegression(
            reg_strength=lam or 0.0,
            class_weight=None if class_weight is None else class_weight.value,
            **common,
        )
    X = X[[*plan.columns, *text]]  # the model's inputs are the columns it uses (so are an ONNX export's)
    check_finite(X, plan.numeric, source)
    pipeline = table_pipeline(
        estimator, X, features=plan.columns, scale=scale, impute=impute.value, text=text,
        vectorizer=vectorizer.value, vocabulary_size=vocabulary_size,
    )  # fmt: skip
    train_rows, test_rows = split_rows(y, test_size, random_state, stratified=not multilabel)
    if not multilabel:
        check_classes(y[train_rows], targets[0], f"the training split of {source}")
    what = f"{len(targets)} labels" if multilabel else f"{len(set(y.tolist()))} classes"
    if text:
        rows_of_weights = len(targets) if multilabel else len(set(y.tolist()))
        weights_mb = rows_of_weights * vocabulary_size * len(text) * 8 / 1e6
        if weights_mb > _LARGE_WEIGHTS_MB:
            out.print(
                f"note: {what} × up to {vocabulary_size} words per column of documents: the weights may "
                f"take {weights_mb:,.0f} MB (float64); --vocabulary-size keeps fewer words"
            )
    out.print(
        f"[bold]{source}[/]: {len(X)} rows, {_columns_text(plan, text)}, {what} → {len(train_rows)} for "
        f"training, {len(test_rows)} held out"
    )
    if lam is None:
        lam = choose_reg_strength(
            pipeline, X.iloc[train_rows], y[train_rows], multilabel=multilabel, random_state=random_state,
            out=out,
        )  # fmt: skip
        pipeline.set_params(model__reg_strength=lam)
    seconds = fit_with_progress(pipeline, X.iloc[train_rows], y[train_rows], out)
    model = pipeline[-1]
    final = model.loss_curve_[-1] if model.loss_curve_ else float("nan")
    out.print(
        f"trained in {seconds:.2f} s: {model.n_iter_} iterations, final training loss {final:.6g}, "
        f"{pipeline[:-1].transform(X.iloc[:1]).shape[1]} model inputs"
    )

    metrics = _held_out_report(pipeline, X, y, test_rows, targets, multilabel, out)
    refitted = refit and len(test_rows) > 0
    if refitted:
        seconds = fit_with_progress(pipeline, X, y, out, label="refit on all rows")
        out.print(f"refitted on all {len(X)} rows in {seconds:.2f} s (--no-refit keeps the split model)")
    assert isinstance(pipeline, Pipeline)
    metadata = {
        "luce_cli": {
            "command": "train",
            "data": source,
            "target": targets[0] if not multilabel else None,
            "targets": targets,
            "columns": {
                "numeric": plan.numeric,
                "categorical": plan.categorical,
                "text": text,
                "left_out": plan.left_out,
            },
            "vectorizer": vectorizer.value if text else None,
            "scale": scale,
            "impute": impute.value,
            "reg_strength": float(lam),
            "n_rows": len(X),
            "n_train": len(X) if refitted else len(train_rows),
            "n_test": len(test_rows),
            "refit": refitted,
            "test_metrics": metrics,
        }
    }
    model_path.parent.mkdir(parents=True, exist_ok=True)
    save(pipeline, model_path, metadata=metadata)
    out.print(f"saved model to [bold]{model_path}[/]")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    model = pipeline[-1]
    plot_loss_curve(model.loss_curve_, plot_path, start=loss_start(model))
    out.print(f"saved loss curve to {plot_path}")


def _held_out_report(pipeline, X, y, test_rows, targets, multilabel, out):
    if not len(test_rows):
        return None
    if multilabel:
        proba = pipeline.predict_proba(X.iloc[test_rows])
        pred = pipeline.predict(X.iloc[test_rows])
        metrics = multilabel_metrics(y[test_rows], pred, proba)
        out.print(metrics_table(metrics, f"Held-out test set ({len(test_rows)} rows)"))
        out.print(per_label_table(y[test_rows], pred, proba, targets))
        return metrics
    classes = pipeline.classes_
    known = np.isin(y[test_rows], classes)
    if not known.all():
        warn("luce train", f"{int((~known).sum())} held-out rows have classes absent from the training split")
    rows = test_rows[known]
    if not len(rows):
        return None
    proba = pipeline.predict_proba(X.iloc[rows])
    pred = pipeline.predict(X.iloc[rows])
    metrics = classification_metrics(y[rows], pred, proba, classes)
    out.print(metrics_table(metrics, f"Held-out test set ({len(rows)} rows)"))
    out.print(per_class_table(y[rows], pred, proba, classes))
    return metrics
