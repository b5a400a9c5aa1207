"""``luce predict MODEL DATA`` and ``luce evaluate MODEL DATA``: the model's own ``predict``, always."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import DataError, app, console
from ._data import check_outputs, missing_column, read_table, target_values, write_table
from ._model import load_model
from ._report import (
    classification_metrics,
    confusion_table,
    metrics_table,
    multilabel_metrics,
    per_class_table,
    per_label_table,
)

_MODEL_ARG = typer.Argument(metavar="MODEL", help="A model file written by luce train or luce.save.")
_SEP = typer.Option("--sep", help="Field separator of a CSV/TSV file (e.g. ';').")


def confidence(pred, proba, classes, multilabel: bool) -> np.ndarray:
    """The probability the model gives to what it predicted.

    Single label: the probability of the predicted class. Multi-label: the probability that every
    label is as predicted, each label taken as independent (the product of p or 1 - p).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if multilabel:
        return np.where(np.asarray(pred) == 1, proba, 1.0 - proba).prod(axis=1)
    index = {c: k for k, c in enumerate(np.asarray(classes).tolist())}
    columns = np.array([index[c] for c in np.asarray(pred).tolist()])
    return proba[np.arange(len(proba)), columns]


@app.command("predict")
def predict(
    model_path: Annotated[Path, _MODEL_ARG],
    data: Annotated[Path, typer.Argument(help="Table to predict: .csv, .tsv or .parquet.")],
    proba: Annotated[
        bool, typer.Option("--proba", help="Add one probability column per class (proba_<class>).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this .csv/.tsv/.parquet file (default: CSV on stdout)."
        ),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id", help="Copy this column to the output to identify rows.")
    ] = None,
    sep: Annotated[str | None, _SEP] = None,
) -> None:
    """Predict the class of every row of a table, with the model's confidence in it.

    Output columns: the --id column, "prediction" (a multi-label model: one 0/1 column per label),
    "confidence" (the probability of what is predicted) and, with --proba, proba_<class>.
    Example: luce predict iris.luce new.csv --proba --id sample --output predictions.parquet
    """
    import pandas as pd

    check_outputs({"--output": output}, [data, model_path])
    source = str(data)
    df = read_table(data, sep=sep)
    if id_column is not None and id_column not in df.columns:
        raise missing_column(id_column, df.columns, source)
    loaded = load_model(model_path)
    X = loaded.input(df, source, ignore=() if id_column is None else (id_column,))
    pred = np.asarray(loaded.model.predict(X))
    p = np.asarray(loaded.model.predict_proba(X))
    columns = {}
    if id_column is not None:
        columns[id_column] = df[id_column].to_numpy()
    if loaded.multilabel:
        for j, name in enumerate(loaded.labels):
            columns[name] = pred[:, j].astype(np.int64)
    else:
        columns["prediction"] = pred
    columns["confidence"] = confidence(pred, p, loaded.classes, loaded.multilabel)
    if proba:
        names = loaded.labels if loaded.multilabel else loaded.classes.tolist()
        for k, c in enumerate(names):
            columns[f"proba_{c}"] = p[:, k]
    table = pd.DataFrame(columns)
    write_table(table, output)
    if output is not None and str(output) != "-":
        console().print(f"wrote {len(table)} predictions to {output}")


@app.command("evaluate")
def evaluate(
    model_path: Annotated[Path, _MODEL_ARG],
    data: Annotated[Path, typer.Argument(help="Labelled table: .csv, .tsv or .parquet.")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-y",
            help="The column(s) holding the true labels (default: the target recorded in the model file).",
        ),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Folder for confusion-matrix.png and reliability-diagram.png."),
    ] = None,
    sep: Annotated[str | None, _SEP] = None,
) -> None:
    """Score a model on labelled data: accuracy, baseline, AUCs, F1, calibration, confusions.

    Accuracy beside the majority-class baseline, log-loss, ROC-AUC and PR-AUC (two classes),
    precision/recall/F1, the expected calibration error and the confusion matrix.

    Example: luce evaluate iris.luce test.csv --plots report/
    """
    from ._train import _indicator

    if plots is not None and plots.exists() and not plots.is_dir():
        raise DataError(f"--plots {plots} is a file; give a folder")
    source = str(data)
    loaded = load_model(model_path)
    targets = list(target or loaded.targets or [])
    if not targets:
        raise DataError(f"{model_path} does not record its target column; pass --target COL")
    df = read_table(data, sep=sep)
    for t in targets:
        if t not in df.columns:
            where = "given by --target" if target else f"recorded in {model_path}"
            raise missing_column(t, df.columns, f"{source} (the target {where})")
    features = df.drop(columns=targets)
    X = loaded.input(features, source)
    out = console()
    title = f"{source} ({len(df)} rows) with {model_path}"
    if loaded.multilabel:
        if len(targets) != len(loaded.labels):
            raise DataError(
                f"{model_path} predicts {len(loaded.labels)} labels; {len(targets)} --target column(s) given"
            )
        Y = np.column_stack([_indicator(df, t, source) for t in targets])
        pred, p = loaded.model.predict(X), loaded.model.predict_proba(X)
        out.print(metrics_table(multilabel_metrics(Y, pred, p), title))
        out.print(per_label_table(Y, pred, p, targets))
        return
    if len(targets) > 1:
        raise DataError(f"{model_path} predicts one label; give one --target")
    y = target_values(df, targets[0], source)
    classes = loaded.classes
    known = np.isin(y, classes)
    if not known.all():
        unseen = sorted({str(v) for v in y[~known].tolist()})
        shown = ", ".join(repr(v) for v in unseen[:5])
        raise DataError(
            f"target column {targets[0]!r} has labels the model never saw: {shown} ({int((~known).sum())} "
            f"rows); the model knows {', '.join(repr(str(c)) for c in classes.tolist()[:12])}"
        )
    pred = np.asarray(loaded.model.predict(X))
    p = np.asarray(loaded.model.predict_proba(X))
    out.print(metrics_table(classification_metrics(y, pred, p, classes), title))
    out.print(per_class_table(y, pred, p, classes))
    if len(classes) <= 20:
        out.print(confusion_table(y, pred, classes))
    if plots is not None:
        from ..plots import plot_confusion_matrix, plot_reliability_diagram

        plots.mkdir(parents=True, exist_ok=True)
        cm = plot_confusion_matrix(y, pred, classes, plots / "confusion-matrix.png")
        rd = plot_reliability_diagram(y, p, plots / "reliability-diagram.png", classes=classes)
        out.print(f"wrote {cm} and {rd}")
