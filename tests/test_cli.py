"""The luce command, driven as a user would (Typer's CliRunner, in-process) on files the tests write.

References are independent of the CLI: SciPy for softmax, a SoftmaxRegression fitted in Python on
features encoded by hand, scikit-learn's metrics, and onnxruntime for the exported graph.
"""

import re
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import scipy.special
from matplotlib.image import imread
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)

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
    for command in ("softmax", "plot", "demo", "train", "predict", "evaluate", "calibrate", "info", "export"):
        assert command in out
    assert "--no-scale" in run("train", "--help").stdout
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
NUMERIC = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TIGHT = ("--tol", "1e-10", "--max-iter", "1000")  # fits compared with Python: converge both to the optimum


@pytest.fixture(scope="module")
def flowers():
    """120 rows: four numeric columns, a categorical 'soil' column and string labels."""
    rng = np.random.default_rng(7)
    n = 120
    label = np.arange(n) % 3
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    X = centers[label] + 0.35 * rng.normal(size=(n, 4))
    df = pd.DataFrame(X.round(3), columns=NUMERIC)
    df["soil"] = np.array(["clay", "sand", "loam"])[rng.integers(0, 3, size=n)]
    df["species"] = SPECIES[label]
    return df


def encode(df, fitted_on):
    """The model input the CLI's Pipeline should build, by hand with pandas: numeric columns with
    missing values filled by the training median, standardised with the training mean and (population)
    standard deviation, then soil one-hot in sorted order."""
    numeric = df[NUMERIC].astype(float).fillna(fitted_on[NUMERIC].median())
    filled = fitted_on[NUMERIC].fillna(fitted_on[NUMERIC].median())
    X = (numeric - filled.mean()) / filled.std(ddof=0)
    for value in sorted(fitted_on["soil"].dropna().unique()):
        X[f"soil={value}"] = (df["soil"] == value).astype(float)
    return X.to_numpy()


def sklearn_pipeline(estimator, numeric, categorical):
    """The same preprocessing assembled from scikit-learn's transformers (independent of luce.tables)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return make_pipeline(ColumnTransformer([("n", num, numeric), ("c", onehot, categorical)]), estimator)


def table(text):
    return pd.read_csv(pd.io.common.StringIO(text))


@pytest.fixture(scope="module")
def trained(flowers, tmp_path_factory):
    """A model trained by the CLI on all rows of a CSV with string labels."""
    folder = tmp_path_factory.mktemp("trained")
    flowers.to_csv(folder / "flowers.csv", index=False)
    result = run(
        "train", folder / "flowers.csv", "--target", "species", "--test-size", "0",
        "--model", folder / "flowers.luce", "--reg-strength", "1e-3", *TIGHT,
    )  # fmt: skip
    return folder, result


def test_train_matches_a_python_fit_on_hand_encoded_features(trained, flowers):
    folder, result = trained
    model = luce.load(folder / "flowers.luce")
    reference = luce.SoftmaxRegression(reg_strength=1e-3, tol=1e-10, max_iter=1000, random_state=0).fit(
        encode(flowers, flowers), flowers["species"]
    )
    assert type(model).__name__ == "Pipeline" and model.classes_.tolist() == SPECIES.tolist()
    np.testing.assert_allclose(model[-1].coef_, reference.coef_, atol=1e-5)
    raw = flowers.drop(columns="species")
    np.testing.assert_allclose(
        model.predict_proba(raw), reference.predict_proba(encode(raw, flowers)), atol=1e-6
    )
    assert "120 rows, 4 numeric and 1 text columns, 3 classes" in result.stdout
    assert f"saved model to {folder / 'flowers.luce'}" in result.stdout
    assert_png(folder / "flowers-loss-curve.png")
    info = read_metadata(folder / "flowers.luce")["user"]["luce_cli"]
    assert info["columns"]["categorical"] == ["soil"] and info["targets"] == ["species"]
    assert info["n_train"] == 120 and info["n_test"] == 0


def test_train_reports_held_out_metrics_then_refits_on_all_rows(flowers, tmp_path):
    flowers.to_parquet(tmp_path / "f.parquet")
    args = ["train", tmp_path / "f.parquet", "-y", "species", "--reg-strength", "1e-3",
            "--test-size", "0.25", "--random-state", "3"]  # fmt: skip
    out = run(*args, "--model", tmp_path / "m" / "f.luce", "--loss-plot", tmp_path / "loss.png").stdout
    assert "90 for training, 30 held out" in out and "refitted on all 120 rows" in out
    accuracy = float(re.search(rf"accuracy\s*│\s*({NUMBER})", out).group(1))
    info = read_metadata(tmp_path / "m" / "f.luce")["user"]["luce_cli"]
    assert info["test_metrics"]["n_samples"] == 30
    assert accuracy == pytest.approx(info["test_metrics"]["accuracy"], abs=5e-5)
    assert info["n_train"] == 120 and info["refit"] is True
    for name in ("log-loss", "F1 (macro)", "majority class", "expected calibration error"):
        assert name in out
    for species in SPECIES:
        assert re.search(rf"│ {species}\s+│", out)  # the per-class table
    assert_png(tmp_path / "loss.png")
    # The saved model is the refit on every row: the same as a Python fit on all 120.
    raw = flowers.drop(columns="species")
    reference = sklearn_pipeline(luce.SoftmaxRegression(reg_strength=1e-3, random_state=3), NUMERIC, ["soil"])
    reference.fit(raw, flowers["species"])
    np.testing.assert_allclose(
        luce.load(tmp_path / "m" / "f.luce").predict_proba(raw), reference.predict_proba(raw), atol=1e-7
    )
    out = run(*args, "--no-refit", "--model", tmp_path / "split.luce").stdout
    assert "refitted" not in out
    assert read_metadata(tmp_path / "split.luce")["user"]["luce_cli"]["n_train"] == 90


def test_train_progress_and_convergence_hint_names_cli_options(flowers, tmp_path):
    flowers.to_csv(tmp_path / "f.tsv", sep="\t", index=False)
    result = run(
        "train", tmp_path / "f.tsv", "--target", "species", "--solver", "gd", "--max-iter", "3",
        "--model", tmp_path / "f.luce",
    )  # fmt: skip
    assert re.search(r"training gd .* 3/3 iterations\s+loss", result.stdout)
    line = next(x for x in result.stderr.splitlines() if "did not converge" in x)
    assert line.startswith("luce train: warning: SoftmaxRegression (solver='gd') did not converge")
    assert "--max-iter" in line and "--tol" in line and "--no-scale" in line


def test_train_options_reach_the_estimator(flowers, tmp_path):
    skewed = pd.concat([flowers, flowers[flowers.species == "setosa"]] * 2, ignore_index=True)
    skewed.to_csv(tmp_path / "f.csv", index=False)
    run("train", tmp_path / "f.csv", "-y", "species", "--class-weight", "balanced", "--tol", "1e-6",
        "--no-scale", "--test-size", "0", "-m", tmp_path / "m.luce")  # fmt: skip
    model = luce.load(tmp_path / "m.luce")
    assert model[-1].class_weight == "balanced" and model[-1].tol == 1e-6
    raw = skewed.drop(columns="species")
    reference = luce.SoftmaxRegression(class_weight="balanced", tol=1e-6, random_state=0)
    numeric = raw[NUMERIC].to_numpy()  # --no-scale: numbers as they are
    onehot = (raw["soil"].to_numpy()[:, None] == np.array(["clay", "loam", "sand"])).astype(float)
    reference.fit(np.hstack([numeric, onehot]), skewed["species"])
    np.testing.assert_allclose(model[-1].coef_, reference.coef_, rtol=1e-6, atol=1e-8)


def test_predict_csv_with_ids_confidence_and_probabilities(trained, flowers, tmp_path):
    folder, _ = trained
    new = flowers.drop(columns=["species"]).iloc[::7].copy()
    new.insert(0, "plant", [f"p{i}" for i in range(len(new))])
    new.to_csv(tmp_path / "new.csv", index=False)
    out = table(
        run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--proba", "--id", "plant").stdout
    )
    assert list(out.columns) == ["plant", "prediction", "confidence", *(f"proba_{s}" for s in SPECIES)]
    model = luce.load(folder / "flowers.luce")
    expected = model.predict_proba(new)
    np.testing.assert_allclose(out[[f"proba_{s}" for s in SPECIES]].to_numpy(), expected, rtol=1e-12)
    assert out["prediction"].tolist() == model.predict(new).tolist()
    np.testing.assert_allclose(out["confidence"], expected.max(axis=1), rtol=1e-12)
    assert out["plant"].tolist() == new["plant"].tolist()


def test_predict_parquet_to_parquet_and_tsv(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.drop(columns=["species"]).to_parquet(tmp_path / "new.parquet")
    out = run(
        "predict", folder / "flowers.luce", tmp_path / "new.parquet", "-o", tmp_path / "p" / "out.parquet"
    )
    assert "wrote 120 predictions" in out.stdout
    result = pd.read_parquet(tmp_path / "p" / "out.parquet")
    assert list(result.columns) == ["prediction", "confidence"]
    assert result["prediction"].tolist() == luce.load(folder / "flowers.luce").predict(flowers).tolist()
    run("predict", folder / "flowers.luce", tmp_path / "new.parquet", "--proba", "-o", tmp_path / "out.tsv")
    tsv = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    np.testing.assert_allclose(tsv.filter(like="proba_").sum(axis=1), 1.0, rtol=1e-12)


def test_compressed_csv_in_and_out(trained, flowers, tmp_path):
    folder, _ = trained
    flowers.drop(columns=["species"]).to_csv(tmp_path / "new.csv.gz", index=False)
    run("predict", folder / "flowers.luce", tmp_path / "new.csv.gz", "-o", tmp_path / "out.tsv.bz2")
    result = pd.read_csv(tmp_path / "out.tsv.bz2", sep="\t")
    assert result["prediction"].tolist() == luce.load(folder / "flowers.luce").predict(flowers).tolist()


def test_unseen_category_encodes_as_zeros(trained, flowers, tmp_path):
    folder, _ = trained
    new = flowers.drop(columns=["species"]).head(4).copy()
    new.loc[new.index[:2], "soil"] = "peat"
    new.to_csv(tmp_path / "new.csv", index=False)
    out = table(run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--proba").stdout)
    X = encode(new, flowers)
    assert X[:2, -3:].sum() == 0  # the hand encoding of an unseen category
    reference = luce.SoftmaxRegression(reg_strength=1e-3, tol=1e-10, max_iter=1000, random_state=0).fit(
        encode(flowers, flowers), flowers["species"]
    )
    np.testing.assert_allclose(out.filter(like="proba_").to_numpy(), reference.predict_proba(X), atol=1e-6)


def test_evaluate_reads_the_target_from_the_model_file(trained, flowers, tmp_path):
    folder, _ = trained
    test = flowers.iloc[1::2]  # 60 rows, all three classes
    test.to_csv(tmp_path / "test.csv", index=False)
    out = run(
        "evaluate", folder / "flowers.luce", tmp_path / "test.csv", "--plots", tmp_path / "report"
    ).stdout
    model = luce.load(folder / "flowers.luce")
    proba, pred = model.predict_proba(test), model.predict(test)

    def value(name):
        return float(re.search(rf"{re.escape(name)}\s*│\s*({NUMBER})", out).group(1))

    assert value("accuracy") == pytest.approx(accuracy_score(test["species"], pred), abs=5e-5)
    assert value("log-loss") == pytest.approx(
        log_loss(test["species"], proba, labels=model.classes_), abs=5e-5
    )
    assert value("F1 (macro)") == pytest.approx(f1_score(test["species"], pred, average="macro"), abs=5e-5)
    assert value("accuracy of always the majority class") == pytest.approx(20 / 60, abs=5e-5)
    assert value("samples") == 60 and "ROC-AUC" not in out  # three classes
    cm = confusion_matrix(test["species"], pred, labels=SPECIES)
    for k, species in enumerate(SPECIES):
        assert re.search(rf"│ {species}\s+│\s+{cm[k, 0]} │\s+{cm[k, 1]} │\s+{cm[k, 2]} │", out)
    assert_png(tmp_path / "report" / "confusion-matrix.png")
    assert_png(tmp_path / "report" / "reliability-diagram.png")


def test_evaluate_two_classes_reports_auc(flowers, tmp_path):
    two = flowers[flowers.species != "setosa"]
    two.to_csv(tmp_path / "two.csv", index=False)
    run("train", tmp_path / "two.csv", "-y", "species", "--test-size", "0", "-m", tmp_path / "two.luce")
    out = run("evaluate", tmp_path / "two.luce", tmp_path / "two.csv").stdout
    p = luce.load(tmp_path / "two.luce").predict_proba(two)[:, 1]
    positive = two["species"] == "virginica"
    roc = float(re.search(rf"ROC-AUC\s*│\s*({NUMBER})", out).group(1))
    pr = float(re.search(rf"PR-AUC \(average precision\)\s*│\s*({NUMBER})", out).group(1))
    assert roc == pytest.approx(roc_auc_score(positive, p), abs=5e-5)
    assert pr == pytest.approx(average_precision_score(positive, p), abs=5e-5)


def test_a_python_sigmoid_pipeline_with_a_03_cut_predicts_the_same_in_the_cli(tmp_path, rng):
    X = rng.standard_normal((400, 3))
    y = np.where(X[:, 0] + 0.8 * rng.standard_normal(400) > 0.6, "yes", "no")
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The decision cut is being renamed threshold -> decision_threshold: use whichever this version has.
    cut = (
        "decision_threshold" if "decision_threshold" in luce.SigmoidRegression().get_params() else "threshold"
    )
    sigmoid = luce.SigmoidRegression(**{cut: 0.3})
    model = make_pipeline(StandardScaler(), sigmoid).fit(df[["a", "b", "c"]], y)
    luce.save(model, tmp_path / "cut.luce")
    df.to_csv(tmp_path / "d.csv", index=False)
    out = table(run("predict", tmp_path / "cut.luce", tmp_path / "d.csv").stdout)
    p = model.predict_proba(df[["a", "b", "c"]])[:, 1]
    expected = np.where(p > 0.3, "yes", "no")  # the 0.3 cut, applied by hand
    assert (expected != np.where(p > 0.5, "yes", "no")).sum() > 10  # the cut matters on these rows
    assert out["prediction"].tolist() == expected.tolist()
    evaluated = run("evaluate", tmp_path / "cut.luce", tmp_path / "d.csv", "--target", "label").stdout
    accuracy = float(re.search(rf"accuracy\s*│\s*({NUMBER})", evaluated).group(1))
    assert accuracy == pytest.approx(np.mean(expected == y), abs=5e-5)


def test_multilabel_from_the_cli(tmp_path, rng):
    n = 300
    df = pd.DataFrame({"x1": rng.standard_normal(n), "x2": rng.standard_normal(n),
                       "colour": rng.choice(["red", "blue"], n)})  # fmt: skip
    df["tall"] = (df.x1 + 0.3 * rng.standard_normal(n) > 0).astype(int)
    df["blue"] = np.where((df.colour == "blue") ^ (rng.random(n) < 0.05), "true", "false")
    df.to_csv(tmp_path / "tags.csv", index=False)
    out = run("train", tmp_path / "tags.csv", "-y", "tall", "-y", "blue", "-m", tmp_path / "tags.luce").stdout
    assert "2 labels" in out and "subset accuracy" in out
    model = luce.load(tmp_path / "tags.luce")
    assert type(model[-1]).__name__ == "SigmoidRegression" and model[-1].multilabel_
    assert model[0].transformers_[0][2] == ["x1", "x2"]  # neither target is a feature
    Y = np.column_stack([df["tall"], df["blue"] == "true"]).astype(int)
    reference = sklearn_pipeline(
        luce.SigmoidRegression(reg_strength=1e-4, random_state=0), ["x1", "x2"], ["colour"]
    )
    reference.fit(df[["x1", "x2", "colour"]], Y)
    predicted = table(run("predict", tmp_path / "tags.luce", tmp_path / "tags.csv", "--proba").stdout)
    assert list(predicted.columns) == ["tall", "blue", "confidence", "proba_tall", "proba_blue"]
    np.testing.assert_array_equal(predicted[["tall", "blue"]].to_numpy(), reference.predict(df))
    p = reference.predict_proba(df)
    np.testing.assert_allclose(predicted[["proba_tall", "proba_blue"]], p, atol=1e-6)
    pred = reference.predict(df)
    np.testing.assert_allclose(predicted["confidence"], np.where(pred == 1, p, 1 - p).prod(axis=1), atol=1e-6)
    evaluated = run("evaluate", tmp_path / "tags.luce", tmp_path / "tags.csv").stdout
    subset = float(re.search(rf"subset accuracy \(all labels right\)\s*│\s*({NUMBER})", evaluated).group(1))
    assert subset == pytest.approx(accuracy_score(Y, pred), abs=5e-5)


def test_reg_strength_auto_picks_the_cross_validated_best(flowers, tmp_path):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    flowers.to_csv(tmp_path / "f.csv", index=False)
    out = run("train", tmp_path / "f.csv", "-y", "species", "--reg-strength", "auto", "--test-size", "0",
              "-m", tmp_path / "auto.luce").stdout  # fmt: skip
    grid = np.logspace(1, -6, 8)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    raw, y = flowers.drop(columns="species"), flowers["species"]
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # weak penalties on separable folds
        for lam in grid:  # each fit from scratch (the CLI warm-starts along the grid)
            pipeline = sklearn_pipeline(luce.SoftmaxRegression(reg_strength=lam), NUMERIC, ["soil"])
            scores.append(-cross_val_score(pipeline, raw, y, cv=folds, scoring="neg_log_loss").mean())
    best = grid[int(np.argmin(scores))]
    assert luce.load(tmp_path / "auto.luce")[-1].reg_strength == pytest.approx(best)
    assert (
        "← chosen" in out
        and read_metadata(tmp_path / "auto.luce")["user"]["luce_cli"]["reg_strength"] == best
    )


# --------------------------------------------------------------------------------------------------
# Raw tables: formats, IDs, dates, strings, missing values
# --------------------------------------------------------------------------------------------------


def messy(rng, n=240):
    """A table as users have them: an ID column, a date, strings with gaps, numbers with gaps."""
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "signup": pd.date_range("2024-01-01", periods=n, freq="D"),
        "age": rng.integers(18, 80, n).astype(float),
        "income": rng.normal(50, 15, n).round(2),
        "city": rng.choice(["Paris", "Rome", "Oslo"], n).astype(object),
    })  # fmt: skip
    df.loc[rng.random(n) < 0.1, "age"] = np.nan
    df.loc[rng.random(n) < 0.1, "city"] = None
    score = (df.age.fillna(45) - 45) / 15 + (df.income - 50) / 15 + (df.city == "Paris") * 1.0
    df["churn"] = np.where(score + rng.normal(0, 0.7, n) > 0, "yes", "no")
    return df


def test_csv_and_parquet_give_identical_predictions(tmp_path, rng):
    df = messy(rng)
    df["note"] = rng.choice(["", "gift", "rush"], len(df))  # "" is missing in both formats
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    out = run("train", tmp_path / "t.csv", "-y", "churn", "-m", tmp_path / "m.luce").stdout
    assert "note: left out 'customer_id' (ID-like), 'signup' (date)" in out
    from_csv = run("predict", tmp_path / "m.luce", tmp_path / "t.csv", "--proba").stdout
    from_parquet = run("predict", tmp_path / "m.luce", tmp_path / "t.parquet", "--proba").stdout
    assert from_csv == from_parquet
    again = run("train", tmp_path / "t.parquet", "-y", "churn", "-m", tmp_path / "p.luce").stdout
    assert again.splitlines()[0] == out.splitlines()[0]
    assert run("predict", tmp_path / "p.luce", tmp_path / "t.csv", "--proba").stdout == from_csv


def test_python_and_cli_agree_on_a_raw_table(tmp_path, rng):
    df = messy(rng)
    df.to_csv(tmp_path / "t.csv", index=False)
    run("train", tmp_path / "t.csv", "-y", "churn", "--test-size", "0", "-m", tmp_path / "m.luce")
    model = luce.load(tmp_path / "m.luce")
    reference = sklearn_pipeline(luce.SoftmaxRegression(random_state=0), ["age", "income"], ["city"])
    reference.fit(df.drop(columns="churn"), df["churn"])
    cli = table(run("predict", tmp_path / "m.luce", tmp_path / "t.csv", "--id", "customer_id").stdout)
    assert cli["prediction"].tolist() == reference.predict(df).tolist() == model.predict(df).tolist()
    assert cli["customer_id"].tolist() == df["customer_id"].tolist()


def onnx_feed(session, df):
    """One (N, 1) tensor per graph input: floats (NaN when missing), strings ("" when missing)."""
    feed = {}
    for i in session.get_inputs():
        column = df[i.name]
        if i.type == "tensor(string)":
            feed[i.name] = np.array([["" if pd.isna(v) else str(v)] for v in column], dtype=object)
        else:
            feed[i.name] = column.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
    return feed


@pytest.mark.parametrize("kind", ["softmax", "multilabel"])
def test_python_cli_and_onnx_give_the_same_labels_on_a_raw_table(tmp_path, rng, kind):
    df = messy(rng)
    df["vip"] = (df.income > 60).astype(int)
    df.to_csv(tmp_path / "t.csv", index=False)
    targets = ["-y", "churn"] if kind == "softmax" else ["-y", "vip", "-y", "late"]
    if kind == "multilabel":
        df["late"] = (df.age.fillna(50) > 50).astype(int)
        df.to_csv(tmp_path / "t.csv", index=False)
    run("train", tmp_path / "t.csv", *targets, "--drop", "income" if kind == "multilabel" else "vip",
        "-m", tmp_path / "m.luce")  # fmt: skip
    out = run("export", tmp_path / "m.luce", "--onnx", tmp_path / "m.onnx").stdout
    assert "3 input(s)" in out
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert {i.name: i.type for i in session.get_inputs()} == {
        "age": "tensor(float)", "city": "tensor(string)",
        **({"income": "tensor(float)"} if kind == "softmax" else {"churn": "tensor(string)"}),
    }  # fmt: skip
    new = messy(np.random.default_rng(5), n=100)  # other rows, same kinds of gaps
    new.loc[:4, "city"] = "Berlin"  # a category never seen in training
    new.assign(vip=0, late=0).to_csv(tmp_path / "new.csv", index=False)
    label, proba = session.run(["label", "probabilities"], onnx_feed(session, new))
    model = luce.load(tmp_path / "m.luce")
    cli = table(run("predict", tmp_path / "m.luce", tmp_path / "new.csv", "--proba").stdout)
    if kind == "softmax":
        assert label.tolist() == model.predict(new).tolist() == cli["prediction"].tolist()
    else:
        np.testing.assert_array_equal(label, model.predict(new))
        np.testing.assert_array_equal(cli[["vip", "late"]].to_numpy(), label)
    np.testing.assert_allclose(proba, model.predict_proba(new), atol=1e-5)


def test_id_and_date_columns_can_be_named_back_in(tmp_path, rng):
    df = messy(rng).assign(visits=lambda d: np.arange(len(d)) % 7)
    df.to_csv(tmp_path / "t.csv", index=False)
    run("train", tmp_path / "t.csv", "-y", "churn", "--features", "age,city", "--features", "visits",
        "-m", tmp_path / "m.luce")  # fmt: skip
    numeric, categorical = luce.load(tmp_path / "m.luce")[0].transformers_[0][2], ["city"]
    assert (
        numeric == ["age", "visits"] and luce.load(tmp_path / "m.luce")[0].transformers_[1][2] == categorical
    )
    run("train", tmp_path / "t.csv", "-y", "churn", "--drop", "income", "-m", tmp_path / "d.luce")
    assert "income" not in luce.load(tmp_path / "d.luce")[0].transformers_[0][2]
    fails("train", tmp_path / "t.csv", "-y", "churn", "--features", "signup", code=1, match="holds dates")
    fails(
        "train", tmp_path / "t.csv", "-y", "churn", "--drop", "nope", code=1, match="drop: no column 'nope'"
    )


def test_numbers_are_parsed_strictly(tmp_path, trained, flowers):
    folder, _ = trained
    df = flowers.drop(columns="species").head(3).astype({"sepal_length": object})
    df.loc[0, "sepal_length"] = "1_000"
    df.to_csv(tmp_path / "p.csv", index=False)
    fails("predict", folder / "flowers.luce", tmp_path / "p.csv", code=1,
          match=r"column 'sepal_length' was numeric in training but holds .*'1_000'")  # fmt: skip
    df.loc[0, "sepal_length"] = "\u0663"  # ARABIC-INDIC DIGIT THREE
    df.to_csv(tmp_path / "p.csv", index=False)
    fails("predict", folder / "flowers.luce", tmp_path / "p.csv", code=1, match="holds non-numbers")


def test_semicolon_csv_gets_a_hint_and_sep_reads_it(flowers, tmp_path):
    flowers.to_csv(tmp_path / "f.csv", sep=";", index=False)
    fails("train", tmp_path / "f.csv", "-y", "species", code=1, match=r"separated by ';'; pass --sep ';'")
    run("train", tmp_path / "f.csv", "-y", "species", "--sep", ";", "-m", tmp_path / "m.luce")


# --------------------------------------------------------------------------------------------------
# Writes: never an input, never a folder, never a formula
# --------------------------------------------------------------------------------------------------


def test_train_refuses_to_overwrite_its_input_before_any_work(flowers, tmp_path):
    flowers.to_csv(tmp_path / "data.csv", index=False)
    before = (tmp_path / "data.csv").read_bytes()
    result = fails("train", tmp_path / "data.csv", "-y", "species", "-m", tmp_path / "data.csv", code=1,
                   match="is one of this command's inputs")  # fmt: skip
    assert (tmp_path / "data.csv").read_bytes() == before and "training" not in result
    (tmp_path / "folder").mkdir()
    out = run("train", tmp_path / "data.csv", "-y", "species", "-m", tmp_path / "folder", code=1)
    assert "is a folder" in out.stderr and out.stdout == ""  # refused before reading or training
    fails("train", tmp_path / "data.csv", "-y", "species", "-m", ".", code=1, match=r"--model \. is a folder")
    fails("train", tmp_path / "data.csv", "-y", "species", "-m", tmp_path / "m.luce",
          "--loss-plot", tmp_path / "data.csv", code=1, match="--loss-plot .* inputs")  # fmt: skip


def test_predict_export_calibrate_refuse_to_overwrite_inputs(trained, flowers, tmp_path):
    folder, _ = trained
    model = tmp_path / "m.luce"
    model.write_bytes((folder / "flowers.luce").read_bytes())
    flowers.to_csv(tmp_path / "data.csv", index=False)
    saved = {p: p.read_bytes() for p in (model, tmp_path / "data.csv")}
    fails("predict", model, tmp_path / "data.csv", "-o", tmp_path / "data.csv", code=1, match="inputs")
    fails("predict", model, tmp_path / "data.csv", "-o", model, code=1, match="inputs")
    fails("predict", model, tmp_path / "data.csv", "-o", tmp_path, code=1, match="is a folder")
    fails("export", model, "--onnx", model, code=1, match="inputs")
    fails("calibrate", model, tmp_path / "data.csv", "-o", tmp_path / "data.csv", code=1, match="inputs")
    fails("calibrate", model, tmp_path / "data.csv", code=1, match=r"--output PATH .* or --in-place")
    assert {p: p.read_bytes() for p in saved} == saved


def test_formula_like_cells_are_escaped_in_csv_output(trained, flowers, tmp_path):
    folder, _ = trained
    new = flowers.drop(columns="species").head(4).copy()
    new.insert(0, "who", ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "plain"])
    new.to_csv(tmp_path / "new.csv", index=False)
    out = table(run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--id", "who").stdout)
    assert out["who"].tolist() == ['\'=HYPERLINK("http://x","y")', "'+1", "'@SUM(A1)", "plain"]
    run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--id", "who", "-o", tmp_path / "o.parquet")
    assert pd.read_parquet(tmp_path / "o.parquet")["who"].tolist() == new["who"].tolist()  # not a CSV


def test_a_missing_extra_is_one_line(monkeypatch, capsys):
    import importlib.util

    import luce.cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "typer" else real(name, *a)
    )
    with pytest.raises(SystemExit) as exit_:
        luce.cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "typer" in err and "pip install 'luce[cli]'" in err


# --------------------------------------------------------------------------------------------------
# luce info
# --------------------------------------------------------------------------------------------------


def test_info_shows_what_the_file_holds(trained, flowers):
    folder, _ = trained
    out = run("info", folder / "flowers.luce").stdout
    model = luce.load(folder / "flowers.luce")
    assert "3-class classification (setosa, versicolor, virginica)" in out
    assert "target column(s): species" in out and "trained on 120 of 120 rows" in out
    assert re.search(r"│ soil\s+│ one-hot: clay, loam, sand", out)
    assert re.search(r"│ petal_length\s+│ number, missing → median, standardised", out)
    coef = model[-1].coef_
    names = model[:-1].get_feature_names_out()
    top = names[np.argmax(np.abs(coef).max(axis=0))]
    largest = re.search(r"Largest weights.*?\n.*?\n.*?\n.*?\n│ (\S+)\s+│\s+(" + NUMBER + ")", out, re.S)
    assert largest.group(1) == top
    assert float(largest.group(2)) == pytest.approx(np.abs(coef).max(), rel=1e-3)


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
    (tmp_path / "x.csv").write_text("a\n1\n")
    fails("predict", tmp_path / "nope.luce", tmp_path / "x.csv", code=1,
          match=r"No such file or directory: .*nope\.luce")  # fmt: skip


def test_unknown_format(csv):
    path = csv("data.xlsx", text="whatever")
    fails("train", path, "--target", "y", code=1, match=r"unknown table format '\.xlsx' .* use \.csv, \.tsv")


def test_missing_target_column(csv, flowers):
    path = csv("f.csv", flowers)
    fails(
        "train", path, "--target", "specie", code=1, match=r"no column 'specie' in .*did you mean 'species'\?"
    )


def test_missing_values_are_imputed_with_the_training_median(csv, flowers, tmp_path):
    df = flowers.copy()
    df.loc[[2, 10], "sepal_width"] = np.nan
    df.loc[5, "petal_length"] = np.nan
    run("train", csv("f.csv", df), "--target", "species", "--test-size", "0", "--reg-strength", "1e-3",
        *TIGHT, "--model", tmp_path / "m.luce")  # fmt: skip
    new = df.drop(columns=["species"]).head(12)
    out = table(run("predict", tmp_path / "m.luce", csv("p.csv", new), "--proba").stdout)
    reference = luce.SoftmaxRegression(reg_strength=1e-3, tol=1e-10, max_iter=1000, random_state=0).fit(
        encode(df, df), df["species"]
    )
    np.testing.assert_allclose(out.filter(like="proba_"), reference.predict_proba(encode(new, df)), atol=1e-6)


def test_infinite_values_are_refused(trained, csv, flowers):
    df = flowers.drop(columns=["species"]).head(5).copy()
    df.loc[1, "petal_width"] = np.inf
    fails("predict", trained[0] / "flowers.luce", csv("p.csv", df), code=1,
          match=r"'petal_width' .* infinite values in row 2")  # fmt: skip
    train = flowers.copy()
    train.loc[3, "sepal_length"] = -np.inf
    fails("train", csv("t.csv", train), "--target", "species", code=1,
          match=r"column 'sepal_length' of .*t.csv has infinite values in row 4")  # fmt: skip


def test_target_with_one_class(csv, flowers):
    df = flowers.assign(species="setosa")
    fails("train", csv("f.csv", df), "--target", "species", code=1,
          match=r"'species' .* has only one class \('setosa'\); a classifier needs at least two")  # fmt: skip


def test_target_with_missing_labels(csv, flowers):
    df = flowers.copy()
    df.loc[4, "species"] = np.nan
    fails("train", csv("f.csv", df), "--target", "species", code=1,
          match=r"target column 'species' has missing values in row 5")  # fmt: skip


def test_predict_columns_missing(trained, csv, flowers):
    df = flowers.drop(columns=["species", "petal_width", "soil"]).assign(colour="red", height=1.0)
    fails("predict", trained[0] / "flowers.luce", csv("p.csv", df), code=1,
          match=r"lacks the column\(s\) 'petal_width', 'soil' the model was trained on")  # fmt: skip


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
    bad.write_bytes(good[: len(good) // 2])
    fails("predict", bad, data, code=1, match=r"bad\.luce is truncated")
    fails("predict", data, data, code=1, match=r"p\.csv is not a luce model file")
    fails("export", bad, "--onnx", tmp_path / "x.onnx", code=1, match="is truncated")


def test_evaluate_with_unknown_labels(trained, csv, flowers):
    df = flowers.head(6).copy()
    df.loc[[0, 1], "species"] = "rosa"
    fails("evaluate", trained[0] / "flowers.luce", csv("t.csv", df), code=1,
          match=r"labels the model never saw: 'rosa' \(2 rows\)")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "x.csv"], r"Missing option '--target'"),
        (["train", "x.csv", "--target", "y", "--impute", "max"], r"'--impute'.*'max'"),
        (["train", "x.csv", "--target", "y", "--test-size", "1.5"], r"'--test-size'"),
        (["train", "x.csv", "--target", "y", "--solver", "adam"], r"'--solver'"),
        (["train", "x.csv", "--target", "y", "--max-iter", "0"], r"'--max-iter'"),
        (["train", "x.csv", "--target", "y", "--reg-strength", "lots"], r"--reg-strength.*'auto'"),
        (["train", "x.csv", "--target", "y", "--class-weight", "heavy"], r"'--class-weight'"),
        (["export", "m.luce"], r"Missing option '--onnx'"),
        (["predict", "m.luce"], r"(?i)Missing argument 'DATA'"),
    ],
    ids=[
        "no-target",
        "impute",
        "test-size",
        "solver",
        "max-iter",
        "reg",
        "class-weight",
        "no-onnx",
        "no-data",
    ],
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


# --------------------------------------------------------------------------------------------------
# docs/cli.md: its table generator and every command run on that table work as printed
# --------------------------------------------------------------------------------------------------


def test_the_documented_commands_run_on_the_documented_table(tmp_path, monkeypatch):
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    script = re.search(r"<!-- generate-customers.*?-->\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "docs/cli.md", "exec"), {})
    commands = [line[len("$ luce ") :] for line in text.splitlines() if line.startswith("$ luce ")]
    on_table = [c for c in commands if "customers" in c or "churn" in c]
    assert len(on_table) >= 7
    for command in on_table:
        result = run(*shlex.split(command))
        assert "error" not in result.stderr, command
    assert {"train", "predict", "evaluate", "calibrate", "info", "export"} <= {c.split()[0] for c in on_table}
    out = run("predict", "churn.luce", "customers-new.parquet", "--id", "customer_id").stdout
    documented = re.search(r"^(customer_id,prediction,confidence\n(?:C\d+,.*\n){2})", text, re.M).group(1)
    printed = out.splitlines()[:3]
    assert printed[0] == documented.splitlines()[0]
    for row, doc_row in zip(printed[1:], documented.splitlines()[1:], strict=True):
        (cid, label, p), (doc_cid, doc_label, doc_p) = row.split(","), doc_row.split(",")
        # the documented output, as printed, up to the last digits a BLAS build may change
        assert (cid, label) == (doc_cid, doc_label) and float(p) == pytest.approx(float(doc_p), rel=1e-9)


@pytest.mark.parametrize(
    ("argv0", "on_path", "expected"),
    [
        (".venv/bin/luce", None, ".venv/bin/luce"),
        ("/usr/bin/luce", "/usr/bin/luce", "luce"),
        ("luce", None, "luce"),
    ],
)
def test_the_demo_names_the_luce_that_ran_it(monkeypatch, argv0, on_path, expected):
    import shutil

    from luce.cli import _demo

    monkeypatch.setattr("sys.argv", [argv0, "demo"])
    monkeypatch.setattr(shutil, "which", lambda name: on_path)
    assert _demo._this_command() == expected


def test_info_on_models_saved_from_python(tmp_path, rng):
    X = rng.normal(size=(120, 3))
    # Noisy labels: a temperature needs rows the model gets wrong (separated rows keep T = 1 and warn).
    y = np.where(X[:, 0] + 0.3 * X[:, 1] + rng.normal(scale=0.5, size=120) > 0, "up", "down")
    sigmoid = luce.SigmoidRegression().fit(X, y)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    models = {
        "bare": luce.SoftmaxRegression().fit(X, y),
        "wrapped": luce.TemperatureScaling(sigmoid).fit(X, y),
        "tree": luce.HierarchicalSoftmaxClassifier().fit(X, y),
        "multilabel": luce.SigmoidRegression().fit(X, Y),
    }
    for name, model in models.items():
        luce.save(model, tmp_path / f"{name}.luce")
        out = run("info", tmp_path / f"{name}.luce").stdout
        assert type(model).__name__ in out
        linear = {"wrapped": sigmoid}.get(name, model)
        if hasattr(linear, "coef_"):
            top = re.search(r"│ (x\d)\s+│\s+(" + NUMBER + ")", out)
            assert top.group(1) == f"x{np.argmax(np.abs(linear.coef_).max(axis=0))}"
            assert float(top.group(2)) == pytest.approx(np.abs(linear.coef_).max(), rel=1e-3)
    assert "multi-label (2 labels: label_0, label_1)" in run("info", tmp_path / "multilabel.luce").stdout
    assert "no single weight matrix" in run("info", tmp_path / "tree.luce").stdout


def test_a_column_with_no_values_is_left_out_in_training_and_imputed_in_prediction(
    trained, flowers, tmp_path
):
    folder, _ = trained
    df = flowers.assign(comment=None)  # written as an empty column: no type in the file
    df.to_csv(tmp_path / "t.csv", index=False)
    out = run("train", tmp_path / "t.csv", "-y", "species", "-m", tmp_path / "m.luce").stdout
    assert "'comment' (empty)" in out
    new = flowers.drop(columns="species").head(6).assign(petal_width=np.nan, soil=None)
    new.to_csv(tmp_path / "new.csv", index=False)
    predicted = table(run("predict", folder / "flowers.luce", tmp_path / "new.csv", "--proba").stdout)
    model = luce.load(folder / "flowers.luce")
    np.testing.assert_allclose(
        predicted.filter(like="proba_").to_numpy(), model.predict_proba(new), rtol=1e-12
    )
