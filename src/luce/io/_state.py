"""Checks of a loaded estimator's fitted state: a file that passes its checksums may still have been
written by hand, so the public fitted attributes must agree with each other before anything predicts."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = ["check_state"]


def _count(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_state(est) -> None:
    """Raise ValueError naming the attribute when ``est``'s public fitted state is inconsistent."""
    attrs = vars(est)
    t = attrs.get("temperature_")
    if t is not None and not (
        isinstance(t, Real | np.floating | np.integer)
        and not isinstance(t, bool)
        and math.isfinite(float(t))
        and float(t) > 0
    ):
        raise ValueError(f"temperature_ must be a finite number > 0, got {t!r}")
    n = attrs.get("n_features_in_")
    if n is not None:
        n = _count(n, "n_features_in_")
    names = attrs.get("feature_names_in_")
    if names is not None and (not isinstance(names, np.ndarray) or names.shape != (n,)):
        raise ValueError(f"feature_names_in_ must hold n_features_in_ = {n} names")
    classes = attrs.get("classes_")
    if classes is not None and (not isinstance(classes, np.ndarray) or classes.ndim != 1):
        raise ValueError("classes_ must be a 1-D array")
    coef = attrs.get("coef_")
    if coef is None:
        return
    if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.dtype.kind != "f":
        raise ValueError("coef_ must be a 2-D float array")
    if n is not None and coef.shape[1] != n:
        raise ValueError(f"coef_ has {coef.shape[1]} columns but n_features_in_ is {n}")
    intercept = attrs.get("intercept_")
    if intercept is not None and (
        not isinstance(intercept, np.ndarray) or intercept.shape != (coef.shape[0],)
    ):
        raise ValueError(f"intercept_ must have shape ({coef.shape[0]},) like coef_'s rows")
    # One weight row per class; a binary model may keep a single row (the log-odds of classes_[1]).
    if (
        classes is not None
        and coef.shape[0] != classes.size
        and not (coef.shape[0] == 1 and classes.size == 2)
    ):
        raise ValueError(f"coef_ has {coef.shape[0]} rows for {classes.size} classes_")
