"""The scikit-learn steps a model file may hold, and how a loaded one is made fitted again.

A file stores a step's ``get_params(deep=False)`` and its public fitted attributes (names ending in
``_``), never its private state (``_infrequent_enabled``, ``_fit_dtype``, ...), which differs between
scikit-learn versions. Loading constructs the step from its parameters, lets scikit-learn derive its
private state by a fit on a tiny synthetic input built from the saved public state (the categories, the
statistics, the column layout), then sets the saved public attributes, so the transform is exactly the
saved one. Only the classes in :data:`STEPS` are allowed; a file cannot name any other.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["STEPS", "check_storable", "rebuild", "step_class", "step_name", "step_names"]


def _classes() -> dict[str, type]:
    from sklearn.compose import ColumnTransformer
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
        MaxAbsScaler, FunctionTransformer,
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


def rebuild(cls, params: dict, attributes: dict):
    """A fitted ``cls`` with ``params`` and the saved public ``attributes`` (an unfitted one if none).

    Raises ValueError when the attributes are inconsistent with each other or with the parameters.
    """
    est = cls(**params)
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
            derive(est, attributes)
    for key, value in attributes.items():
        setattr(est, key, value)
    return est


def _per_feature(attributes, *keys):
    n = attributes.get("n_features_in_")
    for key in keys:
        value = attributes.get(key)
        if value is not None and np.shape(value) != (n,):
            raise ValueError(f"{key} has shape {np.shape(value)}, expected ({n},) for n_features_in_={n}")


def _scaler(est, attributes):
    _per_feature(attributes, "mean_", "var_", "scale_", "max_abs_")


def _column_of(values, n_rows):
    values = list(values)
    return [values[min(i, len(values) - 1)] for i in range(n_rows)]


def _encoder(est, attributes):
    """Fit on a frame whose columns hold exactly the saved categories (so the derived private state
    (missing-value positions, dropped columns, output widths) is scikit-learn's own)."""
    categories = attributes.get("categories_")
    n = attributes.get("n_features_in_")
    if not isinstance(categories, list) or len(categories) != n:
        raise ValueError(f"categories_ must be a list of {n} arrays")
    if any(not isinstance(c, np.ndarray) or c.ndim != 1 or c.size == 0 for c in categories):
        raise ValueError("categories_ must hold non-empty 1-D arrays")
    n_rows = max(c.size for c in categories)
    if all(c.dtype.kind in "iuf" for c in categories):
        X = np.column_stack([np.array(_column_of(c, n_rows), dtype=c.dtype) for c in categories])
        X = X.astype(np.result_type(*categories))
    elif all(c.dtype.kind in "OU" for c in categories):
        X = np.empty((n_rows, n), dtype=object)
        for j, c in enumerate(categories):
            X[:, j] = _column_of(c.tolist(), n_rows)
    else:  # numeric and string columns side by side: only a DataFrame keeps each column's type
        import pandas as pd

        X = pd.DataFrame({j: _column_of(c, n_rows) for j, c in enumerate(categories)})
    est.fit(X)
    derived = est.categories_
    if [c.size for c in derived] != [c.size for c in categories]:
        raise ValueError("categories_ are not what the encoder derives from them (duplicates?)")
    drop = getattr(est, "drop_idx_", None)
    saved = attributes.get("drop_idx_")
    if (drop is None) != (saved is None) or (drop is not None and not np.array_equal(drop, saved)):
        raise ValueError("drop_idx_ is inconsistent with the drop parameter and the categories")


def _imputer(est, attributes):
    """Fit on one row of the statistics, in their dtype (object for strings, float otherwise): the
    imputer keeps the fit dtype privately and converts its transform input to it."""
    statistics = attributes.get("statistics_")
    _per_feature(attributes, "statistics_")
    if not isinstance(statistics, np.ndarray):
        raise ValueError("statistics_ must be an array")
    if statistics.dtype.kind == "O":
        row = np.array([["" if v is None or v != v else v for v in statistics.tolist()]], dtype=object)
    elif statistics.dtype.kind in "iuf":
        row = np.nan_to_num(statistics.astype(np.float64)).reshape(1, -1)
    else:
        raise ValueError(f"statistics_ of dtype {statistics.dtype} cannot be an imputer's")
    est.fit(row)


def _function(est, attributes):
    est.fit(np.zeros((1, attributes.get("n_features_in_") or 0)))


def _column_transformer(est, attributes):
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
    "FunctionTransformer": _function,
    "ColumnTransformer": _column_transformer,
}
