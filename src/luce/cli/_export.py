"""``luce export MODEL --onnx PATH``: the model as an ONNX graph for any ONNX runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console
from ._data import check_outputs


@app.command("export")
def export(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or luce.save.")
    ],
    onnx: Annotated[Path, typer.Option("--onnx", help="The .onnx file to write.")],
    float64: Annotated[
        bool, typer.Option("--float64", help="Use float64 inputs and weights instead of float32.")
    ] = False,
) -> None:
    """Export a model to ONNX: its labels and probabilities for any ONNX runtime.

    A model from luce train takes one input per column it uses (numbers as float tensors, text as
    string tensors, each of shape (N, 1)); a bare estimator takes X (N, n_features). Outputs: label
    (N,) (a multi-label model: (N, n_labels) indicators) and probabilities (N, n_classes).

    Example: luce export iris.luce --onnx iris.onnx
    """
    import onnx as onnx_lib

    from ..io import export_onnx, load

    check_outputs({"--onnx": onnx}, [model_path])
    model = load(model_path)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    path = export_onnx(model, onnx, dtype="float64" if float64 else "float32")
    graph = onnx_lib.load(str(path), load_external_data=False).graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    shown = ", ".join(inputs[:8]) + (f" and {len(inputs) - 8} more" if len(inputs) > 8 else "")
    console().print(f"wrote [bold]{path}[/]: {len(inputs)} input(s) ({shown}); outputs {', '.join(outputs)}")
