"""The pictures: temperature, activations, loss curve, confusion matrix, reliability diagram (PNG files).

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
from .metrics import expected_calibration_error, reliability_curve

__all__ = [
    "plot_activations",
    "plot_confusion_matrix",
    "plot_loss_curve",
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
