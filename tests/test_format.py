"""Model files: round trips, the JSON metadata, atomic writes, and every way a file can be unreadable.

The estimator here is a stand-in defined in this file (a nearest-centroid rule written as a linear
softmax model, probabilities from scipy), so the format is tested independently of luce's models.
"""

import errno
import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
from safetensors.numpy import load_file, save, save_file

import luce
import luce.io
from luce.io import ModelFormatError, read_metadata, register_estimator


@register_estimator(name="FormatTestCentroids", export="linear_softmax")
class Centroids:
    """Nearest class mean as a linear model: logits_k = x·μ_k − |μ_k|²/2 (divided by a temperature)."""

    def __init__(self, shrink=0.0, temperature=1.0, verbose=0):
        self.shrink = shrink
        self.temperature = temperature
        self.verbose = verbose

    def get_params(self, deep=True):
        return {"shrink": self.shrink, "temperature": self.temperature, "verbose": self.verbose}

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        order = list(dict.fromkeys(y.tolist()))  # first-seen order: works for mixed-type labels too
        self.classes_ = np.empty(len(order), dtype=y.dtype)
        self.classes_[:] = order
        idx = np.array([order.index(v) for v in y.tolist()])
        means = np.stack([X[idx == k].mean(axis=0) for k in range(len(self.classes_))])
        self.coef_ = (1.0 - self.shrink) * means
        self.intercept_ = -0.5 * np.sum(self.coef_**2, axis=1)
        self.temperature_ = float(self.temperature)
        self.n_features_in_ = X.shape[1]
        self.loss_curve_ = [1.5, 0.75, 0.5]
        self.n_iter_ = 3
        if callable(self.verbose):
            for i, loss in enumerate(self.loss_curve_):
                self.verbose(i + 1, loss)
        return self

    def predict_proba(self, X):
        logits = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scipy.special.softmax(logits / self.temperature_, axis=1)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@register_estimator(name="FormatTestWrapper")
class Wrapper:
    """An estimator holding another one, as a parameter and as a fitted attribute."""

    def __init__(self, base=None, note="x"):
        self.base = base
        self.note = note

    def get_params(self, deep=True):
        return {"base": self.base, "note": self.note}

    def fit(self, X, y):
        self.fitted_ = Centroids(shrink=0.5).fit(X, y)
        self.table_ = {"a": [1, 2.5, None], "b": (True, "s")}
        return self


def _data(rng, labels, n=60, d=4):
    y = rng.choice(labels, size=n)
    X = rng.normal(size=(n, d))
    return X, y


@pytest.fixture
def model(rng):
    X, y = _data(rng, np.array(["cat", "dog", "emu"]))
    return Centroids(shrink=0.1, temperature=1.7).fit(X, y), X


def _saved(tmp_path, model, name="m.luce"):
    path = tmp_path / name
    luce.save(model, path)
    return path


def _rewrite(path, out, *, tensors=None, edit_meta=None, edit_header=None):
    """Write ``out`` as ``path``'s content with its JSON metadata edited and the checksum recomputed."""
    arrays = load_file(str(path)) if tensors is None else tensors
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])["__metadata__"]
    meta = json.loads(header["luce"])
    if edit_meta is not None:
        edit_meta(meta)
    text = json.dumps(meta)
    header["luce"] = text
    header["luce_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    if edit_header is not None:
        edit_header(header)
    save_file(arrays, str(out), metadata=header)
    return out


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------

LABELS = {
    "str": np.array(["cat", "dog", "emu"]),
    "object-str": np.array(["yes", "no", "maybe"], dtype=object),
    "int64": np.array([3, -1, 7], dtype=np.int64),
    "int32": np.array([0, 1, 2], dtype=np.int32),
    "uint8": np.array([0, 200, 255], dtype=np.uint8),
    "float": np.array([0.5, 1e-300, -2.25]),
    "bool": np.array([True, False]),
    "mixed-object": np.array([1, "one", 2.5], dtype=object),
    "unicode": np.array(["chat", "chien", "ünïcödé ✓"]),
    "bytes": np.array([b"a", b"bc"]),
}


@pytest.mark.parametrize("labels", LABELS.values(), ids=LABELS.keys())
def test_round_trip_identical_predictions(tmp_path, rng, labels):
    X, y = _data(rng, labels)
    model = Centroids(shrink=0.2, temperature=0.8).fit(X, y)
    loaded = luce.load(_saved(tmp_path, model))
    assert type(loaded) is Centroids
    assert loaded.get_params() == model.get_params()
    assert loaded.classes_.dtype == model.classes_.dtype
    assert loaded.classes_.tolist() == model.classes_.tolist()
    assert [type(c) for c in loaded.classes_.tolist()] == [type(c) for c in model.classes_.tolist()]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    for name in ("coef_", "intercept_"):
        assert getattr(loaded, name).dtype == getattr(model, name).dtype
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.loss_curve_ == model.loss_curve_
    assert loaded.n_iter_ == 3 and type(loaded.n_iter_) is int
    assert loaded.temperature_ == 0.8 and loaded.n_features_in_ == 4


def test_random_generator_parameters_are_not_stored(tmp_path, rng):
    X, y = _data(rng, LABELS["str"])
    model = Centroids().fit(X, y)
    for generator, name in [
        (np.random.RandomState(0), "RandomState"),
        (np.random.default_rng(0), "Generator"),
    ]:
        model.shrink = generator
        path = _saved(tmp_path, model)
        assert luce.load(path).shrink == 0.0
        assert read_metadata(path)["model"]["dropped_params"] == {"shrink": name}


def test_callable_parameters_are_not_stored(tmp_path, rng):
    seen = []
    X, y = _data(rng, LABELS["int64"])
    model = Centroids(verbose=lambda i, loss: seen.append((i, loss))).fit(X, y)
    assert seen == [(1, 1.5), (2, 0.75), (3, 0.5)]
    path = _saved(tmp_path, model)
    assert luce.load(path).verbose == 0  # the default
    assert read_metadata(path)["model"]["dropped_params"] == {"verbose": "function"}


def test_values_of_every_storable_kind(tmp_path, model):
    est, _ = model
    est.scalar_f32_ = np.float32(0.1)
    est.scalar_i16_ = np.int16(-7)
    est.nonfinite_ = [float("inf"), float("-inf")]
    est.nan_ = float("nan")
    est.none_ = None
    est.flag_ = True
    est.text_ = "héllo"
    est.nested_ = {"k": [1, (2, "3")], "empty": []}
    est.weights_ = {0: 1.5, "b": 2, np.int64(7): None, 2.5: [1.0]}
    est.big_endian_ = np.arange(6, dtype=">f8").reshape(2, 3)
    est.fortran_ = np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    est.empty_ = np.zeros((0, 3), dtype=np.float32)
    est.zero_d_ = np.array(2.5, dtype=np.float16)
    est.bools_ = np.array([[True, False]])
    est.strings_ = np.array([["a", "bb"], ["ccc", "d"]])
    est._private = object()  # not fitted state: ignored
    loaded = luce.load(_saved(tmp_path, est))
    assert type(loaded.scalar_f32_) is np.float32 and loaded.scalar_f32_ == np.float32(0.1)
    assert type(loaded.scalar_i16_) is np.int16 and loaded.scalar_i16_ == -7
    assert loaded.nonfinite_ == [float("inf"), float("-inf")]
    assert np.isnan(loaded.nan_)
    assert loaded.none_ is None and loaded.flag_ is True and loaded.text_ == "héllo"
    assert loaded.nested_ == {"k": [1, (2, "3")], "empty": []}
    assert loaded.weights_ == {0: 1.5, "b": 2, 7: None, 2.5: [1.0]}
    assert [type(k) for k in loaded.weights_] == [int, str, np.int64, float]
    np.testing.assert_array_equal(loaded.big_endian_, est.big_endian_)
    assert loaded.big_endian_.dtype == np.dtype("<f8")
    np.testing.assert_array_equal(loaded.fortran_, est.fortran_)
    assert loaded.empty_.shape == (0, 3) and loaded.empty_.dtype == np.float32
    assert loaded.zero_d_.shape == () and loaded.zero_d_.dtype == np.float16 and loaded.zero_d_ == 2.5
    assert loaded.bools_.dtype == bool and loaded.bools_.tolist() == [[True, False]]
    assert loaded.strings_.dtype == est.strings_.dtype and loaded.strings_.tolist() == est.strings_.tolist()
    assert not hasattr(loaded, "_private")


def test_nested_estimators(tmp_path, rng):
    X, y = _data(rng, LABELS["str"])
    model = Wrapper(base=Centroids(shrink=0.3), note="n").fit(X, y)
    loaded = luce.load(_saved(tmp_path, model))
    assert type(loaded.base) is Centroids and loaded.base.shrink == 0.3
    assert not hasattr(loaded.base, "coef_")  # the parameter was unfitted and stays so
    np.testing.assert_array_equal(loaded.fitted_.predict_proba(X), model.fitted_.predict_proba(X))
    assert loaded.table_ == {"a": [1, 2.5, None], "b": (True, "s")}
    assert set(load_file(str(tmp_path / "m.luce"))) == {"fitted_.coef_", "fitted_.intercept_"}


def test_feature_names_round_trip(tmp_path, model):
    est, _ = model
    est.feature_names_in_ = np.array(["age", "höhe", "x 1", "y"], dtype=object)
    loaded = luce.load(_saved(tmp_path, est))
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == ["age", "höhe", "x 1", "y"]


def test_model_save_method_convention(tmp_path, model):
    """``model.save(path)`` in luce estimators is ``luce.io.save(model, path)``; both return the path."""
    est, X = model
    path = luce.io.save(est, tmp_path / "a.luce")
    assert path == tmp_path / "a.luce"
    assert luce.save is luce.io.save and luce.load is luce.io.load
    assert luce.ModelFormatError is ModelFormatError and issubclass(ModelFormatError, ValueError)
    np.testing.assert_array_equal(luce.load(str(path)).predict_proba(X), est.predict_proba(X))


# --------------------------------------------------------------------------------------------------
# The file layout: a plain safetensors file, metadata readable by anyone
# --------------------------------------------------------------------------------------------------


def test_file_is_standard_safetensors(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    arrays = load_file(str(path))  # safetensors' own reader, independent of luce
    assert set(arrays) == {"coef_", "intercept_"}
    np.testing.assert_array_equal(arrays["coef_"], est.coef_)
    np.testing.assert_array_equal(arrays["intercept_"], est.intercept_)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])["__metadata__"]
    assert header["format"] == "luce-model" and header["format_version"] == "1"
    assert header["luce_sha256"] == hashlib.sha256(header["luce"].encode()).hexdigest()
    meta = json.loads(header["luce"])
    assert meta["model"]["attributes"]["coef_"]["sha256"] == hashlib.sha256(est.coef_.tobytes()).hexdigest()


def test_metadata_contents(tmp_path, model):
    est, _ = model
    est.feature_names_in_ = np.array(["a", "b", "c", "d"], dtype=object)
    path = tmp_path / "m.luce"
    luce.save(est, path, metadata={"data": "train.csv", "rows": np.int64(60), "acc": np.float32(0.5)})
    meta = read_metadata(path)
    assert meta["format"] == "luce-model" and meta["format_version"] == 1
    assert meta["luce_version"] == luce.__version__
    assert meta["model"]["estimator"] == "FormatTestCentroids"
    assert meta["model"]["classes"] == {"dtype": "<U3", "shape": [3], "values": ["cat", "dog", "emu"]}
    assert meta["model"]["feature_names"] == ["a", "b", "c", "d"]
    params = meta["model"]["params"]
    assert params["shrink"] == {"type": "float", "value": 0.1}
    assert params["temperature"] == {"type": "float", "value": 1.7}
    assert meta["summary"] == {
        "n_features": 4, "n_classes": 3, "n_iter": 3, "final_loss": 0.5, "temperature": 1.7,
    }  # fmt: skip
    assert meta["user"] == {"data": "train.csv", "rows": 60, "acc": 0.5}
    assert meta["saved_at"].endswith("+00:00")


def test_import_luce_io_stays_light():
    code = (
        "import sys, luce, luce.io; heavy = ['safetensors', 'onnx', 'onnxruntime', 'sklearn', 'matplotlib',"
        " 'numba', 'pandas']; print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------------


def test_failed_write_leaves_the_old_file(tmp_path, model, monkeypatch):
    est, _ = model
    path = _saved(tmp_path, est)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(luce.io._atomic.os, "fsync", full_disk)
    est.coef_ = est.coef_ * 2
    with pytest.raises(OSError, match="No space left"):
        luce.save(est, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.luce"]  # no temporary file left behind


def test_interrupted_write_leaves_the_old_file(tmp_path, model, monkeypatch):
    est, _ = model
    path = _saved(tmp_path, est)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise KeyboardInterrupt  # a crash half-way through

    monkeypatch.setattr(luce.io._atomic.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        luce.save(est, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.luce"]


def test_save_replaces_an_existing_model(tmp_path, model):
    est, X = model
    path = _saved(tmp_path, est)
    est2 = Centroids(temperature=3.0).fit(X, np.arange(len(X)) % 2)
    luce.save(est2, path)
    assert luce.load(path).classes_.tolist() == [0, 1]
    assert os.listdir(tmp_path) == ["m.luce"]


# --------------------------------------------------------------------------------------------------
# Unreadable files: each kind says which and why
# --------------------------------------------------------------------------------------------------


def _reason(path, match=None):
    with pytest.raises(ModelFormatError, match=match) as info:
        luce.load(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path} ")
    return info.value.reason


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        luce.load(tmp_path / "nope.luce")


def test_empty_file(tmp_path):
    path = tmp_path / "e.luce"
    path.write_bytes(b"")
    assert _reason(path, "is empty") == "empty"


def _positions(data, rng, n_random=120):
    """Byte positions to probe: the length field, around the header's end, the tail, and a sample."""
    (n,) = struct.unpack("<Q", data[:8])
    edges = {*range(16), *range(8 + n - 8, 8 + n + 8), *range(len(data) - 16, len(data))}
    sample = rng.choice(len(data), size=min(n_random, len(data)), replace=False)
    return sorted(p for p in edges | {int(i) for i in sample} if 0 <= p < len(data))


def test_every_truncation_is_reported(tmp_path, model, rng):
    est, _ = model
    data = _saved(tmp_path, est).read_bytes()
    path = tmp_path / "cut.luce"
    for cut in _positions(data, rng)[1:]:
        path.write_bytes(data[:cut])
        assert _reason(path, "is truncated") == "truncated", cut


def test_flipped_data_bit_is_corruption(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside intercept_
    path.write_bytes(bytes(data))
    assert _reason(path, r"array 'intercept_' fails its SHA-256 checksum") == "corrupted"


def test_edited_metadata_is_corruption(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    data = path.read_bytes()
    edited = data.replace(b'\\"value\\":0.1', b'\\"value\\":0.2', 1)  # shrink, escaped inside the header
    assert edited != data
    path.write_bytes(edited)
    assert _reason(path, "metadata fails its SHA-256 checksum") == "corrupted"


def test_no_single_byte_change_loads_a_different_model(tmp_path, model, rng):
    """Any one changed byte either raises ModelFormatError or (JSON whitespace) changes nothing."""
    est, X = model
    path = _saved(tmp_path, est)
    data = path.read_bytes()
    expected = est.predict_proba(X)
    bad = tmp_path / "bad.luce"
    reasons = set()
    for i in _positions(data, rng):
        flipped = bytearray(data)
        flipped[i] ^= 0x04
        bad.write_bytes(bytes(flipped))
        try:
            loaded = luce.load(bad)
        except ModelFormatError as e:
            reasons.add(e.reason)
            continue
        np.testing.assert_array_equal(loaded.predict_proba(X), expected)
        assert loaded.get_params() == est.get_params()
    assert {"corrupted", "foreign", "truncated"} <= reasons


def test_trailing_bytes_are_corruption(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    path.write_bytes(path.read_bytes() + b"\0\0")
    assert _reason(path, "2 unexpected bytes after its arrays") == "corrupted"


@pytest.mark.parametrize(
    "content",
    [b"sepal_length,species\n5.1,setosa\n", b"\x89PNG\r\n\x1a\n" + bytes(100), b"{}"],
    ids=["csv", "png", "json"],
)
def test_other_files_are_foreign(tmp_path, content):
    path = tmp_path / "x.luce"
    path.write_bytes(content)
    reason = _reason(path)
    assert reason == ("truncated" if content == b"{}" else "foreign")


def test_plain_safetensors_file_is_foreign(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(save({"w": np.ones(3)}, metadata={"format": "pt"}))
    assert _reason(path, r"a safetensors file but not a luce model \(format 'pt'\)") == "foreign"
    path.write_bytes(save({"w": np.ones(3)}))
    assert _reason(path, r"no luce metadata") == "foreign"


def test_future_version(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)

    def bump(header):
        header["format_version"] = "2"
        header["luce"] = "{a layout this luce cannot know"

    out = _rewrite(path, tmp_path / "future.luce", edit_header=bump)
    assert _reason(out, r"format version 2, newer than this luce .* upgrade luce") == "future-version"


def test_unknown_estimator_is_never_imported(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    for name in ("os.system", "subprocess", "LinearRegression"):

        def rename(meta, name=name):
            meta["model"]["estimator"] = name

        out = _rewrite(path, tmp_path / "u.luce", edit_meta=rename)
        before = set(sys.modules)
        assert _reason(out, f"estimator of class '{name}', which this luce") == "unknown-estimator"
        assert set(sys.modules) == before


def test_unknown_parameter_is_incompatible(tmp_path, model):
    est, _ = model

    def add(meta):
        meta["model"]["params"]["bogus"] = {"type": "int", "value": 1}

    out = _rewrite(_saved(tmp_path, est), tmp_path / "p.luce", edit_meta=add)
    assert _reason(out, "parameter\\(s\\) 'bogus' that this luce") == "incompatible"


def test_malformed_metadata_with_valid_checksum(tmp_path, model):
    est, _ = model

    def break_it(meta):
        meta["model"]["attributes"]["n_iter_"] = {"type": "float", "value": "lots"}

    out = _rewrite(_saved(tmp_path, est), tmp_path / "m2.luce", edit_meta=break_it)
    assert _reason(out, "malformed model metadata") == "corrupted"


def test_tensor_swapped_for_another_is_corruption(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    arrays = load_file(str(path))
    arrays["coef_"] = arrays["coef_"] + 1.0
    out = _rewrite(path, tmp_path / "t.luce", tensors=arrays)
    assert _reason(out, "array 'coef_' fails its SHA-256 checksum") == "corrupted"
    arrays["extra"] = np.zeros(2)
    out = _rewrite(path, tmp_path / "t.luce", tensors={**load_file(str(path)), "extra": np.zeros(2)})
    assert _reason(out, r"unexpected arrays \['extra'\]") == "corrupted"


def test_no_pickle_in_the_load_path(tmp_path, model, monkeypatch):
    import pickle

    est, X = model
    path = _saved(tmp_path, est)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    np.testing.assert_array_equal(luce.load(path).predict_proba(X), est.predict_proba(X))


# --------------------------------------------------------------------------------------------------
# What cannot be saved
# --------------------------------------------------------------------------------------------------


def test_save_refuses_unknown_classes(tmp_path):
    class Other:
        def get_params(self, deep=True):
            return {}

    m = Other()
    m.coef_ = np.ones(2)
    with pytest.raises(
        TypeError,
        match=r"model must be a luce estimator \(.*SoftmaxRegression.*\), got .*Other; .*register_estimator",
    ):
        luce.save(m, tmp_path / "x.luce")


def test_save_refuses_unfitted(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        luce.save(Centroids(), tmp_path / "x.luce")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({1, 2}, "odd_ is a set"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "odd_ has dtype datetime64"),
        (np.array([1.0, None, object()], dtype=object), "odd_ holds a value of type object"),
        ({(1, 2): "a"}, "a dict with a key of type tuple"),
    ],
    ids=["set", "datetime", "object", "tuple-keys"],
)
def test_save_refuses_unstorable_attributes(tmp_path, model, value, match):
    est, _ = model
    est.odd_ = value
    with pytest.raises(TypeError, match=match):
        luce.save(est, tmp_path / "x.luce")
    assert not (tmp_path / "x.luce").exists()


def test_save_refuses_nan_labels(tmp_path, rng):
    X, y = _data(rng, LABELS["float"])
    est = Centroids().fit(X, y)
    est.classes_ = np.array([0.5, np.nan, 1.0])
    with pytest.raises(TypeError, match="classes_ holds the non-finite value nan"):
        luce.save(est, tmp_path / "x.luce")


def test_save_argument_errors(tmp_path, model):
    est, _ = model
    with pytest.raises(TypeError, match="metadata must be a dict"):
        luce.save(est, tmp_path / "x.luce", metadata=[1])
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        luce.save(est, tmp_path / "x.luce", metadata={"f": object()})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        luce.save(est, tmp_path / "no" / "x.luce")
    with pytest.raises(IsADirectoryError):
        luce.save(est, tmp_path)


def test_register_estimator_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_estimator(type("Other", (), {}), name="FormatTestCentroids")
    with pytest.raises(ValueError, match="already registered"):
        register_estimator(type("SoftmaxRegression", (), {}))
    with pytest.raises(TypeError, match="must be a class"):
        register_estimator(Centroids())
    with pytest.raises(ValueError, match="export must be"):
        register_estimator(Centroids, name="X2", export="tree")
    assert register_estimator(Centroids, name="FormatTestCentroids", export="linear_softmax") is Centroids


# --------------------------------------------------------------------------------------------------
# The real estimator
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_softmax_regression_round_trip(tmp_path, rng, solver):
    import pandas as pd

    X = pd.DataFrame(rng.normal(size=(150, 4)), columns=["a", "b", "c", "d"])
    y = np.array(["setosa", "versicolor", "virginica"])[
        np.argmax(X.to_numpy()[:, :3] + rng.normal(size=(150, 3)), 1)
    ]
    model = luce.SoftmaxRegression(
        reg_strength=1e-2, solver=solver, max_iter=30, class_weight={"setosa": 2.0, "virginica": 0.5},
        random_state=np.random.RandomState(0), verbose=lambda i, loss: None,
    )  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run may stop before converging; not what is tested
        model.fit(X[:100], y[:100])
    model.calibrate(X[100:], y[100:])
    path = tmp_path / "sr.luce"
    assert model.save(path) == path
    loaded = luce.load(path)
    assert type(loaded) is luce.SoftmaxRegression
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    assert loaded.temperature_ == model.temperature_ != 1.0
    assert loaded.class_weight == {"setosa": 2.0, "virginica": 0.5}
    assert loaded.random_state is None and loaded.verbose == 0
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    assert loaded.loss_curve_ == model.loss_curve_ and loaded.n_iter_ == model.n_iter_
    meta = read_metadata(path)
    assert meta["model"]["estimator"] == "SoftmaxRegression"
    assert meta["model"]["classes"]["values"] == ["setosa", "versicolor", "virginica"]
    assert meta["model"]["dropped_params"] == {"random_state": "RandomState", "verbose": "function"}
    assert meta["summary"]["n_classes"] == 3 and meta["summary"]["temperature"] == model.temperature_


def test_every_luce_estimator_round_trips(tmp_path):
    import warnings

    X, y = luce.load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits; convergence is not what is tested
        base = luce.SoftmaxRegression(max_iter=20).fit(X[:300], y[:300])
        fitted = [
            luce.SigmoidRegression(max_iter=20).fit(
                X[:300], np.stack([y[:300] % 2, y[:300] > 4], axis=1).astype(int)
            ),
            luce.HierarchicalSoftmaxClassifier(max_iter=20).fit(X[:300], y[:300]),
        ]
        scaler = luce.TemperatureScaling().fit(base.decision_function(X[300:]), y[300:])
    for model in fitted:
        path = luce.save(model, tmp_path / f"{type(model).__name__}.luce")
        loaded = luce.load(path)
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(loaded.predict_proba(X[300:]), model.predict_proba(X[300:]))
    loaded = luce.load(luce.save(scaler, tmp_path / "ts.luce"))
    assert type(loaded) is luce.TemperatureScaling and loaded.temperature_ == scaler.temperature_
    logits = base.decision_function(X[300:])
    np.testing.assert_array_equal(loaded.predict_proba(logits), scaler.predict_proba(logits))


# --------------------------------------------------------------------------------------------------
# scikit-learn pipelines: the model that takes the raw table
# --------------------------------------------------------------------------------------------------


def _raw_table(rng, n=120):
    """Numbers with NaN, strings with None, an integer ID column passed through, a three-class target
    that depends on all of them."""
    pd = pytest.importorskip("pandas")
    a = rng.normal(size=n)
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n)
    size = rng.choice(np.array(["S", "M", "L", "XL"], dtype=object), size=n)
    score = a + (color == "red") - (size == "S") + 0.3 * rng.normal(size=n)
    y = np.where(score > 0.8, "high", np.where(score < -0.5, "low", "mid"))
    frame = pd.DataFrame({"a": a, "color": color, "size": size, "count": rng.integers(0, 9, n)})
    frame["id"] = np.arange(n)
    frame.loc[rng.choice(n, 10, replace=False), "a"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "color"] = None
    return frame, y


def _table_pipeline(final, *, drop=None, remainder="passthrough"):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    strings = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", drop=drop)
    )
    pre = ColumnTransformer(
        [("numbers", numbers, ["a", "count"]), ("strings", strings, ["color", "size"])],
        remainder=remainder,
    )
    return Pipeline([("pre", pre), ("model", final)])


def _unseen_rows(frame):
    """The table with unseen categories, missing values where training had none, a NaN everywhere."""
    test = frame.copy()
    test.loc[0, "color"] = "purple"
    test.loc[1, "size"] = "XXS"
    test.loc[2, "size"] = None
    test.loc[3, ["a", "count"]] = np.nan
    return test


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else a


FINALS = {
    "softmax": lambda: luce.SoftmaxRegression(reg_strength=1e-2),
    "sigmoid-ovr": lambda: luce.SigmoidRegression(reg_strength=1e-2),
    "hierarchical": lambda: luce.HierarchicalSoftmaxClassifier(),
}


@pytest.mark.parametrize("final", FINALS.values(), ids=FINALS.keys())
def test_pipeline_round_trip_on_raw_tables(tmp_path, rng, final):
    from sklearn.pipeline import Pipeline

    frame, y = _raw_table(rng)
    pipe = _table_pipeline(final(), remainder="drop").fit(frame, y)
    loaded = luce.load(luce.save(pipe, tmp_path / "p.luce"))
    assert isinstance(loaded, Pipeline)
    test = _unseen_rows(frame)
    np.testing.assert_array_equal(loaded.predict(test), pipe.predict(test))
    np.testing.assert_array_equal(loaded.predict_proba(test), pipe.predict_proba(test))
    # What scikit-learn derived privately is derived again: the transformed features are identical.
    np.testing.assert_array_equal(_dense(loaded[:-1].transform(test)), _dense(pipe[:-1].transform(test)))


@pytest.mark.filterwarnings("ignore:Found unknown categories:UserWarning")  # sklearn's, with drop=
def test_pipeline_with_passthrough_and_dropped_first_category(tmp_path, rng):
    frame, y = _raw_table(rng)
    pipe = _table_pipeline(luce.SoftmaxRegression(reg_strength=1e-2), drop="if_binary").fit(frame, y)
    loaded = luce.load(luce.save(pipe, tmp_path / "p.luce"))
    test = _unseen_rows(frame)
    np.testing.assert_array_equal(loaded.predict_proba(test), pipe.predict_proba(test))
    assert loaded[0].output_indices_ == pipe[0].output_indices_
    assert loaded[0].get_feature_names_out().tolist() == pipe[0].get_feature_names_out().tolist()


def test_pipeline_of_sigmoid_models_keeps_their_decision(tmp_path, rng):
    """Binary with a 0.3 cut and multi-label: predict (not the arg-max of predict_proba) is kept."""
    frame, y = _raw_table(rng)
    binary = _table_pipeline(luce.SigmoidRegression(reg_strength=1e-2))
    binary.set_params(model__threshold=0.3).fit(frame, y == "high")
    labels = np.column_stack([y == "high", y == "low"]).astype(int)
    multi = _table_pipeline(luce.SigmoidRegression(reg_strength=1e-2)).fit(frame, labels)
    test = _unseen_rows(frame)
    for i, pipe in enumerate([binary, multi]):
        loaded = luce.load(luce.save(pipe, tmp_path / f"s{i}.luce"))
        np.testing.assert_array_equal(loaded.predict(test), pipe.predict(test))
        np.testing.assert_array_equal(loaded.predict_proba(test), pipe.predict_proba(test))
    assert (binary.predict(test) != (binary.predict_proba(test)[:, 1] > 0.5)).any()  # the cut matters


def test_pipeline_on_arrays_with_ordinal_encoding_and_maxabs(tmp_path, rng):
    """No column names (a NumPy array), numeric categories with NaN, OrdinalEncoder and MaxAbsScaler."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder, OrdinalEncoder

    X = np.column_stack([rng.integers(0, 4, 80), rng.normal(size=80), rng.integers(0, 3, 80)]).astype(float)
    X[rng.choice(80, 6, replace=False), 0] = np.nan
    y = (X[:, 1] + (X[:, 2] == 1) > 0.3).astype(int)
    pre = ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0]),
            ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), [2]),
            ("scale", MaxAbsScaler(), [1]),
        ]
    )
    pipe = make_pipeline(pre, luce.SoftmaxRegression(reg_strength=1e-2)).fit(X, y)
    loaded = luce.load(luce.save(pipe, tmp_path / "a.luce"))
    test = X.copy()
    test[:5, 0] = [7.0, np.nan, -1.0, 2.0, 0.5]  # unseen and missing categories
    test[5:8, 2] = [5.0, 1.0, 9.0]
    np.testing.assert_array_equal(loaded.predict_proba(test), pipe.predict_proba(test))
    np.testing.assert_array_equal(loaded[0].transform(test), pipe[0].transform(test))


def test_encoder_on_mixed_numeric_and_string_columns(tmp_path, rng):
    """One OneHotEncoder over a number column and a string column of a DataFrame."""
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"n": rng.integers(0, 3, 50), "s": rng.choice(["u", "v"], 50)})
    y = (frame["n"] == 1) | (frame["s"] == "u")
    pipe = make_pipeline(OneHotEncoder(handle_unknown="ignore"), luce.SoftmaxRegression()).fit(frame, y)
    loaded = luce.load(luce.save(pipe, tmp_path / "m.luce"))
    test = frame.copy()
    test.loc[0, "n"] = 9
    test.loc[1, "s"] = "w"
    np.testing.assert_array_equal(loaded.predict_proba(test), pipe.predict_proba(test))


def test_pipeline_metadata(tmp_path, rng):
    frame, y = _raw_table(rng)
    pipe = _table_pipeline(luce.SoftmaxRegression(reg_strength=1e-2)).fit(frame, y)
    meta = read_metadata(luce.save(pipe, tmp_path / "p.luce", metadata={"target": "y"}))
    assert meta["model"]["estimator"] == "sklearn.Pipeline"
    assert meta["summary"]["pipeline"] == ["sklearn.ColumnTransformer", "SoftmaxRegression"]
    assert meta["summary"]["input_columns"] == ["a", "color", "size", "count", "id"]
    assert meta["summary"]["n_classes"] == 3
    assert meta["user"] == {"target": "y"}


def test_pipelines_that_cannot_be_stored_are_refused(tmp_path, rng):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    cases = [
        (make_pipeline(FunctionTransformer(np.log1p), luce.SoftmaxRegression()), "never stores code"),
        (make_pipeline(PCA(2), luce.SoftmaxRegression()), "PCA, which a model file cannot store"),
        (
            make_pipeline(OneHotEncoder(min_frequency=3, handle_unknown="ignore"), luce.SoftmaxRegression()),
            "min_frequency",
        ),
        (
            make_pipeline(
                ColumnTransformer([("s", StandardScaler(), make_column_selector())]),
                luce.SoftmaxRegression(),
            ),
            "not callables",
        ),
    ]
    frame = pytest.importorskip("pandas").DataFrame(np.abs(X), columns=["p", "q", "r"])
    for pipe, message in cases:
        pipe.fit(frame, y)
        with pytest.raises(TypeError, match=message):
            luce.save(pipe, tmp_path / "x.luce")
    with pytest.raises(ValueError, match="not fitted"):
        luce.save(make_pipeline(StandardScaler(), luce.SoftmaxRegression()), tmp_path / "x.luce")
    assert not (tmp_path / "x.luce").exists()


def _find(node, key):
    """The first dict below ``node`` that has ``key``."""
    if isinstance(node, dict):
        if key in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for v in node:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def test_tampered_pipeline_state_is_refused(tmp_path, rng):
    """Checksums recomputed, state inconsistent: the rebuilt transformers notice."""
    frame, y = _raw_table(rng)
    path = luce.save(_table_pipeline(luce.SoftmaxRegression()).fit(frame, y), tmp_path / "p.luce")

    def widen(meta):
        _find(meta, "output_indices_")["output_indices_"]["items"]["numbers"]["stop"] += 1

    def drop_a_category(meta):
        node = _find(meta, "categories_")["categories_"]
        node["items"] = node["items"][:1]

    def rename(meta):
        _find(meta, "estimator")["estimator"] = "sklearn.Unpickler"

    assert _reason(_rewrite(path, tmp_path / "w.luce", edit_meta=widen), "output_indices_") == "corrupted"
    assert _reason(_rewrite(path, tmp_path / "c.luce", edit_meta=drop_a_category)) == "corrupted"
    assert _reason(_rewrite(path, tmp_path / "u.luce", edit_meta=rename)) == "unknown-estimator"


def test_old_sigmoid_threshold_is_its_decision_cut(tmp_path, rng):
    """Files written before SigmoidRegression's cut was renamed decision_threshold store it as threshold."""
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    model = luce.SigmoidRegression(reg_strength=1e-2).fit(X, y)
    path = luce.save(model, tmp_path / "new.luce")

    def as_old_file(meta):
        params = meta["model"]["params"]
        params.pop("decision_threshold", None)
        params["threshold"] = {"type": "float", "value": 0.3}

    loaded = luce.load(_rewrite(path, tmp_path / "old.luce", edit_meta=as_old_file))
    proba = 1.0 / (1.0 + np.exp(-(X @ model.coef_[0] + model.intercept_[0])))  # independent of luce
    np.testing.assert_array_equal(loaded.predict(X), (proba > 0.3).astype(int))
    assert (loaded.predict(X) != (proba > 0.5)).any()


# --------------------------------------------------------------------------------------------------
# Hostile files: refused quickly, with ModelFormatError, reading and allocating little
# --------------------------------------------------------------------------------------------------


def _with_meta_text(path, out, text):
    """``path``'s arrays under the JSON metadata ``text`` (any text, however nested), checksum recomputed."""

    def replace(header):
        header["luce"] = text
        header["luce_sha256"] = hashlib.sha256(text.encode()).hexdigest()

    return _rewrite(path, out, edit_header=replace)


def _peak_allocation(fn):
    """The peak bytes Python allocated while ``fn`` ran (tracemalloc sees NumPy's buffers too)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_large_non_model_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "big.parquet"
    with open(path, "wb") as f:
        f.write(b"PAR1" + bytes(60))
        f.truncate(256 << 20)  # 256 MiB, sparse: costs no disk
    peak = _peak_allocation(lambda: _reason(path, "not in safetensors format"))
    assert peak < 1 << 20


def test_header_length_is_checked_against_the_file_size_first(tmp_path, model):
    """A length field announcing 90 MB in a 3 KB file: truncated, and the 90 MB are never read."""
    est, _ = model
    data = _saved(tmp_path, est).read_bytes()
    path = tmp_path / "long.luce"
    path.write_bytes(struct.pack("<Q", 90_000_000) + data[8:])
    peak = _peak_allocation(lambda: _reason(path, "header announces 90000000 bytes"))
    assert peak < 1 << 20


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_and_pipes_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="not a regular file") as info:
        luce.load("/dev/zero")
    assert info.value.reason == "foreign"
    fifo = tmp_path / "pipe.luce"
    os.mkfifo(fifo)  # opening it for reading must not wait for a writer
    with pytest.raises(ModelFormatError, match="not a regular file"):
        luce.load(fifo)
    with pytest.raises(IsADirectoryError):
        luce.load(tmp_path)


def test_huge_string_dtype_is_refused_before_allocating(tmp_path, model):
    est, _ = model

    def widen(meta):
        meta["model"]["classes"]["dtype"] = "<U100000000"

    out = _rewrite(_saved(tmp_path, est), tmp_path / "u.luce", edit_meta=widen)
    peak = _peak_allocation(lambda: _reason(out, "far larger than the file"))
    assert peak < 8 << 20


def test_a_tensor_named_many_times_is_hashed_once(tmp_path, model, monkeypatch):
    est, _ = model

    def repeat(meta):
        node = meta["model"]["attributes"]["coef_"]
        for i in range(1000):
            meta["model"]["attributes"][f"copy{i}_"] = node

    out = _rewrite(_saved(tmp_path, est), tmp_path / "r.luce", edit_meta=repeat)
    calls = []
    real = luce.io._container._sha256
    monkeypatch.setattr(luce.io._container, "_sha256", lambda a: calls.append(1) or real(a))
    loaded = luce.load(out)
    assert len(calls) == 2  # coef_ and intercept_, once each
    np.testing.assert_array_equal(loaded.copy999_, est.coef_)


@pytest.mark.parametrize("depth", [400, 800])
def test_deep_nesting_is_refused(tmp_path, model, depth):
    """400 levels pass the JSON parser and stop at luce's depth limit; 800 stop in the JSON parser."""
    est, _ = model
    path = _saved(tmp_path, est)
    meta = read_metadata(path)
    nested = '{"type": "list", "items": [' * depth + '{"type": "none"}' + "]}" * depth
    text = json.dumps(meta).replace('"n_iter_": {', f'"deep_": {nested}, "n_iter_": {{', 1)
    out = _with_meta_text(path, tmp_path / "d.luce", text)
    assert _reason(out, "nest") == "corrupted"


@pytest.mark.parametrize(
    "node",
    [
        {"type": "numpy", "dtype": "|i1", "value": 300},
        {"type": "numpy", "dtype": "<u2", "value": -1},
        {"type": "array", "dtype": "|i1", "shape": [2], "values": [1, 300]},
        {"type": "array", "dtype": "|O", "shape": [1], "values": [{"__reduce__": "os.system"}]},
        {"type": "array", "dtype": "<f8", "shape": [-1], "values": []},
        {"type": "numpy", "dtype": "V8", "value": 0},
        {"type": "slice", "start": 0, "stop": "9", "step": None},
    ],
    ids=[
        "int8-300",
        "uint16-negative",
        "array-int8-300",
        "object-dict",
        "negative-shape",
        "void",
        "slice-str",
    ],
)
def test_out_of_range_and_odd_values_are_corruption(tmp_path, model, node):
    est, _ = model

    def add(meta):
        meta["model"]["attributes"]["odd_"] = node

    out = _rewrite(_saved(tmp_path, est), tmp_path / "o.luce", edit_meta=add)
    assert _reason(out) == "corrupted"


@pytest.mark.parametrize("version", ["²", "1" * 5000, "-1", "1.0", ""])
def test_bad_format_version_is_corruption(tmp_path, model, version):
    est, _ = model

    def set_version(header):
        header["format_version"] = version

    out = _rewrite(_saved(tmp_path, est), tmp_path / "v.luce", edit_header=set_version)
    assert _reason(out, "bad format_version") == "corrupted"


STATES = {
    "temperature-negative": lambda a: a.update(temperature_={"type": "float", "value": -1.0}),
    "temperature-zero": lambda a: a.update(temperature_={"type": "float", "value": 0.0}),
    "temperature-nan": lambda a: a.update(temperature_={"type": "float", "value": "nan"}),
    "temperature-string": lambda a: a.update(temperature_={"type": "str", "value": "hot"}),
    "n_features-mismatch": lambda a: a.update(n_features_in_={"type": "int", "value": 7}),
    "dunder-attribute": lambda a: a.update(__dict__={"type": "dict", "items": {}}),
    "private-attribute": lambda a: a.update(_secret_={"type": "int", "value": 1}),
    "class-attribute": lambda a: a.update(__class__={"type": "none"}),
}


@pytest.mark.parametrize("edit", STATES.values(), ids=STATES.keys())
def test_inconsistent_state_is_refused(tmp_path, model, edit):
    est, _ = model
    out = _rewrite(
        _saved(tmp_path, est), tmp_path / "s.luce", edit_meta=lambda meta: edit(meta["model"]["attributes"])
    )
    assert _reason(out) == "corrupted"


def test_classes_and_coef_of_different_lengths_are_refused(tmp_path, model):
    est, _ = model

    def drop_a_class(meta):
        classes = meta["model"]["classes"]
        classes["values"] = classes["values"][:2]
        classes["shape"] = [2]

    out = _rewrite(_saved(tmp_path, est), tmp_path / "c.luce", edit_meta=drop_a_class)
    assert _reason(out, "coef_ has 3 rows for 2 classes_") == "corrupted"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwrite_keeps_the_permissions(tmp_path, model):
    est, _ = model
    path = _saved(tmp_path, est)
    os.chmod(path, 0o600)
    luce.save(est, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    luce.save(est, path)
    assert os.stat(path).st_mode & 0o777 == 0o640


_KILLED_WRITER = """
import os, sys, time
import numpy as np
import luce, luce.io
sys.path.insert(0, sys.argv[2])
from test_format import Centroids
model = Centroids().fit(np.eye(4), np.array([0, 1, 0, 1]))
os.replace = lambda *a: (print("written", flush=True), time.sleep(600))  # stuck before its rename
luce.save(model, sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="kill -9")
def test_temporary_files_of_a_killed_writer_are_cleaned_on_the_next_save(tmp_path, model):
    import re
    import signal

    est, _ = model
    path = _saved(tmp_path, est)
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path), os.path.dirname(__file__)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "written"
        (left,) = [n for n in os.listdir(tmp_path) if n != "m.luce"]
        assert re.fullmatch(rf"\.m\.luce\.luce-tmp-{writer.pid}-[0-9a-f]{{12}}", left)
        luce.save(est, path)
        assert os.path.exists(tmp_path / left)  # its writer still runs: never removed under it
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    luce.save(est, path)
    assert os.listdir(tmp_path) == ["m.luce"]
    np.testing.assert_array_equal(luce.load(path).coef_, est.coef_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_imputer_keeps_its_input_dtype(tmp_path, rng, dtype, strategy):
    """The imputer's output dtype is its fit's input dtype, which its statistics do not always show."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    X = rng.integers(0, 5, size=(40, 3)).astype(dtype)
    if dtype != np.int64:
        X[[0, 5], [0, 2]] = np.nan
    fill = dtype(-1) if strategy == "constant" else None
    pipe = make_pipeline(SimpleImputer(strategy=strategy, fill_value=fill), luce.SoftmaxRegression())
    pipe.fit(X, np.arange(40) % 2)
    loaded = luce.load(luce.save(pipe, tmp_path / "i.luce"))
    expected, got = pipe[0].transform(X), loaded[0].transform(X)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_pipeline_steps_of_different_widths_are_refused(tmp_path, rng):
    """A final estimator spliced in from another pipeline (7 features after a step that gives 9)."""
    frame, y = _raw_table(rng)
    wide = luce.save(_table_pipeline(luce.SoftmaxRegression()).fit(frame, y), tmp_path / "wide.luce")
    narrow_pipe = _table_pipeline(luce.SoftmaxRegression()).fit(
        frame.drop(columns=["size"]).assign(size="S"), y
    )
    narrow = luce.save(narrow_pipe, tmp_path / "narrow.luce")
    narrow_meta = read_metadata(narrow)
    arrays = {**load_file(str(wide)), **{k: v for k, v in load_file(str(narrow)).items() if "steps[1]" in k}}

    def splice(meta):
        meta["model"]["params"]["steps"]["items"][1] = narrow_meta["model"]["params"]["steps"]["items"][1]

    out = _rewrite(wide, tmp_path / "spliced.luce", tensors=arrays, edit_meta=splice)
    assert _reason(out, "step 'model' takes 7 features but step 'pre' gives 10") == "corrupted"


def test_encoder_rebuild_is_linear_in_its_categories(tmp_path):
    """800 columns, one of them with 4000 categories: rebuilding must not build a 4000 x 800 frame."""
    from sklearn.preprocessing import OneHotEncoder

    X = np.array([["a", "b"], ["c", "d"]], dtype=object)
    path = luce.save(OneHotEncoder(handle_unknown="ignore").fit(X), tmp_path / "e.luce")

    def widen(meta):
        attrs = meta["model"]["attributes"]
        many = [f"c{i:05d}" for i in range(4000)]
        attrs["categories_"]["items"] = [
            {"type": "array", "dtype": "|O", "shape": [len(c)], "values": c} for c in [many] + [["x"]] * 799
        ]
        attrs["n_features_in_"]["value"] = 800

    out = _rewrite(path, tmp_path / "wide.luce", edit_meta=widen)
    loaded = None

    def load():
        nonlocal loaded
        loaded = luce.load(out)

    peak = _peak_allocation(load)
    assert peak < 40 * os.path.getsize(out)
    row = np.array([["c00042"] + ["x"] * 799], dtype=object)
    assert loaded.transform(row).sum() == 800 and loaded.transform(row)[0, 42] == 1


@pytest.mark.parametrize("what", ["output-width", "passthrough-width"])
def test_huge_sizes_in_a_pipeline_file_are_refused_before_building_them(tmp_path, rng, what):
    frame, y = _raw_table(rng)
    path = luce.save(_table_pipeline(luce.SoftmaxRegression()).fit(frame, y), tmp_path / "p.luce")

    def inflate(meta):
        ct = _find(meta, "output_indices_")
        if what == "output-width":
            ct["output_indices_"]["items"]["numbers"]["stop"] = 10**12
        else:  # the passthrough remainder (an identity FunctionTransformer) claims 10**12 columns
            remainder = ct["transformers_"]["items"][-1]["items"][1]["model"]
            remainder["attributes"]["n_features_in_"]["value"] = 10**12

    out = _rewrite(path, tmp_path / "huge.luce", edit_meta=inflate)
    peak = _peak_allocation(lambda: _reason(out))
    assert peak < 16 * os.path.getsize(out)
