"""``luce calibrate MODEL DATA --output PATH``: temperature scaling of a saved model on held-out data."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import DataError, app, console, warn
from ._data import check_outputs, read_table, target_values
from ._model import load_model


def _scores(y, pred, proba, classes) -> dict:
    from sklearn.metrics import log_loss

    from ..metrics import expected_calibration_error

    return {
        "accuracy": float(np.mean(np.asarray(pred) == y)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "ece": float(expected_calibration_error(y, proba, classes=classes)),
    }


def _calibrated(model, X, y):
    """The model with a fitted temperature, and that temperature.

    A Pipeline's preprocessing is applied once and its final estimator calibrated on the result:
    with its own ``calibrate`` when it has one, else wrapped in a TemperatureScaling step.
    """
    from sklearn.pipeline import Pipeline

    from ..models._calibration import TemperatureScaling

    if isinstance(model, Pipeline):
        final, T = _calibrated(model[-1], model[:-1].transform(X), y)
        return Pipeline([*model.steps[:-1], (model.steps[-1][0], final)]), T
    if isinstance(model, TemperatureScaling):
        return model.fit(X, y), model.temperature_
    if hasattr(model, "calibrate"):
        model.calibrate(X, y)
        return model, model.temperature_
    wrapper = TemperatureScaling(model).fit(X, y)
    return wrapper, wrapper.temperature_


def _unsupported(final, caught, before) -> str | None:
    """Why the calibration rows cannot support a temperature, or None.

    Rows the model gets all right (and far from the boundary) pull T towards 0 without limit; the
    estimators then warn and fall back (and may say so in an attribute); say it plainly either way.
    """
    status = getattr(final, "temperature_status_", None)  # "estimated", "constant", "separated", ...
    if status is not None and status not in ("estimated", "constant"):
        return getattr(final, "temperature_message_", None) or f"the temperature fit ended as {status!r}"
    if caught:
        return "; ".join(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    if before["accuracy"] == 1.0:
        return (
            "the model classifies every calibration row correctly, so the data cannot tell how "
            "over-confident it is (the best T shrinks towards 0); calibrate on more, or harder, held-out rows"
        )
    return None


@app.command("calibrate")
def calibrate(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or luce.save.")
    ],
    data: Annotated[
        Path, typer.Argument(help="Held-out labelled table (not the training rows): .csv, .tsv or .parquet.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the calibrated model here (required unless --in-place)."),
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace MODEL with the calibrated model.")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", "-y", help="The column of true labels (default: the one in the model file)."
        ),
    ] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="Field separator of a CSV/TSV file.")] = None,
) -> None:
    """Fit the temperature T that makes the model's probabilities calibrated on held-out data.

    Temperature scaling (Guo et al. 2017) divides the logits by one T > 0 chosen to minimise the
    log-loss on DATA. Predictions never change; over-confident models get T > 1. Prints accuracy,
    log-loss and expected calibration error before and after, and saves the model with its temperature
    (a SoftmaxRegression stores it in temperature_, used by predict and by the ONNX export).

    Example: luce calibrate digits.luce validation.csv --output digits-calibrated.luce
    """
    from rich.table import Table

    from ..io import save

    if output is None and not in_place:
        raise DataError("give --output PATH for the calibrated model, or --in-place to replace MODEL")
    if output is not None and in_place:
        raise DataError("give either --output or --in-place, not both")
    check_outputs({"--output": output}, [data])
    source = str(data)
    loaded = load_model(model_path)
    if loaded.multilabel:
        raise DataError(
            f"{model_path} holds a multi-label {type(loaded.final).__name__}; temperature scaling calibrates "
            "one softmax over the classes, so it needs a single-label classifier"
        )
    target = target or (loaded.targets or [None])[0]
    if target is None:
        raise DataError(f"{model_path} does not record its target column; pass --target COL")
    df = read_table(data, sep=sep)
    y = target_values(df, target, source)
    X = loaded.input(df.drop(columns=[target]), source)
    classes = loaded.classes
    known = np.isin(y, classes)
    if not known.all():
        unseen = sorted({str(v) for v in y[~known].tolist()})
        raise DataError(
            f"target column {target!r} has labels the model never saw: {', '.join(map(repr, unseen[:5]))} "
            f"({int((~known).sum())} rows); calibration needs labels from the model's classes"
        )

    model = loaded.model
    before = _scores(y, model.predict(X), model.predict_proba(X), classes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calibrated, temperature = _calibrated(model, X, y)
    after = _scores(y, calibrated.predict(X), calibrated.predict_proba(X), classes)
    problem = _unsupported(calibrated[-1] if hasattr(calibrated, "steps") else calibrated, caught, before)

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
        table.add_row(name, f"{before[key]:.4g}", f"{after[key]:.4g}")
    out.print(table)
    out.print("(measured on the calibration data itself: evaluate on other rows for an unbiased estimate)")
    if problem is not None:
        warn(
            "luce calibrate",
            f"these rows cannot support a temperature: {problem.rstrip('.')}. "
            f"The saved T = {temperature:.4g} is not an estimate from these rows",
        )

    user = copy.deepcopy(loaded.user)
    info = user.setdefault("luce_cli", {})
    info["calibration"] = {
        "data": source,
        "target": target,
        "n_rows": len(y),
        "temperature": float(temperature),
        "supported": problem is None,
        "before": before,
        "after": after,
    }
    path = model_path if in_place else output
    path.parent.mkdir(parents=True, exist_ok=True)
    save(calibrated, path, metadata=user)
    out.print(f"saved calibrated model to [bold]{path}[/]")
