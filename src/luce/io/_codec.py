"""Fitted estimators as tagged JSON plus numeric arrays (safetensors tensors), and back.

Saving: ``get_params(deep=False)`` and the public fitted attributes (names ending in ``_``) of a
whitelisted estimator, each value tagged with its type; numeric arrays become tensors with their
SHA-256. Loading: every value is checked against its tag, sizes are bounded by the file's size, nesting
by :data:`_MAX_DEPTH`, and the rebuilt estimator's state is validated (:mod:`luce.io._state`).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from ._container import ModelFormatError, _luce_version, _sha256
from ._sklearn import check_storable, input_dtype, rebuild, saved_attributes, step_class, step_name
from ._state import check_state
from ._whitelist import _estimator_name, _is_registered, _resolve

__all__ = ["decode_model", "encode_model"]

# A hostile file may describe arrays (in its JSON) of at most this multiple of its own size, and nest
# values at most this deep (a Pipeline of ColumnTransformers of Pipelines needs about 15 levels).
_ALLOC_FACTOR, _ALLOC_SLACK = 16, 1 << 20
_MAX_DEPTH = 64


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


def _array_from_json(node, loader) -> np.ndarray:
    dtype = _safe_dtype(node["dtype"], "OUSbiuf")
    shape = node["shape"]
    if not (isinstance(shape, list) and all(type(n) is int and 0 <= n for n in shape)):
        raise ValueError(f"bad array shape {shape!r}")
    values = node["values"]
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise ValueError("array values do not match its shape")
    loader.allocate(dtype.itemsize * len(values))
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
    if sklearn_step and input_dtype(est) is not None:
        node["input_dtype"] = input_dtype(est)
    attributes = _fitted_attributes(est)
    if sklearn_step:
        attributes = saved_attributes(est, attributes)
    for key, value in attributes.items():
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
        dtype = _safe_dtype(node["input_dtype"], "iufO") if "input_dtype" in node else None
        return rebuild(cls, params, attributes, dtype)
    est = cls(**params)
    for key, value in attributes.items():
        setattr(est, key, value)
    check_state(est)
    return est


def encode_model(model) -> tuple[dict, dict]:
    """``(JSON node, tensors)`` of a whitelisted estimator; raises _NotStorable."""
    ctx = _Context()
    return _encode_estimator(model, "", ctx), ctx.tensors


def decode_model(node, path, tensors, file_size: int):
    """The estimator of a JSON node; ValueError/TypeError/... for a malformed node."""
    return _decode_estimator(node, _Loader(path, tensors, file_size))
