"""The luce command, driven as a user would (Typer's CliRunner, in-process) on files the tests write.

References are independent of the CLI: SciPy for softmax, a SoftmaxRegression fitted in Python on
features encoded by hand, scikit-learn's metrics, and onnxruntime for the exported graph.
"""

import re

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import scipy.special
from matplotlib.image import imread
from sklearn.metrics import accuracy_score, f1_score, log_loss

import luce
from cli_runner import fails, run
from luce.io import read_metadata

NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def numbers(text):
    return [float(v) for v in re.findall(NUMBER, text)]


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 200 and image[..., :3].std() > 0.05


# --------------------------------------------------------------------------------------------------
# luce softmax
# --------------------------------------------------------------------------------------------------


def test_softmax_prints_probabilities():
    out = run("softmax", "2.0", "1.0", "0.1").stdout
    np.testing.assert_allclose(numbers(out), scipy.special.softmax([2.0, 1.0, 0.1]), rtol=1e-7)


def test_softmax_negative_scores_and_temperature():
    out = run("softmax", "-1", "-2.5", "3", "-t", "0.5").stdout
    np.testing.assert_allclose(numbers(out), scipy.special.softmax(np.array([-1, -2.5, 3]) / 0.5), rtol=1e-7)
    out = run("softmax", "--temperature", "4", "--", "-1", "2").stdout
    np.testing.assert_allclose(numbers(out), scipy.special.softmax(np.array([-1, 2]) / 4), rtol=1e-7)


def test_softmax_log():
    out = run("softmax", "1000", "0", "-5", "--log").stdout
    np.testing.assert_allclose(numbers(out), scipy.special.log_softmax([1000.0, 0.0, -5.0]), rtol=1e-7)


def test_softmax_explain_shows_every_step():
    out = run("softmax", "2.0", "1.0", "0.1", "--explain").stdout
    x = np.array([2.0, 1.0, 0.1])
    rows = [numbers(line) for line in out.splitlines() if re.match(r"^│ \d ", line)]
    assert len(rows) == 3
    table = np.array(rows)
    np.testing.assert_array_equal(table[:, 0], [0, 1, 2])
    np.testing.assert_allclose(table[:, 1], x)
    np.testing.assert_allclose(table[:, 2], x - 2.0, atol=1e-12)  # the max subtracted
    np.testing.assert_allclose(table[:, 3], np.exp(x - 2.0), rtol=1e-7)
    np.testing.assert_allclose(table[:, 4], scipy.special.softmax(x), rtol=1e-7)
    total = float(re.search(rf"sum = ({NUMBER})", out).group(1))
    assert total == pytest.approx(np.exp(x - 2.0).sum(), rel=1e-7)
    assert re.search(r"Σp = 1\b", out)
    assert "max(x) = 2 is subtracted" in out and "sum to 1" in out


def test_softmax_explain_with_temperature_and_log():
    out = run("softmax", "3", "-1", "0", "--explain", "--log", "-t", "2").stdout
    x = np.array([3.0, -1.0, 0.0])
    table = np.array([numbers(line) for line in out.splitlines() if re.match(r"^│ \d ", line)])
    np.testing.assert_allclose(table[:, 3], (x - 3) / 2, atol=1e-12)  # (x - max) / T
    np.testing.assert_allclose(table[:, 4], np.exp((x - 3) / 2), rtol=1e-7)
    np.testing.assert_allclose(table[:, 5], scipy.special.softmax(x / 2), rtol=1e-7)
    np.testing.assert_allclose(table[:, 6], scipy.special.log_softmax(x / 2), rtol=1e-7)
    assert "divided by the temperature T = 2" in out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["abc"], r"Invalid value for SCORES: 'abc' is not a number"),
        (["1", "--bogus"], r"no such option '--bogus'"),
        (["1", "2", "-t", "0"], r"'--temperature': must be > 0"),
        (["1", "2", "-t", "-1"], r"'--temperature': must be > 0"),
        (["1", "2", "-t", "nan"], r"'--temperature': must be > 0"),
        (["1", "2", "-t", "warm"], r"'--temperature'"),
    ],
    ids=["not-a-number", "unknown-option", "zero-T", "negative-T", "nan-T", "text-T"],
)
def test_softmax_usage_errors(args, match):
    line = fails("softmax", *args, code=2, match=match)
    assert line.startswith("luce softmax: error: ") and line.endswith("(see 'luce softmax --help')")


def test_help_and_no_arguments():
    out = run().stdout
    assert "Usage: luce" in out
    for command in ("softmax", "plot", "demo", "train", "predict", "evaluate", "export"):
        assert command in out
    assert "--one-hot" in run("train", "--help").stdout
    assert "temperature" in run("plot").stdout
    fails("nope", code=2, match=r"^luce: error: No such command 'nope'")
    assert run("--version").stdout.strip() == f"luce {luce.__version__}"


def test_debug_shows_the_traceback_and_nothing_else_does(tmp_path):
    missing = tmp_path / "none.luce"
    plain = run("predict", missing, tmp_path / "x.csv", code=1)
    assert "Traceback" not in plain.stderr
    debug = run("predict", missing, tmp_path / "x.csv", "--debug", code=1)
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


# --------------------------------------------------------------------------------------------------
# luce plot
# --------------------------------------------------------------------------------------------------


def test_plot_temperature(tmp_path):
    out = run("plot", "temperature", "3", "-1", "0.5", "--out", tmp_path / "t.png").stdout
    assert f"wrote {tmp_path / 't.png'}" in out
    assert_png(tmp_path / "t.png")


def test_plot_defaults_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("plot", "temperature")
    run("plot", "activations")
    assert_png(tmp_path / "softmax-temperature.png")
    assert_png(tmp_path / "activations.png")


def test_plot_activations_creates_folders(tmp_path):
    run("plot", "activations", "-o", tmp_path / "figs" / "a.png")
    assert_png(tmp_path / "figs" / "a.png")


def test_plot_errors(tmp_path):
    fails("plot", "temperature", "1", "-o", tmp_path / "t.png", code=2, match="give at least 2 scores")
    fails("plot", "temperature", "1", "x", code=2, match="'x' is not a number")


# --------------------------------------------------------------------------------------------------
# train / predict / evaluate / export on files
# --------------------------------------------------------------------------------------------------

SPECIES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def flowers():
    """120 rows: four numeric columns, a categorical 'soil' column and string labels."""
    rng = np.random.default_rng(7)
    n = 120
    label = np.arange(n) % 3
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    X = centers[label] + 0.35 * rng.normal(size=(n, 4))
    df = pd.DataFrame(X.round(3), columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    df["soil"] = np.array(["clay", "sand", "loam"])[rng.integers(0, 3, size=n)]
    df["species"] = SPECIES[label]
    return df


def encode(df):
    """The features the CLI should build, by hand: numeric columns, then soil one-hot (sorted)."""
    X = df[["sepal_length", "sepal_width", "petal_length", "petal_width"]].astype(float).copy()
    for value in ["clay", "loam", "sand"]:
        X[f"soil={value}"] = (df["soil"] == value).astype(float)
    return X


@pytest.fixture(scope="module")
def trained(flowers, tmp_path_factory):
    """A model trained by the CLI on all rows of a CSV with string labels."""
    folder = tmp_path_factory.mktemp("trained")
    flowers.to_csv(folder / "flowers.csv", index=False)
    result = run(
        "train", folder / "flowers.csv", "--target", "species", "--one-hot", "--test-size", "0",
        "--model", folder / "flowers.luce", "--reg-strength", "1e-3",
    )  # fmt: skip
    return folder, result


def test_train_matches_a_python_fit(trained, flowers):
    folder, result = trained
    model = luce.load(folder / "flowers.luce")
    reference = luce.SoftmaxRegression(reg_strength=1e-3, random_state=0).fit(
        encode(flowers), flowers["species"]
    )
    assert model.classes_.tolist() == SPECIES.tolist()
    assert model.feature_names_in_.tolist() == list(encode(flowers).columns)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-10, atol=1e-12)
    assert "120 rows, 7 features, 3 classes" in result.stdout
    assert f"saved model to {folder / 'flowers.luce'}" in result.stdout
    assert_png(folder / "flowers-loss-curve.png")
    info = read_metadata(folder / "flowers.luce")["user"]["luce_cli"]
    assert info["features"]["categories"] == {"soil": ["clay", "loam", "sand"]}
    assert info["target"] == "species" and info["n_train"] == 120 and info["n_test"] == 0


def test_train_reports_held_out_metrics(flowers, tmp_path):
    flowers.to_parquet(tmp_path / "f.parquet")
    out = run(
        "train", tmp_path / "f.parquet", "-y", "species", "--one-hot", "--model", tmp_path / "m" / "f.luce",
        "--loss-plot", tmp_path / "loss.png", "--test-size", "0.25", "--random-state", "3",
    ).stdout  # fmt: skip
    assert "90 for training, 30 held out" in out
    accuracy = float(re.search(rf"accuracy\s*│\s*({NUMBER})", out).group(1))
    metrics = read_metadata(tmp_path / "m" / "f.luce")["user"]["luce_cli"]["test_metrics"]
    assert metrics["n_samples"] == 30 and accuracy == pytest.approx(metrics["accuracy"], abs=5e-5)
    for name in ("log-loss", "F1 (macro)", "recall (weighted)", "expected calibration error"):
        assert name in out
    for species in SPECIES:
        assert re.search(rf"│ {species}\s+│", out)  # the per-class table
    assert_png(tmp_path / "loss.png")


def test_train_progress_and_convergence_warning(flowers, tmp_path):
    flowers.to_csv(tmp_path / "f.tsv", sep="\t", index=False)
    result = run(
        "train", tmp_path / "f.tsv", "--target", "species", "--one-hot", "--solver", "gd", "--max-iter", "3",
        "--model", tmp_path / "f.luce",
    )  # fmt: skip
    assert re.search(r"training gd .* 3/3 iterations\s+loss", result.stdout)
    assert re.search(
        r"^luce train: warning: SoftmaxRegression \(solver='gd'\) did not converge", result.stderr
    )
    assert luce.load(tmp_path / "f.luce").n_iter_ == 3


def test_predict_csv_with_ids_and_probabilities(trained, flowers, tmp_path):
    folder, _ = trained
    new = flowers.drop(columns=["species"]).iloc[::7].copy()
    new.insert(0, "plant", [f"p{i}" for i in range(len(new))])
    new.to_csv(tmp_path / "new.csv", index=False)
    out = run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--proba", "--id", "plant").stdout
    table = pd.read_csv(pd.io.common.StringIO(out))
    assert list(table.columns) == ["plant", "prediction", *(f"proba_{s}" for s in SPECIES)]
    model = luce.load(folder / "flowers.luce")
    expected = model.predict_proba(encode(new))
    np.testing.assert_allclose(table[[f"proba_{s}" for s in SPECIES]].to_numpy(), expected, rtol=1e-12)
    assert table["prediction"].tolist() == model.predict(encode(new)).tolist()
    assert table["plant"].tolist() == new["plant"].tolist()


def test_predict_parquet_to_parquet_and_tsv(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.drop(columns=["species"]).to_parquet(tmp_path / "new.parquet")
    out = run(
        "predict", folder / "flowers.luce", tmp_path / "new.parquet", "-o", tmp_path / "p" / "out.parquet"
    )
    assert "wrote 120 predictions" in out.stdout
    table = pd.read_parquet(tmp_path / "p" / "out.parquet")
    assert list(table.columns) == ["prediction"]
    assert (
        table["prediction"].tolist() == luce.load(folder / "flowers.luce").predict(encode(flowers)).tolist()
    )
    run("predict", folder / "flowers.luce", tmp_path / "new.parquet", "--proba", "-o", tmp_path / "out.tsv")
    tsv = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    np.testing.assert_allclose(tsv.filter(like="proba_").sum(axis=1), 1.0, rtol=1e-12)


def test_compressed_csv_in_and_out(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.drop(columns=["species"]).to_csv(tmp_path / "new.csv.gz", index=False)
    run("predict", folder / "flowers.luce", tmp_path / "new.csv.gz", "-o", tmp_path / "out.tsv.bz2")
    table = pd.read_csv(tmp_path / "out.tsv.bz2", sep="\t")
    assert (
        table["prediction"].tolist() == luce.load(folder / "flowers.luce").predict(encode(flowers)).tolist()
    )


def test_predict_ignores_the_target_column(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.to_csv(tmp_path / "with_target.csv", index=False)
    out = run("predict", folder / "flowers.luce", tmp_path / "with_target.csv").stdout
    assert pd.read_csv(pd.io.common.StringIO(out)).shape == (120, 1)


def test_unseen_category_warns_and_encodes_zeros(trained, flowers, tmp_path):
    folder, _ = trained
    new = flowers.drop(columns=["species"]).head(4).copy()
    new.loc[new.index[:2], "soil"] = "peat"
    new.to_csv(tmp_path / "new.csv", index=False)
    result = run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--proba")
    assert re.search(
        r"warning: column 'soil': 2 row\(s\) with categories not seen in training \('peat'\)", result.stderr
    )
    encoded = encode(new)
    assert encoded.iloc[:2][["soil=clay", "soil=loam", "soil=sand"]].to_numpy().sum() == 0
    table = pd.read_csv(pd.io.common.StringIO(result.stdout))
    expected = luce.load(folder / "flowers.luce").predict_proba(encoded)
    np.testing.assert_allclose(table.filter(like="proba_").to_numpy(), expected, rtol=1e-12)


def test_evaluate(trained, flowers, tmp_path):
    folder, _ = trained
    test = flowers.iloc[1::2]  # 60 rows, all three classes
    test.to_csv(tmp_path / "test.csv", index=False)
    out = run("evaluate", folder / "flowers.luce", tmp_path / "test.csv", "--target", "species",
              "--plots", tmp_path / "report").stdout  # fmt: skip
    model = luce.load(folder / "flowers.luce")
    proba = model.predict_proba(encode(test))
    pred = model.classes_[proba.argmax(axis=1)]

    def value(name):
        return float(re.search(rf"{re.escape(name)}\s*│\s*({NUMBER})", out).group(1))

    assert value("accuracy") == pytest.approx(accuracy_score(test["species"], pred), abs=5e-5)
    assert value("log-loss") == pytest.approx(
        log_loss(test["species"], proba, labels=model.classes_), abs=5e-5
    )
    assert value("F1 (macro)") == pytest.approx(f1_score(test["species"], pred, average="macro"), abs=5e-5)
    assert value("samples") == 60
    assert_png(tmp_path / "report" / "confusion-matrix.png")
    assert_png(tmp_path / "report" / "reliability-diagram.png")


def test_export_onnx_matches_predict(trained, flowers, tmp_path):
    folder, _ = trained
    out = run("export", folder / "flowers.luce", "--onnx", tmp_path / "flowers.onnx").stdout
    assert "input X float32 (N, 7)" in out and "soil=clay" in out
    session = ort.InferenceSession(str(tmp_path / "flowers.onnx"), providers=["CPUExecutionProvider"])
    X = encode(flowers).to_numpy(dtype=np.float32)
    label, proba = session.run(["label", "probabilities"], {"X": X})
    model = luce.load(folder / "flowers.luce")
    assert label.tolist() == model.predict(encode(flowers)).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(encode(flowers)), atol=1e-5)


def test_export_a_multilabel_sigmoid_model(tmp_path, rng):
    X = rng.standard_normal((200, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    luce.save(luce.SigmoidRegression(reg_strength=1e-2).fit(X, Y), tmp_path / "tags.luce")
    out = run("export", tmp_path / "tags.luce", "--onnx", tmp_path / "tags.onnx").stdout
    assert "outputs label (N, 2) and probabilities (N, 2)" in out
    session = ort.InferenceSession(str(tmp_path / "tags.onnx"), providers=["CPUExecutionProvider"])
    label, _ = session.run(["label", "probabilities"], {"X": X.astype(np.float32)})
    assert label.shape == (200, 2) and np.mean(label == Y) > 0.95


def test_round_trip_gives_identical_predictions(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.to_csv(tmp_path / "all.csv", index=False)
    first = run("predict", folder / "flowers.luce", tmp_path / "all.csv", "--proba").stdout
    again = run("predict", folder / "flowers.luce", tmp_path / "all.csv", "--proba").stdout
    assert first == again
    # A plain save from Python keeps the feature names but not the CLI's encoding: the data must
    # then hold the model's own (encoded) columns.
    model = luce.load(folder / "flowers.luce")
    model.save(tmp_path / "copy.luce")
    encode(flowers).to_csv(tmp_path / "encoded.csv", index=False)
    second = run("predict", tmp_path / "copy.luce", tmp_path / "encoded.csv", "--proba").stdout
    assert first == second


# --------------------------------------------------------------------------------------------------
# Bad input: one clear line, exit 1 for data/model errors, exit 2 for usage
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def csv(tmp_path, flowers):
    def write(name, df=None, text=None):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        else:
            df.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
        return path

    return write


def test_missing_file(tmp_path, trained):
    fails("train", tmp_path / "nope.csv", "--target", "y", code=1, match=r"no such file: .*nope\.csv")
    fails("predict", trained[0] / "flowers.luce", tmp_path / "nope.csv", code=1, match="no such file")
    fails("predict", tmp_path / "nope.luce", tmp_path / "x.csv", code=1, match="no such file")  # data first
    (tmp_path / "x.csv").write_text("a\n1\n")
    fails("predict", tmp_path / "nope.luce", tmp_path / "x.csv", code=1,
          match=r"No such file or directory: .*nope\.luce")  # fmt: skip


def test_unknown_format(csv):
    path = csv("data.xlsx", text="whatever")
    fails(
        "train",
        path,
        "--target",
        "y",
        code=1,
        match=r"unknown data format '\.xlsx' .* use \.csv, \.tsv or \.parquet",
    )


def test_missing_target_column(csv, flowers):
    path = csv("f.csv", flowers)
    fails(
        "train", path, "--target", "specie", code=1, match=r"no column 'specie' in .*did you mean 'species'\?"
    )


def test_non_numeric_features_are_named(csv, flowers):
    df = flowers.assign(colour=np.where(flowers.index % 2, "red", "blue"))
    line = fails(
        "train", csv("f.csv", df), "--target", "species", code=1, match="non-numeric feature columns"
    )
    assert "'soil' (e.g. " in line and "'colour' (e.g. " in line and "--one-hot" in line


def test_nan_in_features_names_rows_and_columns(csv, flowers, tmp_path):
    df = flowers.copy()
    df.loc[[2, 10], "sepal_width"] = np.nan
    df.loc[5, "petal_length"] = np.nan
    path = csv("f.csv", df)
    line = fails("train", path, "--target", "species", "--one-hot", code=1, match="missing values")
    assert "'sepal_width' (rows 3, 11)" in line and "'petal_length' (row 6)" in line
    assert "--impute mean|median" in line
    run("train", path, "--target", "species", "--one-hot", "--impute", "median", "--test-size", "0",
        "--model", tmp_path / "m.luce")  # fmt: skip
    fill = read_metadata(tmp_path / "m.luce")["user"]["luce_cli"]["features"]["fill"]
    assert fill["sepal_width"] == pytest.approx(np.nanmedian(df["sepal_width"]))
    assert fill["petal_length"] == pytest.approx(np.nanmedian(df["petal_length"]))
    # at predict time the training medians fill the gaps
    out = run(
        "predict", tmp_path / "m.luce", csv("p.csv", df.drop(columns=["species"]).head(12)), "--proba"
    ).stdout
    X = encode(df.head(12)).fillna({"sepal_width": fill["sepal_width"], "petal_length": fill["petal_length"]})
    expected = luce.load(tmp_path / "m.luce").predict_proba(X)
    np.testing.assert_allclose(
        pd.read_csv(pd.io.common.StringIO(out)).filter(like="proba_"), expected, rtol=1e-12
    )


def test_nan_at_predict_time_without_impute(trained, csv, flowers):
    df = flowers.drop(columns=["species"]).head(5).copy()
    df.loc[1, "petal_width"] = np.nan
    fails("predict", trained[0] / "flowers.luce", csv("p.csv", df), code=1,
          match=r"'petal_width' \(row 2\).*trained without --impute")  # fmt: skip


def test_target_with_one_class(csv, flowers):
    df = flowers.assign(species="setosa")
    fails("train", csv("f.csv", df), "--target", "species", "--one-hot", code=1,
          match=r"'species' .* has only one class \('setosa'\); a classifier needs at least two")  # fmt: skip


def test_target_with_missing_labels(csv, flowers):
    df = flowers.copy()
    df.loc[4, "species"] = np.nan
    fails("train", csv("f.csv", df), "--target", "species", "--one-hot", code=1,
          match=r"target column 'species' has missing values in row 5")  # fmt: skip


def test_predict_columns_differ(trained, csv, flowers):
    df = flowers.drop(columns=["species", "petal_width", "soil"]).assign(colour="red", height=1.0)
    line = fails(
        "predict", trained[0] / "flowers.luce", csv("p.csv", df), code=1, match="differ from training"
    )
    assert "missing 'petal_width', 'soil'" in line and "extra 'colour', 'height'" in line


def test_empty_files(csv, tmp_path):
    fails("train", csv("e.csv", text=""), "--target", "y", code=1, match=r"e\.csv is empty")
    fails(
        "train", csv("h.csv", text="a,b,y\n"), "--target", "y", code=1, match="has a header but no data rows"
    )
    pd.DataFrame({"a": pd.Series([], dtype=float), "y": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "e.parquet"
    )
    fails("train", tmp_path / "e.parquet", "--target", "y", code=1, match="has a header but no data rows")


def test_corrupted_and_foreign_model_files(trained, csv, flowers, tmp_path):
    data = csv("p.csv", flowers.drop(columns=["species"]).head(3))
    good = (trained[0] / "flowers.luce").read_bytes()
    bad = tmp_path / "bad.luce"
    bad.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    fails(
        "predict", bad, data, code=1, match=r"bad\.luce is corrupted: array '.*' fails its SHA-256 checksum"
    )
    bad.write_bytes(good[: len(good) // 2])
    fails("predict", bad, data, code=1, match=r"bad\.luce is truncated")
    fails("predict", data, data, code=1, match=r"p\.csv is not a luce model file")
    fails("export", bad, "--onnx", tmp_path / "x.onnx", code=1, match="is truncated")


def test_evaluate_with_unknown_labels(trained, csv, flowers):
    df = flowers.head(6).copy()
    df.loc[[0, 1], "species"] = "rosa"
    fails("evaluate", trained[0] / "flowers.luce", csv("t.csv", df), "--target", "species", code=1,
          match=r"labels the model never saw: 'rosa' \(2 rows\)")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "x.csv"], r"Missing option '--target'"),
        (["train", "x.csv", "--target", "y", "--impute", "max"], r"'--impute'.*'max'"),
        (["train", "x.csv", "--target", "y", "--test-size", "1.5"], r"'--test-size'"),
        (["train", "x.csv", "--target", "y", "--solver", "adam"], r"'--solver'"),
        (["train", "x.csv", "--target", "y", "--max-iter", "0"], r"'--max-iter'"),
        (["export", "m.luce"], r"Missing option '--onnx'"),
        (["evaluate", "m.luce", "x.csv"], r"Missing option '--target'"),
        (["predict", "m.luce"], r"(?i)Missing argument 'DATA'"),
    ],
    ids=["no-target", "impute", "test-size", "solver", "max-iter", "no-onnx", "eval-no-target", "no-data"],
)
def test_usage_errors_exit_2(args, match):
    fails(*args, code=2, match=match)


# --------------------------------------------------------------------------------------------------
# luce demo (what `make demo` runs)
# --------------------------------------------------------------------------------------------------


def test_demo_end_to_end(tmp_path):
    folder = tmp_path / "luce-demo"
    out = run("demo", "--out", folder).stdout
    for name in (
        "loss-curve",
        "confusion-matrix",
        "reliability-diagram",
        "softmax-temperature",
        "activations",
    ):
        assert_png(folder / f"{name}.png")
    model = luce.load(folder / "model.luce")
    _, X_test, _, y_test = luce.load_digits_split()
    columns = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    test = pd.read_csv(folder / "digits-test.csv")
    assert list(test.columns) == [*columns, "digit"] and len(test) == 450
    np.testing.assert_array_equal(test[columns].to_numpy(), X_test)
    np.testing.assert_array_equal(test["digit"], y_test)
    proba = model.predict_proba(pd.DataFrame(X_test, columns=columns))
    accuracy = float(re.search(rf"accuracy\s*│\s*({NUMBER})", out).group(1))
    assert accuracy == pytest.approx(accuracy_score(y_test, model.classes_[proba.argmax(1)]), abs=5e-5)
    assert accuracy > 0.9
    assert f"temperature T = {model.temperature_:.3f}" in out and model.temperature_ != 1.0
    assert re.search(r"│ 9\s+│", out)  # the per-digit table
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    label, onnx_proba = session.run(None, {"X": X_test.astype(np.float32)})
    assert label.tolist() == model.classes_[proba.argmax(1)].tolist()
    np.testing.assert_allclose(onnx_proba, proba, atol=1e-5)
    evaluated = run("evaluate", folder / "model.luce", folder / "digits-test.csv", "--target", "digit").stdout
    assert float(re.search(rf"accuracy\s*│\s*({NUMBER})", evaluated).group(1)) == accuracy
