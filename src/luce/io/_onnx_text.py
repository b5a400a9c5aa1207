"""ONNX of the text steps of a table Pipeline: what skl2onnx converts exactly, and a clear refusal
for what it does not.

skl2onnx turns a fitted ``TfidfVectorizer`` into StringNormalizer (lowercase) → Tokenizer (a regular
expression) → TfIdfVectorizer (n-gram counts of the vocabulary) → Mul (idf) → Normalizer. Its limits,
checked against ONNX Runtime on real strings in tests/test_text.py:

- the token pattern runs in ONNX Runtime's Tokenizer, which uses RE2, not Python's ``re``: luce gives
  it the RE2 form of scikit-learn's default pattern ``(?u)\\b\\w\\w+\\b``, runs of two or more letters,
  digits or underscores, ``[\\p{L}\\p{N}_][\\p{L}\\p{N}_]+`` (skl2onnx's own substitute, ``[a-zA-Z0-9_]+``,
  splits "café" and keeps one-letter words, which shifts n-grams); other patterns are refused;
- ``sublinear_tf=True`` is refused: skl2onnx computes log(1 + tf) where scikit-learn computes
  1 + log(tf);
- ``strip_accents``, character analyzers, and stop words with n-grams longer than one (scikit-learn
  drops stop words before it forms n-grams; the converted graph does not drop them) are refused;
- ``HashingVectorizer`` has no converter (ONNX has no operator for its MurmurHash3 token hashing);
- lowercasing runs in StringNormalizer under a C++ locale; luce names ``C.UTF-8`` (:data:`LOCALE`), which
  every glibc Linux has (ONNX Runtime's default, ``en_US.UTF-8``, is missing from slim containers).

Missing documents: ONNX string tensors have no None; a missing document is sent as ``""``, as
``luce.tables.TextColumn`` reads it (the converted TextColumn is the identity).
"""

from __future__ import annotations

__all__ = ["LOCALE", "check_text_exportable", "register_text_column", "text_options"]

LOCALE = "C.UTF-8"
DEFAULT_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's token_pattern
RE2_DEFAULT_PATTERN = r"[\p{L}\p{N}_][\p{L}\p{N}_]+"


def _steps(step):
    """Every step inside ``step`` (Pipelines and ColumnTransformers opened), ``step`` included."""
    yield step
    kind = type(step).__name__
    if kind == "Pipeline":
        for _, s in step.steps:
            yield from _steps(s)
    elif kind == "ColumnTransformer":
        for _, t, _ in step.transformers_:
            if not isinstance(t, str):
                yield from _steps(t)


def check_text_exportable(pipe) -> None:
    """Raise TypeError, saying why, when a text step of ``pipe`` has no exact ONNX form."""
    for step in _steps(pipe):
        kind = type(step).__name__
        if kind == "HashingVectorizer":
            raise TypeError(
                "HashingVectorizer cannot be exported to ONNX: ONNX has no operator for its MurmurHash3 "
                "token hashing (skl2onnx has no converter for it); train with the 'tfidf' vectorizer "
                "(luce train --vectorizer tfidf) to export"
            )
        if kind not in ("TfidfVectorizer", "CountVectorizer"):
            continue
        why = None
        if step.token_pattern != DEFAULT_PATTERN:
            why = (
                f"its token_pattern {step.token_pattern!r} would run under RE2 in ONNX Runtime, whose "
                "syntax and \\w, \\b differ from Python's; luce translates only the default pattern"
            )
        elif step.analyzer != "word":
            why = f"analyzer={step.analyzer!r}: only word analyzers convert exactly"
        elif step.strip_accents is not None:
            why = "strip_accents has no ONNX operator"
        elif getattr(step, "sublinear_tf", False):
            why = "with sublinear_tf=True skl2onnx computes log(1 + tf), not scikit-learn's 1 + log(tf)"
        elif step.stop_words is not None and step.ngram_range[1] > 1:
            why = "stop words with n-grams: scikit-learn forms n-grams after dropping stop words, ONNX before"
        if why is not None:
            raise TypeError(f"{kind} cannot be exported to ONNX exactly: {why}")


def text_options(pipe) -> dict:
    """skl2onnx options of the text vectorizers of ``pipe`` (luce's token pattern and locale), keyed by
    the step's ``id`` as skl2onnx takes them (keyed by class, they would reach every step)."""
    options = {"tokenexp": RE2_DEFAULT_PATTERN, "locale": LOCALE}
    kinds = ("TfidfVectorizer", "CountVectorizer")
    return {id(step): dict(options) for step in _steps(pipe) if type(step).__name__ in kinds}


def _text_column_shapes(operator):
    from skl2onnx.common.data_types import StringTensorType

    operator.outputs[0].type = StringTensorType([None, 1])


def _convert_text_column(scope, operator, container):
    container.add_node(
        "Identity",
        [operator.inputs[0].full_name],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("luce_text_column"),
    )


def register_text_column() -> None:
    """Teach skl2onnx luce.tables.TextColumn: the identity on a string column."""
    from skl2onnx import update_registered_converter

    from ..tables import TextColumn

    update_registered_converter(TextColumn, "LuceTextColumn", _text_column_shapes, _convert_text_column)
