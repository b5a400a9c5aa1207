"""Model files: safetensors for the numeric arrays, checksummed JSON for everything else, never pickle.

A luce model file is a valid safetensors file (https://github.com/huggingface/safetensors): an 8-byte
little-endian header length, a JSON header, then the raw array bytes. The header's ``__metadata__``
(string -> string) holds

- ``format``: ``"luce-model"`` and ``format_version``: ``"1"`` (checked before anything else, so a
  file from a future luce is recognised as such even if the rest of its layout changed);
- ``luce``: the JSON metadata (estimator class name, hyper-parameters, fitted attributes that are not
  numeric arrays, classes with their dtype, feature names, a training summary, user metadata);
- ``luce_sha256``: the SHA-256 of that JSON text.

Every numeric fitted array is a safetensors tensor named after its attribute; the JSON records its
SHA-256, dtype and shape, so a flipped bit anywhere is reported as corruption. The estimator class is
looked up by name in a whitelist (:func:`register_estimator`); nothing named in a file is ever
imported, and no code is executed while loading. The full layout is documented in
docs/model-format.md.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import json
import math
import os
import stat
import struct
from importlib import import_module
from pathlib import Path

import numpy as np

from ._atomic import atomic_write_bytes
from ._sklearn import check_storable, rebuild, step_class, step_name, step_names
from ._state import check_state

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFormatError",
    "load",
    "read_metadata",
    "register_estimator",
    "save",
]

FORMAT_NAME = "luce-model"
FORMAT_VERSION = 1
# safetensors itself refuses headers above 100 MB; a larger "length" means this is not safetensors.
_MAX_HEADER = 100_000_000
# A hostile file may describe arrays (in its JSON) of at most this multiple of its own size, and nest
# values at most this deep (a Pipeline of ColumnTransformers of Pipelines needs about 15 levels).
_ALLOC_FACTOR, _ALLOC_SLACK = 16, 1 << 20
_MAX_DEPTH = 64
_SAFETENSORS_DTYPES = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8",
}  # fmt: skip


class ModelFormatError(ValueError):
    """A file that cannot be read as a luce model, with the reason.

    Attributes
    ----------
    path : str
        The file.
    reason : str
        One of ``"empty"``, ``"truncated"``, ``"corrupted"``, ``"foreign"``, ``"future-version"``,
        ``"unknown-estimator"``, ``"incompatible"``.
    """

    __module__ = "luce"  # shown as luce.ModelFormatError, where users import it from

    def __init__(self, path, reason: str, message: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path} {message}")


# --------------------------------------------------------------------------------------------------
# The estimator whitelist
# --------------------------------------------------------------------------------------------------

# The luce estimators, by their public name in the `luce` namespace -> export kind. They are looked up
# with getattr(luce, name), i.e. through luce's own lazy table; nothing named in a file is imported.
_BUILTIN = {
    "SoftmaxRegression": "linear_softmax",
    "SigmoidRegression": "linear_sigmoid",
    "HierarchicalSoftmaxClassifier": None,
    "TemperatureScaling": None,
}
# name -> (class, export kind), filled by register_estimator.
_REGISTERED: dict[str, tuple[type, str | None]] = {}


def register_estimator(cls=None, *, name: str | None = None, export: str | None = None):
    """Allow instances of ``cls`` in model files (usable as a class decorator).

    Loading looks the class up by ``name`` in this whitelist; a file can never make luce import
    anything else. The luce estimators are registered already.

    Parameters
    ----------
    cls : type
        An estimator with ``get_params(deep=False)`` and a constructor taking those parameters.
    name : str, optional
        The name stored in files; defaults to ``cls.__name__``. It must not already name another class.
    export : {"linear_softmax", None}
        How :func:`luce.export_onnx` turns it into a graph: ``"linear_softmax"`` means
        ``predict_proba(X) = softmax((X @ coef_.T + intercept_) / temperature_)``.

    Returns
    -------
    type
        ``cls`` itself.
    """
    if cls is None:
        return lambda c: register_estimator(c, name=name, export=export)
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a class, got {type(cls).__name__}")
    if export not in (None, "linear_softmax"):
        raise ValueError(f"export must be 'linear_softmax' or None, got {export!r}")
    key = cls.__name__ if name is None else name
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"name must be a Python identifier, got {key!r}")
    known = _REGISTERED.get(key)
    if (known is not None and known[0] is not cls) or (known is None and key in _BUILTIN):
        raise ValueError(f"an estimator named {key!r} is already registered")
    _REGISTERED[key] = (cls, export)
    return cls


def _class_entry(cls) -> tuple[str, str | None] | None:
    """``(name, export kind)`` of a whitelisted class, without importing anything."""
    for key, (registered, export) in _REGISTERED.items():
        if registered is cls:
            return key, export
    name = cls.__name__
    if name in _BUILTIN and _builtin_class(name) is cls:
        return name, _BUILTIN[name]
    return None


def _builtin_class(name):
    """The luce estimator called ``name``: from luce's public namespace, else from luce.models."""
    import luce

    for module in ("luce", "luce.models"):
        try:
            return getattr(luce if module == "luce" else import_module(module), name)
        except (AttributeError, ImportError):  # not (yet) part of this luce
            continue
    return None


def _is_registered(value) -> bool:
    return _class_entry(type(value)) is not None or step_name(type(value)) is not None


def _estimator_name(cls) -> str | None:
    """The name a file stores for a whitelisted class (luce estimator or scikit-learn step)."""
    entry = _class_entry(cls)
    return entry[0] if entry is not None else step_name(cls)


def _known_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def _resolve(name, path) -> type:
    step = step_class(name)
    if step is not None:
        return step
    if name in _REGISTERED:
        return _REGISTERED[name][0]
    cls = _builtin_class(name) if isinstance(name, str) and name in _BUILTIN else None
    if cls is None:
        raise ModelFormatError(
            path,
            "unknown-estimator",
            f"holds an estimator of class {name!r}, which this luce ({_luce_version()}) does not know; "
            f"known: {', '.join(_known_names())}",
        )
    return cls


def _luce_version() -> str:
    from .. import __version__

    return __version__


# --------------------------------------------------------------------------------------------------
# Encoding values as tagged JSON
# --------------------------------------------------------------------------------------------------


class _NotStorable(TypeError):
    pass


def _float_out(x: float):
    # JSON has no inf/nan: those are written as strings and read back with float().
    return x if math.isfinite(x) else repr(x)


def _float_in(x) -> float:
    if isinstance(x, str):
        if x not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad float {x!r}")
        return float(x)
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"bad float {x!r}")
    return float(x)


def _plain_scalar(x, where, *, nonfinite=False):
    """An array element as a plain JSON value (str, int, finite float, bool, None); with
    ``nonfinite``, NaN and infinities as ``{"float": "nan"}`` (a category "missing", say)."""
    if isinstance(x, np.generic):
        x = x.item()
    if x is None or isinstance(x, str | bool | int):
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            if nonfinite:
                return {"float": repr(x)}
            raise _NotStorable(f"{where} holds the non-finite value {x!r}")
        return x
    raise _NotStorable(f"{where} holds a value of type {type(x).__name__}, which JSON cannot store")


def _array_to_json(a: np.ndarray, where, *, nonfinite=False) -> dict:
    kind = a.dtype.kind
    if kind == "S":
        values = [v.decode("latin-1") for v in a.ravel().tolist()]
    elif kind in "OUbiuf":
        values = [_plain_scalar(v, where, nonfinite=nonfinite) for v in a.ravel().tolist()]
    else:
        raise _NotStorable(f"{where} has dtype {a.dtype}, which a model file cannot store")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "values": values}


def _array_from_json(node, limits) -> np.ndarray:
    dtype = _safe_dtype(node["dtype"], "OUSbiuf")
    shape = node["shape"]
    if not (isinstance(shape, list) and all(type(n) is int and 0 <= n for n in shape)):
        raise ValueError(f"bad array shape {shape!r}")
    values = node["values"]
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise ValueError("array values do not match its shape")
    limits.allocate(dtype.itemsize * len(values))
    values = [_json_scalar(v) for v in values]
    if dtype.kind == "O":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)
    if dtype.kind == "S":
        values = [v.encode("latin-1") for v in values]
    return np.array(values, dtype=dtype).reshape(shape)


def _encode(value, where, ctx):
    """Tagged JSON for a parameter or fitted attribute; numeric arrays go to ``ctx.tensors``."""
    if value is None:
        return {"type": "none"}
    if isinstance(value, bool | np.bool_):
        return {"type": "bool", "value": bool(value)}
    if isinstance(value, str):
        return {"type": "str", "value": str(value)}
    if isinstance(value, np.generic) and value.dtype.kind in "iuf":
        return {"type": "numpy", "dtype": value.dtype.str, "value": _float_out(value.item())}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": _float_out(value)}
    if isinstance(value, list | tuple):
        if value and all(type(v) is float for v in value):
            # Compact form for the common list of floats (a loss curve).
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {"type": f"float_{kind}", "values": [_float_out(v) for v in value]}
        items = [_encode(v, f"{where}[{i}]", ctx) for i, v in enumerate(value)]
        return {"type": "tuple" if isinstance(value, tuple) else "list", "items": items}
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {
                "type": "dict",
                "items": {k: _encode(v, f"{where}[{k!r}]", ctx) for k, v in value.items()},
            }
        # Other keys (class labels in class_weight, say): a list of [key, value] pairs.
        pairs = []
        for k, v in value.items():
            if not isinstance(k, str | int | float | bool | np.generic) or isinstance(k, np.ndarray):
                raise _NotStorable(f"{where} is a dict with a key of type {type(k).__name__}")
            pairs.append([_encode(k, f"{where} key", ctx), _encode(v, f"{where}[{k!r}]", ctx)])
        return {"type": "dict_pairs", "items": pairs}
    if isinstance(value, slice):  # a ColumnTransformer's output_indices_
        if not all(v is None or type(v) is int for v in (value.start, value.stop, value.step)):
            raise _NotStorable(f"{where} is a slice of non-integers")
        return {"type": "slice", "start": value.start, "stop": value.stop, "step": value.step}
    if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value).kind in "biuf":
        return {"type": "dtype", "value": np.dtype(value).str}  # OneHotEncoder(dtype=np.float64)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf" and ctx is not None:
            return ctx.add_tensor(where, value)
        return {"type": "array", **_array_to_json(value, where, nonfinite=True)}
    if _is_registered(value):
        return {"type": "estimator", "model": _encode_estimator(value, f"{where}.", ctx)}
    raise _NotStorable(f"{where} is a {type(value).__name__}, which a model file cannot store")


class _Loader:
    """What decoding one file needs: its path, its arrays, and the limits that keep a hostile file cheap
    (arrays described in the JSON may not add up to more than a small multiple of the file's size, and
    values may not nest deeper than a model ever does)."""

    def __init__(self, path, tensors, file_size: int):
        self.path = path
        self.tensors = tensors
        self.budget = _ALLOC_FACTOR * file_size + _ALLOC_SLACK

    def allocate(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise ValueError("its metadata describes arrays far larger than the file itself")


def _safe_dtype(text, kinds: str) -> np.dtype:
    if not (isinstance(text, str) and len(text) <= 16):
        raise ValueError(f"bad dtype {text!r}")
    dtype = np.dtype(text)
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"bad dtype {text!r}")
    return dtype


def _json_scalar(v):
    """An element of a JSON array node: a plain JSON scalar, or ``{"float": "nan"}`` for non-finite."""
    if v is None or isinstance(v, str | bool | int | float):
        return v
    if isinstance(v, dict) and set(v) == {"float"}:
        return _float_in(v["float"])
    raise ValueError(f"bad array element {v!r}")


def _int_in(value, dtype: np.dtype) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"bad integer {value!r}")
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise ValueError(f"{value} does not fit {dtype}")
    return value


def _decode(node, loader: _Loader, depth: int = 0):
    if depth > _MAX_DEPTH:
        raise ValueError(f"values nest deeper than {_MAX_DEPTH} levels")
    if not isinstance(node, dict):
        raise ValueError(f"bad value node {type(node).__name__}")
    t = node["type"]
    if t == "none":
        return None
    if t in ("bool", "str"):
        value = node["value"]
        if not isinstance(value, bool if t == "bool" else str):
            raise ValueError(f"bad {t} {value!r}")
        return value
    if t == "int":
        if isinstance(node["value"], bool) or not isinstance(node["value"], int):
            raise ValueError(f"bad int {node['value']!r}")
        return node["value"]
    if t == "float":
        return _float_in(node["value"])
    if t == "numpy":
        dtype = _safe_dtype(node["dtype"], "iuf")
        if dtype.kind == "f":
            return dtype.type(_float_in(node["value"]))
        return dtype.type(_int_in(node["value"], dtype))
    if t == "dtype":
        return _safe_dtype(node["value"], "biuf").type
    if t == "slice":
        parts = [node["start"], node["stop"], node["step"]]
        if not all(v is None or type(v) is int for v in parts):
            raise ValueError(f"bad slice {parts!r}")
        return slice(*parts)
    if t in ("float_list", "float_tuple"):
        values = [_float_in(v) for v in node["values"]]
        return values if t == "float_list" else tuple(values)
    if t in ("list", "tuple"):
        items = [_decode(v, loader, depth + 1) for v in node["items"]]
        return items if t == "list" else tuple(items)
    if t == "dict":
        return {str(k): _decode(v, loader, depth + 1) for k, v in node["items"].items()}
    if t == "dict_pairs":
        return {_decode(k, loader, depth + 1): _decode(v, loader, depth + 1) for k, v in node["items"]}
    if t == "array":
        return _array_from_json(node, loader)
    if t == "tensor":
        return loader.tensors[node["key"]]
    if t == "estimator":
        return _decode_estimator(node["model"], loader, depth + 1)
    raise ValueError(f"unknown value type {t!r}")


def _sha256(a: np.ndarray) -> str:
    """SHA-256 of the array's C-ordered bytes, hashed in place (no copy for contiguous arrays)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    return hashlib.sha256(flat.view(np.uint8)).hexdigest()


class _Context:
    def __init__(self):
        self.tensors: dict[str, np.ndarray] = {}

    def add_tensor(self, key, a: np.ndarray):
        # safetensors stores little-endian C-ordered bytes; the checksum is over exactly those bytes.
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")  # keeps 0-d arrays 0-d
        self.tensors[key] = a
        return {
            "type": "tensor",
            "key": key,
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "sha256": _sha256(a),
        }


def _fitted_attributes(est) -> dict:
    # The scikit-learn convention: fitted state is the public attributes whose names end in "_".
    return {
        k: v
        for k, v in sorted(vars(est).items())
        if k.endswith("_") and not k.startswith("_") and not k.endswith("__")
    }


def _encode_estimator(est, prefix, ctx) -> dict:
    name = _estimator_name(type(est))
    sklearn_step = step_name(type(est)) is not None
    if sklearn_step:
        check_storable(est)
    params, dropped = {}, {}
    for key, value in est.get_params(deep=False).items():
        runtime = isinstance(value, np.random.RandomState | np.random.Generator) or (
            callable(value) and not isinstance(value, type) and not _is_registered(value)
        )
        if runtime and sklearn_step:  # a scikit-learn step's callables are its behaviour: never drop them
            raise _NotStorable(f"{prefix}{key} is a {type(value).__name__}; a model file never stores code")
        if runtime:
            # Runtime objects (progress callbacks, random generators) are not part of the fitted model.
            dropped[key] = type(value).__name__
            continue
        params[key] = _encode(value, f"{prefix}{key}", ctx)
    node = {"estimator": name, "params": params, "dropped_params": dropped, "attributes": {}}
    for key, value in _fitted_attributes(est).items():
        where = f"{prefix}{key}"
        if key == "classes_":
            node["classes"] = _array_to_json(np.asarray(value), where)
        elif key == "feature_names_in_":
            names = [_plain_scalar(v, where) for v in np.asarray(value).tolist()]
            if not all(isinstance(v, str) for v in names):
                raise _NotStorable(f"{where} holds non-string column names")
            node["feature_names"] = names
        else:
            node["attributes"][key] = _encode(value, where, ctx)
    return node


def _accepted_params(cls) -> set[str] | None:
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None
    kinds = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    if any(p.kind in kinds for p in sig.parameters.values()):
        return None
    return {n for n in sig.parameters if n != "self"}


def _public_attribute(key) -> bool:
    # The scikit-learn convention, strictly: `coef_` yes; `_private`, `__dict__`, `__class__` never.
    return (
        isinstance(key, str)
        and key.isascii()
        and key.isidentifier()
        and key.endswith("_")
        and (not key.startswith("_"))
    )


def _upgrade_params(name, params: dict, accepted) -> dict:
    """Parameters of files from earlier luce versions, under today's names."""
    if (
        name == "SigmoidRegression"
        and accepted is not None
        and "decision_threshold" in accepted
        and "threshold" in params
        and "decision_threshold" not in params
    ):
        # Before the rename, SigmoidRegression's `threshold` was its decision cut.
        params = dict(params)
        params["decision_threshold"] = params.pop("threshold")
    return params


def _decode_estimator(node, loader: _Loader, depth: int = 0):
    if depth > _MAX_DEPTH:
        raise ValueError(f"estimators nest deeper than {_MAX_DEPTH} levels")
    name = node["estimator"]
    cls = _resolve(name, loader.path)
    params = {k: _decode(v, loader, depth + 1) for k, v in node["params"].items()}
    accepted = _accepted_params(cls)
    params = _upgrade_params(name, params, accepted)
    unknown = sorted(set(params) - accepted) if accepted is not None else []
    if unknown:
        raise ModelFormatError(
            loader.path,
            "incompatible",
            f"was saved with {name} parameter(s) {', '.join(map(repr, unknown))} that this "
            f"luce ({_luce_version()}) does not have",
        )
    attributes = {}
    if "classes" in node:
        attributes["classes_"] = _array_from_json(node["classes"], loader)
    if "feature_names" in node:
        names = node["feature_names"]
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError("feature_names is not a list of strings")
        attributes["feature_names_in_"] = np.array(names, dtype=object)
    for key, value in node["attributes"].items():
        if not _public_attribute(key):
            raise ValueError(f"bad attribute name {key!r}")
        attributes[key] = _decode(value, loader, depth + 1)
    if step_class(name) is cls:
        return rebuild(cls, params, attributes)
    est = cls(**params)
    for key, value in attributes.items():
        setattr(est, key, value)
    check_state(est)
    return est


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
    ctx = _Context()
    try:
        node = _encode_estimator(model, "", ctx)
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
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "luce": text,
        "luce_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    from safetensors.numpy import save as _st_save  # lazily: keep `import luce` light

    return atomic_write_bytes(path, _st_save(ctx.tensors, metadata=header))


def _open_model_file(path):
    """An open binary file and its size; a folder, device, pipe or socket is refused before reading."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below); no effect on files.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a folder, not a luce model file")
        if not stat.S_ISREG(mode):
            raise ModelFormatError(
                path,
                "foreign",
                "is not a luce model file: it is not a regular file (a device, pipe or socket)",
            )
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f, os.fstat(f.fileno()).st_size


def _json_object(path, text: bytes | str, what: str) -> dict:
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = "it nests too deeply" if isinstance(e, RecursionError) else str(e)
        raise ModelFormatError(
            path, "corrupted", f"is corrupted: its {what} is not valid JSON ({reason})"
        ) from None
    if not isinstance(value, dict):
        raise ModelFormatError(path, "corrupted", f"is corrupted: its {what} is not a JSON object")
    return value


def _parse_header(path, f, size: int):
    """Read and check the safetensors framing and the luce header from ``f``, reading no more than the
    header's announced length, itself checked against the file's size first. Returns (meta, header)."""
    if size == 0:
        raise ModelFormatError(path, "empty", "is empty (0 bytes), not a luce model file")
    if size < 8:
        raise ModelFormatError(
            path, "truncated", f"is truncated: {size} bytes, too short for the 8-byte header length"
        )
    head = f.read(9)
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or head[8:9] not in (b"{", b""):
        raise ModelFormatError(
            path,
            "foreign",
            "is not a luce model file: it is not in safetensors format (did you pass a data file or "
            "another library's file?)",
        )
    if 8 + n > size:
        raise ModelFormatError(
            path,
            "truncated",
            f"is truncated: its header announces {n} bytes but only {size - 8} follow the length field",
        )
    header = _json_object(path, head[8:] + f.read(n - 1) if n else b"", "header")
    info = header.get("__metadata__")
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        found = info.get("format") if isinstance(info, dict) else None
        what = f"format {found!r}" if isinstance(found, str) else "no luce metadata"
        raise ModelFormatError(
            path,
            "foreign",
            f"is a safetensors file but not a luce model ({what}); it was not written by luce.save",
        )
    version = info.get("format_version")
    if not (isinstance(version, str) and version.isascii() and version.isdigit() and len(version) <= 6):
        raise ModelFormatError(path, "corrupted", f"is corrupted: bad format_version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise ModelFormatError(
            path,
            "future-version",
            f"uses luce model format version {int(version)}, newer than this luce ({_luce_version()}) "
            f"reads (up to {FORMAT_VERSION}); upgrade luce to load it",
        )
    text = info.get("luce")
    digest = info.get("luce_sha256")
    if not isinstance(text, str) or hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        raise ModelFormatError(path, "corrupted", "is corrupted: its metadata fails its SHA-256 checksum")
    meta = _json_object(path, text, "metadata")
    if type(meta.get("format_version")) is not int or meta["format_version"] != int(version):
        raise ModelFormatError(
            path, "corrupted", "is corrupted: metadata and header disagree on the format version"
        )
    return meta, header


def _array_table(path, header) -> tuple[dict, int]:
    """``{name: (dtype, shape, start, stop)}`` of the arrays and the data section's length; the arrays
    must tile the data section exactly (no gaps, no overlaps), as safetensors requires."""
    table = {}
    try:
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
            shape = entry["shape"]
            lo, hi = entry["data_offsets"]
            if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
                raise ValueError(f"array {key!r} has a bad shape")
            if not (type(lo) is int and type(hi) is int and 0 <= lo <= hi):
                raise ValueError(f"array {key!r} has bad offsets")
            if hi - lo != dtype.itemsize * math.prod(shape):
                raise ValueError(f"array {key!r} has inconsistent offsets")
            table[key] = (dtype, tuple(shape), lo, hi)
        end = 0
        for _, _, lo, hi in sorted(table.values(), key=lambda e: (e[2], e[3])):
            if lo != end:
                raise ValueError("arrays overlap or leave gaps")
            end = hi
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFormatError(path, "corrupted", f"is corrupted: bad array table ({e})") from None
    return table, end


def _read(path):
    """``(meta, arrays, file size)`` of a model file, every check done; reads each byte once and never
    more than the file's size."""
    path_str = os.fspath(path)
    f, size = _open_model_file(path_str)
    with f:
        meta, header = _parse_header(path_str, f, size)
        table, end = _array_table(path_str, header)
        available = size - f.tell()
        if available < end:
            raise ModelFormatError(
                path_str,
                "truncated",
                f"is truncated: its arrays need {end} bytes but only {available} remain "
                "(the file was cut short)",
            )
        if available > end:
            raise ModelFormatError(
                path_str, "corrupted", f"is corrupted: {available - end} unexpected bytes after its arrays"
            )
        data = bytearray(end)
        if f.readinto(data) != end:
            raise ModelFormatError(path_str, "truncated", "is truncated: it shrank while being read")
    # Views into one buffer: the arrays tile it without overlap, so no array aliases another.
    tensors = {key: _view(data, *entry) for key, entry in table.items()}
    _verify_tensors(path_str, meta, tensors)
    return meta, tensors, size


def _view(data: bytearray, dtype, shape, lo, hi) -> np.ndarray:
    if lo == hi:
        return np.zeros(shape, dtype=dtype)
    a = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=lo).reshape(shape)
    return a if a.flags.aligned else a.copy()


def _tensor_nodes(node):
    """Every {"type": "tensor"} node below ``node`` (iteratively: a hostile file may nest deeply)."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "tensor":
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _verify_tensors(path, meta, tensors):
    verified = {}  # key -> (dtype, shape, sha256): each array is hashed once however often it is named
    for node in _tensor_nodes(meta.get("model")):
        key = node.get("key")
        a = tensors.get(key) if isinstance(key, str) else None
        if a is None:
            raise ModelFormatError(path, "corrupted", f"is corrupted: array {key!r} is missing")
        if key not in verified:
            verified[key] = (a.dtype.str, list(a.shape), _sha256(a))
        dtype, shape, digest = verified[key]
        if dtype != node.get("dtype") or shape != node.get("shape"):
            raise ModelFormatError(
                path,
                "corrupted",
                f"is corrupted: array {key!r} has dtype/shape {a.dtype}{a.shape}, expected "
                f"{node.get('dtype')}{tuple(node.get('shape') or ())}",
            )
        if digest != node.get("sha256"):
            raise ModelFormatError(
                path, "corrupted", f"is corrupted: array {key!r} fails its SHA-256 checksum"
            )
    extra = sorted(set(tensors) - set(verified))
    if extra:
        raise ModelFormatError(path, "corrupted", f"is corrupted: unexpected arrays {extra}")


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
    meta, _, _ = _read(path)
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
    meta, tensors, size = _read(path_str)
    try:
        return _decode_estimator(meta["model"], _Loader(path_str, tensors, size))
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as e:
        raise ModelFormatError(
            path_str,
            "corrupted",
            f"is corrupted: malformed model metadata or inconsistent fitted state ({e!r})",
        ) from None
