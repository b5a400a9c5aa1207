"""``luce softmax 2.0 1.0 0.1 [--temperature T] [--log] [--explain]``."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import typer

from ..functional import log_softmax, softmax
from ._app import app, console


def parse_scores(tokens: list[str] | None, name: str = "SCORES") -> np.ndarray:
    """Numbers from the command line; negative numbers are accepted as they are (``-1.5``)."""
    values = []
    for token in tokens or []:
        if token.startswith("--"):
            raise typer.BadParameter(f"no such option {token!r}", param_hint=name)
        try:
            values.append(float(token))
        except ValueError:
            raise typer.BadParameter(f"{token!r} is not a number", param_hint=name) from None
    return np.array(values, dtype=np.float64)


def check_temperature(t: float) -> float:
    if not t > 0:  # also catches NaN
        raise typer.BadParameter(f"must be > 0 (inf for uniform), got {t}", param_hint="'--temperature'")
    return t


def _fmt(v: float) -> str:
    return f"{v:.8g}"


@app.command(
    "softmax",
    context_settings={"ignore_unknown_options": True},
    no_args_is_help=True,
)
def softmax_command(
    scores: Annotated[
        list[str], typer.Argument(help="The scores (logits), e.g. 2.0 1.0 0.1; negatives welcome.")
    ],
    temperature: Annotated[
        float,
        typer.Option(
            "--temperature", "-t", help="Divide the scores by T > 0 first: T < 1 sharpens, T > 1 flattens."
        ),
    ] = 1.0,
    log: Annotated[
        bool, typer.Option("--log", help="Print log-probabilities (log_softmax) instead.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Show the computation step by step: max shift, exponentials, sum, division."
        ),
    ] = False,
) -> None:
    """Print softmax(scores / T): probabilities that sum to 1.

    Example: luce softmax 2.0 1.0 0.1 --explain
    """
    x = parse_scores(scores)
    t = check_temperature(temperature)
    values = log_softmax(x, temperature=t) if log else softmax(x, temperature=t)
    if not explain:
        typer.echo(" ".join(_fmt(v) for v in values.tolist()))
        return
    _explain(x, t, log)


def _explain(x: np.ndarray, t: float, log: bool) -> None:
    from rich.table import Table

    out = console()
    with np.errstate(all="ignore"):
        m = float(np.max(x))
        m_safe = m if math.isfinite(m) else 0.0
        shifted = x - m_safe
        scaled = shifted / t if math.isfinite(t) else np.where(np.isfinite(x), 0.0, shifted)
        e = np.exp(scaled)
        total = math.fsum(e.tolist())
    p = softmax(x, temperature=t)
    title = "softmax(x)" if t == 1 else f"softmax(x / T), T = {t:g}"
    table = Table(title=f"{title}, step by step", title_justify="left", show_footer=True)
    table.add_column("i", justify="right", footer="")
    table.add_column("x", justify="right", footer="")
    table.add_column("x − max", justify="right", footer="")
    if t != 1:
        table.add_column("(x − max) / T", justify="right", footer="")
    table.add_column("exp(·)", justify="right", footer=f"sum = {_fmt(total)}")
    table.add_column("p = exp / sum", justify="right", footer=f"Σp = {_fmt(math.fsum(p.tolist()))}")
    if log:
        table.add_column("log p", justify="right", footer="")
    logp = log_softmax(x, temperature=t)
    for i in range(x.size):
        row = [str(i), _fmt(x[i]), _fmt(shifted[i])]
        if t != 1:
            row.append(_fmt(scaled[i]))
        row += [_fmt(e[i]), _fmt(p[i])]
        if log:
            row.append(_fmt(logp[i]))
        table.add_row(*row)
    out.print(table)
    out.print(
        f"1. max(x) = {_fmt(m)} is subtracted from every score: softmax does not change when all scores"
    )
    out.print("   shift together, and now the largest exponent is exp(0) = 1, so nothing can overflow.")
    step = 2
    if t != 1:
        out.print(f"{step}. The shifted scores are divided by the temperature T = {t:g}.")
        step += 1
    out.print(f"{step}. Each is exponentiated; the exponentials add up to {_fmt(total)}.")
    out.print(f"{step + 1}. Each exponential is divided by that sum: the probabilities sum to 1 "
              f"(here {_fmt(math.fsum(p.tolist()))}).")  # fmt: skip
    if log:
        out.print(f"{step + 2}. log p = (x − max) / T − log(sum), computed without forming p (log_softmax).")
    if not np.isfinite(x).all():
        out.print("Note: infinite or NaN scores follow luce's edge rules (docs/conventions.md).")
