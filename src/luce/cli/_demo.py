"""``luce demo [--out DIR]``: the tour — train on the digits, calibrate, report, save model and figures."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console
from ._data import write_table
from ._report import classification_metrics, metrics_table, per_class_table
from ._train import fit_with_progress, loss_start

FEATURES = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]  # row_column of the 8 x 8 image


@app.command("demo")
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the model and the figures.")
    ] = Path("luce-demo"),
    random_state: Annotated[int, typer.Option("--random-state", help="Seed of the splits.")] = 0,
) -> None:
    """Train SoftmaxRegression on the digits that ship with scikit-learn; report; save model and plots.

    The 1797 8×8 images are split into training (60%), validation (15%, to fit the temperature)
    and test (25%) parts. DIR receives model.luce, model.onnx, digits-test.csv and five PNG figures.
    """
    import pandas as pd
    from rich.panel import Panel
    from rich.table import Table
    from sklearn.model_selection import train_test_split

    from ..datasets import load_digits_split
    from ..io import export_onnx, save
    from ..models import SoftmaxRegression
    from ..plots import (
        plot_activations,
        plot_confusion_matrix,
        plot_loss_curve,
        plot_reliability_diagram,
        plot_temperature,
    )

    out = console()
    out.print(
        Panel.fit(
            "[bold]luce demo[/]: softmax regression on the handwritten digits that ship with scikit-learn\n"
            "1797 images of 8×8 pixels (intensities scaled to [0, 1]), 10 classes",
            border_style="cyan",
        )
    )
    X_rest, X_test, y_rest, y_test = load_digits_split(test_size=0.25, random_state=random_state)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.2, random_state=random_state, stratify=y_rest
    )
    frame = lambda X: pd.DataFrame(X, columns=FEATURES)  # noqa: E731
    out.print(f"{len(y_train)} training, {len(y_val)} validation and {len(y_test)} test images")

    model = SoftmaxRegression(reg_strength=1e-3, random_state=random_state)
    seconds = fit_with_progress(model, frame(X_train), y_train, out, command="demo")
    out.print(
        f"trained in {seconds:.2f} s: {model.n_iter_} iterations, final loss {model.loss_curve_[-1]:.5f}"
    )

    test = frame(X_test)
    before = classification_metrics(y_test, model.predict(test), model.predict_proba(test), model.classes_)
    model.calibrate(frame(X_val), y_val)
    proba = model.predict_proba(test)
    pred = model.predict(test)
    after = classification_metrics(y_test, pred, proba, model.classes_)

    out.print(
        metrics_table(after, f"Test set ({len(y_test)} images), temperature T = {model.temperature_:.3f}")
    )
    calib = Table(title="Temperature scaling: T fitted on the validation images, scored on the test set",
                  title_justify="left")  # fmt: skip
    for name in ("", "T", "log-loss", "ECE", "accuracy"):
        calib.add_column(name, justify="left" if not name else "right")
    calib.add_row(
        "before", "1.000", f"{before['log_loss']:.4f}", f"{before['ece']:.4f}", f"{before['accuracy']:.4f}"
    )
    calib.add_row(
        "after",
        f"{model.temperature_:.3f}",
        f"{after['log_loss']:.4f}",
        f"{after['ece']:.4f}",
        f"{after['accuracy']:.4f}",
    )
    out.print(calib)
    out.print(per_class_table(y_test, pred, proba, model.classes_, title="Per digit (test set)"))

    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "luce_cli": {
            "command": "demo",
            "data": "luce.datasets.load_digits_split (scikit-learn digits, scaled by 1/16)",
            "target": "digit",
            "targets": ["digit"],
            "n_rows": len(y_rest) + len(y_test),
            "n_train": len(y_train),
            "n_test": len(y_test),
            "test_metrics": after,
        }
    }
    written = [
        (save(model, out_dir / "model.luce", metadata=metadata), "the model (safetensors + JSON)"),
        (export_onnx(model, out_dir / "model.onnx"), "the model as an ONNX graph"),
        (
            plot_loss_curve(model.loss_curve_, out_dir / "loss-curve.png", start=loss_start(model)),
            "training loss per iteration",
        ),
        (
            plot_confusion_matrix(y_test, pred, model.classes_, out_dir / "confusion-matrix.png"),
            "test confusions",
        ),
        (
            plot_reliability_diagram(
                y_test, proba, out_dir / "reliability-diagram.png", classes=model.classes_
            ),
            "calibration after temperature scaling",
        ),
        (plot_temperature([2.0, 1.0, 0.1], out_dir / "softmax-temperature.png"), "how T reshapes softmax"),
        (plot_activations(out_dir / "activations.png"), "softmax beside sigmoid, tanh, ReLU, hardmax"),
    ]
    test_table = frame(X_test).assign(digit=y_test)
    write_table(test_table, out_dir / "digits-test.csv")
    written.append((out_dir / "digits-test.csv", "the test images, to try luce predict / evaluate"))
    files = Table(title=f"Written to {out_dir}/", title_justify="left")
    files.add_column("file")
    files.add_column("what")
    for path, what in written:
        files.add_row(Path(path).name, what)
    out.print(files)
    out.print(f"Next: {_this_command()} evaluate {out_dir / 'model.luce'} {out_dir / 'digits-test.csv'}")


def _this_command() -> str:
    """How the user ran luce: ``.venv/bin/luce`` after ``make demo``, else ``luce``."""
    import shlex
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "luce" and os.sep in argv0:
        on_path = shutil.which("luce")
        if on_path is None or Path(on_path).resolve() != Path(argv0).resolve():
            return shlex.quote(argv0)
    return "luce"
