"""``luce export MODEL --onnx PATH``: the model as an ONNX graph for any ONNX runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console


@app.command("export")
def export(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or .save().")
    ],
    onnx: Annotated[Path, typer.Option("--onnx", help="The .onnx file to write.")],
    float64: Annotated[
        bool, typer.Option("--float64", help="Use float64 inputs and weights instead of float32.")
    ] = False,
) -> None:
    """Export a model to ONNX: input X (N, n_features); outputs label (N,) (a multi-label model: (N,
    n_labels) indicators) and probabilities (N, n_classes).

    Example: luce export iris.luce --onnx iris.onnx
    """
    from ..io import export_onnx, load

    model = load(model_path)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    path = export_onnx(model, onnx, dtype="float64" if float64 else "float32")
    n_features = model.coef_.shape[1]
    names = getattr(model, "feature_names_in_", None)
    out = console()
    label = f"(N, {len(model.classes_)})" if getattr(model, "multilabel_", False) else "(N,)"
    out.print(
        f"wrote [bold]{path}[/]: input X {'float64' if float64 else 'float32'} (N, {n_features}); outputs "
        f"label {label} and probabilities (N, {len(model.classes_)})"
    )
    if names is not None:
        shown = ", ".join(str(n) for n in list(names)[:8]) + (" …" if len(names) > 8 else "")
        out.print(f"feature order (also in the graph's metadata_props): {shown}")
