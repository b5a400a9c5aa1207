"""``luce plot temperature [SCORES...]`` and ``luce plot activations``: the teaching figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console
from ._softmax import parse_scores

plot_app = typer.Typer(
    help="Draw the classic softmax figures as PNG files.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plot_app, name="plot")


def _ensure_folder(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


@plot_app.command("temperature", context_settings={"ignore_unknown_options": True})
def temperature(
    scores: Annotated[list[str] | None, typer.Argument(help="Scores to plot (default 2.0 1.0 0.1).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path(
        "softmax-temperature.png"
    ),
) -> None:
    """softmax(scores / T) over temperatures from 0.05 to 50: how T sharpens or flattens it."""
    from ..plots import plot_temperature

    x = parse_scores(scores) if scores else [2.0, 1.0, 0.1]
    if len(x) < 2:
        raise typer.BadParameter("give at least 2 scores", param_hint="SCORES")
    _ensure_folder(out)
    path = plot_temperature(x, out)
    console().print(f"wrote {path}")


@plot_app.command("activations")
def activations(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("activations.png"),
) -> None:
    """Softmax beside sigmoid, tanh, ReLU and hardmax."""
    from ..plots import plot_activations

    _ensure_folder(out)
    path = plot_activations(out)
    console().print(f"wrote {path}")
