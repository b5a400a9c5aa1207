"""The scikit-learn text vectorizers a model file may hold: their parameters checked as data, their
vocabulary stored as a list of terms, their fitted state rebuilt by scikit-learn itself.

A file stores a vectorizer's parameters (lowercase, token_pattern, ngram_range, stop words, norm, ...)
and its fitted state: the vocabulary (the terms in column order, a JSON array) and ``idf_`` (a tensor).
Nothing in a file is code: callables (analyzer, preprocessor, tokenizer) are refused, ``input`` must be
``"content"`` (``"filename"`` would make a prediction read files named by the data), and the token
pattern is a regular expression checked for size and compiled before anything runs.
"""

from __future__ import annotations

import codecs
import re

import numpy as np

__all__ = ["TEXT_STEPS", "check_text_params", "derive_text", "text_attributes"]

TEXT_STEPS = ("TfidfVectorizer", "CountVectorizer", "HashingVectorizer", "TfidfTransformer")

_MAX_PATTERN = 1000  # characters of a token pattern
_MAX_STOP_WORDS = 100_000
_MAX_TERM = 10_000  # characters of one stop word or vocabulary term
_MAX_NGRAM = 16
_MAX_HASH_FEATURES = np.iinfo(np.int32).max  # scikit-learn's own bound
_NORMS = (None, "l1", "l2")


def _bool(params, key):
    if key in params and not isinstance(params[key], bool):
        raise ValueError(f"{key} must be True or False, got {params[key]!r}")


def _choice(params, key, allowed):
    if key in params and not (params[key] is None and None in allowed) and params[key] not in allowed:
        raise ValueError(f"{key} must be one of {allowed}, got {params[key]!r}")


def _count_or_fraction(params, key):
    value = params.get(key)
    if key not in params or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be an int or a float, got {value!r}")
    if isinstance(value, float) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} as a fraction must be in [0, 1], got {value!r}")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{key} must be >= 0, got {value!r}")


def _weighting(params):
    for key in ("use_idf", "smooth_idf", "sublinear_tf"):
        _bool(params, key)
    _choice(params, "norm", _NORMS)


def _analysis(name, params):
    """The parameters that say how a document becomes tokens (every vectorizer but TfidfTransformer)."""
    for key in ("analyzer", "preprocessor", "tokenizer"):
        value = params.get(key)
        if callable(value):
            raise ValueError(f"{name}({key}=<callable>): a model file never stores code")
    _choice(params, "input", ("content",))
    _choice(params, "analyzer", ("word", "char", "char_wb"))
    if params.get("preprocessor") is not None or params.get("tokenizer") is not None:
        raise ValueError(f"{name}: preprocessor and tokenizer must be None in a model file")
    _choice(params, "strip_accents", (None, "ascii", "unicode"))
    _choice(params, "decode_error", ("strict", "ignore", "replace"))
    _bool(params, "lowercase")
    _bool(params, "binary")
    encoding = params.get("encoding", "utf-8")
    if not (isinstance(encoding, str) and len(encoding) <= 64):
        raise ValueError(f"encoding must be a short string, got {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    pattern = params.get("token_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
            raise ValueError(f"token_pattern must be a string of at most {_MAX_PATTERN} characters")
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"token_pattern is not a regular expression: {e}") from None
        if compiled.groups > 1:  # scikit-learn's own rule: the one group, if any, is the token
            raise ValueError("token_pattern has more than one capturing group")
    ngram = params.get("ngram_range", (1, 1))
    if not (
        isinstance(ngram, tuple | list)
        and len(ngram) == 2
        and all(type(n) is int for n in ngram)
        and 1 <= ngram[0] <= ngram[1] <= _MAX_NGRAM
    ):
        raise ValueError(f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n <= {_MAX_NGRAM}")
    stop = params.get("stop_words")
    if stop is not None and stop != "english":
        if not isinstance(stop, list | tuple | frozenset | set) or len(stop) > _MAX_STOP_WORDS:
            raise ValueError(f"stop_words must be None, 'english' or a list of at most {_MAX_STOP_WORDS}")
        if not all(isinstance(w, str) and len(w) <= _MAX_TERM for w in stop):
            raise ValueError(f"stop_words must be strings of at most {_MAX_TERM} characters")
    dtype = params.get("dtype", np.float64)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}")


def check_text_params(name: str, params: dict) -> None:
    """Raise ValueError when a text step's parameters are not plain, bounded data."""
    if name == "TfidfTransformer":
        _weighting(params)
        return
    _analysis(name, params)
    if name == "HashingVectorizer":
        n = params.get("n_features")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_HASH_FEATURES:
            raise ValueError(f"n_features must be an int in [1, {_MAX_HASH_FEATURES}], got {n!r}")
        _bool(params, "alternate_sign")
        _choice(params, "norm", _NORMS)
        return
    if params.get("vocabulary") is not None:
        raise ValueError(
            f"{name}(vocabulary=...) cannot be saved in a model file: fit with vocabulary=None (the "
            "fitted vocabulary_ is saved)"
        )
    _count_or_fraction(params, "min_df")
    _count_or_fraction(params, "max_df")
    m = params.get("max_features")
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise ValueError(f"max_features must be None or an int >= 1, got {m!r}")
    if name == "TfidfVectorizer":
        _weighting(params)


def text_attributes(est, attributes: dict) -> dict:
    """The fitted attributes a file stores for a text step: the vocabulary as its terms in column
    order, and a TfidfVectorizer's ``idf_`` (a property, not in ``vars``)."""
    name = type(est).__name__
    attributes = dict(attributes)
    vocabulary = attributes.get("vocabulary_")
    if isinstance(vocabulary, dict):
        terms = np.empty(len(vocabulary), dtype=object)
        for term, column in vocabulary.items():
            terms[column] = term
        attributes["vocabulary_"] = terms
    if name == "TfidfVectorizer" and est.use_idf and hasattr(est, "_tfidf"):
        attributes["idf_"] = np.asarray(est.idf_)
    return attributes


def _idf(attributes, n: int, use_idf: bool) -> np.ndarray | None:
    idf = attributes.get("idf_")
    if not use_idf:
        if idf is not None:
            raise ValueError("idf_ is saved but use_idf is False")
        return None
    if not (isinstance(idf, np.ndarray) and idf.dtype.kind == "f" and idf.shape == (n,)):
        raise ValueError(f"idf_ must be a float array of shape ({n},)")
    if not (np.isfinite(idf).all() and (idf > 0).all()):
        raise ValueError("idf_ must hold finite numbers > 0")
    return idf


def derive_text(est, attributes: dict) -> None:
    """Rebuild a vectorizer's private state with scikit-learn's own fit, on one empty document with the
    saved terms as a fixed vocabulary (scikit-learn checks they are distinct), then put the saved
    ``idf_`` in; ``attributes`` is updated to what is then set on ``est``."""
    name = type(est).__name__
    if name == "TfidfTransformer":  # its state is public: n_features_in_ and, with use_idf, idf_
        n = attributes.get("n_features_in_")
        _idf(attributes, n if isinstance(n, int) else -1, est.use_idf)
        return
    if name == "HashingVectorizer":  # stateless
        return
    terms = attributes.get("vocabulary_")
    if not (isinstance(terms, np.ndarray) and terms.ndim == 1 and terms.size > 0):
        raise ValueError("vocabulary_ must be a non-empty list of terms")
    if not all(isinstance(t, str) and len(t) <= _MAX_TERM for t in terms.tolist()):
        raise ValueError(f"vocabulary_ terms must be strings of at most {_MAX_TERM} characters")
    idf = _idf(attributes, terms.size, name == "TfidfVectorizer" and est.use_idf)
    est.set_params(vocabulary=terms.tolist())
    try:
        est.fit([""])
    finally:
        est.set_params(vocabulary=None)
    if idf is not None:
        est.idf_ = idf
        del attributes["idf_"]  # a property: set above, after the vocabulary it must match
    attributes["vocabulary_"] = dict(est.vocabulary_)
