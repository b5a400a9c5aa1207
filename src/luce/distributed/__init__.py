"""Training and prediction on Dask collections (the same objective, evaluated blockwise on a cluster).

``SoftmaxRegression.fit`` hands dask arrays and dask DataFrames to :func:`fit_dask`; its ``predict*`` and
``decision_function`` hand them to :func:`predict_dask`. Nothing here imports Dask until a dask collection
actually arrives: :func:`is_dask_collection` only looks at ``sys.modules`` (a dask collection cannot exist
before ``dask`` has been imported), so ``import luce`` stays light. The machinery lives in
:mod:`luce.distributed._dask`; the user guide is docs/distributed.md.
"""

from __future__ import annotations

import sys

__all__ = ["DaskObjective", "fit_dask", "is_dask_collection", "predict_dask"]


def is_dask_collection(*objects):
    """True when any of ``objects`` is a dask collection (dask array, DataFrame, Series, Delayed).

    Never imports Dask: when ``dask`` is not in ``sys.modules`` no dask collection can exist.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.distributed import is_dask_collection
    >>> is_dask_collection(np.zeros(3), None)
    False
    """
    dask = sys.modules.get("dask")
    if dask is None:
        return False
    return any(dask.is_dask_collection(obj) for obj in objects)


def fit_dask(estimator, X, y, sample_weight=None):
    """Fit ``estimator`` (a :class:`~luce.SoftmaxRegression`) on dask ``X``/``y``; returns the estimator.

    See :func:`luce.distributed._dask.fit`.
    """
    from . import _dask

    return _dask.fit(estimator, X, y, sample_weight)


def predict_dask(estimator, X, method):
    """``estimator.<method>(X)`` for a dask ``X``, as a lazy dask array computed chunk for chunk.

    See :func:`luce.distributed._dask.predict`.
    """
    from . import _dask

    return _dask.predict(estimator, X, method)


def __getattr__(name):
    if name == "DaskObjective":
        from ._dask import DaskObjective

        return DaskObjective
    raise AttributeError(f"module 'luce.distributed' has no attribute {name!r}")
