"""The pictures, as PNG files: the teaching figures (temperature, activations, plain share versus
softmax, softmax to hardmax, cross-entropy) and the model figures (loss curve, confusion matrix,
reliability diagram).

Figures are built with Matplotlib's object-oriented API on the Agg canvas (``matplotlib.figure.Figure``
without pyplot): no GUI backend is touched, no global state is changed, and it works on headless
machines. Each ``plot_*`` function writes one PNG atomically and returns its path; matplotlib is imported
on first use, never by ``import luce``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .functional import hardmax, sigmoid, softmax
from .io._atomic import atomic_write_bytes
from .losses import cross_entropy
from .metrics import expected_calibration_error, reliability_curve

__all__ = [
    "plot_activations",
    "plot_confusion_matrix",
    "plot_cross_entropy",
    "plot_hardmax",
    "plot_loss_curve",
    "plot_proportion",
    "plot_reliability_diagram",
    "plot_temperature",
]

_DPI = 120
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _write(fig, path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": "luce"})
    return atomic_write_bytes(os.fspath(path), buffer.getvalue())


def _check_scores(scores):
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"scores must be a list of at least 2 numbers, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("scores must be finite numbers")
    return x


# --------------------------------------------------------------------------------------------------
# Teaching figures
# --------------------------------------------------------------------------------------------------


def _temperature_figure(scores, temperatures):
    x = _check_scores(scores)
    if temperatures is None:
        temperatures = np.geomspace(0.05, 50.0, 400)
    t = np.asarray(temperatures, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError("temperatures must be at least 2 finite numbers > 0")
    t = np.sort(t)
    probs = softmax(x[None, :] / t[:, None], axis=-1)  # (n_temperatures, n_scores)
    fig = _figure(11, 4.4)
    left, right = fig.subplots(1, 2, width_ratios=[1.5, 1])
    for i, xi in enumerate(x):
        label = f"x = {xi:g}" if i < 10 else None
        left.plot(t, probs[:, i], color=_COLORS[i % len(_COLORS)], lw=2, label=label)
    left.set_xscale("log")
    left.axvline(1.0, color="0.5", ls=":", lw=1)
    left.axhline(1.0 / x.size, color="0.5", ls="--", lw=1)
    left.annotate("uniform 1/n", (t[0], 1.0 / x.size), xytext=(4, 4), textcoords="offset points",
                  ha="left", color="0.4", fontsize=8)  # fmt: skip
    left.set_xlabel("temperature T (log scale)")
    left.set_ylabel("softmax(x / T)")
    left.set_ylim(-0.02, 1.02)
    left.set_title("Low T sharpens towards hardmax, high T flattens towards uniform")
    left.legend(loc="center right", fontsize=8, frameon=False)
    shown = [0.25, 1.0, 4.0]
    width = 0.8 / len(shown)
    positions = np.arange(x.size)
    for j, tj in enumerate(shown):
        p = softmax(x, temperature=tj)
        right.bar(positions + (j - 1) * width, p, width, label=f"T = {tj:g}", color=_COLORS[j], alpha=0.85)
    right.set_xticks(positions, [f"{xi:g}" for xi in x], rotation=0 if x.size <= 10 else 90)
    right.set_xlabel("score x")
    right.set_ylabel("probability")
    right.set_ylim(0, 1)
    right.set_title("Same scores, three temperatures")
    right.legend(fontsize=8, frameon=False)
    fig.suptitle(f"Softmax temperature for scores {', '.join(f'{v:g}' for v in x)}", fontweight="bold")
    return fig


def plot_temperature(scores=(2.0, 1.0, 0.1), path="softmax-temperature.png", *, temperatures=None) -> Path:
    """Plot ``softmax(scores / T)`` over a range of temperatures ``T`` and write it as a PNG.

    Left: each probability as a function of ``T`` (log scale) — low ``T`` sharpens the distribution
    towards :func:`luce.hardmax`, high ``T`` flattens it towards uniform. Right: the distribution at
    ``T = 0.25, 1, 4`` as grouped bars.

    Parameters
    ----------
    scores : sequence of float, default (2.0, 1.0, 0.1)
        At least two finite scores (logits).
    path : str or os.PathLike, default "softmax-temperature.png"
    temperatures : sequence of float > 0, optional
        The temperatures on the x-axis; default 400 points from 0.05 to 50, log-spaced.

    Returns
    -------
    pathlib.Path
    """
    return _write(_temperature_figure(scores, temperatures), path)


def _activations_figure():
    z = np.linspace(-4.0, 4.0, 401)
    fig = _figure(14, 4.4)
    a, b, c = fig.subplots(1, 3)
    a.plot(z, sigmoid(z), lw=2, label="sigmoid  1/(1+e^-z)", color=_COLORS[0])
    a.plot(z, np.tanh(z), lw=2, label="tanh", color=_COLORS[1])
    a.plot(z, np.maximum(z, 0.0), lw=2, label="ReLU  max(z, 0)", color=_COLORS[2])
    a.axhline(0, color="0.7", lw=0.8)
    a.axvline(0, color="0.7", lw=0.8)
    a.set_ylim(-1.2, 2.5)
    a.set_xlabel("z")
    a.set_title("Elementwise: each output sees one input")
    a.legend(fontsize=8, frameon=False, loc="upper left")

    two = np.stack([z, np.zeros_like(z)], axis=-1)  # scores [z, 0]
    for j, t in enumerate([0.5, 1.0, 2.0]):
        b.plot(
            z, softmax(two, temperature=t)[:, 0], lw=2, color=_COLORS[j], label=f"softmax([z, 0])₀, T = {t:g}"
        )
    b.plot(z, sigmoid(z), color="black", ls=(0, (2, 3)), lw=1.5, label="sigmoid(z): the same as T = 1")
    b.plot(
        z, hardmax(two)[:, 0], color=_COLORS[3], lw=2, drawstyle="steps-mid", label="hardmax([z, 0])₀: T → 0"
    )
    b.set_xlabel("z")
    b.set_ylim(-0.05, 1.05)
    b.set_title("Two classes: softmax is the sigmoid")
    b.legend(fontsize=7.5, frameon=False, loc="upper left")

    x = np.array([2.0, 1.0, 0.1])
    outs = {
        "softmax (sums to 1)": softmax(x),
        "hardmax (one-hot)": hardmax(x),
        "sigmoid (each on its own)": sigmoid(x),
    }
    positions = np.arange(x.size)
    width = 0.8 / len(outs)
    for j, (name, values) in enumerate(outs.items()):
        c.bar(positions + (j - 1) * width, values, width, color=_COLORS[j + 4], alpha=0.9,
              label=f"{name}: Σ = {values.sum():.2f}")  # fmt: skip
    c.set_xticks(positions, [f"x = {v:g}" for v in x])
    c.set_ylim(0, 1.3)
    c.set_title("On the scores 2.0, 1.0, 0.1")
    c.legend(fontsize=8, frameon=False, loc="upper right")
    fig.suptitle("Softmax beside sigmoid, tanh, ReLU and hardmax", fontweight="bold")
    return fig


def plot_activations(path="activations.png") -> Path:
    """Plot softmax beside sigmoid, tanh, ReLU and hardmax and write it as a PNG.

    Three panels: the elementwise activations (sigmoid, tanh, ReLU); the two-class softmax
    ``softmax([z, 0])_0`` at three temperatures, which is exactly ``sigmoid(z)`` at ``T = 1`` and
    tends to ``hardmax`` as ``T → 0``; and the three normalisations applied to the scores
    ``[2.0, 1.0, 0.1]`` with their sums (softmax and hardmax sum to one, sigmoid does not).

    Parameters
    ----------
    path : str or os.PathLike, default "activations.png"

    Returns
    -------
    pathlib.Path
    """
    return _write(_activations_figure(), path)


def _scores_text(x) -> str:
    return ", ".join(f"{v:g}" for v in x)


def _check_index(index, n, name):
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n:
        raise ValueError(f"{name} must be an index from 0 to {n - 1}, got {index!r}")
    return int(index)


def _probability_text(v: float) -> str:
    """Three decimals, except near 0 and 1, where softmax never arrives but rounding would say it does."""
    if v in (0.0, 1.0) or 1e-3 <= v <= 1 - 1e-3:
        return f"{v:.3g}" if v in (0.0, 1.0) else f"{v:.3f}"
    return f"{v:.1e}" if v < 0.5 else f"1 − {1 - v:.1e}"


def _signed(v: float) -> str:
    return f"{v:+.3f}".replace("-", "−")  # the typographic minus, as on the axes


def _label_bars(ax, bars, values, fontsize=8):
    for bar, v in zip(bars, values, strict=True):
        top = (bar.get_x() + bar.get_width() / 2, bar.get_height())
        ax.annotate(_probability_text(v), top, xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=fontsize)  # fmt: skip


def _proportion_figure(scores, index):
    x = _check_scores(scores)
    if (x < 0).any() or x.sum() <= 0:
        raise ValueError(
            "scores must be non-negative with a positive sum (the plain share x / Σx needs them)"
        )
    i = int(np.argmax(x)) if index is None else _check_index(index, x.size, "index")
    rest = x.sum() - x[i]
    s = np.linspace(0.0, max(x[i] + 3.0, 2.0 * x[i]), 301)
    grown = np.repeat(x[None, :], s.size, axis=0)
    grown[:, i] = s  # one score moves, the others stay
    share = s / (s + rest)
    soft = softmax(grown)[:, i]
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2, width_ratios=[1.4, 1])
    left.plot(s, soft, lw=2, color=_COLORS[0], label=f"softmax: exp(x_{i}) / Σ exp(x)")
    left.plot(s, share, lw=2, color=_COLORS[1], label=f"plain share: x_{i} / Σx")
    marked = []
    for at, marker in ((x[i], "o"), (x[i] + 1.0, "s")):
        bumped = x.copy()
        bumped[i] = at
        # Both curves rise: softmax's label goes above-left of its point, the share's below-right.
        points = [
            (softmax(bumped)[i], _COLORS[0], (-6, 6), "right"),
            (at / bumped.sum(), _COLORS[1], (6, -14), "left"),
        ]
        marked.append([value for value, *_ in points])
        for value, color, offset, ha in points:
            left.plot([at], [value], marker=marker, color=color, ms=7, zorder=3)
            left.annotate(f"{value:.3f}", (at, value), xytext=offset, textcoords="offset points",
                          ha=ha, color=color, fontsize=9)  # fmt: skip
    (soft_before, share_before), (soft_after, share_after) = marked
    left.text(0.03, 0.96, f"x_{i} + 1 moves softmax by {soft_after - soft_before:+.3f},\n"
              f"the plain share by {share_after - share_before:+.3f}", transform=left.transAxes,
              va="top", fontsize=9, bbox={"facecolor": "white", "edgecolor": "0.7"})  # fmt: skip
    left.axvline(x[i], color="0.6", ls=":", lw=1)
    left.axvline(x[i] + 1.0, color="0.6", ls=":", lw=1)
    others = _scores_text(np.delete(x, i))
    left.set_xlabel(f"score x_{i} (the other scores stay at {others})")
    left.set_ylabel(f"output for x_{i}")
    left.set_ylim(-0.02, 1.08)
    left.set_title(f"Growing one score: circles at x_{i} = {x[i]:g}, squares at x_{i} = {x[i] + 1:g}")
    left.legend(loc="lower right", fontsize=9, frameon=False)
    left.grid(alpha=0.3)
    positions = np.arange(x.size)
    width = 0.38
    for j, (name, values) in enumerate((("plain share", x / x.sum()), ("softmax", softmax(x)))):
        bars = right.bar(positions + (j - 0.5) * width, values, width, label=name,
                         color=_COLORS[1 - j], alpha=0.9)  # fmt: skip
        _label_bars(right, bars, values)
    right.set_xticks(
        positions, [f"x_{j} = {v:g}" for j, v in enumerate(x)], rotation=0 if x.size <= 6 else 90
    )
    right.set_ylabel("output")
    right.set_ylim(0, 1.08)
    right.set_title(f"Scores {_scores_text(x)}: each output")
    right.legend(loc="upper left", fontsize=9, frameon=False)
    fig.suptitle("Plain share x / Σx versus softmax exp(x) / Σ exp(x)", fontweight="bold")
    return fig


def plot_proportion(scores=(1.0, 1.0, 3.0), path="softmax-vs-share.png", *, index=None) -> Path:
    """Plot the plain share ``x_i / Σx`` beside ``softmax(x)_i`` and write it as a PNG.

    Left: both outputs for score ``i`` as that score grows from 0 while the others stay, with the
    example's values marked at ``x_i`` and ``x_i + 1`` (for ``(1, 1, 3)``: 0.6 against 0.787, then
    0.667 against 0.909). Right: every output of the example, as grouped bars.

    Parameters
    ----------
    scores : sequence of float, default (1.0, 1.0, 3.0)
        At least two finite, non-negative scores with a positive sum (the plain share needs them).
    path : str or os.PathLike, default "softmax-vs-share.png"
    index : int, optional
        The score that grows; default the largest.

    Returns
    -------
    pathlib.Path
    """
    return _write(_proportion_figure(scores, index), path)


_LIMIT_TEMPERATURES = (5.0, 1.0, 0.5, 0.2, 0.05)


def _hardmax_figure(scores, temperatures):
    x = _check_scores(scores)
    t = np.asarray(_LIMIT_TEMPERATURES if temperatures is None else temperatures, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or t.size > 8 or not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError("temperatures must be 1 to 8 finite numbers > 0")
    t = np.sort(t)[::-1]  # from flat to sharp, left to right
    fig = _figure(2.3 * (t.size + 1) + 0.8, 3.9)
    axes = fig.subplots(1, t.size + 1, sharey=True)
    positions = np.arange(x.size)
    ticks = [f"{v:g}" for v in x]
    panels = [(f"T = {tj:g}", softmax(x, temperature=tj), _COLORS[0]) for tj in t]
    panels.append(("hardmax (T → 0)", hardmax(x), _COLORS[3]))
    for ax, (title, values, color) in zip(axes, panels, strict=True):
        bars = ax.bar(positions, values, 0.7, color=color, alpha=0.9)
        if x.size <= 6:
            _label_bars(ax, bars, values, fontsize=7.5)
        ax.set_xticks(positions, ticks, rotation=0 if x.size <= 6 else 90, fontsize=8)
        ax.set_xlabel("score x")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1.12)
    axes[0].set_ylabel("softmax(x / T)")
    fig.suptitle(f"Scores {_scores_text(x)}: as T → 0, softmax(x / T) tends to hardmax, the one-hot of the "
                 "argmax\nSoftmax never gets there and keeps how sure it is; hardmax keeps only the winner "
                 "and has no useful gradient", fontweight="bold")  # fmt: skip
    return fig


def plot_hardmax(scores=(2.0, 1.0, 0.1), path="softmax-to-hardmax.png", *, temperatures=None) -> Path:
    """Plot ``softmax(scores / T)`` at falling temperatures beside its limit :func:`luce.hardmax`, as a PNG.

    One panel of bars per temperature (default ``T = 5, 1, 0.5, 0.2, 0.05``, flat to sharp) and a last
    panel with ``hardmax(scores)``, the ``T → 0`` limit: the one-hot of the argmax (ties share).

    Parameters
    ----------
    scores : sequence of float, default (2.0, 1.0, 0.1)
        At least two finite scores.
    path : str or os.PathLike, default "softmax-to-hardmax.png"
    temperatures : sequence of float > 0, optional
        One to eight temperatures, drawn from the largest to the smallest.

    Returns
    -------
    pathlib.Path
    """
    return _write(_hardmax_figure(scores, temperatures), path)


def _cross_entropy_figure(scores, target, other):
    x = _check_scores(scores)
    k = _check_index(target, x.size, "target")
    if other is None:
        other = int(np.argmax(np.where(np.arange(x.size) == k, -np.inf, x)))  # the strongest rival
    j = _check_index(other, x.size, "other")
    if j == k:
        raise ValueError(f"other must differ from target, both are {k}")
    offsets = np.linspace(-6.0, 6.0, 241)
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2)
    for moved, color in ((k, _COLORS[0]), (j, _COLORS[1])):
        rows = np.repeat(x[None, :], offsets.size, axis=0)
        rows[:, moved] = x[moved] + offsets
        loss, grad = cross_entropy(rows, np.full(offsets.size, k), reduction="none", return_grad=True)
        role = "target" if moved == k else "another class"
        left.plot(rows[:, moved], loss, lw=2, color=color, label=f"moving x_{moved} ({role})")
        right.plot(rows[:, moved], grad[:, moved], lw=2, color=color,
                   label=f"∂loss/∂x_{moved} = p_{moved}" + (" − 1" if moved == k else ""))  # fmt: skip
    loss0, grad0 = cross_entropy(x[None, :], [k], return_grad=True)
    for moved, color in ((k, _COLORS[0]), (j, _COLORS[1])):
        left.plot([x[moved]], [loss0], "o", color=color, ms=7, zorder=3)
        right.plot([x[moved]], [grad0[0, moved]], "o", color=color, ms=7, zorder=3)
        right.annotate(_signed(grad0[0, moved]), (x[moved], grad0[0, moved]), xytext=(8, -12),
                       textcoords="offset points", color=color, fontsize=9)  # fmt: skip
    left.set_xlabel("value of the moved score (the others stay at the example)")
    left.set_ylabel(f"cross-entropy loss −log p_{k}")
    left.set_title(f"The loss as one score moves (target class {k})")
    # The example's numbers go in the legend titles: "best" keeps them off the curves.
    left.legend(title=f"at the example: −log p_{k} = {float(loss0):.3f}", title_fontsize=9, loc="best",
                fontsize=9, framealpha=0.9)  # fmt: skip
    left.grid(alpha=0.3)
    right.axhline(0.0, color="0.5", lw=0.8)
    entries = ", ".join(_signed(g) for g in grad0[0]) if x.size <= 6 else "..."
    right.set_xlabel("value of the moved score (the others stay at the example)")
    right.set_ylabel("gradient of the loss")
    right.set_ylim(-1.22, 1.1)  # room for a label under a gradient near −1
    right.set_title(f"Its gradient p − onehot({k}): between −1 and 1")
    right.legend(title=f"at the example: p − onehot({k}) =\n({entries}), sum 0", title_fontsize=9,
                 loc="best", fontsize=9, framealpha=0.9)  # fmt: skip
    right.grid(alpha=0.3)
    fig.suptitle(f"Softmax cross-entropy for scores {_scores_text(x)}, target class {k} (dots: the example)",
                 fontweight="bold")  # fmt: skip
    return fig


def plot_cross_entropy(scores=(2.0, 1.0, 0.1), target=0, path="cross-entropy.png", *, other=None) -> Path:
    """Plot the softmax cross-entropy ``−log p_target`` and its gradient along one score, as a PNG.

    Left: the loss as the target's score moves (it falls towards 0) and as another class's score
    moves (it grows, in the end linearly). Right: the gradients along the same moves, ``p_target − 1``
    and ``p_other``, the entries of ``p − onehot(target)``. Dots mark the example, whose gradient
    for ``(2, 1, 0.1)`` and target 0 is ``(−0.341, 0.242, 0.099)``.

    Parameters
    ----------
    scores : sequence of float, default (2.0, 1.0, 0.1)
        At least two finite scores (logits).
    target : int, default 0
        The true class.
    path : str or os.PathLike, default "cross-entropy.png"
    other : int, optional
        The other score that moves; default the largest score of the other classes.

    Returns
    -------
    pathlib.Path
    """
    return _write(_cross_entropy_figure(scores, target, other), path)


# --------------------------------------------------------------------------------------------------
# Model figures
# --------------------------------------------------------------------------------------------------


def _loss_figure(loss_curve, title, start=1):
    loss = np.asarray(loss_curve, dtype=np.float64).ravel()
    if loss.size == 0:
        raise ValueError("loss_curve is empty; fit the model first")
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    it = np.arange(start, start + loss.size)
    ax.plot(it, loss, lw=2, color=_COLORS[0], marker="o" if loss.size <= 30 else None, ms=3)
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    last = f"{finite[-1]:.4g}" if finite.size else "nan"
    ax.set_title(title or f"Loss curve ({it[-1]} iterations, final loss {last})")
    ax.grid(alpha=0.3)
    return fig


def plot_loss_curve(loss_curve, path="loss-curve.png", *, start=1, title=None) -> Path:
    """Plot a training loss curve (an estimator's ``loss_curve_``) and write it as a PNG.

    Parameters
    ----------
    loss_curve : sequence of float
        Loss after each iteration; the y-axis is logarithmic when it spans more than a factor 20.
    path : str or os.PathLike, default "loss-curve.png"
    start : int, default 1
        The iteration number of the first value: 0 when the curve starts with the loss before the
        first step (``len(loss_curve_) == n_iter_ + 1``), 1 when it holds one value per iteration.
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    return _write(_loss_figure(loss_curve, title, start), path)


def _labels_text(classes):
    return [str(c) for c in np.asarray(classes).tolist()]


def _confusion_figure(y_true, y_pred, classes, title):
    classes = np.asarray(classes)
    names = _labels_text(classes)
    lookup = {v: i for i, v in enumerate(classes.tolist())}
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of the same length, got {y_true.shape} and {y_pred.shape}"
        )
    unknown = sorted({repr(v) for v in [*y_true.tolist(), *y_pred.tolist()] if v not in lookup})
    if unknown:
        raise ValueError(f"labels not in classes: {', '.join(unknown[:5])}")
    k = len(classes)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, ([lookup[v] for v in y_true.tolist()], [lookup[v] for v in y_pred.tolist()]), 1)
    rows = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
    size = min(4.0 + 0.45 * k, 16.0)
    fig = _figure(size + 1.2, size)
    ax = fig.subplots()
    image = ax.imshow(recall, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    color = "white" if recall[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=color, fontsize=8)
    step = max(1, k // 30)
    ticks = np.arange(0, k, step)
    ax.set_xticks(
        ticks, [names[i] for i in ticks], rotation=45 if max(map(len, names)) > 3 else 0, ha="right"
    )
    ax.set_yticks(ticks, [names[i] for i in ticks])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(title or f"Confusion matrix (accuracy {accuracy:.3f}, n = {counts.sum()})")
    return fig, counts


def plot_confusion_matrix(y_true, y_pred, classes, path="confusion-matrix.png", *, title=None) -> Path:
    """Plot the confusion matrix (counts, coloured by the fraction of each true class) as a PNG.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n_samples,)
        True and predicted labels, all from ``classes``.
    classes : array_like, shape (n_classes,)
        Row and column order (an estimator's ``classes_``).
    path : str or os.PathLike, default "confusion-matrix.png"
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    fig, _ = _confusion_figure(y_true, y_pred, classes, title)
    return _write(fig, path)


def _reliability_figure(y_true, proba, classes, n_bins, title):
    curve = reliability_curve(y_true, proba, n_bins, classes=classes)
    ece = expected_calibration_error(y_true, proba, n_bins, classes=classes)
    fig = _figure(6.4, 6.8)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    centers = 0.5 * (curve.edges[:-1] + curve.edges[1:])
    width = 1.0 / n_bins
    filled = curve.counts > 0
    top.bar(
        centers[filled], curve.accuracy[filled], width, color=_COLORS[0], edgecolor="white", label="accuracy"
    )
    acc, conf = curve.accuracy[filled], curve.confidence[filled]
    top.bar(centers[filled], np.abs(conf - acc), width, bottom=np.minimum(acc, conf), facecolor="none",
            edgecolor=_COLORS[3], hatch="///", lw=1, label="gap: |accuracy − confidence|")  # fmt: skip
    top.scatter(centers[filled], conf, marker="_", s=900 / n_bins, color="black", zorder=3,
                label="mean confidence")  # fmt: skip
    top.plot([0, 1], [0, 1], ls="--", color="0.3", lw=1, label="perfectly calibrated")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8, frameon=False)
    top.set_title(title or f"Reliability diagram (ECE = {ece:.4f}, {n_bins} bins)")
    bottom.bar(centers, curve.counts, width, color="0.5", edgecolor="white")
    bottom.set_xlabel("confidence (top-class probability)")
    bottom.set_ylabel("samples")
    return fig, curve, ece


def plot_reliability_diagram(
    y_true, proba, path="reliability-diagram.png", *, classes=None, n_bins=15, title=None
) -> Path:
    """Plot the top-label reliability diagram with its ECE, and the confidence histogram, as a PNG.

    Bars show the accuracy in each confidence bin, hatched bars the gap to the bin's mean confidence,
    the dashed diagonal perfect calibration; see :func:`luce.metrics.reliability_curve`.

    Parameters
    ----------
    y_true : array_like, shape (n_samples,)
        True labels (column indices of ``proba``, or labels from ``classes``).
    proba : array_like, shape (n_samples, n_classes)
    path : str or os.PathLike, default "reliability-diagram.png"
    classes : array_like, shape (n_classes,), optional
    n_bins : int, default 15
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    fig, _, _ = _reliability_figure(y_true, proba, classes, n_bins, title)
    return _write(fig, path)
