"""``luce calibrate MODEL DATA --output PATH``, driven in-process with Typer's CliRunner.

References: the temperature from TemperatureScaling fitted in Python on the same rows, scikit-learn's
log_loss on a separate test split, and the model's own predictions before calibration.
"""

from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss

import cli_runner
import luce
from cli_runner import run
from luce.io import read_metadata
from luce.models._calibration import TemperatureScaling


def fails(*args, code, match):
    return cli_runner.fails(*args, code=code, match=match, prefix="luce calibrate: error:")


def fails_to(output, *args, code, match):
    return fails(*args, "-o", output, code=code, match=match)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An over-confident SoftmaxRegression (no penalty, 150 training rows) and held-out tables."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    perm = np.random.default_rng(20261122).permutation(len(y))
    train, val, test = perm[:150], perm[150:750], perm[750:]
    folder = tmp_path_factory.mktemp("calibrate")
    names = [f"px{i}" for i in range(64)]
    frame = pd.DataFrame(X, columns=names)
    frame["digit"] = np.array([f"d{v}" for v in y], dtype=object)
    frame.iloc[val].to_csv(folder / "val.csv", index=False)
    model = luce.SoftmaxRegression(reg_strength=0.0).fit(frame[names].iloc[train], frame["digit"].iloc[train])
    luce.save(model, folder / "model.luce", metadata={"note": "kept"})
    return folder, model, frame, names, val, test


def test_calibrate_lowers_the_test_log_loss_and_keeps_predictions(digits, tmp_path):
    folder, model, frame, names, val, test = digits
    out = tmp_path / "calibrated.luce"
    text = run("calibrate", folder / "model.luce", folder / "val.csv", "--target", "digit", "-o", out).stdout
    reference = TemperatureScaling(model).fit(frame[names].iloc[val], frame["digit"].iloc[val])
    calibrated = luce.load(out)
    assert type(calibrated) is luce.SoftmaxRegression
    np.testing.assert_allclose(calibrated.temperature_, reference.temperature_, rtol=1e-10)
    assert calibrated.temperature_ > 1.5
    assert f"T = {calibrated.temperature_:.4g}" in text
    assert "log-loss" in text and "expected calibration error" in text
    X_te, y_te = frame[names].iloc[test], frame["digit"].iloc[test]
    np.testing.assert_array_equal(calibrated.predict(X_te), model.predict(X_te))
    assert log_loss(y_te, calibrated.predict_proba(X_te), labels=model.classes_) < log_loss(
        y_te, model.predict_proba(X_te), labels=model.classes_
    )
    meta = read_metadata(out)["user"]
    assert meta["note"] == "kept"
    info = meta["luce_cli"]["calibration"]
    assert info["n_rows"] == len(val) and info["after"]["log_loss"] < info["before"]["log_loss"]
    assert info["after"]["accuracy"] == info["before"]["accuracy"]


def test_in_place_replaces_the_model_and_nothing_else_does(digits, tmp_path):
    folder, *_ = digits
    path = tmp_path / "model.luce"
    path.write_bytes((folder / "model.luce").read_bytes())
    before = path.read_bytes()
    fails("calibrate", path, folder / "val.csv", "--target", "digit", code=1, match="--output PATH")
    fails("calibrate", path, folder / "val.csv", "--target", "digit", "--in-place", "-o", tmp_path / "x.luce",
          code=1, match="not both")  # fmt: skip
    assert path.read_bytes() == before and not (tmp_path / "x.luce").exists()
    run("calibrate", path, folder / "val.csv", "--target", "digit", "--in-place")
    assert luce.load(path).temperature_ > 1.5


def test_a_trained_table_model_is_calibrated_inside_its_pipeline(tmp_path, rng):
    n = 600
    df = pd.DataFrame({"x": rng.normal(size=n), "colour": rng.choice(["red", "blue", "green"], n)})
    df["y"] = np.where(df.x + (df.colour == "red") + 0.8 * rng.normal(size=n) > 0.3, "up", "down")
    df.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[300:].to_csv(tmp_path / "val.csv", index=False)
    run("train", tmp_path / "train.csv", "-y", "y", "--reg-strength", "0", "-m", tmp_path / "m.luce")
    run("calibrate", tmp_path / "m.luce", tmp_path / "val.csv", "-o", tmp_path / "c.luce")  # target from file
    model, calibrated = luce.load(tmp_path / "m.luce"), luce.load(tmp_path / "c.luce")
    val = df.iloc[300:]
    reference = TemperatureScaling(model[-1]).fit(model[:-1].transform(val), val["y"])
    np.testing.assert_allclose(calibrated[-1].temperature_, reference.temperature_, rtol=1e-8)
    np.testing.assert_array_equal(calibrated.predict(df), model.predict(df))


def test_separable_calibration_data_is_called_out(tmp_path, rng):
    X = rng.normal(size=(200, 2))
    X[:, 0] += np.sign(X[:, 0])  # a gap of 2 between the classes
    y = np.where(X[:, 0] > 0, "pos", "neg")
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(label=y)
    frame.iloc[100:].to_csv(tmp_path / "val.csv", index=False)
    model = luce.SoftmaxRegression(reg_strength=1e-3).fit(frame[["a", "b"]].iloc[:100], y[:100])
    assert (model.predict(frame[["a", "b"]].iloc[100:]) == y[100:]).all()  # every calibration row right
    luce.save(model, tmp_path / "m.luce")
    result = run(
        "calibrate", tmp_path / "m.luce", tmp_path / "val.csv", "-y", "label", "-o", tmp_path / "c.luce"
    )
    lines = [x for x in result.stderr.splitlines() if "cannot support a temperature" in x]
    assert len(lines) == 1 and lines[0].startswith("luce calibrate: warning:")
    assert read_metadata(tmp_path / "c.luce")["user"]["luce_cli"]["calibration"]["supported"] is False


def test_a_model_without_calibrate_is_wrapped_in_temperature_scaling(tmp_path, rng):
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=300) > 0, "up", "down")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    frame.iloc[150:].to_csv(tmp_path / "val.csv", index=False)
    model = luce.SigmoidRegression(reg_strength=1e-6).fit(frame[["a", "b", "c"]].iloc[:150], y[:150])
    luce.save(model, tmp_path / "m.luce")
    run(
        "calibrate", tmp_path / "m.luce", tmp_path / "val.csv", "--target", "label", "-o", tmp_path / "c.luce"
    )
    wrapped = luce.load(tmp_path / "c.luce")
    assert type(wrapped) is luce.TemperatureScaling
    assert type(wrapped.estimator) is luce.SigmoidRegression
    reference = TemperatureScaling(model).fit(frame[["a", "b", "c"]].iloc[150:], y[150:])
    np.testing.assert_allclose(wrapped.temperature_, reference.temperature_, rtol=1e-10)
    np.testing.assert_allclose(
        wrapped.predict_proba(frame.iloc[:5, :3]), reference.predict_proba(frame.iloc[:5, :3])
    )
    # Calibrating the wrapper again refits its temperature on the same rows: the same T.
    run("calibrate", tmp_path / "c.luce", tmp_path / "val.csv", "--target", "label", "--in-place")
    np.testing.assert_allclose(
        luce.load(tmp_path / "c.luce").temperature_, reference.temperature_, rtol=1e-10
    )


def test_errors_are_one_line(digits, tmp_path, rng):
    folder, *_ = digits
    fails = partial(fails_to, tmp_path / "out.luce")
    fails("calibrate", folder / "model.luce", folder / "val.csv", "--target", "nope", code=1, match="nope")
    bad = pd.read_csv(folder / "val.csv")
    bad.loc[0, "digit"] = "d42"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    fails(
        "calibrate", folder / "model.luce", tmp_path / "bad.csv", "--target", "digit", code=1,
        match="labels the model never saw: 'd42'",
    )  # fmt: skip
    X = rng.normal(size=(40, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    luce.save(luce.SigmoidRegression(1e-2).fit(X, Y), tmp_path / "multi.luce")
    pd.DataFrame(X, columns=["a", "b"]).assign(t=Y[:, 0]).to_csv(tmp_path / "multi.csv", index=False)
    fails(
        "calibrate",
        tmp_path / "multi.luce",
        tmp_path / "multi.csv",
        "--target",
        "t",
        code=1,
        match="multi-label",
    )
