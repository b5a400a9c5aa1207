"""The one seam between the estimators and the layers that fit collections they cannot hold (Dask).

The estimators never import such a layer: a fitter is registered here by the name of the library whose
collections it handles and the *module path* of the fitter, resolved with :mod:`importlib` only when
that library is loaded (a dask collection cannot exist before ``dask`` is imported), so ``import luce``
and in-memory fits never load it. The fitter module provides

* ``handles(*objects) -> bool``: whether any of the objects is one of its collections,
* ``fit(estimator, X, y, sample_weight)``: builds the estimator's objective over its blocks and ends with
  :func:`luce.models._base.fit_objective`, and
* ``predict(estimator, X, method)``: ``estimator.<method>(X)`` as a lazy collection.

``luce.distributed`` is the one registered today (the README promises
``SoftmaxRegression().fit(dask_X, dask_y)``); :func:`register` adds or replaces one.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["fitter_for", "register"]

_FITTERS = {"dask": "luce.distributed"}


def register(library, module_path):
    """Let the module at ``module_path`` fit and predict on collections of ``library``.

    Examples
    --------
    >>> from luce.models import _collections
    >>> _collections.register("dask", "luce.distributed")
    """
    _FITTERS[str(library)] = str(module_path)


def fitter_for(*objects):
    """The fitter module for the first registered library that owns one of ``objects``, else None."""
    for library, module_path in _FITTERS.items():
        if library not in sys.modules:
            continue  # its collections cannot exist yet: nothing is imported
        module = importlib.import_module(module_path)
        if module.handles(*objects):
            return module
    return None
