"""``luce train DATA --target COL``: fit SoftmaxRegression with a live progress bar, report, save."""

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
from ._data import Features, read_table, target_values
from ._report import classification_metrics, metrics_table, per_class_table

# The iteration budget SoftmaxRegression uses when max_iter is None (for the progress bar's length).
_DEFAULT_MAX_ITER = {"lbfgs": 100, "newton-cg": 100, "gd": 10_000, "sgd": 200}


class Solver(enum.StrEnum):
    lbfgs = "lbfgs"
    newton_cg = "newton-cg"
    gd = "gd"
    sgd = "sgd"


class Impute(enum.StrEnum):
    mean = "mean"
    median = "median"


def loss_start(model) -> int:
    """0 when ``loss_curve_`` starts with the loss before the first iteration, else 1."""
    return max(0, int(model.n_iter_) - len(model.loss_curve_) + 1)


def fit_with_progress(model, X, y, out, *, command="train"):
    """Fit ``model`` showing a Rich progress bar fed by its ``verbose`` callback; warnings become lines."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    params = model.get_params()
    total = params.get("max_iter") or _DEFAULT_MAX_ITER.get(params.get("solver"), 100)
    unit = "epoch" if params.get("solver") == "sgd" else "iteration"
    columns = [
        TextColumn("[bold]training[/] {task.fields[solver]}"),
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

        model.set_params(verbose=report)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(X, y)
        finally:
            model.set_params(verbose=0)
        n_iter = int(getattr(model, "n_iter_", total))
        progress.update(task, total=max(n_iter, 1), completed=max(n_iter, 1))
    show_warnings(command, caught)
    return time.perf_counter() - start


def split_rows(y, test_size: float, random_state: int):
    """Train/test row indices, stratified when every class has at least two rows."""
    n = len(y)
    rows = np.arange(n)
    if test_size == 0:
        return rows, rows[:0]
    n_test = math.ceil(test_size * n)
    n_classes = len(set(y.tolist()))
    if n - n_test < 2:
        raise DataError(
            f"--test-size {test_size} leaves {n - n_test} training rows out of {n}; use a smaller one"
        )
    from sklearn.model_selection import train_test_split

    counts = Counter(y.tolist())
    stratify = y if min(counts.values()) >= 2 and n_test >= n_classes and n - n_test >= n_classes else None
    train, test = train_test_split(rows, test_size=n_test, random_state=random_state, stratify=stratify)
    return np.sort(train), np.sort(test)


def check_classes(y, target, source):
    classes = list(dict.fromkeys(y.tolist()))
    if len(classes) < 2:
        raise DataError(
            f"target column {target!r} of {source} has only one class ({classes[0]!r}); a classifier needs "
            "at least two"
        )


@app.command("train")
def train(
    data: Annotated[
        Path, typer.Argument(help="Training table: .csv, .tsv or .parquet (CSV/TSV may be compressed).")
    ],
    target: Annotated[str, typer.Option("--target", "-y", help="The column holding the labels (any type).")],
    model_path: Annotated[Path, typer.Option("--model", "-m", help="Where to save the model.")] = Path(
        "model.luce"
    ),
    solver: Annotated[Solver, typer.Option("--solver", help="Optimiser.")] = Solver.lbfgs,
    reg_strength: Annotated[
        float, typer.Option("--reg-strength", min=0.0, help="L2 penalty λ on the weights.")
    ] = 1e-4,
    max_iter: Annotated[
        int | None,
        typer.Option(
            "--max-iter",
            min=1,
            help="Iteration budget (default: 100 for lbfgs/newton-cg, 10000 gd, 200 sgd).",
        ),
    ] = None,
    test_size: Annotated[
        float,
        typer.Option(
            "--test-size", min=0.0, max=0.9, help="Fraction of rows held out for the test metrics (0: none)."
        ),
    ] = 0.2,
    random_state: Annotated[
        int, typer.Option("--random-state", help="Seed of the split and of sgd's shuffling.")
    ] = 0,
    one_hot: Annotated[
        bool, typer.Option("--one-hot", help="One-hot encode non-numeric (categorical) columns.")
    ] = False,
    impute: Annotated[
        Impute | None, typer.Option("--impute", help="Fill missing numeric values (NaN).")
    ] = None,
    loss_plot: Annotated[
        Path | None,
        typer.Option(
            "--loss-plot", help="PNG of the loss curve (default: <model>-loss-curve.png beside the model)."
        ),
    ] = None,
) -> None:
    """Train a softmax-regression classifier on a table, report held-out metrics, save it.

    Example: luce train iris.csv --target species --model iris.luce
    """
    from ..io import save
    from ..models import SoftmaxRegression
    from ..plots import plot_loss_curve

    out = console()
    source = str(data)
    df = read_table(data)
    y = target_values(df, target, source)
    check_classes(y, target, source)
    train_rows, test_rows = split_rows(y, test_size, random_state)
    check_classes(y[train_rows], target, f"the training split of {source}")
    features = Features.fit(
        df, target, one_hot=one_hot, impute=None if impute is None else impute.value, source=source,
        fit_rows=train_rows,
    )  # fmt: skip
    X = features.transform(df.drop(columns=[target]), source)
    model = SoftmaxRegression(
        reg_strength=reg_strength, solver=solver.value, max_iter=max_iter, random_state=random_state
    )
    out.print(
        f"[bold]{source}[/]: {len(df)} rows, {X.shape[1]} features, {len(set(y.tolist()))} classes "
        f"→ {len(train_rows)} for training, {len(test_rows)} held out"
    )
    seconds = fit_with_progress(model, X.iloc[train_rows], y[train_rows], out)
    final = model.loss_curve_[-1] if model.loss_curve_ else float("nan")
    out.print(f"trained in {seconds:.2f} s: {model.n_iter_} iterations, final training loss {final:.6g}")

    metrics = None
    if len(test_rows):
        known = np.isin(y[test_rows], model.classes_)
        if not known.all():
            warn(
                "luce train",
                f"{int((~known).sum())} held-out rows have classes absent from the training split",
            )
        rows = test_rows[known]
        if len(rows):
            proba = model.predict_proba(X.iloc[rows])
            metrics = classification_metrics(y[rows], proba, model.classes_)
            out.print(metrics_table(metrics, f"Held-out test set ({len(rows)} rows)"))
            out.print(per_class_table(y[rows], proba, model.classes_))
    model_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "luce_cli": {
            "command": "train",
            "data": source,
            "target": target,
            "features": features.to_json(),
            "n_rows": len(df),
            "n_train": len(train_rows),
            "n_test": len(test_rows),
            "test_metrics": metrics,
        }
    }
    save(model, model_path, metadata=metadata)
    out.print(f"saved model to [bold]{model_path}[/]")
    plot_path = loss_plot or model_path.with_name(f"{model_path.stem}-loss-curve.png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot_loss_curve(model.loss_curve_, plot_path, start=loss_start(model))
    out.print(f"saved loss curve to {plot_path}")
