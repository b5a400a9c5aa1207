"""The whitelist of classes a model file may hold: the luce estimators, classes registered with
:func:`register_estimator`, and the scikit-learn steps of :mod:`luce.io._sklearn`. A file names a class;
that name is looked up here, and nothing named in a file is ever imported."""

from __future__ import annotations

from importlib import import_module

from ._container import ModelFormatError, _luce_version
from ._sklearn import step_class, step_name

__all__ = ["register_estimator"]


# The luce estimators, by their public name in the `luce` namespace -> export kind. They are looked up
# with getattr(luce, name), i.e. through luce's own lazy table; nothing named in a file is imported.
_BUILTIN = {
    "SoftmaxRegression": "linear_softmax",
    "SigmoidRegression": "linear_sigmoid",
    "HierarchicalSoftmaxClassifier": None,
    "TemperatureScaling": None,
    "TextColumn": None,  # luce.tables: a column of documents, missing as ""
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
    """The luce class called ``name``: from luce's public namespace, else luce.models or luce.tables."""
    import luce

    for module in ("luce", "luce.models", "luce.tables"):
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
