"""``luce calibrate MODEL DATA --target COL``: temperature scaling of a saved model on held-out data."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import DataError, app, console, show_warnings
from ._data import read_table, target_values
from ._predict import _model_input, load_model


def _scores(y, proba, classes) -> dict:
    from sklearn.metrics import log_loss

    from ..metrics import expected_calibration_error

    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    return {
        "accuracy": float(np.mean(pred == y)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "ece": float(expected_calibration_error(y, proba, classes=classes)),
    }


def _calibrated(model, X, y):
    """The model with a fitted temperature: its own ``calibrate``, a refit wrapper, or a new wrapper."""
    from ..models._calibration import TemperatureScaling

    if isinstance(model, TemperatureScaling):
        return model.fit(X, y), model.temperature_
    if hasattr(model, "calibrate"):
        model.calibrate(X, y)
        return model, model.temperature_
    wrapper = TemperatureScaling(model).fit(X, y)
    return wrapper, wrapper.temperature_


@app.command("calibrate")
def calibrate(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or .save().")
    ],
    data: Annotated[
        Path, typer.Argument(help="Held-out labelled table (not the training rows): .csv, .tsv or .parquet.")
    ],
    target: Annotated[str, typer.Option("--target", "-y", help="The column holding the true labels.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the calibrated model here (default: replace MODEL)."),
    ] = None,
) -> None:
    """Fit the temperature T that makes the model's probabilities calibrated on held-out data.

    Temperature scaling (Guo et al. 2017) divides the logits by one T > 0 chosen to minimise the
    log-loss on DATA. Predictions never change; over-confident models get T > 1. Prints accuracy,
    log-loss and expected calibration error before and after, and saves the model with its temperature
    (a SoftmaxRegression stores it in temperature_, used by predict and by the ONNX export).

    Example: luce calibrate digits.luce validation.csv --target digit --output digits-calibrated.luce
    """
    from rich.table import Table

    from ..io import read_metadata, save

    source = str(data)
    df = read_table(data)
    y = target_values(df, target, source)
    features_df = df.drop(columns=[target])
    model, features = load_model(model_path, features_df, source)
    if getattr(model, "multilabel_", False):
        raise DataError(
            f"{model_path} holds a multi-label {type(model).__name__}; temperature scaling calibrates one "
            "softmax over the classes, so it needs a single-label classifier"
        )
    X = _model_input(model, features, features_df, source, "calibrate")
    classes = np.asarray(model.classes_)
    known = np.isin(y, classes)
    if not known.all():
        unseen = sorted({str(v) for v in y[~known].tolist()})
        raise DataError(
            f"target column {target!r} has labels the model never saw: {', '.join(map(repr, unseen[:5]))} "
            f"({int((~known).sum())} rows); calibration needs labels from the model's classes"
        )

    before = _scores(y, model.predict_proba(X), classes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calibrated, temperature = _calibrated(model, X, y)
    show_warnings("calibrate", caught)
    after = _scores(y, calibrated.predict_proba(X), classes)

    out = console()
    table = Table(title=f"{source} ({len(y)} rows): temperature T = {temperature:.4g}", title_justify="left")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key, name in (
        ("log_loss", "log-loss"),
        ("ece", "expected calibration error"),
        ("accuracy", "accuracy"),
    ):
        table.add_row(name, f"{before[key]:.4f}", f"{after[key]:.4f}")
    out.print(table)
    out.print("(measured on the calibration data itself: evaluate on other rows for an unbiased estimate)")

    user = copy.deepcopy(read_metadata(model_path).get("user") or {})
    info = user.setdefault("luce_cli", {})
    info["calibration"] = {
        "data": source,
        "target": target,
        "n_rows": len(y),
        "temperature": float(temperature),
        "before": before,
        "after": after,
    }
    path = model_path if output is None else output
    if output is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    save(calibrated, path, metadata=user)
    out.print(f"saved calibrated model to [bold]{path}[/]")
