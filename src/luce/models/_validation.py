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
        raise ValueError(
            f"sample_weight must have shape {(n_samples,)}, got sample_weight.shape == {sw.shape}"
        )
    sw = np.array(sw, dtype=dtype, copy=True)
    if not np.all(np.isfinite(sw)):
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("Negative values in data passed to sample_weight: weights must be non-negative.")
    if n_samples and not np.any(sw > 0):
        raise ValueError("sample_weight must have a positive sum: every weight is zero.")
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


# -- hyper-parameters declared as data -------------------------------------------------------------
# Each estimator lists its parameters once, as ``{name: spec}``; :func:`check_parameters` checks them all
# in one place and returns a frozen settings object. A spec is called as ``spec(value, name, owner)`` and
# returns the resolved value; ``spec.accepts(value)`` says whether the value has the spec's type (used
# by :class:`AnyOf` to pick the spec whose message fits).


class Real:
    """A real number (not bool, not NaN) in an interval."""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def accepts(self, value):
        return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)

    def __call__(self, value, name, owner):
        return check_real(
            value, name, owner, low=self.low, high=self.high, low_open=self.low_open, high_open=self.high_open
        )


class Int:
    """An integer ``>= low`` (not bool)."""

    def __init__(self, low=1):
        self.low = low

    def accepts(self, value):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)

    def __call__(self, value, name, owner):
        return check_int(value, name, owner, low=self.low)


class Options:
    """One of a few strings."""

    def __init__(self, *options):
        self.options = options

    def accepts(self, value):
        return isinstance(value, str)

    def __call__(self, value, name, owner):
        return check_option(value, name, owner, self.options)


class Bool:
    def accepts(self, value):
        return isinstance(value, bool | np.bool_)

    def __call__(self, value, name, owner):
        return check_bool(value, name, owner)


class NoneOr:
    """None (kept as None) or what ``spec`` accepts."""

    def __init__(self, spec):
        self.spec = spec

    def accepts(self, value):
        return value is None or self.spec.accepts(value)

    def __call__(self, value, name, owner):
        return None if value is None else self.spec(value, name, owner)


class AnyOf:
    """The first spec whose type fits the value checks it (so the message names the right rule)."""

    def __init__(self, *specs):
        self.specs = specs

    def accepts(self, value):
        return any(s.accepts(value) for s in self.specs)

    def __call__(self, value, name, owner):
        for spec in self.specs:
            if spec.accepts(value):
                return spec(value, name, owner)
        return self.specs[-1](value, name, owner)  # its message names what is wrong


class RandomState:
    def accepts(self, value):
        return value is None or isinstance(value, numbers.Integral | np.random.RandomState)

    def __call__(self, value, name, owner):
        if not self.accepts(value) or isinstance(value, bool | np.bool_):
            raise ValueError(
                f"{_prefix(name, owner)} must be an int, a numpy.random.RandomState or None. "
                f"Got {value!r} instead."
            )
        return value


class Verbose:
    """An int >= 0 (bools count as 0/1) or a callable ``(iteration, loss)``."""

    def accepts(self, value):
        return callable(value) or isinstance(value, numbers.Integral)

    def __call__(self, value, name, owner):
        if callable(value):
            return value
        if isinstance(value, bool | np.bool_):
            value = int(value)
        return check_int(value, name, owner, low=0)


class ClassWeight:
    """None, ``"balanced"`` or a dict ``{label: weight}`` of finite weights ``>= 0``."""

    def accepts(self, value):
        return value is None or isinstance(value, dict | str)

    def __call__(self, value, name, owner):
        if value is None or (isinstance(value, str) and value == "balanced"):
            return value
        if not isinstance(value, dict):
            raise ValueError(
                f"{_prefix(name, owner)} must be an instance of 'dict', a str among {{'balanced'}} or None. "
                f"Got {value!r} instead."
            )
        for label, weight in value.items():
            ok = isinstance(weight, numbers.Real) and not isinstance(weight, bool | np.bool_)
            if not ok or not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"{_prefix(name, owner)} must map each class to a finite weight >= 0; class "
                    f"{label_repr(label)} has weight {weight!r}"
                )
        return value


def check_parameters(estimator, specs):
    """Check every hyper-parameter of ``estimator`` named in ``specs``; return them as a frozen object.

    Examples
    --------
    >>> from luce.models._validation import Int, check_parameters
    >>> class Est:
    ...     max_iter = 5
    >>> check_parameters(Est(), {"max_iter": Int(1)}).max_iter
    5
    """
    owner = type(estimator).__name__
    values = {name: spec(getattr(estimator, name), name, owner) for name, spec in specs.items()}
    return Settings(values)


class Settings:
    """The checked hyper-parameters of one fit, read-only (``settings.max_iter``)."""

    __slots__ = ("_values",)

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("Settings are read-only; use replace()")

    def replace(self, **changes):
        """A copy with ``changes`` applied (for values resolved later, e.g. the default max_iter)."""
        return Settings({**self._values, **changes})

    def __repr__(self):
        return f"Settings({self._values!r})"


# -- weights ---------------------------------------------------------------------------------------


def scaled_sample_weight(sample_weight, n_samples):
    """``sample_weight`` checked (see :func:`check_sample_weight`) and scaled by a power of two.

    Weights are freely scalable (the objective is their weighted mean). Scaling every weight by ``2**k``
    changes nothing, not even the rounding, and brings the largest into ``[1/2, 1)``, so that weights of
    1e308 or 5e-324 neither overflow nor underflow the sums. Returns float64 (None stays None).
    """
    sw = check_sample_weight(sample_weight, n_samples, np.float64)
    return None if sw is None else _power_of_two_scaled(sw)


def _power_of_two_scaled(w):
    top = float(np.max(w)) if w.size else 0.0
    return np.ldexp(w, -int(np.frexp(top)[1])) if top > 0 else w


def class_sample_weight(sample_weight, class_weight, y_idx, classes, y):
    """The training weights: ``sample_weight · class_weight[y]``, scaled as in :func:`scaled_sample_weight`.

    ``sample_weight`` is the output of :func:`scaled_sample_weight` (or None); ``class_weight`` a checked
    :class:`ClassWeight`, resolved by scikit-learn's ``compute_class_weight`` (``"balanced"`` weighted by
    ``sample_weight``). None when both are absent.
    """
    if class_weight is None:
        return sample_weight
    from sklearn.utils.class_weight import compute_class_weight

    if class_weight == "balanced":
        cw = compute_class_weight("balanced", classes=classes, y=y, sample_weight=sample_weight)
    else:
        cw = compute_class_weight(class_weight, classes=classes, y=y)
    base = np.ones(y_idx.shape[0]) if sample_weight is None else sample_weight
    return _power_of_two_scaled(base * np.asarray(cw, dtype=np.float64)[y_idx])


# -- labels ----------------------------------------------------------------------------------------


def check_labels(y):
    """Missing or mutually incomparable labels are a clear error before any NumPy sorting sees them.

    ``pd.NA``, ``None`` and NaN in an object array raise ``ValueError`` naming the first such row;
    labels of mixed types (``1`` and ``"a"``) raise ``TypeError`` naming the types.
    """
    if y is None:
        return  # validate_data says "requires y to be passed"
    dtype = getattr(y, "dtype", None)
    if dtype is None:  # a list: NumPy finds a common type unless the labels are mixed
        dtype = np.asarray(y).dtype
    if dtype.kind != "O":
        return
    flat = np.asarray(y, dtype=object).ravel()
    for i, value in enumerate(flat):
        if _is_missing(value):
            raise ValueError(
                f"y contains a missing label ({value!r}) at position {i}: drop or impute those rows first"
            )
    kinds = {_label_kind(value) for value in flat}
    if len(kinds) > 1:
        names = sorted({type(v.item() if isinstance(v, np.generic) else v).__name__ for v in flat})
        raise TypeError(
            f"y mixes label types {names}: labels must be mutually comparable (all str or all numbers)"
        )


def _is_missing(value):
    return (
        value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value))
    )


def _label_kind(value):
    if isinstance(value, str):
        return "str"
    return "number" if isinstance(value, numbers.Number) else type(value).__name__


def unique_labels(y):
    """Sorted classes and the class index of each label; mixed label types are a TypeError."""
    try:
        classes, y_idx = np.unique(y, return_inverse=True)
    except TypeError:
        raise mixed_labels(y) from None
    return classes, y_idx.reshape(-1)


def mixed_labels(y):
    """The TypeError for labels that cannot be sorted together (``1`` and ``"a"``)."""
    kinds = sorted({type(v).__name__ for v in np.asarray(y, dtype=object).ravel()})
    return TypeError(
        f"y mixes label types {kinds}: labels must be mutually comparable (all str or all numbers)"
    )
