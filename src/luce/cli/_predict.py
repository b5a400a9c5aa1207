"""``luce predict MODEL DATA`` and ``luce evaluate MODEL DATA --target COL``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import DataError, app, console, warn
from ._data import Features, missing_column, read_table, target_values, write_table
from ._report import classification_metrics, metrics_table, per_class_table


def load_model(model_path: Path, df, source, *, ignore=()):
    """The model and the feature encoding it was trained with (or one derived from the model)."""
    from ..io import load, read_metadata

    model = load(model_path)
    if not hasattr(model, "predict_proba"):
        raise DataError(f"{model_path} holds a {type(model).__name__}, which does not predict probabilities")
    info = (read_metadata(model_path).get("user") or {}).get("luce_cli") or {}
    if "features" in info:
        return model, Features.from_json(info["features"])
    return model, Features.from_model(model, df, source, ignore=ignore)


def _model_input(model, features, df, source, command, *, ignore=()):
    X = features.transform(df, source, ignore=ignore, warn=lambda m: warn(f"luce {command}", m))
    if getattr(model, "feature_names_in_", None) is None:
        return X.to_numpy()  # a model fitted on a plain array: no column names to match
    return X


@app.command("predict")
def predict(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or .save().")
    ],
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
) -> None:
    """Predict the class (and probabilities) of every row of a table.

    Example: luce predict iris.luce new.csv --proba --id sample --output predictions.parquet
    """
    import pandas as pd

    source = str(data)
    df = read_table(data)
    if id_column is not None and id_column not in df.columns:
        raise missing_column(id_column, df.columns, source)
    ignore = () if id_column is None else (id_column,)
    model, features = load_model(model_path, df, source, ignore=ignore)
    X = _model_input(model, features, df, source, "predict", ignore=ignore)
    columns = {}
    if id_column is not None:
        columns[id_column] = df[id_column].to_numpy()
    p = model.predict_proba(X)
    classes = np.asarray(model.classes_)
    columns["prediction"] = classes[np.argmax(p, axis=1)]
    if proba:
        for k, c in enumerate(classes.tolist()):
            columns[f"proba_{c}"] = p[:, k]
    table = pd.DataFrame(columns)
    write_table(table, output)
    if output is not None and str(output) != "-":
        console().print(f"wrote {len(table)} predictions to {output}")


@app.command("evaluate")
def evaluate(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or .save().")
    ],
    data: Annotated[Path, typer.Argument(help="Labelled table: .csv, .tsv or .parquet.")],
    target: Annotated[str, typer.Option("--target", "-y", help="The column holding the true labels.")],
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Folder for confusion-matrix.png and reliability-diagram.png."),
    ] = None,
) -> None:
    """Score a model on labelled data: accuracy, log-loss, precision/recall/F1, calibration error.

    Example: luce evaluate iris.luce test.csv --target species --plots report/
    """
    from ..plots import plot_confusion_matrix, plot_reliability_diagram

    source = str(data)
    df = read_table(data)
    y = target_values(df, target, source)
    model, features = load_model(model_path, df.drop(columns=[target]), source)
    X = _model_input(model, features, df.drop(columns=[target]), source, "evaluate")
    classes = np.asarray(model.classes_)
    known = np.isin(y, classes)
    if not known.all():
        unseen = sorted({str(v) for v in y[~known].tolist()})
        shown = ", ".join(repr(v) for v in unseen[:5])
        raise DataError(
            f"target column {target!r} has labels the model never saw: {shown} ({int((~known).sum())} rows); "
            f"the model knows {', '.join(repr(str(c)) for c in classes.tolist()[:12])}"
        )
    p = model.predict_proba(X)
    metrics = classification_metrics(y, p, classes)
    out = console()
    out.print(metrics_table(metrics, f"{source} ({len(y)} rows) with {model_path}"))
    out.print(per_class_table(y, p, classes))
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        cm = plot_confusion_matrix(y, classes[np.argmax(p, axis=1)], classes, plots / "confusion-matrix.png")
        rd = plot_reliability_diagram(y, p, plots / "reliability-diagram.png", classes=classes)
        out.print(f"wrote {cm} and {rd}")
