"""The teaching sections of ``luce softmax`` (--explain, --boltzmann, --target, --two-class, --iia).

Every printed number is checked against a reference that does not use luce: mpmath for the worked
examples, the direct formulas for the Boltzmann distribution and the plain share, SciPy's expit for the
sigmoid, and finite differences of a SciPy loss for the cross-entropy gradient.
"""

import math
import re
import shlex
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.special

from cli_runner import fails, run

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def table(out, title):
    """The body rows of the Rich table whose title line starts with ``title``, as lists of cell texts."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows, seen_header = [], False
    for line in lines[start + 1 :]:
        if line.startswith(("└", "├")):  # the end, or the footer
            break
        if line.startswith("┡"):
            seen_header = True
        elif seen_header and line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def column(rows, j):
    return np.array([float(row[j]) for row in rows])


def value_after(out, text):
    return float(re.search(re.escape(text) + rf"\s*({NUMBER})", out).group(1))


# --------------------------------------------------------------------------------------------------
# --explain: plain share versus softmax
# --------------------------------------------------------------------------------------------------


def test_explain_compares_the_plain_share_with_softmax():
    out = run("softmax", "1", "1", "3", "--explain").stdout
    with mpmath.workdps(30):
        e = mpmath.e
        softmax_top = e**3 / (e + e + e**3)  # the worked example: ≈ 0.787
        bumped_top = e**4 / (e + e + e**4)
    assert float(softmax_top) == pytest.approx(0.787, abs=5e-4)
    rows = table(out, "Plain share versus softmax")
    assert [row[0] for row in rows] == ["x_0 = 1", "x_1 = 1", "x_2 = 3"]
    np.testing.assert_allclose(column(rows, 1), [1 / 5, 1 / 5, 3 / 5], rtol=1e-7)
    np.testing.assert_allclose(
        column(rows, 2), [float(e / (e + e + e**3))] * 2 + [float(softmax_top)], rtol=1e-7
    )
    assert "share:   3 / (1 + 1 + 3) = 0.6" in out
    assert value_after(out, "softmax: exp(3) / (exp(1) + exp(1) + exp(3)) =") == pytest.approx(
        float(softmax_top), rel=1e-7
    )
    (share, soft) = table(out, "Changing the largest score by 1: x_2 = 3 → 4")
    assert share[0] == "plain share"
    np.testing.assert_allclose([float(v) for v in share[1:]], [3 / 5, 4 / 6, 4 / 6 - 3 / 5], rtol=1e-7)
    expected = [float(softmax_top), float(bumped_top), float(bumped_top - softmax_top)]
    np.testing.assert_allclose([float(v) for v in soft[1:]], expected, rtol=1e-7)
    assert soft[3].startswith("+") and float(soft[3]) > float(share[3])  # softmax moves further
    assert value_after(out, "by exp(1/T) =") == pytest.approx(math.e, rel=1e-7)
    assert "gives the largest score x_2 = 3 more than its plain share (0.78698604 against 0.6)" in out


def test_explain_says_when_softmax_gives_the_largest_less_than_its_share():
    out = run("softmax", "0.1", "0.2", "--explain").stdout
    rows = table(out, "Plain share versus softmax")
    np.testing.assert_allclose(column(rows, 1), [1 / 3, 2 / 3], rtol=1e-7)
    np.testing.assert_allclose(column(rows, 2), scipy.special.softmax([0.1, 0.2]), rtol=1e-7)
    assert "gives the largest score x_1 = 0.2 less than its plain share" in out


def test_explain_without_shares_for_negative_scores_and_with_temperature():
    out = run("softmax", "3", "-1", "0", "-t", "2", "--explain").stdout
    assert "Plain share versus softmax" not in out
    assert "needs non-negative scores" in out
    ((name, before, after, change),) = table(out, "Changing the largest score by 1: x_0 = 3 → 4")
    assert name == "softmax (T = 2)"
    p = scipy.special.softmax(np.array([3.0, -1.0, 0.0]) / 2)
    q = scipy.special.softmax(np.array([4.0, -1.0, 0.0]) / 2)
    np.testing.assert_allclose(
        [float(before), float(after), float(change)], [p[0], q[0], q[0] - p[0]], rtol=1e-7
    )
    assert value_after(out, "by exp(1/T) =") == pytest.approx(math.exp(0.5), rel=1e-7)


def test_explain_shares_at_a_temperature():
    out = run("softmax", "1", "1", "3", "-t", "2", "--explain").stdout
    rows = table(out, "Plain share versus softmax")
    np.testing.assert_allclose(column(rows, 1), [0.2, 0.2, 0.6], rtol=1e-7)
    np.testing.assert_allclose(
        column(rows, 2), scipy.special.softmax(np.array([1.0, 1.0, 3.0]) / 2), rtol=1e-7
    )
    assert "softmax: exp(3/2) / (exp(1/2) + exp(1/2) + exp(3/2)) =" in out


@pytest.mark.parametrize(
    ("scores", "t", "largest", "hard"),
    [(["1", "1", "3"], 1.0, "the largest score is x_2", "(0, 0, 1)"),
     (["3", "3", "1"], 2.0, "the largest scores are x_0, x_1", "(0.5, 0.5, 0)")],
    ids=["one-winner", "tie"],
)  # fmt: skip
def test_explain_shows_the_hardmax_limit(scores, t, largest, hard):
    out = run("softmax", *scores, "-t", t, "--explain").stdout
    assert f"Soft max versus max: {largest}, and hardmax(x) = {hard} (ties share);" in out
    shown = re.search(rf"softmax at T = {t / 10:g} is \(([^)]*)\)", out).group(1)
    cold = scipy.special.softmax(np.array(scores, dtype=float) / (t / 10))
    np.testing.assert_allclose([float(v) for v in shown.split(", ")], cold, rtol=1e-7)


# --------------------------------------------------------------------------------------------------
# --boltzmann
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kt", [0.5, 1.0, 3.0])
def test_boltzmann_against_the_direct_formula(kt):
    energies = np.array([0.0, 1.0, 2.0, -0.5])
    args = ["softmax", *map(str, energies), "--boltzmann"] + ([] if kt == 1.0 else ["--kT", str(kt)])
    out = run(*args).stdout
    weights = np.exp(-energies / kt)  # the Boltzmann factors, computed directly
    z = weights.sum()
    rows = table(out, f"Boltzmann distribution, kT = {kt:g}")
    np.testing.assert_allclose(column(rows, 1), energies)
    np.testing.assert_allclose(column(rows, 2), -energies / kt, rtol=1e-7)
    np.testing.assert_allclose(column(rows, 3), weights, rtol=1e-7)
    np.testing.assert_allclose(column(rows, 4), weights / z, rtol=1e-7)
    assert value_after(out, "Z = Σ exp(−E/kT) =") == pytest.approx(z, rel=1e-7)
    assert value_after(out, "(log Z =") == pytest.approx(math.log(z), rel=1e-7)
    assert "partition function" in out
    assert "ground state s = 3" in out and "hardmax(−E) = (0, 0, 0, 1)" in out
    assert "−0" not in out.replace("−0.5", "") and " -0 " not in out


def test_boltzmann_with_explain_shows_the_steps_on_minus_e():
    out = run("softmax", "1", "2", "--boltzmann", "--kT", "2", "--explain").stdout
    assert "softmax(x / T), T = 2, step by step" in out
    steps = table(out, "softmax(x / T), T = 2, step by step")
    x = np.array([-1.0, -2.0])
    np.testing.assert_allclose(column(steps, 1), x)  # the scores are −E
    np.testing.assert_allclose(column(steps, 5), np.exp(x / 2) / np.exp(x / 2).sum(), rtol=1e-7)


# --------------------------------------------------------------------------------------------------
# --target: cross-entropy and its gradient
# --------------------------------------------------------------------------------------------------


def _reference_loss(x, k, t):
    return -scipy.special.log_softmax(x / t)[k]


def _finite_difference(f, x, h=1e-4):
    """Fourth-order central differences."""
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return grad


@pytest.mark.parametrize(("scores", "k", "t"), [([2.0, 1.0, 0.1], 0, 1.0), ([3.0, -1.0, 0.0, 2.5], 1, 2.0)])
def test_target_loss_and_gradient_equal_finite_differences(scores, k, t):
    x = np.array(scores)
    out = run("softmax", *map(str, scores), "--target", k, "-t", t).stdout
    rows = table(out, f"Cross-entropy for the target class K = {k}")
    p = scipy.special.softmax(x / t)
    np.testing.assert_allclose(column(rows, 2), p, rtol=1e-7)
    np.testing.assert_array_equal(column(rows, 3), np.eye(x.size)[k])
    fd = _finite_difference(lambda z: _reference_loss(z, k, t), x)
    np.testing.assert_allclose(column(rows, 4), fd, rtol=1e-7, atol=1e-10)
    loss = value_after(out, f"−log({p[k]:.8g}) =")
    assert loss == pytest.approx(_reference_loss(x, k, t), rel=1e-7)
    assert f"p − onehot({k})" in out and ("/ T" in out) == (t != 1.0)


def test_target_seed_example_numbers():
    out = run("softmax", "2.0", "1.0", "0.1", "--target", "0").stdout
    with mpmath.workdps(30):
        z = [mpmath.mpf(2), mpmath.mpf(1), mpmath.mpf("0.1")]
        total = sum(mpmath.exp(v) for v in z)
        p = [mpmath.exp(v) / total for v in z]
        loss = -mpmath.log(p[0])
    assert value_after(out, "−log(0.65900114) =") == pytest.approx(float(loss), rel=1e-7)
    rows = table(out, "Cross-entropy for the target class K = 0")
    np.testing.assert_allclose(column(rows, 4), [float(p[0] - 1), float(p[1]), float(p[2])], rtol=1e-7)
    assert "Bridle" in out


# --------------------------------------------------------------------------------------------------
# --two-class
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 0.5])
def test_two_class_is_the_sigmoid(t):
    z = np.array([2.0, -1.0, 0.0, 30.0, -745.0])
    out = run("softmax", *map(str, z), "--two-class", "-t", t).stdout
    title = "Two classes: softmax of (z, 0) is the sigmoid of z"
    rows = table(out, title)
    np.testing.assert_allclose(column(rows, 0), z)
    expit = scipy.special.expit(z / t)
    np.testing.assert_allclose(column(rows, 1), expit, rtol=1e-7, atol=1e-300)
    np.testing.assert_allclose(column(rows, 2), expit, rtol=1e-7, atol=1e-300)
    assert np.abs(column(rows, 3)).max() <= 1e-15
    assert value_after(out, "sums to") == pytest.approx(expit.sum(), rel=1e-7)
    assert "one sigmoid per class" in out


def test_two_class_with_one_score_has_no_multilabel_note():
    out = run("softmax", "2", "--two-class").stdout
    ((_, first, _, diff),) = table(out, "Two classes")
    assert float(first) == pytest.approx(scipy.special.expit(2.0), rel=1e-7) and float(diff) == 0
    assert "one sigmoid per class" not in out


# --------------------------------------------------------------------------------------------------
# --iia: Luce's choice axiom
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "remove"),
    [([1.0, 2.0, 3.0], None), ([0.3, -2.0, 5.0, 1.7, 4.2], 2), ([10.0, 9.0, 0.5, -3.0], 0)],
    ids=["seed", "remove-the-largest", "remove-the-first"],
)
def test_iia_ratios_do_not_change(scores, remove):
    x = np.array(scores)
    extra = [] if remove is None else ["--remove", remove]
    out = run("softmax", "--iia", *map(str, scores), *extra).stdout
    removed = x.size - 1 if remove is None else remove
    keep = [i for i in range(x.size) if i != removed]
    probs = table(out, f"Luce's choice axiom: option {removed} removed")
    assert [int(row[0]) for row in probs] == [*keep, removed]
    full = scipy.special.softmax(x)
    fewer = scipy.special.softmax(x[keep])
    np.testing.assert_allclose(column(probs, 2), full[[*keep, removed]], rtol=1e-7)
    np.testing.assert_allclose(column(probs[:-1], 3), fewer, rtol=1e-7)
    assert probs[-1][3] == "—"
    ratios = table(out, f"The ratio of each option to option {keep[0]}")
    assert len(ratios) == len(keep) - 1
    for row, b in zip(ratios, keep[1:], strict=True):
        assert row[0] == f"p_{b} / p_{keep[0]}"
        before, after = float(row[1]), float(row[2])
        with mpmath.workdps(40):
            exact = float(mpmath.exp(mpmath.mpf(x[b]) - mpmath.mpf(x[keep[0]])))
        assert abs(after / before - 1) <= 1e-15  # identical to rounding after the removal
        assert before == pytest.approx(exact, rel=1e-14) and after == pytest.approx(exact, rel=1e-14)
        assert float(row[3]) == pytest.approx(abs(after / before - 1), abs=1e-17)
    assert "Luce's choice axiom (1959)" in out


def test_iia_holds_to_rounding_for_any_scores(rng):
    """The property the lesson shows, over many scores: each probability carries a few roundings (exp,
    the sum, the division), so the ratios agree to a few times 1e-16 (measured worst 2.7e-15)."""
    import luce

    for _ in range(300):
        n = int(rng.integers(3, 30))
        x = rng.normal(scale=3.0, size=n)
        keep = np.delete(np.arange(n), rng.integers(n))
        full, fewer = luce.softmax(x), luce.softmax(x[keep])
        before, after = full[keep[1:]] / full[keep[0]], fewer[1:] / fewer[0]
        np.testing.assert_allclose(after, before, rtol=4e-15, atol=0)
        np.testing.assert_allclose(after, np.exp(x[keep[1:]] - x[keep[0]]), rtol=1e-13)


# --------------------------------------------------------------------------------------------------
# Usage errors: one line, exit 2
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["1", "2", "--kT", "2"], r"'--kT': only goes with --boltzmann"),
        (["1", "2", "--boltzmann", "-t", "2"], r"'--temperature': give kT with --kT"),
        (["1", "2", "--boltzmann", "--kT", "0"], r"'--kT': must be > 0"),
        (["1", "2", "--boltzmann", "--kT", "nan"], r"'--kT': must be > 0"),
        (["1", "2", "--target", "2"], r"'--target': must be a class index from 0 to 1, got 2"),
        (["1", "2", "--target", "-1"], r"'--target': must be a class index from 0 to 1, got -1"),
        (["1", "2", "--target", "x"], r"'--target'"),
        (["--iia", "1", "2"], r"--iia needs at least 3 scores"),
        (["--iia", "1", "2", "3", "--remove", "3"], r"'--remove': must be a class index from 0 to 2"),
        (["1", "2", "3", "--remove", "1"], r"'--remove': only goes with --iia"),
        (["--iia", "1", "2", "inf"], r"SCORES: --iia needs finite scores"),
        (["1", "nan", "--target", "0"], r"SCORES: NaN has no lesson to teach"),
        (["nan", "--two-class"], r"SCORES: NaN has no lesson to teach"),
    ],
    ids=[
        "kT-alone",
        "T-with-energies",
        "kT-zero",
        "kT-nan",
        "target-high",
        "target-negative",
        "target-text",
        "iia-two",
        "remove-out",
        "remove-alone",
        "iia-inf",
        "target-nan",
        "two-class-nan",
    ],
)
def test_usage_errors(args, match):
    line = fails("softmax", *args, code=2, match=match)
    assert line.startswith("luce softmax: error: ") and line.endswith("(see 'luce softmax --help')")


def test_extreme_scores_are_explained_without_warnings():
    out = run("softmax", "-1000", "0", "--boltzmann").stdout  # Z = exp(1000) overflows a float
    assert "Z = Σ exp(−E/kT) = exp(1000), too large for a float," in out
    assert value_after(out, "(log Z =") == pytest.approx(1000.0)
    out = run("softmax", "1e308", "1e308", "1", "--explain").stdout  # the sum of the shares overflows
    assert "finite, positive sum" in out and "Plain share versus softmax" not in out
    assert "is lost to rounding" in out
    out = run("softmax", "1", "-inf", "2", "--target", "1").stdout
    assert "−log(0) = inf" in out
    out = run("softmax", "5", "--explain").stdout  # one score: nothing to compare it with
    assert "Changing the largest score" not in out


def test_plain_output_is_unchanged_without_a_lesson():
    out = run("softmax", "1", "1", "3").stdout
    np.testing.assert_allclose(
        [float(v) for v in out.split()], scipy.special.softmax([1.0, 1.0, 3.0]), rtol=1e-7
    )
    assert len(out.splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# luce plot proportion | hardmax | cross-entropy
# --------------------------------------------------------------------------------------------------


def _assert_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200 and image[..., :3].std() > 0.05


@pytest.mark.parametrize(
    ("args", "default"),
    [
        (["proportion"], "softmax-vs-share.png"),
        (["proportion", "0", "5", "2", "--index", "2"], None),
        (["hardmax"], "softmax-to-hardmax.png"),
        (["hardmax", "-1", "3", "0.5", "3"], None),
        (["cross-entropy"], "cross-entropy.png"),
        (["cross-entropy", "0.5", "3", "-1", "2", "--target", "2"], None),
    ],
    ids=["proportion", "proportion-index", "hardmax", "hardmax-scores", "ce", "ce-target"],
)
def test_plot_teaching_figures(tmp_path, monkeypatch, args, default):
    monkeypatch.chdir(tmp_path)
    if default is None:
        default = "figures/x.png"
        args = [*args, "-o", default]
    out = run("plot", *args).stdout
    assert out.strip() == f"wrote {default}"
    _assert_png(tmp_path / default)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["proportion", "1", "-2"], r"SCORES: the plain share x / Σx needs non-negative scores"),
        (["proportion", "0", "0"], r"positive sum"),
        (["proportion", "1", "2", "--index", "2"], r"'--index': must be an index from 0 to 1, got 2"),
        (["hardmax", "1"], r"give at least 2 scores"),
        (["hardmax", "1", "inf"], r"scores must be finite"),
        (["cross-entropy", "1", "2", "--target", "5"], r"'--target': must be an index from 0 to 1, got 5"),
        (["cross-entropy", "1", "two"], r"'two' is not a number"),
    ],
    ids=["negative", "zero-sum", "index", "one-score", "inf", "target", "text"],
)
def test_plot_errors(tmp_path, args, match):
    code = 1 if "inf" in args else 2
    fails("plot", *args, "-o", tmp_path / "x.png", code=code, match=match)
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------------------
# docs/learn.md: every transcript is the real output
# --------------------------------------------------------------------------------------------------

LEARN = Path(__file__).resolve().parents[1] / "docs" / "learn.md"
TRANSCRIPT = re.compile(r"```console\n\$ luce ([^\n]*)\n((?:(?!```).*\n)*)```")


def _transcripts():
    return TRANSCRIPT.findall(LEARN.read_text(encoding="utf-8"))


def test_the_guide_shows_every_lesson():
    commands = [command for command, _ in _transcripts()]
    assert commands == [
        "softmax 2.0 1.0 0.1 --explain",
        "softmax 1 1 3 --explain",
        "softmax 0 1 2 --boltzmann --kT 0.5",
        "softmax --iia 1 2 3",
        "softmax 2.0 1.0 0.1 --target 0",
        "softmax 2 -1 --two-class",
    ]


@pytest.mark.parametrize(("command", "shown"), _transcripts(), ids=lambda v: v.split("\n")[0][:40])
def test_the_guide_transcripts_are_the_real_output(command, shown):
    assert run(*shlex.split(command)).stdout == shown
