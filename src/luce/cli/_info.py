"""``luce info MODEL``: what a model file holds, without any data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._app import app, console
from ._data import model_columns
from ._model import load_model
from ._report import metrics_table

_TOP = 10


def _input_names(loaded, n: int) -> list[str]:
    """The names of the final estimator's ``n`` inputs (after the Pipeline's encoding)."""
    from sklearn.pipeline import Pipeline

    try:
        if isinstance(loaded.model, Pipeline):
            return [str(v) for v in loaded.model[:-1].get_feature_names_out()]
        names = getattr(loaded.model, "feature_names_in_", None)
        if names is not None:
            return [str(v) for v in names]
    except (AttributeError, ValueError):
        pass
    return [f"x{j}" for j in range(n)]


def _encoding(loaded) -> list[tuple[str, str]]:
    """(column, how it is encoded) for a table Pipeline, in the order the model reads them."""
    columns = model_columns(loaded.model)
    if columns is None:
        return []
    transformer = loaded.model.steps[0][1]
    rows = []
    numeric = transformer.named_transformers_.get("numeric")
    steps = [name for name, _ in numeric.steps] if numeric is not None and hasattr(numeric, "steps") else []
    impute = numeric.named_steps["impute"].strategy if "impute" in steps else None
    for c in columns[0]:
        how = (
            "number"
            + (f", missing → {impute}" if impute else "")
            + (", standardised" if "scale" in steps else "")
        )
        rows.append((c, how))
    encoder = transformer.named_transformers_.get("onehot")
    if encoder is not None and hasattr(encoder, "steps"):
        encoder = encoder[-1]
    for k, c in enumerate(columns[1]):
        cats = [str(v) for v in encoder.categories_[k]] if encoder is not None else []
        shown = ", ".join(cats[:6]) + (f", … ({len(cats)} in all)" if len(cats) > 6 else "")
        rows.append((c, f"one-hot: {shown}; unseen → all zeros"))
    for k, c in enumerate(columns[2]):
        rows.append((c, _text_encoding(transformer.named_transformers_.get(f"text_{k}"))))
    return rows


def _text_encoding(steps) -> str:
    """How a column of documents is encoded: the vectorizer, its vocabulary or buckets, its weighting."""
    named = dict(getattr(steps, "steps", []))
    tfidf, hashing = named.get("tfidf"), named.get("hash")
    if hashing is not None:
        how = f"words hashed into {hashing.n_features} buckets"
    elif tfidf is not None and hasattr(tfidf, "vocabulary_"):
        how = f"bag of {len(tfidf.vocabulary_)} words"
    else:
        how = "bag of words"
    if tfidf is not None:
        how += ", TF-IDF" + (f", {tfidf.norm} norm" if tfidf.norm else "")
    ngram = getattr(hashing if hashing is not None else tfidf, "ngram_range", (1, 1))
    if tuple(ngram) != (1, 1):
        how += f", {ngram[0]}–{ngram[1]}-grams"
    return how + "; missing → empty document"


@app.command("info")
def info(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model file written by luce train or luce.save.")
    ],
) -> None:
    """Show what a model file holds: task, classes, columns, metrics, largest weights.

    Also the training rows, the encoding of each column and the temperature.

    Example: luce info iris.luce
    """
    from rich.table import Table

    loaded = load_model(model_path)
    final, meta = loaded.final, loaded.info
    out = console()
    kind = type(final).__name__
    if loaded.multilabel:
        task = f"multi-label ({len(loaded.labels)} labels: {', '.join(loaded.labels)})"
    else:
        classes = loaded.classes.tolist()
        shown = ", ".join(map(str, classes[:12])) + (" …" if len(classes) > 12 else "")
        task = f"{len(classes)}-class classification ({shown})"
    out.print(f"[bold]{model_path}[/]: {kind}{' in a table Pipeline' if model_columns(loaded.model) else ''}")
    out.print(f"task: {task}")
    if loaded.targets:
        out.print(f"target column(s): {', '.join(loaded.targets)}")
    if meta.get("n_rows") is not None:
        out.print(
            f"trained on {meta.get('n_train')} of {meta['n_rows']} rows of {meta.get('data')} "
            f"({'refitted on all rows after the held-out report' if meta.get('refit') else 'split model'})"
        )
    # A TemperatureScaling file wraps the fitted classifier: its weights are the wrapped one's.
    linear = getattr(final, "estimator", None) if kind == "TemperatureScaling" else final
    linear = final if linear is None else linear
    if linear is not final:
        out.print(f"calibrating: {type(linear).__name__}")
    params = linear.get_params()
    out.print(
        f"reg_strength {params.get('reg_strength')}, solver {params.get('solver')}, "
        f"{getattr(linear, 'n_iter_', '?')} iterations"
    )
    T = getattr(final, "temperature_", None)
    if T is not None and np.ndim(T) == 0:
        out.print(f"temperature T = {float(T):.4g}")
    cut = getattr(final, "decision_threshold", getattr(final, "threshold", None))
    if kind == "SigmoidRegression" and cut is not None:
        out.print(f"decision threshold: {cut}")
    encoding = _encoding(loaded)
    if encoding:
        table = Table(title="Columns", title_justify="left")
        table.add_column("column")
        table.add_column("encoding")
        for c, how in encoding:
            table.add_row(c, how)
        out.print(table)
    left_out = (meta.get("columns") or {}).get("left_out") or {}
    if left_out:
        out.print("left out: " + ", ".join(f"{c} ({r})" for c, r in left_out.items()))
    if meta.get("test_metrics"):
        out.print(metrics_table(meta["test_metrics"], f"Held-out metrics ({meta.get('n_test')} rows)"))
    if getattr(linear, "coef_", None) is None:
        out.print(f"(a {type(linear).__name__} has no single weight matrix to show)")
        return
    coef = np.asarray(linear.coef_, dtype=np.float64)
    names = _input_names(loaded, coef.shape[1])
    strength = np.abs(coef).max(axis=0)
    order = np.argsort(-strength, kind="stable")[:_TOP]
    table = Table(title=f"Largest weights (of {coef.shape[1]} model inputs)", title_justify="left")
    table.add_column("input")
    table.add_column("max |weight|", justify="right")
    table.add_column("strongest for", justify="left")
    rows_for = loaded.labels if loaded.multilabel else [str(c) for c in loaded.classes.tolist()]
    if coef.shape[0] == 1 and not loaded.multilabel:
        rows_for = [str(loaded.classes[-1])]
    for j in order:
        k = int(np.argmax(np.abs(coef[:, j])))
        table.add_row(names[j], f"{strength[j]:.4g}", f"{rows_for[k]} ({'+' if coef[k, j] > 0 else '−'})")
    out.print(table)
