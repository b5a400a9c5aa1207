"""Plots: valid PNG files, and figures whose plotted data equal independent computations."""

import subprocess
import sys

import mpmath
import numpy as np
import pytest
import scipy.special
from matplotlib.image import imread
from sklearn.metrics import confusion_matrix

from luce import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_size=(300, 300)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_temperature(tmp_path):
    path = plots.plot_temperature([2.0, 1.0, 0.1], tmp_path / "t.png")
    assert path == tmp_path / "t.png"
    _assert_png(path)
    fig = plots._temperature_figure([3.0, -1.0, 0.5, 0.0], [0.1, 1.0, 10.0])
    left, right = fig.axes[:2]
    t = np.array([0.1, 1.0, 10.0])
    expected = scipy.special.softmax(np.array([3.0, -1.0, 0.5, 0.0])[None, :] / t[:, None], axis=1)
    for i, line in enumerate(left.get_lines()[:4]):
        np.testing.assert_allclose(line.get_xdata(), t)
        np.testing.assert_allclose(line.get_ydata(), expected[:, i], rtol=1e-14)
    heights = [bar.get_height() for bar in right.patches]
    for j, tj in enumerate([0.25, 1.0, 4.0]):
        np.testing.assert_allclose(
            heights[4 * j : 4 * j + 4],
            scipy.special.softmax(np.array([3.0, -1.0, 0.5, 0.0]) / tj),
            rtol=1e-14,
        )


def test_activations(tmp_path):
    _assert_png(plots.plot_activations(tmp_path / "a.png"), min_size=(300, 1000))
    fig = plots._activations_figure()
    elementwise, two_class, bars = fig.axes[:3]
    sig, tanh, relu = elementwise.get_lines()[:3]
    z = sig.get_xdata()
    np.testing.assert_allclose(sig.get_ydata(), scipy.special.expit(z), rtol=1e-14)
    np.testing.assert_allclose(tanh.get_ydata(), np.tanh(z), rtol=1e-14)
    np.testing.assert_allclose(relu.get_ydata(), np.maximum(z, 0))
    lines = {line.get_label(): line for line in two_class.get_lines()}
    at_one = lines["softmax([z, 0])₀, T = 1"].get_ydata()
    np.testing.assert_allclose(at_one, scipy.special.expit(z), rtol=1e-13)
    hard = lines["hardmax([z, 0])₀: T → 0"].get_ydata()
    np.testing.assert_array_equal(hard, np.where(z > 0, 1.0, np.where(z < 0, 0.0, 0.5)))
    x = np.array([2.0, 1.0, 0.1])
    heights = [p.get_height() for p in bars.patches]
    np.testing.assert_allclose(heights[:3], scipy.special.softmax(x), rtol=1e-14)
    np.testing.assert_allclose(heights[3:6], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(heights[6:9], scipy.special.expit(x), rtol=1e-14)


def test_proportion(tmp_path):
    _assert_png(plots.plot_proportion((1.0, 1.0, 3.0), tmp_path / "p.png"), min_size=(300, 1000))
    fig = plots._proportion_figure((1.0, 1.0, 3.0), None)
    left, right = fig.axes[:2]
    lines = {line.get_label(): line for line in left.get_lines()}
    soft, share = lines["softmax: exp(x_2) / Σ exp(x)"], lines["plain share: x_2 / Σx"]
    s = soft.get_xdata()
    assert s[0] == 0 and s[-1] >= 4
    grown = np.column_stack([np.ones_like(s), np.ones_like(s), s])
    np.testing.assert_allclose(soft.get_ydata(), scipy.special.softmax(grown, axis=1)[:, 2], rtol=1e-14)
    np.testing.assert_allclose(share.get_ydata(), s / (s + 2.0), rtol=1e-15)
    with mpmath.workdps(30):
        e = mpmath.e
        at_3, at_4 = float(e**3 / (2 * e + e**3)), float(e**4 / (2 * e + e**4))
    marks = {line.get_xdata()[0]: [] for line in left.get_lines() if line.get_label().startswith("_")}
    for line in left.get_lines():
        if line.get_label().startswith("_") and len(line.get_xdata()) == 1:
            marks[line.get_xdata()[0]].append(line.get_ydata()[0])
    np.testing.assert_allclose(sorted(marks[3.0]), [0.6, at_3], rtol=1e-14)
    np.testing.assert_allclose(sorted(marks[4.0]), [4 / 6, at_4], rtol=1e-14)
    texts = [t.get_text() for t in left.texts]
    assert {"0.600", f"{at_3:.3f}", "0.787", "0.667", f"{at_4:.3f}"} <= set(texts)
    assert f"x_2 + 1 moves softmax by {at_4 - at_3:+.3f},\nthe plain share by {4 / 6 - 0.6:+.3f}" in texts
    heights = [bar.get_height() for bar in right.patches]
    np.testing.assert_allclose(heights[:3], [0.2, 0.2, 0.6], rtol=1e-15)
    np.testing.assert_allclose(heights[3:], scipy.special.softmax([1.0, 1.0, 3.0]), rtol=1e-14)
    assert left.get_xlabel().startswith("score x_2") and left.get_ylabel() == "output for x_2"
    other = plots._proportion_figure([0.0, 5.0, 2.0], 2).axes[0]
    assert other.get_xlabel() == "score x_2 (the other scores stay at 0, 5)"


def test_hardmax(tmp_path):
    _assert_png(plots.plot_hardmax((2.0, 1.0, 0.1), tmp_path / "h.png"), min_size=(300, 1000))
    x = np.array([2.0, 1.0, 0.1])
    fig = plots._hardmax_figure(x, None)
    panels = fig.axes
    assert [ax.get_title() for ax in panels] == [
        "T = 5", "T = 1", "T = 0.5", "T = 0.2", "T = 0.05", "hardmax (T → 0)"
    ]  # fmt: skip
    for ax, t in zip(panels[:-1], [5.0, 1.0, 0.5, 0.2, 0.05], strict=True):
        heights = [bar.get_height() for bar in ax.patches]
        np.testing.assert_allclose(heights, scipy.special.softmax(x / t), rtol=1e-13)
    assert [bar.get_height() for bar in panels[-1].patches] == [1.0, 0.0, 0.0]
    coldest = scipy.special.softmax(x / 0.05)
    labels = [t.get_text() for t in panels[-2].texts]
    assert labels == [f"1 − {1 - coldest[0]:.1e}", f"{coldest[1]:.1e}", f"{coldest[2]:.1e}"]
    assert [t.get_text() for t in panels[-1].texts] == ["1", "0", "0"]
    assert [t.get_text() for t in panels[1].texts] == ["0.659", "0.242", "0.099"]
    ties = plots._hardmax_figure([1.0, 1.0, 0.0], [2.0])
    assert [bar.get_height() for bar in ties.axes[-1].patches] == [0.5, 0.5, 0.0]


def _ce(z, k):
    return -scipy.special.log_softmax(z)[k]


def _fd_grad(z, k, h=1e-4):
    """Fourth-order central differences of the SciPy cross-entropy."""
    grad = np.empty_like(z)
    for i in range(z.size):
        e = np.zeros_like(z)
        e[i] = h
        grad[i] = (-_ce(z + 2 * e, k) + 8 * _ce(z + e, k) - 8 * _ce(z - e, k) + _ce(z - 2 * e, k)) / (12 * h)
    return grad


@pytest.mark.parametrize(
    ("scores", "target", "other"), [((2.0, 1.0, 0.1), 0, 1), ((0.5, 3.0, -1.0, 2.0), 2, 1)]
)
def test_cross_entropy(tmp_path, scores, target, other):
    _assert_png(plots.plot_cross_entropy(scores, target, tmp_path / "c.png"), min_size=(300, 1000))
    x = np.array(scores)
    fig = plots._cross_entropy_figure(scores, target, None)
    left, right = fig.axes[:2]
    named = lambda ax: [line for line in ax.get_lines() if not line.get_label().startswith("_")]  # noqa: E731
    for loss_line, grad_line, moved in zip(named(left), named(right), (target, other), strict=True):
        z = loss_line.get_xdata()
        np.testing.assert_array_equal(z, grad_line.get_xdata())
        assert z[0] == pytest.approx(x[moved] - 6) and z[-1] == pytest.approx(x[moved] + 6)
        rows = np.repeat(x[None, :], z.size, axis=0)
        rows[:, moved] = z
        np.testing.assert_allclose(loss_line.get_ydata(), [_ce(r, target) for r in rows], rtol=1e-12)
        picked = slice(None, None, 40)
        fd = [_fd_grad(r, target)[moved] for r in rows[picked]]
        np.testing.assert_allclose(grad_line.get_ydata()[picked], fd, rtol=1e-7, atol=1e-10)
    fd0 = _fd_grad(x, target)
    entries = ", ".join(f"{g:+.3f}".replace("-", "−") for g in fd0)
    assert right.get_legend().get_title().get_text() == (
        f"at the example: p − onehot({target}) =\n({entries}), sum 0"
    )
    assert (
        left.get_legend().get_title().get_text() == f"at the example: −log p_{target} = {_ce(x, target):.3f}"
    )


def test_loss_curve(tmp_path):
    curve = [2.3, 1.1, 0.5, 0.3, 0.29]
    _assert_png(plots.plot_loss_curve(curve, tmp_path / "l.png"))
    fig = plots._loss_figure(curve, None)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(line.get_ydata(), curve)
    assert "final loss 0.29" in fig.axes[0].get_title()
    assert fig.axes[0].get_yscale() == "linear"
    assert plots._loss_figure(np.geomspace(100, 0.1, 50), None).axes[0].get_yscale() == "log"
    from_zero = plots._loss_figure(curve, None, start=0).axes[0]
    np.testing.assert_array_equal(from_zero.get_lines()[0].get_xdata(), [0, 1, 2, 3, 4])
    assert "(4 iterations," in from_zero.get_title()


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([3, 1, 2])])
def test_confusion_matrix(tmp_path, rng, labels):
    y_true = rng.choice(labels, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.choice(labels, size=200))
    _assert_png(plots.plot_confusion_matrix(y_true, y_pred, labels, tmp_path / "c.png"))
    fig, counts = plots._confusion_figure(y_true, y_pred, labels, None)
    np.testing.assert_array_equal(counts, confusion_matrix(y_true, y_pred, labels=labels))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {str(c) for c in counts.ravel() if c} == texts
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [str(v) for v in labels]
    accuracy = np.mean(y_true == y_pred)
    assert f"accuracy {accuracy:.3f}" in fig.axes[0].get_title()


def test_confusion_matrix_many_classes(tmp_path, rng):
    labels = np.arange(40)
    y = rng.choice(labels, size=500)
    _assert_png(plots.plot_confusion_matrix(y, y, labels, tmp_path / "c.png"))


def test_reliability_diagram(tmp_path, rng):
    proba = scipy.special.softmax(2 * rng.normal(size=(400, 3)), axis=1)
    y = rng.integers(0, 3, size=400)
    _assert_png(plots.plot_reliability_diagram(y, proba, tmp_path / "r.png", n_bins=10))
    fig, _, ece = plots._reliability_figure(y, proba, None, 10, None)
    conf, top = proba.max(axis=1), proba.argmax(axis=1)
    bins = np.minimum(np.ceil(conf * 10).astype(int) - 1, 9)
    expected = [np.mean(top[bins == b] == y[bins == b]) for b in range(10) if np.any(bins == b)]
    heights = [p.get_height() for p in fig.axes[0].patches[: len(expected)]]
    np.testing.assert_allclose(heights, expected, rtol=1e-14)
    assert f"ECE = {ece:.4f}" in fig.axes[0].get_title()
    counts = [p.get_height() for p in fig.axes[1].patches]
    np.testing.assert_array_equal(counts, np.bincount(bins, minlength=10))


def test_string_labels_in_reliability_diagram(tmp_path, rng):
    proba = scipy.special.softmax(rng.normal(size=(50, 2)), axis=1)
    names = np.array(["no", "yes"])
    y = names[rng.integers(0, 2, size=50)]
    _assert_png(plots.plot_reliability_diagram(y, proba, tmp_path / "r.png", classes=names))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: plots.plot_temperature([1.0], p), ValueError, "at least 2 numbers"),
        (lambda p: plots.plot_temperature([1.0, np.inf], p), ValueError, "finite"),
        (lambda p: plots.plot_temperature([1.0, 2.0], p, temperatures=[0.0, 1.0]), ValueError, "> 0"),
        (lambda p: plots.plot_loss_curve([], p), ValueError, "loss_curve is empty"),
        (lambda p: plots.plot_loss_curve([1.0], p, start=-1), ValueError, "start must be a non-negative"),
        (
            lambda p: plots.plot_confusion_matrix(["a"], ["z"], ["a", "b"], p),
            ValueError,
            "not in classes: 'z'",
        ),
        (lambda p: plots.plot_confusion_matrix(["a"], ["a", "b"], ["a", "b"], p), ValueError, "same length"),
        (lambda p: plots.plot_reliability_diagram([0], [[0.5, 0.5]], p, n_bins=0), ValueError, "n_bins"),
        (
            lambda p: plots.plot_activations(p.parent / "missing" / "a.png"),
            FileNotFoundError,
            "does not exist",
        ),
        (lambda p: plots.plot_proportion([1.0, -1.0, 3.0], p), ValueError, "non-negative"),
        (lambda p: plots.plot_proportion([0.0, 0.0], p), ValueError, "positive sum"),
        (
            lambda p: plots.plot_proportion([1.0, 2.0], p, index=2),
            ValueError,
            "index must be an index from 0 to 1",
        ),
        (lambda p: plots.plot_hardmax([1.0, 2.0], p, temperatures=[1.0, -1.0]), ValueError, "> 0"),
        (lambda p: plots.plot_cross_entropy([1.0, 2.0], 2, p), ValueError, "target must be an index"),
        (lambda p: plots.plot_cross_entropy([1.0, 2.0], 0, p, other=5), ValueError, "other must be an index"),
        (lambda p: plots.plot_cross_entropy([1.0, 2.0], 0, p, other=0), ValueError, "must differ"),
    ],
    ids=[
        "one-score",
        "inf",
        "temperature",
        "empty-loss",
        "start",
        "label",
        "length",
        "bins",
        "folder",
        "share-negative",
        "share-zero",
        "index",
        "limit-T",
        "target",
        "other",
        "other-is-target",
    ],
)
def test_bad_input(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_no_pyplot_and_no_import_cost():
    code = (
        "import sys, os, tempfile, luce; assert 'matplotlib' not in sys.modules; from luce import plots;"
        "plots.plot_activations(os.path.join(tempfile.mkdtemp(), 'a.png'));"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
