r"""Softmax regression on Dask collections: the in-memory objective, summed over row blocks on the workers.

How a fit runs
--------------
1. The inputs become row blocks: one task per chunk of a dask array (rechunked to hold all columns) or
   partition of a dask DataFrame, with ``y`` and ``sample_weight`` aligned to the same rows.
2. One pass finds the classes and their (weighted) counts and checks the data (finite ``X``, valid
   weights). ``class_weight`` is resolved from those counts by scikit-learn's own
   ``compute_class_weight``, so ``"balanced"`` and dicts mean exactly what they mean in memory.
3. Each block is prepared once more (``X`` in the training dtype, ``y`` as class indices, the final
   weights ``sample_weight · class_weight``) and kept on the cluster when that fits (see *Persistence*).
4. The solver runs on the client: the very :func:`~luce.models._solvers.lbfgs` /
   :func:`~luce.models._solvers.newton_cg` of the in-memory fit, with the same preconditioner, on a
   :class:`DaskObjective`. Each objective call is one pass: the flat parameter vector (``n_classes ×
   n_features`` plus the intercept) is broadcast to the workers, every block returns its partial sums from
   the block functions of :mod:`luce.models._objective`, the sums are added in a tree (fan-in
   ``split_every``) on the workers, and only the total comes back.

Memory. A block task holds one chunk and, while it runs, the probabilities of at most
``max(64, 2**18 / n_classes)`` of its rows (the in-memory sub-block); partial sums are
``n_classes × n_features``. No worker ever holds more than one chunk's ``rows × classes`` probabilities.

Persistence
-----------
The dask config key ``"luce.persist"`` decides whether the prepared blocks stay in (cluster) memory between
iterations:

* ``"auto"`` (default): keep them when ``X`` (plus labels and weights) takes at most half the memory
  available: the sum of the workers' ``memory_limit`` under a ``distributed.Client``, the free RAM with the
  local schedulers. Otherwise each pass recomputes the blocks from their graph (reading or generating the
  data again) and only a few chunks are ever in memory at once: larger-than-memory training.
* ``True`` / ``False``: always / never.

Set it with ``dask.config.set({"luce.persist": False})`` (a context manager) or in a dask YAML file.

Schedulers
----------
A ``distributed.Client`` that dask would use (the default client, e.g. ``Client("tcp://scheduler:8786")``)
runs the passes on the cluster; the parameters travel as one graph input (:func:`_broadcast`). Without
one, dask's configured local scheduler runs them (threads by default). A worker lost mid-fit costs
nothing but time: the scheduler recomputes its chunks from the graph, and the sums, hence the iterates, are
the same (the reduction tree has a fixed shape and order).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys

import dask
import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import models as mv
from .._threads import one_blas_thread
from ..models import ParameterVector, block_gram, block_hessp, block_loss_gradient
from ..models import unpack_params as _unpack

__all__ = ["DaskObjective", "fit", "predict"]

_SOLVERS = ("lbfgs", "newton-cg")
_PREDICT_METHODS = ("decision_function", "predict", "predict_log_proba", "predict_proba")
_PERSIST_KEY = "luce.persist"
# Fan-in of the reduction tree: 8 partial sums per addition task (dask.array's default split_every).
_SPLIT_EVERY = 8
# Rows per sub-block inside a chunk: the in-memory objective's 2**18 logits, so a chunk of any size holds
# at most this many rows x classes probabilities while it is evaluated.
_BLOCK_ELEMENTS = 1 << 18
# "auto" persists when the data take at most this fraction of the memory available.
_PERSIST_FRACTION = 0.5


# -- inputs ----------------------------------------------------------------------------------------


def _isinstance(obj, module, name):
    """``isinstance(obj, module.name)`` without importing ``module`` (not loaded: obj cannot be one)."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(obj, getattr(mod, name))


def _is_frame(obj):
    return _isinstance(obj, "dask.dataframe", "DataFrame")


def _is_series(obj):
    return _isinstance(obj, "dask.dataframe", "Series")


def _is_array(obj):
    return _isinstance(obj, "dask.array", "Array")


def _schema(X):
    """What scikit-learn's feature-name and feature-count checks should see: a DataFrame's empty pandas
    ``_meta`` (its columns and dtypes), or the dask array itself (its shape)."""
    return X._meta if _is_frame(X) else X


def _training_dtype(dtypes, name):
    """The dtype ``X`` trains in: float32 and float64 stay, other real types become float64 (as in memory)."""
    kinds = []
    for dt in dtypes:
        if isinstance(dt, np.dtype):
            kinds.append(dt)
            continue
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        if is_numeric_dtype(dt) or is_bool_dtype(dt):  # pandas extension types (nullable Int64, ...)
            kinds.append(np.dtype(np.float64))
            continue
        raise ValueError(f"{name} must hold real numbers; a column has dtype {dt}")
    if not kinds:
        raise ValueError(f"{name} has no columns: at least 1 feature is required")
    for dt in kinds:
        if dt.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {dt}")
        if dt.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers; it has dtype {dt}")
    dt = np.result_type(*kinds)
    return dt if dt in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)


def _x_blocks(X):
    """``(list of Delayed row blocks, training dtype, n_features, row lengths or None)``."""
    if _is_frame(X):
        dtype = _training_dtype(list(X.dtypes), "X")
        return list(X.to_delayed()), dtype, len(X.columns), None
    if not _is_array(X):
        raise TypeError(
            f"X must be a dask array or a dask DataFrame to train on dask, got {type(X).__name__}"
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got a dask array of shape {X.shape}")
    if math.isnan(X.shape[1]):
        raise ValueError(
            f"X has an unknown number of columns (shape {X.shape}); call X.compute_chunk_sizes() first"
        )
    dtype = _training_dtype([X.dtype], "X")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    lengths = None if any(math.isnan(c) for c in X.chunks[0]) else tuple(int(c) for c in X.chunks[0])
    return list(X.to_delayed()[:, 0]), dtype, int(X.shape[1]), lengths


def _block_lengths(blocks, lengths):
    if lengths is None:
        lengths = tuple(int(n) for n in dask.compute(*[dask.delayed(_n_rows)(b) for b in blocks]))
    return lengths


def _n_rows(block):
    return block.shape[0]


def _vector_blocks(v, name, x_blocks, lengths):
    """Row blocks of a 1-D ``v`` (y or sample_weight) aligned with ``x_blocks``; returns them and lengths."""
    n_blocks = len(x_blocks)
    if v is None:
        return [None] * n_blocks, lengths
    if not dask.is_dask_collection(v):
        if np.ndim(v) == 0:
            return [v] * n_blocks, lengths
        v = np.asarray(v)
        if v.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_samples,), got shape {v.shape}")
        lengths = _block_lengths(x_blocks, lengths)
        if v.shape[0] != sum(lengths):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has {sum(lengths)} rows, "
                f"{name} has {v.shape[0]}"
            )
        return [v[a:b] for a, b in itertools.pairwise(np.cumsum((0, *lengths)))], lengths
    if _is_frame(v):
        raise ValueError(
            f"{name} must be 1-D: a dask array or Series, got a dask DataFrame with columns {list(v.columns)}"
        )
    if _is_series(v):
        if v.npartitions == n_blocks:
            return list(v.to_delayed()), lengths  # row counts are checked block by block
        v = v.to_dask_array(lengths=True)
    if not _is_array(v):
        raise TypeError(f"{name} must be a dask array or Series, got {type(v).__name__}")
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got a dask array of shape {v.shape}")
    if v.numblocks[0] == n_blocks and (lengths is None or any(math.isnan(c) for c in v.chunks[0])):
        return list(v.to_delayed()), lengths  # row counts are checked block by block
    lengths = _block_lengths(x_blocks, lengths)
    if any(math.isnan(c) for c in v.chunks[0]):
        v = v.compute_chunk_sizes()
    if v.shape[0] != sum(lengths):
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: X has {sum(lengths)} rows, "
            f"{name} has {v.shape[0]}"
        )
    if v.chunks[0] != lengths:
        v = v.rechunk((lengths,))
    return list(v.to_delayed()), lengths


# -- block functions (run on the workers) ----------------------------------------------------------


def _as_matrix(block, dtype, n_features):
    if sp.issparse(block):
        X = sp.csr_matrix(block, dtype=dtype)
    elif hasattr(block, "to_numpy"):  # pandas
        X = block.to_numpy(dtype=dtype, na_value=np.nan)
    else:
        X = np.asarray(block, dtype=dtype)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"a block of X has shape {X.shape}; expected (rows, {n_features})")
    return X


def _as_vector(block, name):
    v = block.to_numpy() if hasattr(block, "to_numpy") else np.asarray(block)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got a block of shape {v.shape}")
    return v


def _load(x_block, y_block, sw_block, dtype, n_features):
    """One raw row block: ``(X (dtype), y labels, sample_weight (dtype) or None)``."""
    X = _as_matrix(x_block, dtype, n_features)
    y = _as_vector(y_block, "y")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: a block of X has {X.shape[0]} "
            f"rows and the matching block of y has {y.shape[0]}; give X and y the same chunks/partitions"
        )
    if sw_block is None:
        return X, y, None
    if np.ndim(sw_block) == 0:
        return X, y, np.full(X.shape[0], sw_block, dtype=np.float64)
    sw = _as_vector(sw_block, "sample_weight")
    if sw.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must be a real numeric array, got dtype {sw.dtype}")
    if sw.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight.shape == ({sw.shape[0]},) in a block of {X.shape[0]} rows: give X and "
            "sample_weight the same chunks/partitions"
        )
    return X, y, np.array(sw, dtype=np.float64)  # float64 until scaled (see _prepare)


def _block_stats(raw):
    """Labels with their counts and weight sums, and the validity checks, of one raw block."""
    X, y, sw = raw
    labels, inverse = mv.unique_labels(y)
    counts = np.bincount(inverse, minlength=labels.shape[0]).astype(np.float64)
    data = X.data if sp.issparse(X) else X
    stats = {
        "n": y.shape[0],
        "labels": labels,
        "counts": counts,
        "wsums": counts if sw is None else np.bincount(inverse, weights=sw, minlength=labels.shape[0]),
        "x_finite": bool(np.isfinite(data).all()),
        "sw_finite": True,
        "sw_negative": False,
        "sw_max": 0.0,
    }
    if sw is not None:
        stats["sw_finite"] = bool(np.isfinite(sw).all())
        stats["sw_negative"] = bool((sw < 0).any())
        stats["sw_max"] = float(np.max(sw)) if sw.size else 0.0
    return stats


def _merge_stats(*parts):
    labels, inverse = mv.unique_labels(np.concatenate([p["labels"] for p in parts]))
    out = {"n": sum(p["n"] for p in parts), "labels": labels}
    for key in ("counts", "wsums"):
        out[key] = np.bincount(
            inverse, weights=np.concatenate([p[key] for p in parts]), minlength=labels.shape[0]
        )
    out["x_finite"] = all(p["x_finite"] for p in parts)
    out["sw_finite"] = all(p["sw_finite"] for p in parts)
    out["sw_negative"] = any(p["sw_negative"] for p in parts)
    out["sw_max"] = max(p["sw_max"] for p in parts)
    return out


def _prepare(raw, classes, class_weight, dtype, scale):
    """``(X, y as class indices, final weights or None)``: the weights as the in-memory fit builds them,
    ``sample_weight · class_weight`` divided by ``scale`` (their largest value: weights are freely
    scalable, and scaled they neither overflow nor underflow)."""
    X, y, sw = raw
    y_idx = np.searchsorted(classes, y).astype(np.intp)
    if sw is not None:
        sw = np.asarray(sw, dtype=np.float64) / scale
    if class_weight is not None:
        base = np.full(y_idx.shape[0], 1.0 / scale) if sw is None else sw
        sw = base * class_weight[y_idx]
    if sw is not None:
        sw = np.asarray(sw, dtype=dtype)
    return X, y_idx, sw


def _row_slices(n, rows):
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _block_pass(block, params, kind, static):
    """Partial sums of one prepared block: ``(Σ w, ...)`` for ``kind`` (see :class:`DaskObjective`)."""
    X, y, sw = block
    n_classes, n_features, fit_intercept, label_smoothing = static
    w_sum = float(y.shape[0]) if sw is None else float(np.sum(sw, dtype=np.float64))
    n = y.shape[0]
    if kind in ("gram", "gram_diagonal"):
        size = n_features + fit_intercept
        diagonal = kind == "gram_diagonal"
        G = np.zeros(size if diagonal else (size, size))
        for s in _row_slices(n, max(1, _BLOCK_ELEMENTS // max(n_features, 1))):
            G += block_gram(X[s], None if sw is None else sw[s], fit_intercept, diagonal=diagonal)
        return w_sum, G
    rows = max(64, _BLOCK_ELEMENTS // max(n_classes, 1))
    if kind == "hessp":
        coef, intercept = _unpack(params[0], n_classes, n_features, fit_intercept)
        v_coef, v_int = _unpack(params[1], n_classes, n_features, fit_intercept)
        h_coef = np.zeros_like(coef)
        h_int = np.zeros_like(intercept) if intercept is not None else None
        for s in _row_slices(n, rows):
            hc, hi = block_hessp(X[s], None if sw is None else sw[s], coef, intercept, v_coef, v_int)
            h_coef += hc
            if h_int is not None:
                h_int += hi
        return w_sum, h_coef, h_int
    gradient = kind == "loss_gradient"
    coef, intercept = _unpack(params, n_classes, n_features, fit_intercept)
    loss = 0.0
    g_coef = np.zeros_like(coef) if gradient else None
    g_int = np.zeros_like(intercept) if gradient and intercept is not None else None
    for s in _row_slices(n, rows):
        l_b, gc, gi = block_loss_gradient(
            X[s],
            y[s],
            None if sw is None else sw[s],
            coef,
            intercept,
            label_smoothing=label_smoothing,
            compute_gradient=gradient,
        )
        loss += l_b
        if gradient:
            g_coef += gc
            if g_int is not None:
                g_int += gi
    return w_sum, loss, g_coef, g_int


def _add(*parts):
    """Elementwise sum of the partial-sum tuples ``parts`` (None entries stay None)."""
    out = [p.copy() if isinstance(p, np.ndarray) else p for p in parts[0]]
    for part in parts[1:]:
        for i, value in enumerate(part):
            if value is None:
                continue
            if isinstance(out[i], np.ndarray):
                out[i] += value
            else:
                out[i] = out[i] + value
    return tuple(out)


def _tree(parts, combine, split_every=_SPLIT_EVERY):
    """Reduce the Delayed ``parts`` with ``combine`` in a tree of fan-in ``split_every`` (fixed order)."""
    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=False)(*parts[i : i + split_every])
            if len(parts[i : i + split_every]) > 1
            else parts[i]
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


# -- schedulers ------------------------------------------------------------------------------------


def active_client():
    """The ``distributed.Client`` dask would compute with now, or None (a local scheduler).

    That is the default client unless the dask config names another scheduler
    (``dask.config.set(scheduler="threads")`` trains locally even while a client exists).
    """
    if "distributed" not in sys.modules:
        return None
    from distributed import Client

    client = getattr(dask.base.get_scheduler(), "__self__", None)
    return client if isinstance(client, Client) else None


def _compute(client, obj):
    if client is not None:
        return client.compute(obj).result()
    return dask.compute(obj)[0]


def _broadcast(params):
    """The parameters as one graph input, a literal key: the scheduler places it once, and each worker
    fetches it once for all its block tasks.

    Not ``client.scatter(broadcast=True)``: when a worker has just died, a scatter can wait forever on
    it (it hung the whole test suite once), while the scheduler routes a graph input around a dead
    worker by itself. At the sizes of the dask benchmark both took the same time per iteration.
    """
    return dask.delayed(params, pure=True)


def _persist(client, blocks):
    if client is not None:
        return list(client.persist(blocks))
    return list(dask.persist(*blocks))


@contextlib.contextmanager
def _blas_threads(client):
    """Single-threaded BLAS under a local scheduler, which already runs one block per core: BLAS threads
    on top oversubscribe the cores (OpenBLAS threads then spin-wait; a 1500-row fit took a minute instead
    of a second on 2 busy cores). Workers of a distributed cluster start with one BLAS thread already."""
    if client is not None:
        yield
        return
    with one_blas_thread():
        yield


def _memory_available(client):
    """Bytes the data may use: the workers' memory limits (client), else the free RAM."""
    if client is None:
        return _host_memory(available=True)
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return sum(w.get("memory_limit") or _host_memory(available=False) for w in workers)


def _host_memory(available):
    try:
        import psutil  # a dependency of distributed, not of dask
    except ImportError:
        pages = os.sysconf("SC_AVPHYS_PAGES" if available else "SC_PHYS_PAGES")
        return pages * os.sysconf("SC_PAGE_SIZE")
    memory = psutil.virtual_memory()
    return memory.available if available else memory.total


def _persist_setting():
    value = dask.config.get(_PERSIST_KEY, "auto")
    if isinstance(value, str):  # from YAML or an environment variable
        value = {"auto": "auto", "true": True, "false": False}.get(value.lower(), value)
    if not (value == "auto" or value is True or value is False):
        raise ValueError(
            f"the dask config value {_PERSIST_KEY!r} must be 'auto', True or False, got {value!r}"
        )
    return value


def _should_persist(setting, client, nbytes):
    if setting != "auto":
        return setting
    return nbytes is not None and nbytes <= _PERSIST_FRACTION * _memory_available(client)


# -- the objective ---------------------------------------------------------------------------------


class DaskObjective(ParameterVector):
    r"""The softmax-regression objective over the row blocks of a dask collection.

    The same function as :class:`luce.models._objective.Objective` (and the same contract: ``loss``,
    ``gradient``, ``loss_gradient``, ``hessp``, ``gram``, ``pack``/``unpack``), evaluated as a sum over
    blocks on the workers:

    .. math:: f(\theta) = \frac{\sum_b L_b(\theta)}{\sum_b W_b} + \frac{\lambda}{2}\lVert W\rVert_F^2,
              \qquad \nabla f = \frac{\sum_b G_b(\theta)}{\sum_b W_b} + \lambda W

    with ``L_b``, ``G_b`` the weighted cross-entropy and gradient sums of block ``b``
    (:func:`~luce.models._objective.block_loss_gradient`) and ``W_b`` its weight sum. Every method is one
    pass over the blocks: the parameters are broadcast, each block returns its sums, and a tree of
    additions (fan-in 8) on the workers brings back one ``n_classes × n_features`` total.

    Parameters
    ----------
    blocks : list of dask.delayed.Delayed
        Each computes to ``(X_block, y_index_block, sample_weight_block or None)`` with ``X_block`` a
        dense ``(rows, n_features)`` array (or CSR matrix) of ``dtype`` and class indices in
        ``[0, n_classes)``; persisted or lazy.
    n_features, n_classes : int
    dtype : float32 or float64
        The dtype of the blocks; parameters are sent in it.
    reg_strength : float, default 0
    fit_intercept : bool, default True
    label_smoothing : float in [0, 1), default 0
    client : distributed.Client, optional
        Computes the passes; None uses dask's configured local scheduler.

    Attributes
    ----------
    n_passes : int
        Passes over the data so far (one per method call).
    sw_sum : float or None
        ``Σ w`` over all rows, known after the first pass.

    Examples
    --------
    >>> import dask, numpy as np
    >>> from luce.distributed import DaskObjective
    >>> X, y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0, 1, 1])
    >>> blocks = [dask.delayed((X[:2], y[:2], None)), dask.delayed((X[2:], y[2:], None))]  # two chunks
    >>> obj = DaskObjective(blocks, n_features=2, n_classes=2, dtype=np.float64)
    >>> round(obj.loss(np.zeros(obj.n_params)), 6)  # log 2 at zero parameters
    0.693147
    """

    def __init__(
        self,
        blocks,
        *,
        n_features,
        n_classes,
        dtype,
        reg_strength=0.0,
        fit_intercept=True,
        label_smoothing=0.0,
        client=None,
    ):
        self.blocks = list(blocks)
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.dtype = np.dtype(dtype)
        self.reg_strength = float(reg_strength)
        self.fit_intercept = bool(fit_intercept)
        self.label_smoothing = float(label_smoothing)
        self.logit_dropout = 0.0
        self.client = client
        self.n_coef = self.n_classes * self.n_features
        self.n_params = self.n_coef + (self.n_classes if self.fit_intercept else 0)
        self.n_passes = 0
        self.sw_sum = None
        self._static = (self.n_classes, self.n_features, self.fit_intercept, self.label_smoothing)

    # -- one pass ----------------------------------------------------------------------------------
    def _pass(self, kind, params=None):
        client = self.client
        if params is not None:
            params = _broadcast(params)
        parts = [
            dask.delayed(_block_pass, pure=False)(block, params, kind, self._static) for block in self.blocks
        ]
        total = _compute(client, _tree(parts, _add))
        self.n_passes += 1
        self.sw_sum = total[0]
        return total

    def loss_gradient(self, theta, *, rng=None):
        """``(f(theta), ∇f(theta))``: a float and a flat array in the data dtype (one pass)."""
        return self._evaluate(theta, gradient=True, rng=rng)

    def _evaluate(self, theta, gradient, rng=None):
        if rng is not None:
            raise ValueError("logit dropout (rng) is not available on dask input")
        theta = np.asarray(theta, dtype=self.dtype)
        coef, _ = self.unpack(theta)
        w_sum, loss, g_coef, g_int = self._pass("loss_gradient" if gradient else "loss", theta)
        return self.finish_sums(coef, loss, g_coef, g_int, w_sum)

    def loss(self, theta):
        """``f(theta)`` (a float; one pass)."""
        return self._evaluate(theta, gradient=False)[0]

    def gradient(self, theta):
        """``∇f(theta)`` (flat, data dtype; one pass)."""
        return self.loss_gradient(theta)[1]

    def hessp(self, theta, vec):
        """The Hessian-vector product ``∇²f(theta) @ vec`` (flat, data dtype; one pass)."""
        params = np.stack([np.asarray(theta, dtype=self.dtype), np.asarray(vec, dtype=self.dtype)])
        w_sum, h_coef, h_int = self._pass("hessp", params)
        v_coef, _ = self.unpack(params[1])
        return self.finish_hessp(v_coef, h_coef, h_int, w_sum)

    def gram(self, *, diagonal=False):
        """``Σ w_i x̃_i x̃_iᵀ / Σ w_i`` (float64; the preconditioner's data factor; one pass)."""
        w_sum, G = self._pass("gram_diagonal" if diagonal else "gram")
        return G / w_sum


# -- fit ---------------------------------------------------------------------------------------------


def _check_stats(stats, name, n_features, has_sw):
    if stats["n"] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape=(0, {n_features})) while a minimum of 1 is required "
            f"by {name}."
        )
    if not stats["x_finite"]:
        raise ValueError("Input X contains NaN or infinity.")
    classes = stats["labels"]
    check_classification_targets(classes)  # continuous or NaN labels raise as in memory
    if classes.shape[0] < 2:
        raise ValueError(
            f"{name} needs samples of at least 2 classes in the data, but the data contains only one "
            f"class: {mv.label_repr(classes[0])}"
        )
    if has_sw:
        if not stats["sw_finite"]:
            raise ValueError("Input sample_weight contains NaN or infinity.")
        if stats["sw_negative"]:
            raise ValueError("Negative values in data passed to sample_weight: weights must be >= 0.")
        if not np.any(stats["wsums"] > 0):
            raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight.")
    return classes


def _class_weights(class_weight, classes, wsums):
    """scikit-learn's ``compute_class_weight`` on the per-class weight sums (exactly the in-memory value)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        return compute_class_weight(class_weight, classes=classes, y=classes)
    # "balanced" needs only the weighted class counts: one row per class weighted by its count.
    return compute_class_weight("balanced", classes=classes, y=classes, sample_weight=wsums)


def fit(est, X, y, sample_weight=None):
    """Fit a :class:`~luce.SoftmaxRegression` on dask ``X`` (array or DataFrame) and ``y``.

    ``y`` and ``sample_weight`` may be dask arrays or Series (aligned with ``X`` by chunks/partitions,
    rechunked when the chunk sizes are known), NumPy arrays (split along ``X``'s chunks) or, for
    ``sample_weight``, a scalar. Only ``solver="lbfgs"`` and ``"newton-cg"`` train on dask input. The fitted
    attributes are the in-memory ones (NumPy arrays); see the module docstring for how the passes run.
    """
    name = type(est).__name__
    if not isinstance(est, mv.SoftmaxRegression):
        raise TypeError(
            f"{name} cannot train on dask input yet (only SoftmaxRegression's objective is evaluated "
            "blockwise on dask); bring the data into memory with .compute()"
        )
    p = mv.settings_of(est)
    if p.solver not in _SOLVERS:
        raise ValueError(
            f"solver={p.solver!r} cannot train {name} on dask input: use solver='lbfgs' or 'newton-cg' "
            "(full-batch solvers that need one pass over the chunks per step), or bring the data into "
            "memory with .compute()"
        )
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    if not dask.is_dask_collection(X):
        # X is in memory, so the labels and weights fit too: bring them over and fit in memory.
        y, sample_weight = dask.compute(y, sample_weight)
        return est.fit(X, y, sample_weight=sample_weight)
    x_blocks, dtype, n_features, lengths = _x_blocks(X)
    # n_features_in_ and feature_names_in_ (from a DataFrame's columns), as validate_data sets them.
    validate_data(est, _schema(X), reset=True, skip_check_array=True)
    y_blocks, lengths = _vector_blocks(y, "y", x_blocks, lengths)
    has_sw = sample_weight is not None
    if has_sw and not dask.is_dask_collection(sample_weight) and np.ndim(sample_weight) == 0:
        w = float(sample_weight)
        if not math.isfinite(w) or w <= 0:
            raise ValueError(f"sample_weight={sample_weight!r}: a scalar weight must be finite and > 0")
    sw_blocks, lengths = _vector_blocks(sample_weight, "sample_weight", x_blocks, lengths)

    client = active_client()
    setting = _persist_setting()
    itemsize = dtype.itemsize
    row_bytes = n_features * itemsize + np.dtype(np.intp).itemsize + (itemsize if has_sw else 0)
    raw = [
        dask.delayed(_load, pure=False)(xb, yb, wb, dtype, n_features)
        for xb, yb, wb in zip(x_blocks, y_blocks, sw_blocks, strict=True)
    ]
    persist = None
    if lengths is not None:  # the size is known: decide now and read the data once
        persist = _should_persist(setting, client, sum(lengths) * row_bytes)
        if persist:
            raw = _persist(client, raw)
    stats = _compute(client, _tree([dask.delayed(_block_stats, pure=False)(b) for b in raw], _merge_stats))
    classes = _check_stats(stats, name, n_features, has_sw)
    cw = _class_weights(p.class_weight, classes, stats["wsums"])
    if has_sw or cw is not None:
        per_class = stats["wsums"] if cw is None else stats["wsums"] * cw
        mv.check_two_weighted_classes(per_class, classes)
    mv.check_warm_start_classes(est, p.warm_start, classes)
    previous = getattr(est, "coef_", None)
    if p.warm_start and previous is not None and previous.shape[1] != n_features:
        raise ValueError(
            f"warm_start=True continues the previous fit, which had {previous.shape[1]} features; X has "
            f"{n_features}. Fit with warm_start=False to start over"
        )
    scale = (stats["sw_max"] if has_sw else 1.0) * (1.0 if cw is None else max(float(np.max(cw)), 1e-300))
    blocks = [dask.delayed(_prepare, pure=False)(b, classes, cw, dtype, scale or 1.0) for b in raw]
    if persist is None:
        persist = _should_persist(setting, client, stats["n"] * row_bytes)
    if persist:
        blocks = _persist(client, blocks)
    del raw

    est.classes_ = classes
    objective = DaskObjective(
        blocks,
        n_features=n_features,
        n_classes=classes.shape[0],
        dtype=dtype,
        reg_strength=p.reg_strength,
        fit_intercept=p.fit_intercept,
        label_smoothing=p.label_smoothing,
        client=client,
    )
    # The rest is the estimators' own fit skeleton: start, solver, record, warn.
    with _blas_threads(client):
        return mv.fit_objective(est, objective, p, dtype=dtype)


# -- predict -----------------------------------------------------------------------------------------


def _predictor(est, keep_names):
    """A lean copy of the fitted estimator to ship with the graph: public state only, no callbacks."""
    new = object.__new__(type(est))
    state = {k: v for k, v in vars(est).items() if not k.startswith("_")}
    if not keep_names:
        state.pop("feature_names_in_", None)
    if callable(state.get("verbose")):
        state["verbose"] = 0
    new.__dict__.update(state)
    return new


def _predict_block(block, predictor, method, empty):
    if block.shape[0] == 0:
        return empty
    return getattr(predictor, method)(block)


def predict(est, X, method):
    """``est.<method>(X)`` for dask ``X``: a lazy dask array, one output chunk per input chunk.

    ``method`` is ``"predict"``, ``"predict_proba"``, ``"predict_log_proba"`` or ``"decision_function"``.
    Each chunk runs the in-memory method (same numbers); a DataFrame's partitions keep their column names.
    Fitted state and the number of features (and feature names) are checked now, not at compute time.
    Output rows of a DataFrame have unknown chunk sizes (``.compute_chunk_sizes()`` finds them).
    """
    if method not in _PREDICT_METHODS:
        raise ValueError(f"method must be one of {_PREDICT_METHODS}, got {method!r}")
    check_is_fitted(est)
    if _is_frame(X):
        dtype = _training_dtype(list(X.dtypes), "X")
    elif _is_array(X):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got a dask array of shape {X.shape}")
        dtype = _training_dtype([X.dtype], "X")
    else:
        raise TypeError(f"X must be a dask array or a dask DataFrame, got {type(X).__name__}")
    # Names and the number of features, checked eagerly with scikit-learn's messages.
    validate_data(est, _schema(X), reset=False, skip_check_array=True)
    bare = _predictor(est, keep_names=False)
    probe = getattr(bare, method)(np.zeros((1, est.n_features_in_), dtype=dtype))
    empty = probe[:0]
    if _is_frame(X):
        return X.map_partitions(_predict_block, _predictor(est, keep_names=True), method, empty, meta=empty)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    if probe.ndim == 1:
        return X.map_blocks(_predict_block, bare, method, empty, drop_axis=1, dtype=probe.dtype, meta=empty)
    return X.map_blocks(
        _predict_block,
        bare,
        method,
        empty,
        chunks=(X.chunks[0], (probe.shape[1],)),
        dtype=probe.dtype,
        meta=empty,
    )
