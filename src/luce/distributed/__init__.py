"""Training and prediction on Dask collections (the same objective, evaluated blockwise on a cluster).

This package sits above :mod:`luce.models` and is found by it through one seam: the registry of
:mod:`luce.models._collections` names this module by its path (``"dask": "luce.distributed"``), and the
estimators' ``fit`` and ``predict*`` call :func:`handles`, :func:`fit` and :func:`predict` here when a dask
collection arrives. The imports run one way only (distributed -> models, through the public names of
``luce.models``). Nothing here imports Dask until a dask collection actually arrives: :func:`handles` only
looks at ``sys.modules`` (a dask collection cannot exist before ``dask`` has been imported). The machinery
lives in :mod:`luce.distributed._dask`; the user guide is docs/distributed.md.
"""

from __future__ import annotations

import sys

__all__ = ["DaskObjective", "fit", "fit_dask", "handles", "is_dask_collection", "predict", "predict_dask"]


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


handles = is_dask_collection  # the name the models' collection seam calls


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


fit = fit_dask
predict = predict_dask


def __getattr__(name):
    if name == "DaskObjective":
        from ._dask import DaskObjective

        return DaskObjective
    raise AttributeError(f"module 'luce.distributed' has no attribute {name!r}")
