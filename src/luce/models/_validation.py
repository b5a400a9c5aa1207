"""Input and hyper-parameter checks for the estimators, with scikit-learn-style messages.

Hyper-parameters are checked in ``fit`` (never in ``__init__``, the scikit-learn contract); a bad
value raises ``ValueError`` (or ``TypeError`` for a wrong type) quoting the parameter, the estimator,
what is allowed and what was given.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "check_bool",
    "check_int",
    "check_option",
    "check_real",
    "check_sample_weight",
]


def _prefix(name, owner):
    return f"The {name!r} parameter of {owner}"


def check_real(value, name, owner, *, low=None, high=None, low_open=False, high_open=False):
    """A real number (not bool, not NaN) within ``[low, high]`` (ends open when asked); returns float."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, owner)} must be a real number. Got {value!r} instead.")
    v = float(value)
    bad = math.isnan(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = (
            f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        )
        raise ValueError(
            f"{_prefix(name, owner)} must be a float in the range {interval}. Got {value!r} instead."
        )
    return v


def check_int(value, name, owner, *, low=1):
    """An integer ``>= low`` (not bool); returns int."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(name, owner)} must be an int. Got {value!r} instead.")
    if value < low:
        raise ValueError(
            f"{_prefix(name, owner)} must be an int in the range [{low}, inf). Got {value!r} instead."
        )
    return int(value)


def check_option(value, name, owner, options):
    """One of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"{_prefix(name, owner)} must be a str among {set(sorted(options))}. Got {value!r} instead."
        )
    return value


def check_bool(value, name, owner):
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{_prefix(name, owner)} must be an instance of 'bool'. Got {value!r} instead.")
    return bool(value)


def check_sample_weight(sample_weight, n_samples, dtype):
    """Validate ``sample_weight`` and return it as a new 1-D array of ``dtype`` (None stays None).

    A scalar weighs every row equally. NaN/inf, negative values, a wrong shape and an all-zero vector
    raise ``ValueError``; the caller's array is never modified.
    """
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must be a real numeric array, got dtype {sw.dtype}")
    if sw.ndim == 0:
        sw = np.full(n_samples, sw, dtype=dtype)
    if sw.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected {(n_samples,)}!")
    sw = np.array(sw, dtype=dtype, copy=True)
    if not np.all(np.isfinite(sw)):
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("Negative values in data passed to sample_weight: weights must be >= 0.")
    if n_samples and not np.any(sw > 0):
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight.")
    return sw


def label_repr(value):
    """A class label for messages: ``2`` or ``'cat'``, not ``np.int64(2)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_two_weighted_classes(per_class_weight, classes):
    """Weights (sample times class weights) must leave at least two classes with positive mass."""
    positive = np.asarray(per_class_weight) > 0
    if positive.sum() < 2:
        raise ValueError(
            "sample_weight (times class_weight) leaves only one class with positive weight "
            f"({label_repr(classes[positive][0])}); fitting needs at least 2 classes"
        )


def check_warm_start_classes(estimator, warm_start, classes):
    """A warm start continues the previous fit, so the classes must be the same."""
    previous = getattr(estimator, "classes_", None)
    if warm_start and previous is not None:
        if not (previous.shape == classes.shape and np.all(previous == classes)):
            raise ValueError(
                f"warm_start=True needs the classes of the previous fit, {previous!r}; got {classes!r}"
            )
