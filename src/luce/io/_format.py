"""Model files: :func:`save`, :func:`load` and :func:`read_metadata`, never pickle.

A luce model file is a valid safetensors file: the numeric fitted arrays are tensors, everything else
is checksummed JSON in the header (docs/model-format.md). The jobs live in one module each:

- :mod:`._container`: the safetensors framing, read incrementally and checked before trusting it;
- :mod:`._whitelist`: the classes a file may name (luce estimators, registered classes, and the
  scikit-learn steps of :mod:`._sklearn`); nothing named in a file is ever imported;
- :mod:`._codec`: estimators as tagged JSON plus tensors, and back, within size and depth limits;
- :mod:`._sklearn`: how a scikit-learn step is rebuilt; :mod:`._state`: checks of a loaded state.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path

import numpy as np

from ._codec import _fitted_attributes, _NotStorable, decode_model, encode_model
from ._container import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFormatError,
    _luce_version,
    read_container,
    write_container,
)
from ._sklearn import step_name, step_names
from ._whitelist import _BUILTIN, _estimator_name, register_estimator

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFormatError",
    "load",
    "read_metadata",
    "register_estimator",
    "save",
]


def _json_default(x):
    # For user metadata: NumPy scalars and arrays become plain JSON.
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _summary(est) -> dict:
    if step_name(type(est)) == "sklearn.Pipeline":
        # A pipeline: its final estimator's summary, the raw input columns and the step classes.
        out = _summary(est.steps[-1][1])
        out["pipeline"] = [_estimator_name(type(step)) or type(step).__name__ for _, step in est.steps]
        names = getattr(est.steps[0][1], "feature_names_in_", None)
        if names is not None:
            out["input_columns"] = [str(n) for n in names.tolist()]
        return out
    attrs = vars(est)
    out = {}
    if "n_features_in_" in attrs:
        out["n_features"] = int(attrs["n_features_in_"])
    if "classes_" in attrs:
        out["n_classes"] = len(attrs["classes_"])
    if "n_iter_" in attrs and np.ndim(attrs["n_iter_"]) == 0:
        out["n_iter"] = int(attrs["n_iter_"])
    curve = attrs.get("loss_curve_")
    if curve is not None and len(curve) and math.isfinite(float(curve[-1])):
        out["final_loss"] = float(curve[-1])
    t = attrs.get("temperature_")
    if t is not None and np.ndim(t) == 0 and math.isfinite(float(t)):
        out["temperature"] = float(t)
    return out


# --------------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------------


def _check_fitted(model, name) -> None:
    if step_name(type(model)) is not None:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except NotFittedError:
            raise ValueError(f"model is not fitted: call fit on this {name} first") from None
    elif not _fitted_attributes(model):
        raise ValueError(f"model is not fitted: this {name} has no fitted attributes; call fit first")


def save(model, path, *, metadata=None) -> Path:
    """Save a fitted luce estimator to a model file, atomically.

    The numeric fitted arrays (``coef_``, ``intercept_``, ...) are stored as safetensors tensors, and
    everything else (the class name, hyper-parameters, classes of any JSON-able type with their dtype,
    feature names, scalars such as ``temperature_``, a training summary) as checksummed JSON in the
    safetensors header. Nothing is pickled. The file is written to a temporary file in the same folder,
    fsync'ed and renamed over ``path``, so an existing model is replaced only by a complete new one.

    Parameters
    ----------
    model : estimator
        A fitted luce estimator (or a class registered with :func:`register_estimator`). Parameters
        that are callables (such as a ``verbose`` progress callback) are not stored; they load as
        their defaults.
    path : str or os.PathLike
        Destination file (conventionally ``*.luce``); its folder must exist.
    metadata : dict, optional
        Extra JSON-serialisable information kept with the model (for example the data it was
        trained on); read it back with :func:`read_metadata` under ``"user"``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not a whitelisted estimator, or holds a value a model file cannot store.
    ValueError
        If ``model`` is not fitted.

    See Also
    --------
    load, read_metadata, docs/model-format.md

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import luce
    >>> from luce.io import register_estimator
    >>> @register_estimator
    ... class Constant:
    ...     def __init__(self, value=1.0):
    ...         self.value = value
    ...     def get_params(self, deep=True):
    ...         return {"value": self.value}
    >>> m = Constant(2.5)
    >>> m.classes_ = np.array(["cat", "dog"])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.luce")
    >>> _ = luce.save(m, path)
    >>> loaded = luce.load(path)
    >>> loaded.value, loaded.classes_
    (2.5, array(['cat', 'dog'], dtype='<U3'))
    """
    name = _estimator_name(type(model))
    if name is None:
        raise TypeError(
            f"model must be a luce estimator ({', '.join(sorted(_BUILTIN))}, or a scikit-learn Pipeline "
            f"of {', '.join(step_names())}), got {type(model).__module__}.{type(model).__qualname__}; "
            "other classes can be allowed with luce.io.register_estimator"
        )
    _check_fitted(model, name)
    try:
        node, tensors = encode_model(model)
    except _NotStorable as e:
        raise TypeError(f"cannot save this {name}: {e}") from None
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "luce_version": _luce_version(),
        "saved_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": node,
        "summary": _summary(model),
    }
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        try:
            meta["user"] = json.loads(json.dumps(metadata, allow_nan=False, default=_json_default))
        except (TypeError, ValueError) as e:
            raise TypeError(f"metadata must be JSON-serialisable: {e}") from None
    text = json.dumps(meta, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return write_container(path, text, tensors)


def read_metadata(path) -> dict:
    """The JSON metadata of a model file, after checking the whole file, without building the model.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``format``, ``format_version``, ``luce_version``, ``saved_at``, ``model`` (class name,
        parameters, classes, feature names, attributes), ``summary`` and, when given to :func:`save`,
        ``user``. See docs/model-format.md.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFormatError
        If the file is empty, truncated, corrupted, foreign or from a future format version.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import luce
    >>> X, y = load_iris(return_X_y=True)
    >>> path = luce.save(luce.SoftmaxRegression().fit(X, y), os.path.join(tempfile.mkdtemp(), "m.luce"))
    >>> meta = luce.read_metadata(path)
    >>> meta["model"]["estimator"], meta["summary"]["n_classes"]
    ('SoftmaxRegression', 3)
    """
    meta, _, _ = read_container(path)
    return meta


def load(path):
    """Load a model saved by :func:`save` (or ``model.save``). Never executes code from the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    estimator
        A fitted estimator of the saved class, with the saved parameters and fitted attributes; its
        predictions are identical to the saved model's.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFormatError
        If the file is empty, truncated, corrupted (any flipped bit is caught by checksums), not a luce
        model, from a future format version, or names an estimator or parameter this luce lacks. The
        message says which and why; ``.reason`` holds the short name.

    See Also
    --------
    save, read_metadata

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import luce
    >>> X, y = load_iris(return_X_y=True)
    >>> model = luce.SoftmaxRegression(reg_strength=1e-2).fit(X, y)
    >>> path = model.save(os.path.join(tempfile.mkdtemp(), "iris.luce"))
    >>> loaded = luce.load(path)
    >>> bool((loaded.predict_proba(X) == model.predict_proba(X)).all())
    True
    >>> bad = path.with_name("iris.csv")
    >>> _ = bad.write_text("sepal_length,species")
    >>> luce.load(bad)
    Traceback (most recent call last):
    ...
    luce.ModelFormatError: ...iris.csv is not a luce model file: it is not in safetensors format ...
    """
    path_str = os.fspath(path)
    meta, tensors, size = read_container(path_str)
    try:
        return decode_model(meta["model"], path_str, tensors, size)
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as e:
        raise ModelFormatError(
            path_str,
            "corrupted",
            f"is corrupted: malformed model metadata or inconsistent fitted state ({e!r})",
        ) from None
