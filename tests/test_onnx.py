"""ONNX export, run in onnxruntime and compared with the model: identical labels, probabilities within 1e-5.

The linear softmax model here is a stand-in whose weights come from scikit-learn's LogisticRegression
and whose probabilities come from scipy.special.softmax, so the exporter is checked against code it
does not share.
"""

import copy
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import scipy.special
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import luce
from luce.io import register_estimator


@register_estimator(name="OnnxTestLinearSoftmax", export="linear_softmax")
class LinearSoftmax:
    """softmax((X @ coef_.T + intercept_) / temperature_) with weights fitted by scikit-learn."""

    def __init__(self, C=1.0, temperature=1.0):
        self.C = C
        self.temperature = temperature

    def get_params(self, deep=True):
        return {"C": self.C, "temperature": self.temperature}

    def fit(self, X, y, feature_names=None):
        self.classes_, index = np.unique(y, return_inverse=True)
        lr = LogisticRegression(C=self.C, max_iter=1000).fit(X, index)
        if lr.coef_.shape[0] == 1:  # binary: softmax([0, z]) == sigmoid(z)
            self.coef_ = np.vstack([np.zeros_like(lr.coef_), lr.coef_])
            self.intercept_ = np.array([0.0, lr.intercept_[0]])
        else:
            self.coef_, self.intercept_ = lr.coef_, lr.intercept_
        self.temperature_ = float(self.temperature)
        self.n_features_in_ = X.shape[1]
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        return self

    def predict_proba(self, X):
        return scipy.special.softmax((X @ self.coef_.T + self.intercept_) / self.temperature_, axis=1)

    def predict(self, X):
        return self.classes_[np.argmax(X @ self.coef_.T + self.intercept_, axis=1)]


@register_estimator(name="OnnxTestNotSoftmax")
class NotSoftmax(LinearSoftmax):
    """Registered for model files, but not declared exportable as a linear softmax."""


NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _run(path, X, dtype=np.float32):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"X": np.asarray(X, dtype=dtype)})
    return label, proba


def _check(model, path, X, atol=1e-5, dtype=np.float32):
    label, proba = _run(path, X, dtype)
    assert proba.dtype == dtype and proba.shape == (len(X), len(model.classes_))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=atol)
    assert label.tolist() == model.predict(X).tolist()
    return label, proba


LABELINGS = {
    "int": lambda y: y,
    "str": lambda y: NAMES[y],
    "object-str": lambda y: NAMES[y].astype(object),
    "negative-int": lambda y: y * 7 - 30,
    "float": lambda y: y / 4.0,
}


@pytest.fixture(scope="module")
def digit_models(digits):
    """One fit per labelling (the weights do not depend on the labels' type, only their order)."""
    X, y = digits
    return {name: LinearSoftmax().fit(X[:1200], relabel(y[:1200])) for name, relabel in LABELINGS.items()}


@pytest.mark.parametrize("labeling", LABELINGS.keys())
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_digits_test_set_matches(tmp_path, digits, digit_models, labeling, temperature):
    X, y = digits
    model = copy.deepcopy(digit_models[labeling])
    model.temperature = model.temperature_ = temperature
    path = luce.export_onnx(model, tmp_path / "digits.onnx")
    assert path == tmp_path / "digits.onnx"
    label, _ = _check(model, path, X[1200:])
    assert type(label.tolist()[0]) is type(np.asarray(LABELINGS[labeling](y)).tolist()[0])  # int, str, float


def test_float64_graph_matches_to_rounding(tmp_path, digits):
    X, y = digits
    model = LinearSoftmax(temperature=0.7).fit(X[:1200], NAMES[y[:1200]])
    path = luce.export_onnx(model, tmp_path / "d64.onnx", dtype="float64")
    _check(model, path, X[1200:], atol=1e-12, dtype=np.float64)


@pytest.mark.parametrize("labels", [np.array([False, True]), np.array(["no", "yes"]), np.array([0, 1])])
def test_binary(tmp_path, rng, labels):
    X = rng.normal(size=(200, 5))
    y = labels[(X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)]
    model = LinearSoftmax(C=10.0).fit(X[:150], y[:150])
    _check(model, luce.export_onnx(model, tmp_path / "b.onnx"), X[150:])


def test_large_logits_do_not_overflow(tmp_path, rng):
    X = rng.normal(size=(100, 3))
    y = np.array(["a", "b", "c"])[np.argmax(X, axis=1)]
    model = LinearSoftmax(C=1e6).fit(X, y)
    model.coef_ = model.coef_ * 1000.0  # logits in the thousands: exp overflows without the max shift
    _, proba = _check(model, luce.export_onnx(model, tmp_path / "big.onnx"), X)
    assert np.isfinite(proba).all()


def test_metadata_and_graph(tmp_path, digits):
    X, y = digits
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    model = LinearSoftmax(temperature=2.5).fit(X[:500], NAMES[y[:500]], feature_names=names)
    path = luce.export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == sorted(NAMES.tolist())
    assert props["classes_dtype"] == "<U5"
    assert json.loads(props["feature_names"]) == names
    assert float(props["temperature"]) == 2.5
    assert props["estimator"] == "OnnxTestLinearSoftmax" and props["luce_version"] == luce.__version__
    assert props["n_features"] == "64"
    assert [n.op_type for n in proto.graph.node] == ["MatMul", "Add", "Softmax", "ArgMax", "Gather"]
    assert [i.name for i in proto.graph.input] == ["X"]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    assert proto.producer_name == "luce"
    assert proto.opset_import[0].version == 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # atomic write left nothing behind


def test_batch_of_one_and_empty_batch(tmp_path, digits):
    X, y = digits
    model = LinearSoftmax().fit(X[:300], y[:300])
    path = luce.export_onnx(model, tmp_path / "m.onnx")
    _check(model, path, X[:1])
    label, proba = _run(path, X[:0])
    assert label.shape == (0,) and proba.shape == (0, 10)


def test_newer_opset(tmp_path, digits):
    X, y = digits
    model = LinearSoftmax().fit(X[:300], NAMES[y[:300]])
    path = luce.export_onnx(model, tmp_path / "m.onnx", opset=19)
    assert onnx.load(str(path)).opset_import[0].version == 19
    _check(model, path, X[300:400])


def test_export_errors(tmp_path, digits):
    X, y = digits
    with pytest.raises(
        TypeError, match=r"model must be a linear softmax or sigmoid model .* got LogisticRegression"
    ):
        luce.export_onnx(LogisticRegression(), tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="got NotSoftmax"):
        luce.export_onnx(NotSoftmax().fit(X[:100], y[:100]), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match=r"model is not fitted \(no coef_, intercept_, classes_\)"):
        luce.export_onnx(LinearSoftmax(), tmp_path / "x.onnx")
    model = LinearSoftmax().fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'int32'"):
        luce.export_onnx(model, tmp_path / "x.onnx", dtype="int32")
    with pytest.raises(ValueError, match="opset must be an int >= 13, got 11"):
        luce.export_onnx(model, tmp_path / "x.onnx", opset=11)
    model.classes_ = np.array([1, "one", *range(8)], dtype=object)
    with pytest.raises(TypeError, match="classes_ mixes int, str; relabel"):
        luce.export_onnx(model, tmp_path / "x.onnx")
    model.classes_ = np.arange(9)
    with pytest.raises(
        ValueError, match=r"inconsistent: coef_ \(10, 64\), intercept_ \(10,\), classes_ \(9,\)"
    ):
        luce.export_onnx(model, tmp_path / "x.onnx")
    model.classes_ = np.arange(10)
    model.coef_ = np.where(np.arange(64) == 3, np.nan, model.coef_)
    with pytest.raises(ValueError, match="contain NaN or inf"):
        luce.export_onnx(model, tmp_path / "x.onnx")
    model = LinearSoftmax().fit(X[:100], y[:100])
    model.temperature_ = 0.0
    with pytest.raises(ValueError, match=r"temperature_ must be finite and > 0, got 0\.0"):
        luce.export_onnx(model, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        luce.export_onnx(LinearSoftmax().fit(X[:100], y[:100]), tmp_path / "no" / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_softmax_regression_digits_string_labels(tmp_path):
    """The real estimator, calibrated (temperature != 1), on the digits test split with string labels."""
    X_train, X_test, y_train, _ = luce.load_digits_split()
    model = luce.SoftmaxRegression(reg_strength=1e-3, random_state=0).fit(
        X_train[:1000], NAMES[y_train[:1000]]
    )
    model.calibrate(X_train[1000:], NAMES[y_train[1000:]])
    assert model.temperature_ != 1.0
    path = luce.export_onnx(model, tmp_path / "digits.onnx")
    label, proba = _run(path, X_test)
    assert label.tolist() == model.predict(X_test).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(X_test), rtol=0, atol=1e-5)
    label64, proba64 = _run(
        luce.export_onnx(model, tmp_path / "d64.onnx", dtype="float64"), X_test, np.float64
    )
    assert label64.tolist() == label.tolist()
    np.testing.assert_allclose(proba64, model.predict_proba(X_test), rtol=0, atol=1e-12)


def test_softmax_regression_binary_int_labels(tmp_path, rng):
    X = rng.normal(size=(300, 6))
    y = np.where(X @ rng.normal(size=6) + 0.3 * rng.normal(size=300) > 0, 7, -2)
    model = luce.SoftmaxRegression(random_state=0).fit(X[:200], y[:200])
    label, proba = _run(luce.export_onnx(model, tmp_path / "b.onnx"), X[200:])
    assert label.dtype == np.int64 and label.tolist() == model.predict(X[200:]).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(X[200:]), rtol=0, atol=1e-5)


# --- SigmoidRegression: its three modes, against formulas written here from its weights ---------------


def _sigmoid_cases(y):
    return {
        "multilabel": (np.column_stack([y % 2, y > 4, np.isin(y, [1, 7])]).astype(int), [0.5, 0.3, 0.7]),
        "binary": (np.where(y > 4, "big", "small"), 0.4),
        "one-vs-rest": (y, 0.5),
    }


@pytest.mark.parametrize("mode", ["multilabel", "binary", "one-vs-rest"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_regression_modes(tmp_path, digits, mode, dtype):
    X, y = digits
    X = X / 16
    Y, threshold = _sigmoid_cases(y)[mode]
    model = luce.SigmoidRegression(reg_strength=1e-2, threshold=threshold).fit(X, Y)
    session = ort.InferenceSession(
        str(luce.export_onnx(model, tmp_path / "m.onnx", dtype=dtype)), providers=["CPUExecutionProvider"]
    )
    label, proba = session.run(None, {"X": X.astype(dtype)})
    z = X @ model.coef_.T + model.intercept_
    s = scipy.special.expit(z)
    if mode == "multilabel":
        expected_proba, expected_label = s, (s > np.asarray(threshold)).astype(int)
    elif mode == "binary":
        expected_proba = np.column_stack([scipy.special.expit(-z[:, 0]), s[:, 0]])
        expected_label = model.classes_[(s[:, 0] > threshold).astype(int)]
    else:
        expected_proba = s / s.sum(axis=1, keepdims=True)
        expected_label = model.classes_[np.argmax(z, axis=1)]
    np.testing.assert_allclose(proba, expected_proba, atol=1e-5 if dtype == "float32" else 1e-12, rtol=0)
    np.testing.assert_array_equal(label, expected_label)
    np.testing.assert_array_equal(label, model.predict(X))
    assert label.dtype == (object if mode == "binary" else np.int64)
    assert proba.shape == ((len(X), 3) if mode == "multilabel" else (len(X), len(model.classes_)))


# --------------------------------------------------------------------------------------------------
# Pipelines: one input per raw column, the scikit-learn steps converted by skl2onnx
# --------------------------------------------------------------------------------------------------


def _table(rng, n=300):
    """Numbers with NaN, strings with None, an integer ID column (dropped by the model)."""
    pd = pytest.importorskip("pandas")
    width = rng.normal(size=n)
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n)
    size = rng.choice(np.array(["S", "M", "L"], dtype=object), size=n)
    score = width + 1.5 * (color == "red") - (size == "S") + 0.4 * rng.normal(size=n)
    y = np.where(score > 1.0, "high", np.where(score < -0.5, "low", "mid"))
    frame = pd.DataFrame(
        {"width": width, "color": color, "count": rng.integers(0, 9, n), "size": size, "id": np.arange(n)}
    )
    frame.loc[rng.choice(n, 20, replace=False), "width"] = np.nan
    frame.loc[rng.choice(n, 20, replace=False), "color"] = None
    test = frame.copy()
    test.loc[0, "color"] = "purple"  # unseen categories
    test.loc[1, "size"] = "XXL"
    test.loc[2, ["width", "count"]] = np.nan
    return frame, y, test


def _pipeline(final):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["width", "count"],
            ),
            (
                "strings",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["color", "size"],
            ),
        ]
    )
    return Pipeline([("pre", pre), ("model", final)])


def _feed(session, frame, dtype=np.float32):
    """The ONNX inputs for the rows of ``frame``: a missing string is "", a missing number NaN."""
    pd = pytest.importorskip("pandas")
    feed = {}
    for i in session.get_inputs():
        column = frame[i.name]
        if i.type == "tensor(string)":
            feed[i.name] = np.array([["" if pd.isna(v) else v] for v in column], dtype=object)
        else:
            feed[i.name] = column.to_numpy(dtype=dtype, na_value=np.nan).reshape(-1, 1)
    return feed


def _run_table(path, frame, dtype=np.float32):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["label", "probabilities"], _feed(session, frame, dtype))


PIPELINE_TARGETS = {
    "softmax-T": lambda y: (luce.SoftmaxRegression(reg_strength=1e-2), y),
    "sigmoid-binary-0.3": lambda y: (luce.SigmoidRegression(reg_strength=1e-2, threshold=0.3), y == "high"),
    "sigmoid-one-vs-rest": lambda y: (luce.SigmoidRegression(reg_strength=1e-2), y),
    "sigmoid-multilabel": lambda y: (
        luce.SigmoidRegression(reg_strength=1e-2, threshold=[0.5, 0.3]),
        np.column_stack([y == "high", y == "low"]).astype(int),
    ),
}


@pytest.mark.parametrize("target", PIPELINE_TARGETS.keys())
def test_pipeline_on_raw_table_matches_python(tmp_path, rng, target):
    frame, y, test = _table(rng)
    final, Y = PIPELINE_TARGETS[target](y)
    pipe = _pipeline(final).fit(frame, Y)
    if target == "softmax-T":
        pipe[-1].temperature_ = 2.5  # as calibrate sets it: folded into the weights
    path = luce.export_onnx(pipe, tmp_path / "p.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs == {  # "id" is dropped by the model: no input
        "width": "tensor(float)",
        "color": "tensor(string)",
        "count": "tensor(float)",
        "size": "tensor(string)",
    }
    label, proba = _run_table(path, test)
    np.testing.assert_allclose(proba, pipe.predict_proba(test), rtol=0, atol=1e-5)
    assert label.tolist() == pipe.predict(test).tolist()


def test_pipeline_float64_graph(tmp_path, rng):
    frame, y, test = _table(rng)
    pipe = _pipeline(luce.SoftmaxRegression(reg_strength=1e-2)).fit(frame, y)
    path = luce.export_onnx(pipe, tmp_path / "p64.onnx", dtype="float64")
    label, proba = _run_table(path, test, dtype=np.float64)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, pipe.predict_proba(test), rtol=0, atol=1e-12)
    assert label.tolist() == pipe.predict(test).tolist()


def test_pipeline_metadata_and_input_types(tmp_path, rng):
    frame, y, _ = _table(rng)
    pipe = _pipeline(luce.SoftmaxRegression(reg_strength=1e-2)).fit(frame, y)
    path = luce.export_onnx(pipe, tmp_path / "p.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["input_columns"]) == ["width", "color", "count", "size"]
    assert json.loads(props["input_types"]) == {
        "width": "number",
        "color": "string",
        "count": "number",
        "size": "string",
    }
    assert json.loads(props["classes"]) == ["high", "low", "mid"]
    assert props["estimator"] == "SoftmaxRegression"


def test_pipeline_export_errors(tmp_path, rng):
    from sklearn.linear_model import LogisticRegression as LR
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y, _ = _table(rng)
    pipe = _pipeline(luce.SoftmaxRegression()).fit(frame, y)
    with pytest.raises(ValueError, match=r"input_types names columns the model does not read: \['id'\]"):
        luce.export_onnx(pipe, tmp_path / "x.onnx", input_types={"id": "string"})
    with pytest.raises(ValueError, match="input_types values must be 'string' or 'number'"):
        luce.export_onnx(pipe, tmp_path / "x.onnx", input_types={"count": "int"})
    X = rng.normal(size=(50, 3))
    on_arrays = make_pipeline(StandardScaler(), luce.SoftmaxRegression()).fit(X, X[:, 0] > 0)
    with pytest.raises(ValueError, match="pipelines fitted on DataFrames only"):
        luce.export_onnx(on_arrays, tmp_path / "x.onnx", input_types={"0": "number"})
    not_luce = make_pipeline(StandardScaler(), LR()).fit(X, X[:, 0] > 0)
    with pytest.raises(TypeError, match="got LogisticRegression"):
        luce.export_onnx(not_luce, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="input_types applies to Pipelines only"):
        luce.export_onnx(pipe[-1], tmp_path / "x.onnx", input_types={"id": "string"})
    assert not (tmp_path / "x.onnx").exists()


def test_pipeline_fitted_on_an_array_has_one_input(tmp_path, rng):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder

    X = np.column_stack([rng.integers(0, 4, 200), rng.normal(size=200), rng.normal(size=200)])
    X[rng.choice(200, 10, replace=False), 1] = np.nan
    y = np.where(X[:, 0] == 2, "two", np.where(np.nan_to_num(X[:, 1]) > 0, "up", "down"))
    pre = ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore"), [0]),
            ("scale", make_pipeline(SimpleImputer(), MaxAbsScaler()), [1, 2]),
        ]
    )
    pipe = make_pipeline(pre, luce.SoftmaxRegression(reg_strength=1e-2)).fit(X, y)
    path = luce.export_onnx(pipe, tmp_path / "a.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [("X", "tensor(float)", 3)]
    test = X.copy()
    test[:3, 0] = [9.0, -1.0, 3.0]  # unseen categories
    label, proba = session.run(["label", "probabilities"], {"X": test.astype(np.float32)})
    np.testing.assert_allclose(proba, pipe.predict_proba(test), rtol=0, atol=1e-5)
    assert label.tolist() == pipe.predict(test).tolist()


def test_pipeline_export_without_skl2onnx_names_the_extra(tmp_path, rng, monkeypatch):
    import sys

    frame, y, _ = _table(rng)
    pipe = _pipeline(luce.SoftmaxRegression()).fit(frame, y)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "luce.io._onnx_sklearn", raising=False)
    with pytest.raises(ImportError, match=r"needs skl2onnx: pip install 'luce\[io\]'"):
        luce.export_onnx(pipe, tmp_path / "x.onnx")
