"""Plots: valid PNG files, and figures whose plotted data equal independent computations."""

import subprocess
import sys

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
    ],
    ids=["one-score", "inf", "temperature", "empty-loss", "start", "label", "length", "bins", "folder"],
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
