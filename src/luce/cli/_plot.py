"""``luce plot temperature | activations | proportion | hardmax | cross-entropy``: the teaching figures."""

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


def _scores(tokens: list[str] | None, default: list[float]):
    x = parse_scores(tokens) if tokens else default
    if len(x) < 2:
        raise typer.BadParameter("give at least 2 scores", param_hint="SCORES")
    return x


def _index(k: int | None, n: int, name: str) -> int | None:
    if k is not None and not 0 <= k < n:
        raise typer.BadParameter(f"must be an index from 0 to {n - 1}, got {k}", param_hint=name)
    return k


def _wrote(path: Path) -> None:
    console().print(f"wrote {path}")


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


_OUT_HELP = "PNG file to write."


@plot_app.command("proportion", context_settings={"ignore_unknown_options": True})
def proportion(
    scores: Annotated[list[str] | None, typer.Argument(help="Non-negative scores (default 1 1 3).")] = None,
    index: Annotated[
        int | None, typer.Option("--index", help="The score that grows (default the largest).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=_OUT_HELP)] = Path("softmax-vs-share.png"),
) -> None:
    """The plain share x/Σx beside softmax(x) as one score grows, with the example's values marked."""
    from ..plots import plot_proportion

    x = _scores(scores, [1.0, 1.0, 3.0])
    if min(x) < 0 or sum(x) <= 0:
        raise typer.BadParameter(
            "the plain share x / Σx needs non-negative scores with a positive sum", param_hint="SCORES"
        )
    _ensure_folder(out)
    _wrote(plot_proportion(x, out, index=_index(index, len(x), "'--index'")))


@plot_app.command("hardmax", context_settings={"ignore_unknown_options": True})
def hardmax_limit(
    scores: Annotated[list[str] | None, typer.Argument(help="Scores (default 2.0 1.0 0.1).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=_OUT_HELP)] = Path("softmax-to-hardmax.png"),
) -> None:
    """softmax(x / T) at T = 5, 1, 0.5, 0.2, 0.05 beside hardmax: the T → 0 limit."""
    from ..plots import plot_hardmax

    x = _scores(scores, [2.0, 1.0, 0.1])
    _ensure_folder(out)
    _wrote(plot_hardmax(x, out))


@plot_app.command("cross-entropy", context_settings={"ignore_unknown_options": True})
def cross_entropy_curves(
    scores: Annotated[list[str] | None, typer.Argument(help="Scores (default 2.0 1.0 0.1).")] = None,
    target: Annotated[int, typer.Option("--target", help="The true class K.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help=_OUT_HELP)] = Path("cross-entropy.png"),
) -> None:
    """The loss −log p_K and its gradient p − onehot(K) as one score moves."""
    from ..plots import plot_cross_entropy

    x = _scores(scores, [2.0, 1.0, 0.1])
    _ensure_folder(out)
    _wrote(plot_cross_entropy(x, _index(target, len(x), "'--target'"), out))
