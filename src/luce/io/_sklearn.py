"""The scikit-learn steps a model file may hold, and how a loaded one is made fitted again.

A file stores a step's ``get_params(deep=False)`` and its public fitted attributes (names ending in
``_``), not its private state (``_infrequent_enabled``, ``_n_features_outs``, ...), which differs
between scikit-learn versions; the one private fact kept is a hint, an imputer's input dtype
(:func:`input_dtype`). Loading constructs the step from its parameters, lets scikit-learn derive its
private state by a fit on a tiny synthetic input built from the saved public state (the categories, the
statistics, the column layout), then sets the saved public attributes, so the transform is exactly the
saved one. Only the classes in :data:`STEPS` are allowed; a file cannot name any other.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from ._text import TEXT_STEPS, check_text_params, derive_text, text_attributes

__all__ = [
    "STEPS",
    "check_storable",
    "input_dtype",
    "rebuild",
    "saved_attributes",
    "step_class",
    "step_name",
    "step_names",
]


def _classes() -> dict[str, type]:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import (
        CountVectorizer,
        HashingVectorizer,
        TfidfTransformer,
        TfidfVectorizer,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        MaxAbsScaler,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )

    classes = (
        Pipeline, ColumnTransformer, OneHotEncoder, OrdinalEncoder, SimpleImputer, StandardScaler,
        MaxAbsScaler, FunctionTransformer, TfidfVectorizer, CountVectorizer, HashingVectorizer,
        TfidfTransformer,
    )  # fmt: skip
    return {f"sklearn.{cls.__name__}": cls for cls in classes}


# The whitelist: the name stored in files -> the scikit-learn class (filled on first use, so that
# `import luce.io` does not import scikit-learn's submodules).
STEPS: dict[str, type] = {}


def _steps() -> dict[str, type]:
    if not STEPS:
        STEPS.update(_classes())
    return STEPS


def step_name(cls) -> str | None:
    """The file name of a whitelisted scikit-learn class, or None."""
    if not getattr(cls, "__module__", "").startswith("sklearn."):
        return None
    for name, known in _steps().items():
        if known is cls:
            return name
    return None


def step_names() -> list[str]:
    """The scikit-learn class names a model file may hold."""
    return [name.removeprefix("sklearn.") for name in _steps()]


def step_class(name) -> type | None:
    """The whitelisted scikit-learn class stored under ``name``, or None."""
    return _steps().get(name) if isinstance(name, str) and name.startswith("sklearn.") else None


def check_storable(est) -> None:
    """Refuse settings whose fitted state a file cannot rebuild exactly (raise TypeError)."""
    name = type(est).__name__
    params = est.get_params(deep=False)
    if name in TEXT_STEPS:
        try:
            check_text_params(name, params)
        except ValueError as e:
            raise TypeError(f"{name} cannot be saved in a model file: {e}") from None
    if name in ("OneHotEncoder", "OrdinalEncoder"):
        if params.get("min_frequency") is not None or params.get("max_categories") is not None:
            raise TypeError(
                f"{name} with min_frequency or max_categories (infrequent categories) cannot be saved "
                "in a model file; leave them at None"
            )
        if callable(params.get("feature_name_combiner")):
            raise TypeError(f"{name} with a callable feature_name_combiner cannot be saved in a model file")
    if name == "SimpleImputer" and params.get("add_indicator"):
        raise TypeError("SimpleImputer(add_indicator=True) cannot be saved in a model file")
    if name == "FunctionTransformer" and (params.get("func") is not None or params.get("inverse_func")):
        raise TypeError(
            "FunctionTransformer can be saved only as the identity (func=None), the form ColumnTransformer "
            "uses for 'passthrough' columns: a model file never stores code"
        )
    if name == "ColumnTransformer":
        for _, _, columns in params["transformers"]:
            if callable(columns):
                raise TypeError(
                    "ColumnTransformer column selectors must be lists of column names or indices, not "
                    "callables (make_column_selector): a model file never stores code"
                )
    if name == "Pipeline" and params.get("memory") is not None:
        raise TypeError("Pipeline(memory=...) cannot be saved in a model file; set memory=None")


# --------------------------------------------------------------------------------------------------
# Rebuilding a fitted step
# --------------------------------------------------------------------------------------------------


def saved_attributes(est, attributes: dict) -> dict:
    """The fitted attributes a file stores for a scikit-learn step (a text vectorizer stores its
    vocabulary as terms in column order, and its ``idf_``)."""
    return text_attributes(est, attributes) if type(est).__name__ in TEXT_STEPS else attributes


def input_dtype(est) -> str | None:
    """The dtype a SimpleImputer converts its input to (it remembers its fit's input dtype, which its
    statistics do not always show: float32 data gives float64 means and object constants), as a hint
    for :func:`rebuild`; None for other steps."""
    dtype = getattr(est, "_fit_dtype", None) if type(est).__name__ == "SimpleImputer" else None
    return dtype.str if isinstance(dtype, np.dtype) and dtype.kind in "iufO" else None


def rebuild(cls, params: dict, attributes: dict, dtype: np.dtype | None = None):
    """A fitted ``cls`` with ``params`` and the saved public ``attributes`` (an unfitted one if none);
    ``dtype`` is the :func:`input_dtype` hint, when saved.

    Raises ValueError when the attributes are inconsistent with each other or with the parameters.
    """
    if cls.__name__ in TEXT_STEPS:  # checked before the step exists: its parameters are data to us
        check_text_params(cls.__name__, params)
    est = cls(**params)
    if cls.__name__ == "Pipeline":
        _check_widths(est.steps)
    if not attributes:
        return est
    n = attributes.get("n_features_in_")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n_features_in_ must be a non-negative int, got {n!r}")
    names = attributes.get("feature_names_in_")
    if names is not None and (n is None or len(names) != n):
        raise ValueError(f"feature_names_in_ has {len(names)} names but n_features_in_ is {n}")
    derive = _DERIVE.get(cls.__name__)
    if derive is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic input may be degenerate (one row)
            derive(est, attributes, dtype)
    for key, value in attributes.items():
        setattr(est, key, value)
    return est


def _n_outputs(step) -> int | None:
    """How many features a fitted step outputs, when it can say."""
    if isinstance(step, str) or not hasattr(step, "get_feature_names_out"):
        return None
    if type(step).__name__ == "FunctionTransformer":  # the identity: without naming every column
        return getattr(step, "n_features_in_", None)
    try:
        return len(step.get_feature_names_out())
    except (AttributeError, TypeError, ValueError):
        return None


def _check_widths(steps) -> None:
    """Each step must take as many features as the step before it gives."""
    for (a_name, a), (b_name, b) in itertools.pairwise(steps):
        n_in = getattr(b, "n_features_in_", None)
        n_out = _n_outputs(a)
        if n_in is not None and n_out is not None and n_in != n_out:
            raise ValueError(f"step {b_name!r} takes {n_in} features but step {a_name!r} gives {n_out}")


def _per_feature(attributes, *keys):
    n = attributes.get("n_features_in_")
    for key in keys:
        value = attributes.get(key)
        if value is not None and np.shape(value) != (n,):
            raise ValueError(f"{key} has shape {np.shape(value)}, expected ({n},) for n_features_in_={n}")


def _scaler(est, attributes, dtype=None):
    _per_feature(attributes, "mean_", "var_", "scale_", "max_abs_")


def _encoder(est, attributes, dtype=None):
    """Fit on one row with the saved categories given as the ``categories`` parameter, so the derived
    private state (missing-value positions, dropped columns, output widths) is scikit-learn's own; the
    parameter is then put back. One row: the cost is linear in the categories however they spread."""
    categories = attributes.get("categories_")
    n = attributes.get("n_features_in_")
    if not isinstance(categories, list) or len(categories) != n:
        raise ValueError(f"categories_ must be a list of {n} arrays")
    if any(not isinstance(c, np.ndarray) or c.ndim != 1 or c.size == 0 for c in categories):
        raise ValueError("categories_ must hold non-empty 1-D arrays")
    first = [c[0] for c in categories]
    if all(c.dtype.kind in "iuf" for c in categories):
        X = np.array([first], dtype=np.result_type(*categories))
    elif all(c.dtype.kind in "OU" for c in categories):
        X = np.empty((1, n), dtype=object)
        X[0, :] = [c.tolist()[0] for c in categories]
    else:  # numeric and string columns side by side: only a DataFrame keeps each column's type
        import pandas as pd

        X = pd.DataFrame({j: np.array([c[0]], dtype=c.dtype) for j, c in enumerate(categories)})
    original = est.get_params(deep=False)["categories"]
    est.set_params(categories=list(categories))
    try:
        est.fit(X)
    finally:
        est.set_params(categories=original)
    derived = est.categories_
    if [c.size for c in derived] != [c.size for c in categories]:
        raise ValueError("categories_ are not what the encoder derives from them")
    drop = getattr(est, "drop_idx_", None)
    saved = attributes.get("drop_idx_")
    if (drop is None) != (saved is None) or (drop is not None and not np.array_equal(drop, saved)):
        raise ValueError("drop_idx_ is inconsistent with the drop parameter and the categories")


def _imputer(est, attributes, dtype):
    """Fit on one row of the statistics in the saved input dtype (else object for object statistics,
    float64 otherwise): the imputer keeps its fit's dtype privately and converts its input to it."""
    statistics = attributes.get("statistics_")
    _per_feature(attributes, "statistics_")
    if not isinstance(statistics, np.ndarray) or statistics.dtype.kind not in "iufO":
        raise ValueError("statistics_ must be an array of numbers or objects")
    if dtype is None:
        dtype = np.dtype(object) if statistics.dtype.kind == "O" else np.dtype(np.float64)
    if dtype.kind == "O":
        row = np.array([["" if v is None or v != v else v for v in statistics.tolist()]], dtype=object)
    else:
        values = [v if isinstance(v, int | float | np.number) and v == v else 0 for v in statistics.tolist()]
        row = np.array([values], dtype=dtype)
    est.fit(row)


def _column_transformer(est, attributes, dtype=None):
    """Fit the same column layout with stand-ins that output the saved widths: scikit-learn resolves
    the column selections and the output slices itself; then the saved fitted transformers go in."""
    from sklearn.base import BaseEstimator, TransformerMixin

    fitted = attributes.get("transformers_")
    slices = attributes.get("output_indices_")
    if not isinstance(fitted, list) or not isinstance(slices, dict):
        raise ValueError("transformers_ must be a list and output_indices_ a dict")
    for entry in fitted:
        if not (isinstance(entry, tuple | list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise ValueError("transformers_ entries must be (name, transformer, columns)")
    width = {}
    for key, s in slices.items():
        if not isinstance(s, slice) or not (isinstance(s.start, int) and isinstance(s.stop, int)):
            raise ValueError("output_indices_ must map names to slices")
        width[key] = s.stop - s.start
    # Widths and column counts come from the file: check them against the saved transformers (whose
    # sizes the file bounds) before anything of that size is built.
    listed = 0
    for name, trans, columns in fitted:
        count = np.size(columns)
        listed += count
        expected = count if isinstance(trans, str) and trans == "passthrough" else _n_outputs(trans)
        if isinstance(trans, str) and trans == "drop":
            expected = 0
        takes = getattr(trans, "n_features_in_", count)
        if takes != count:
            raise ValueError(f"transformer {name!r} takes {takes} features but is given {count} columns")
        if expected is not None and width.get(name, 0) != expected:
            raise ValueError(
                f"output_indices_[{name!r}] spans {width.get(name, 0)} columns, expected {expected}"
            )
    if (attributes.get("n_features_in_") or 0) > listed:
        raise ValueError("n_features_in_ exceeds the columns the transformers list")

    class _Width(TransformerMixin, BaseEstimator):  # the output shape of a fitted transformer
        def __init__(self, width=0):
            self.width = width

        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return np.zeros((X.shape[0], self.width))

        def get_feature_names_out(self, input_features=None):
            return np.array([f"x{i}" for i in range(self.width)], dtype=object)

    def stand_in(name, trans):
        return trans if isinstance(trans, str) else _Width(width.get(name, 0))

    original = est.get_params(deep=False)
    est.set_params(
        transformers=[(name, stand_in(name, t), cols) for name, t, cols in original["transformers"]],
        remainder=stand_in("remainder", original["remainder"]),
    )
    n = attributes.get("n_features_in_") or 0
    names = attributes.get("feature_names_in_")
    if names is not None:
        import pandas as pd

        X = pd.DataFrame({name: np.zeros(1) for name in names.tolist()}, columns=list(names))
    else:
        X = np.zeros((1, n))
    est.fit(X)
    derived = {k: (s.start, s.stop) for k, s in est.output_indices_.items()}
    if derived != {k: (s.start, s.stop) for k, s in slices.items()}:
        raise ValueError("output_indices_ are inconsistent with the transformers and their columns")
    est.set_params(transformers=original["transformers"], remainder=original["remainder"])
    remainder = getattr(est, "_remainder", None)
    if isinstance(remainder, tuple) and len(remainder) == 3:  # the stand-in must not stay behind
        est._remainder = (remainder[0], original["remainder"], remainder[2])


_DERIVE = {
    "StandardScaler": _scaler,
    "MaxAbsScaler": _scaler,
    "OneHotEncoder": _encoder,
    "OrdinalEncoder": _encoder,
    "SimpleImputer": _imputer,
    "ColumnTransformer": _column_transformer,
    **{name: lambda est, attributes, dtype=None: derive_text(est, attributes) for name in TEXT_STEPS},
}
