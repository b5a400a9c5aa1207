"""Columns of documents: luce.tables.table_pipeline(text=...), their model files and their ONNX export.

References are independent of luce's text code: scikit-learn's vectorizers applied by hand to the
column with missing documents replaced by "" (features), the in-memory Pipeline (file round trips),
and ONNX Runtime running the exported graph on real strings (accents, capitals, punctuation, digits,
emoji, empty and missing documents).
"""

import copy
import hashlib
import io
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer

import luce
from luce.io import ModelFormatError
from luce.tables import TextColumn, table_pipeline

TOPICS = {
    "sport": [
        "The home team scored twice in the second half and won the league match.",
        "Coach Müller praised the goalkeeper after a 2-0 win on Saturday!",
        "Le match de football s'est terminé par une victoire de l'équipe locale.",
        "Tennis: she won the final set 7-5 after saving three match points.",
        "The marathon runners crossed the finish line in record time.",
        "Das Spiel endete unentschieden, beide Mannschaften spielten stark.",
    ],
    "food": [
        "Bake the bread at 220 degrees until the crust is golden and crisp.",
        "This recipe needs fresh basil, garlic, olive oil and a pinch of salt.",
        "La crème brûlée était délicieuse, le café un peu trop fort.",
        "Slow-cooked beans with smoked paprika: a cheap, filling dinner 🍲",
        "Die Suppe schmeckt besser mit frischem Brot und etwas Käse.",
        "Whisk the eggs, fold in the flour and let the batter rest overnight.",
    ],
    "tech": [
        "The new laptop's battery lasts 14 hours; the screen is sharp and bright.",
        "Update your router firmware: version 3.2.1 fixes a security bug.",
        "Le logiciel plante au démarrage depuis la dernière mise à jour.",
        "Our app crashed on Android 14 until we patched the memory leak.",
        "GPU prices fell again, so I upgraded the graphics card 💻",
        "Der Prozessor wird heiß, wenn das Programm im Hintergrund läuft.",
    ],
}


def _corpus(n_copies=4, seed=0):
    """A table of real sentences, each class's sentences shuffled into new documents; some missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_copies):
        for topic, sentences in TOPICS.items():
            for s in sentences:
                other = sentences[int(rng.integers(len(sentences)))]
                rows.append({"review": f"{s} {other}", "stars": int(rng.integers(1, 6)), "topic": topic})
    df = pd.DataFrame(rows)
    df.loc[[3, 17, 40], "review"] = None
    df.loc[25, "review"] = ""
    df["review"] = df["review"].astype(object)
    return df


def _reference_features(vectorizer, docs, **kwargs):
    """scikit-learn's vectorizer on the column, missing documents made "" by hand."""
    filled = [d if isinstance(d, str) else "" for d in docs]
    if vectorizer == "tfidf":
        return TfidfVectorizer(**kwargs).fit(filled), filled
    hashed = HashingVectorizer(alternate_sign=False, norm=None, **kwargs)
    return (hashed, TfidfTransformer().fit(hashed.transform(filled))), filled


# --------------------------------------------------------------------------------------------------
# TextColumn and table_pipeline(text=...)
# --------------------------------------------------------------------------------------------------


def test_text_column_reads_missing_documents_as_empty():
    column = pd.Series(["Un café", None, np.nan, pd.NA, 42, ""], dtype=object)
    out = TextColumn().fit_transform(column)
    assert out.tolist() == ["Un café", "", "", "", "42", ""]
    assert TextColumn().transform(np.array([["a"], [None]], dtype=object)).tolist() == ["a", ""]
    with pytest.raises(ValueError, match="one column"):
        TextColumn().transform(np.zeros((2, 2), dtype=object))


@pytest.mark.parametrize("vectorizer", ["tfidf", "hashing"])
def test_text_features_are_scikit_learns(vectorizer):
    df = _corpus()
    pipe = table_pipeline(luce.SoftmaxRegression(), df, text="review", vectorizer=vectorizer)
    features = pipe[:-1].fit_transform(df, df["topic"])
    assert sp.issparse(features)  # never densified
    if vectorizer == "tfidf":
        ref, filled = _reference_features("tfidf", df["review"], max_features=50_000)
        expected = ref.transform(filled)
    else:
        (hashed, tfidf), filled = _reference_features("hashing", df["review"], n_features=50_000)
        expected = tfidf.transform(hashed.transform(filled))
    assert features.shape == expected.shape
    np.testing.assert_allclose(features.toarray(), expected.toarray(), rtol=0, atol=1e-15)


def test_text_pipeline_fits_and_predicts_unseen_documents():
    df = _corpus()
    pipe = table_pipeline(luce.SoftmaxRegression(reg_strength=1e-3), df, text="review")
    pipe.fit(df, df["topic"])
    new = pd.DataFrame(
        {"review": ["The striker scored a late goal", "Add garlic and bake the bread", None, "firmware bug"]}
    )
    pred = pipe.predict(new)
    assert pred[0] == "sport" and pred[1] == "food" and pred[3] == "tech"
    p = pipe.predict_proba(new)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert np.isfinite(p).all()


def test_text_with_other_columns_named_in_features():
    df = _corpus()
    df["channel"] = np.where(np.arange(len(df)) % 2 == 0, "web", "shop")
    pipe = table_pipeline(luce.SoftmaxRegression(), df, text="review", features=["stars", "channel"])
    names = pipe[:-1].fit(df, df["topic"]).get_feature_names_out()
    assert "numeric__stars" in names and "onehot__channel_web" in names
    assert any(n.startswith("text_0__") for n in names)
    # Without features, a table of documents feeds only its documents.
    only = table_pipeline(luce.SoftmaxRegression(), df, text="review")[:-1].fit(df)
    assert all(n.startswith("text_0__") for n in only.get_feature_names_out())


def test_text_column_errors():
    df = _corpus()
    with pytest.raises(ValueError, match="no column 'body'"):
        table_pipeline(luce.SoftmaxRegression(), df, text="body")
    with pytest.raises(ValueError, match="'stars' holds numbers"):
        table_pipeline(luce.SoftmaxRegression(), df, text="stars")
    with pytest.raises(ValueError, match="vectorizer must be"):
        table_pipeline(luce.SoftmaxRegression(), df, text="review", vectorizer="bert")
    with pytest.raises(ValueError, match="vocabulary_size"):
        table_pipeline(luce.SoftmaxRegression(), df, text="review", vocabulary_size=0)


# --------------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------------

VECTORIZERS = {
    "tfidf": TfidfVectorizer(),
    "tfidf-bigrams-sublinear": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
    "tfidf-stop-words-l1-float32": TfidfVectorizer(
        stop_words=["the", "and", "le"], norm="l1", dtype=np.float32
    ),
    "tfidf-no-idf-binary": TfidfVectorizer(use_idf=False, binary=True, lowercase=False),
    "tfidf-english": TfidfVectorizer(stop_words="english", max_df=0.5, max_features=40),
    "tfidf-chars": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)),
    "tfidf-pattern": TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", strip_accents="unicode"),
}


def _text_model(vectorizer, df):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = Pipeline([("fill", TextColumn()), ("tfidf", copy.deepcopy(vectorizer))])
    columns = ColumnTransformer([("text_0", steps, "review")])
    return Pipeline([("columns", columns), ("model", luce.SoftmaxRegression(reg_strength=1e-3))]).fit(
        df, df["topic"]
    )


@pytest.mark.parametrize("vectorizer", VECTORIZERS.values(), ids=VECTORIZERS.keys())
def test_text_model_round_trip_identical(tmp_path, vectorizer):
    df = _corpus()
    model = _text_model(vectorizer, df)
    loaded = luce.load(luce.save(model, tmp_path / "t.luce"))
    new = pd.concat(
        [df, pd.DataFrame({"review": ["Unseen wörds only", None, "THE BREAD"]})], ignore_index=True
    )
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    np.testing.assert_array_equal(loaded.predict(new), model.predict(new))
    fitted, original = loaded[0].named_transformers_["text_0"][-1], model[0].named_transformers_["text_0"][-1]
    assert fitted.vocabulary_ == original.vocabulary_
    assert fitted.get_params() == original.get_params()


def test_hashing_model_round_trip_identical(tmp_path):
    df = _corpus()
    model = table_pipeline(
        luce.SoftmaxRegression(), df, text="review", vectorizer="hashing", vocabulary_size=4096
    )
    model.fit(df, df["topic"])
    loaded = luce.load(luce.save(model, tmp_path / "h.luce"))
    np.testing.assert_array_equal(loaded.predict_proba(df), model.predict_proba(df))


def test_text_vectorizer_settings_that_a_file_cannot_hold(tmp_path):
    df = _corpus()
    for vectorizer, match in [
        (TfidfVectorizer(tokenizer=str.split, token_pattern=None), "never stores code"),
        (TfidfVectorizer(vocabulary=["bread", "team", "bug"]), "vocabulary="),
    ]:
        with pytest.raises(TypeError, match=match):
            luce.save(_text_model(vectorizer, df), tmp_path / "x.luce")


def _rewrite_vectorizers(path, out, edit):
    """``path`` rewritten with ``edit(node)`` applied to every stored TfidfVectorizer (the fitted one and
    the ColumnTransformer's unfitted parameter), checksums recomputed: a hand-made hostile file."""
    arrays = load_file(str(path))
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])["__metadata__"]
    meta = json.loads(header["luce"])

    def walk(node):
        if isinstance(node, dict):
            if node.get("estimator") == "sklearn.TfidfVectorizer":
                edit(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(meta)
    text = json.dumps(meta)
    header["luce"] = text
    header["luce_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    save_file(arrays, str(out), metadata=header)
    return out


def _param(name, node):
    def edit(vectorizer):
        vectorizer["params"][name] = node

    return edit


def _attribute(name, change):
    def edit(vectorizer):
        if name in vectorizer["attributes"]:
            change(vectorizer["attributes"][name])

    return edit


def _duplicate_term(node):
    node["values"][1] = node["values"][0]


HOSTILE = {
    "reads-files": (_param("input", {"type": "str", "value": "filename"}), "input"),
    "code-as-dtype": (_param("preprocessor", {"type": "dtype", "value": "<f8"}), "preprocessor"),
    "huge-pattern": (_param("token_pattern", {"type": "str", "value": "a" * 5000}), "token_pattern"),
    "bad-pattern": (_param("token_pattern", {"type": "str", "value": "(unclosed"}), "token_pattern"),
    "two-groups": (_param("token_pattern", {"type": "str", "value": "(a)(b)"}), "capturing group"),
    "huge-ngrams": (
        _param(
            "ngram_range",
            {"type": "tuple", "items": [{"type": "int", "value": 1}, {"type": "int", "value": 10**9}]},
        ),
        "ngram_range",
    ),
    "analyzer": (_param("analyzer", {"type": "str", "value": "__import__"}), "analyzer"),
    "encoding": (_param("encoding", {"type": "str", "value": "no-such-codec"}), "encoding"),
    "duplicate-term": (_attribute("vocabulary_", _duplicate_term), "duplicate|vocabulary"),
    "term-not-text": (
        _attribute("vocabulary_", lambda node: node["values"].__setitem__(0, 7)),
        "vocabulary_",
    ),
}


@pytest.mark.parametrize("edit, match", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_settings_are_refused(tmp_path, edit, match):
    df = _corpus()
    path = luce.save(_text_model(TfidfVectorizer(), df), tmp_path / "t.luce")
    out = _rewrite_vectorizers(path, tmp_path / "hostile.luce", edit)
    with pytest.raises(ModelFormatError, match=match) as info:
        luce.load(out)
    assert info.value.reason == "corrupted"


def _with_tensor(path, out, key, value):
    """``path`` with the tensor ``key`` replaced by ``value``, its checksums recomputed."""
    tensors = {**load_file(str(path)), key: np.ascontiguousarray(value)}
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])["__metadata__"]
    meta = json.loads(header["luce"])

    def fix(node):
        if isinstance(node, dict):
            if node.get("type") == "tensor" and node.get("key") == key:
                node["shape"] = list(tensors[key].shape)
                node["sha256"] = hashlib.sha256(tensors[key].tobytes()).hexdigest()
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    fix(meta)
    text = json.dumps(meta)
    header["luce"] = text
    header["luce_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    save_file(tensors, str(out), metadata=header)
    return out


def test_idf_that_does_not_match_the_vocabulary_is_refused(tmp_path):
    df = _corpus()
    path = luce.save(_text_model(TfidfVectorizer(), df), tmp_path / "t.luce")
    (key,) = [k for k in load_file(str(path)) if k.endswith("idf_")]
    idf = load_file(str(path))[key]
    for bad in (idf[:-1], -idf, np.where(np.arange(idf.size) == 0, np.inf, idf)):
        with pytest.raises(ModelFormatError, match="idf_"):
            luce.load(_with_tensor(path, tmp_path / "idf.luce", key, bad))


# --------------------------------------------------------------------------------------------------
# ONNX export, run in ONNX Runtime on real strings
# --------------------------------------------------------------------------------------------------

NEW_DOCUMENTS = [
    "The STRIKER scored; the crowd went wild!!",
    "Crème fraîche, Käse und Brot — c'est délicieux.",
    "a b c d e",  # one-letter words only: no token
    "",
    None,
    "Android 14 patch: memory-leak fixed 💻 in v3.2.1",
    "Straße, ÉCOLE, naïve, Über",
    "team team team bread bread bug",
]


def _onnx_run(path, df, columns):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path))
    feed = {
        c: df[c].map(lambda d: d if isinstance(d, str) else "").to_numpy(dtype=object).reshape(-1, 1)
        for c in columns
    }
    return session.run(None, feed)


EXPORTABLE = {
    "default": TfidfVectorizer(),
    "bigrams": TfidfVectorizer(ngram_range=(1, 2)),
    "english-stop-words": TfidfVectorizer(stop_words="english", min_df=2),
    "no-idf-l1-binary": TfidfVectorizer(use_idf=False, norm="l1", binary=True),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("vectorizer", EXPORTABLE.values(), ids=EXPORTABLE.keys())
def test_onnx_of_a_text_model_matches_luce(tmp_path, vectorizer, dtype):
    pytest.importorskip("skl2onnx")
    df = _corpus()
    model = _text_model(vectorizer, df)
    path = luce.export_onnx(model, tmp_path / "t.onnx", dtype=dtype)
    new = pd.concat([df, pd.DataFrame({"review": NEW_DOCUMENTS})], ignore_index=True)
    new["review"] = new["review"].astype(object)
    label, proba = _onnx_run(path, new, ["review"])
    expected = model.predict_proba(new)
    # ONNX Runtime's TfIdfVectorizer counts in float32 whatever the graph's dtype.
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label.ravel(), model.predict(new))


def test_onnx_of_text_with_other_columns(tmp_path):
    pytest.importorskip("skl2onnx")
    df = _corpus()
    df["channel"] = np.where(np.arange(len(df)) % 3 == 0, "web", "shop")
    model = table_pipeline(
        luce.SoftmaxRegression(reg_strength=1e-3), df, text="review", features=["stars", "channel"]
    )
    model.fit(df, df["topic"])
    path = luce.export_onnx(model, tmp_path / "t.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["review", "stars", "channel"]  # the table's order
    feed = {
        "stars": df[["stars"]].to_numpy(dtype=np.float32),
        "channel": df[["channel"]].to_numpy(dtype=object),
        "review": df["review"]
        .map(lambda d: d if isinstance(d, str) else "")
        .to_numpy(dtype=object)
        .reshape(-1, 1),
    }
    _, proba = session.run(None, feed)
    np.testing.assert_allclose(proba, model.predict_proba(df), rtol=0, atol=1e-5)


def test_a_pipeline_fitted_on_a_list_of_documents(tmp_path):
    """A user's own Pipeline on plain strings (no table): saved, loaded and exported with input X."""
    pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline

    df = _corpus()
    docs = [d if isinstance(d, str) else "" for d in df["review"]]
    model = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("clf", luce.SoftmaxRegression())])
    model.fit(docs, df["topic"])
    new = [*docs, *(d or "" for d in NEW_DOCUMENTS)]
    loaded = luce.load(luce.save(model, tmp_path / "p.luce"))
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    path = luce.export_onnx(model, tmp_path / "p.onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path))
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("X", [None, 1])]
    label, proba = session.run(None, {"X": np.array(new, dtype=object).reshape(-1, 1)})
    np.testing.assert_allclose(proba, model.predict_proba(new), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label.ravel(), model.predict(new))


REFUSED = {
    "hashing": (None, "HashingVectorizer cannot be exported.*MurmurHash3"),
    "sublinear": (TfidfVectorizer(sublinear_tf=True), "sublinear_tf"),
    "pattern": (TfidfVectorizer(token_pattern=r"\S+"), "RE2"),
    "accents": (TfidfVectorizer(strip_accents="ascii"), "strip_accents"),
    "chars": (TfidfVectorizer(analyzer="char"), "analyzer"),
    "stop-words-bigrams": (TfidfVectorizer(stop_words=["the"], ngram_range=(1, 2)), "stop words"),
}


@pytest.mark.parametrize("vectorizer, match", REFUSED.values(), ids=REFUSED.keys())
def test_onnx_refuses_text_steps_it_cannot_convert_exactly(tmp_path, vectorizer, match):
    pytest.importorskip("skl2onnx")
    df = _corpus()
    if vectorizer is None:
        model = table_pipeline(luce.SoftmaxRegression(), df, text="review", vectorizer="hashing").fit(
            df, df["topic"]
        )
    else:
        model = _text_model(vectorizer, df)
    with pytest.raises(TypeError, match=match):
        luce.export_onnx(model, tmp_path / "t.onnx")
    assert not (tmp_path / "t.onnx").exists()


# --------------------------------------------------------------------------------------------------
# luce train --text, predict, evaluate, info, export
# --------------------------------------------------------------------------------------------------


def _write(df, path):
    df.to_parquet(path, index=False) if path.suffix == ".parquet" else df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    folder = tmp_path_factory.mktemp("documents")
    df = _corpus(n_copies=6, seed=1)
    df.insert(0, "ticket_id", [f"T{i:04d}" for i in range(len(df))])
    return folder, df


def test_cli_trains_on_documents_from_csv_and_parquet_alike(documents):
    from cli_runner import run

    folder, df = documents
    probabilities = []
    for suffix in (".csv", ".parquet"):
        data = _write(df, folder / f"docs{suffix}")
        model = folder / f"docs{suffix}.luce"
        out = run("train", data, "--text", "review", "--target", "topic", "--model", model).stdout
        # Three missing documents and one empty one (read_table reads an empty text cell as missing).
        assert "note: 4 rows have no text in 'review'; they are read as empty documents" in out
        assert f"{len(df)} rows, 1 column of documents, 3 classes" in out
        loaded = luce.load(model)
        # The file is a Pipeline over the raw column: the same features as scikit-learn's own vectorizer.
        ref, filled = _reference_features("tfidf", df["review"], max_features=50_000)
        np.testing.assert_allclose(
            loaded[:-1].transform(df).toarray(), ref.transform(filled).toarray(), atol=1e-15
        )
        probabilities.append(loaded.predict_proba(df))
    np.testing.assert_array_equal(probabilities[0], probabilities[1])


def test_cli_predict_evaluate_info_export_on_documents(documents, tmp_path):
    from cli_runner import run

    _, df = documents
    data = _write(df, tmp_path / "docs.csv")
    model = tmp_path / "m.luce"
    run(
        "train",
        data,
        "--text",
        "review",
        "-y",
        "topic",
        "-m",
        model,
        "--features",
        "stars",
        "--test-size",
        "0",
    )
    new = pd.DataFrame(
        {
            "ticket_id": ["N1", "N2", "N3"],
            "stars": [5, None, 2],
            "review": ["Le match était superbe", None, "Battery died after the update"],
        }
    )
    new_path = _write(new, tmp_path / "new.parquet")
    printed = pd.read_csv(io.StringIO(run("predict", model, new_path, "--proba", "--id", "ticket_id").stdout))
    loaded = luce.load(model)
    np.testing.assert_allclose(
        printed.filter(like="proba_").to_numpy(), loaded.predict_proba(new), rtol=1e-12
    )
    assert printed["prediction"].tolist()[0] == "sport" and printed["prediction"].tolist()[2] == "tech"
    evaluated = run("evaluate", model, data).stdout
    assert "accuracy" in evaluated
    info = run("info", model).stdout
    assert re.search(r"review\s*│ bag of \d+ words, TF-IDF, l2 norm; missing → empty document", info)
    assert re.search(r"stars\s*│ number", info)
    exported = run("export", model, "--onnx", tmp_path / "m.onnx").stdout
    assert "2 input(s) (stars, review)" in exported
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    feed = {"stars": new[["stars"]].to_numpy(dtype=np.float32),
            "review": new[["review"]].fillna("").to_numpy(dtype=object)}  # fmt: skip
    _, proba = session.run(None, feed)
    np.testing.assert_allclose(proba, loaded.predict_proba(new), atol=1e-5)


def test_cli_text_errors(documents, tmp_path):
    from cli_runner import fails, run

    _, df = documents
    data = _write(df, tmp_path / "docs.csv")
    fails("train", data, "--text", "body", "-y", "topic", code=1, match=r"--text: no column 'body'")
    fails("train", data, "--text", "stars", "-y", "topic", code=1, match=r"'stars' holds numbers.*--features")
    model = tmp_path / "h.luce"
    run("train", data, "--text", "review", "-y", "topic", "-m", model, "--vectorizer", "hashing",
        "--vocabulary-size", "2048", "--test-size", "0")  # fmt: skip
    assert "words hashed into 2048 buckets" in run("info", model).stdout
    fails(
        "export", model, "--onnx", tmp_path / "h.onnx", code=1, match="HashingVectorizer cannot be exported"
    )
    # 3 classes × 10^8 words × 8 bytes: the note says what the weights may cost before anything is fitted.
    out = run("train", data, "--text", "review", "-y", "topic", "-m", tmp_path / "big.luce",
              "--vocabulary-size", "100000000", "--test-size", "0").stdout  # fmt: skip
    assert (
        "note: 3 classes × up to 100000000 words per column of documents: the weights may take 2,400 MB"
        in out
    )


def test_the_documented_text_commands_run_on_the_documented_table(tmp_path, monkeypatch):
    import shlex
    from pathlib import Path

    from cli_runner import run

    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    script = re.search(r"<!-- generate-reviews.*?-->\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "docs/cli.md", "exec"), {})
    commands = [line[len("$ luce ") :] for line in text.splitlines() if line.startswith("$ luce ")]
    on_table = [c for c in commands if "reviews" in c]
    assert {"train", "predict", "info", "export"} <= {c.split()[0] for c in on_table}
    outputs = {}
    for command in on_table:
        result = run(*shlex.split(command))
        assert "error" not in result.stderr, command
        outputs[command.split()[0]] = result.stdout
    assert "note: 26 rows have no text in 'review'" in outputs["train"]
    documented = re.search(r"^(review_id,prediction,confidence\n(?:R\d+,.*\n){2})", text, re.M).group(1)
    for row, doc_row in zip(outputs["predict"].splitlines()[:3], documented.splitlines(), strict=True):
        if row.startswith("review_id"):
            assert row == doc_row
            continue
        (rid, label, p), (doc_rid, doc_label, doc_p) = row.split(","), doc_row.split(",")
        assert (rid, label) == (doc_rid, doc_label) and float(p) == pytest.approx(float(doc_p), rel=1e-9)


def test_cli_vocabulary_default_is_the_libraries():
    import inspect

    from luce.cli._train import train
    from luce.tables import VOCABULARY_SIZE

    assert inspect.signature(train).parameters["vocabulary_size"].default == VOCABULARY_SIZE
