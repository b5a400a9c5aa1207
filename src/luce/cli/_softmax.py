"""``luce softmax 2.0 1.0 0.1 [--temperature T] [--log] [--explain]`` and its teaching sections.

``--explain`` shows the computation step by step; ``--boltzmann``, ``--target``, ``--two-class`` and
``--iia`` add the classic arguments (printed by ``_lessons``; walked through in docs/learn.md).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import typer

from ..functional import log_softmax, softmax
from . import _lessons
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


def check_temperature(t: float, name: str = "'--temperature'") -> float:
    if not t > 0:  # also catches NaN
        raise typer.BadParameter(f"must be > 0 (inf for uniform), got {t}", param_hint=name)
    return t


_fmt = _lessons.fmt


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
            "--explain",
            help="Show the computation step by step (max shift, exponentials, sum, division), the plain "
            "share beside softmax and what changing the largest score by 1 does.",
        ),
    ] = False,
    boltzmann: Annotated[
        bool,
        typer.Option(
            "--boltzmann",
            help="Read the numbers as energies E: P = exp(−E/kT) / Z, Z the partition function.",
        ),
    ] = False,
    kt: Annotated[
        float | None, typer.Option("--kT", help="The temperature kT of --boltzmann (default 1).")
    ] = None,
    target: Annotated[
        int | None,
        typer.Option("--target", help="Class index K: add the cross-entropy −log p_K and its gradient."),
    ] = None,
    two_class: Annotated[
        bool, typer.Option("--two-class", help="Show that softmax((z, 0)) is sigmoid(z) for each score z.")
    ] = False,
    iia: Annotated[
        bool,
        typer.Option(
            "--iia",
            help="Luce's choice axiom: remove one option; the ratios of the others do not change.",
        ),
    ] = False,
    remove: Annotated[
        int | None, typer.Option("--remove", help="The option --iia removes (default the last).")
    ] = None,
) -> None:
    """Print softmax(scores / T): probabilities that sum to 1.

    --explain, --boltzmann, --target, --two-class, --iia: the classic explanations (guide: docs/learn.md).

    Try: luce softmax 1 1 3 --explain
    """
    x = parse_scores(scores)
    t = _read_energies(kt, temperature) if boltzmann else check_temperature(temperature)
    if kt is not None and not boltzmann:
        raise typer.BadParameter(
            "only goes with --boltzmann (use --temperature for scores)", param_hint="'--kT'"
        )
    _check_index(target, x.size, "'--target'")
    remove = _check_iia(x, remove) if iia else _not_without_iia(remove)
    lessons = boltzmann or target is not None or two_class or iia
    if lessons and np.isnan(x).any():
        raise typer.BadParameter("NaN has no lesson to teach: give numbers", param_hint="SCORES")
    if not (explain or lessons):
        values = log_softmax(x, temperature=t) if log else softmax(x, temperature=t)
        typer.echo(" ".join(_fmt(v) for v in values.tolist()))
        return
    out = console()
    if boltzmann:
        _lessons.boltzmann(out, x, t)
        x = -x  # from here on the scores are −E, at temperature kT
    if explain:
        _explain(x, t, log)
        _lessons.proportion(out, x, t)
        _lessons.soft_versus_hard(out, x, t)
    elif log:
        out.print("log p = " + " ".join(_fmt(v) for v in log_softmax(x, temperature=t).tolist()))
    if target is not None:
        _lessons.cross_entropy_lesson(out, x, t, target)
    if two_class:
        _lessons.two_class(out, x, t)
    if iia:
        _lessons.iia(out, x, t, remove)


def _read_energies(kt: float | None, temperature: float) -> float:
    if temperature != 1.0:
        raise typer.BadParameter(
            "give kT with --kT when the numbers are energies", param_hint="'--temperature'"
        )
    return 1.0 if kt is None else check_temperature(kt, "'--kT'")


def _check_iia(x: np.ndarray, remove: int | None) -> int:
    """The option --iia removes: at least two must remain, and all must have a probability > 0."""
    if x.size < 3:
        raise typer.BadParameter("--iia needs at least 3 scores (two remain after one is removed)",
                                 param_hint="SCORES")  # fmt: skip
    if not np.isfinite(x).all():
        raise typer.BadParameter("--iia needs finite scores (ratios of zero probabilities are 0/0)",
                                 param_hint="SCORES")  # fmt: skip
    return x.size - 1 if remove is None else _check_index(remove, x.size, "'--remove'")


def _not_without_iia(remove: int | None) -> None:
    if remove is not None:
        raise typer.BadParameter("only goes with --iia", param_hint="'--remove'")


def _check_index(k: int | None, n: int, name: str) -> int | None:
    if k is not None and not 0 <= k < n:
        raise typer.BadParameter(f"must be a class index from 0 to {n - 1}, got {k}", param_hint=name)
    return k


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
