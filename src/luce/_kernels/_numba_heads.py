"""Numba kernels for the hierarchical softmax (imported on first use only, never at ``import luce``).

Layers as in numba-stats: a scalar primitive (``log σ``), a path primitive (one example's path through
the tree: scores, loss, gradient), and batch kernels over rows. One decorator policy: ``cache=True``,
``error_model="numpy"``, no fast-math. Arrays arrive C-contiguous in float64 (the estimator converts),
tree arrays as int64/int8. Rows are dense, or CSR arrays ``(data, indices, indptr)`` (int64 indices):
the row primitives ``_row_dot``/``_row_axpy`` hold the only difference, so each kernel's math is written
once for both layouts.

Cost: one example touches only the ``L ≈ log2 K`` internal nodes on its class's path, ``O(d·L)``
work for its loss and gradient — the point of the tree. The full probability table needs every node
score (``O(d·K)``, a BLAS product done by the caller) and then ``O(K)`` per row here; top-k search
visits nodes best first and usually stops after ``O(k·L)`` of them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._dispatch import kernel_launch

__all__ = [
    "log_proba_from_scores",
    "loss_grad",
    "sgd_epoch",
    "topk_best_first",
]


@njit(cache=True, error_model="numpy", inline="always")
def _log_sigmoid(s):
    # log σ(s) = min(s, 0) - log1p(exp(-|s|)): no overflow for any s, and log1p keeps tiny tails.
    return min(s, 0.0) - math.log1p(math.exp(-abs(s)))


@njit(cache=True, error_model="numpy", inline="always")
def _sigmoid(s):
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


@njit(cache=True, error_model="numpy", inline="always")
def _dot(x, w):
    # Eight independent partial sums: the loop vectorises without reassociation (no fast-math).
    d = x.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    n_full = d - d % 8
    for i in range(0, n_full, 8):
        a0 += x[i] * w[i]
        a1 += x[i + 1] * w[i + 1]
        a2 += x[i + 2] * w[i + 2]
        a3 += x[i + 3] * w[i + 3]
        a4 += x[i + 4] * w[i + 4]
        a5 += x[i + 5] * w[i + 5]
        a6 += x[i + 6] * w[i + 6]
        a7 += x[i + 7] * w[i + 7]
    total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for i in range(n_full, d):
        total += x[i] * w[i]
    return total


@njit(cache=True, error_model="numpy", inline="always")
def _row_dot(X, data, indices, indptr, i, w):
    # Row i of dense X, or of the CSR matrix (data, indices, indptr) when indptr is not empty.
    if indptr.shape[0] == 0:
        return _dot(X[i], w)
    total = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        total += data[p] * w[indices[p]]
    return total


@njit(cache=True, error_model="numpy", inline="always")
def _row_axpy(X, data, indices, indptr, i, g, out):
    # out += g · row i (dense or CSR, as in _row_dot): O(nonzeros) for a CSR row.
    if indptr.shape[0] == 0:
        x = X[i]
        for j in range(x.shape[0]):
            out[j] += g * x[j]
    else:
        for p in range(indptr[i], indptr[i + 1]):
            out[indices[p]] += g * data[p]


@njit(cache=True, error_model="numpy")
def loss_grad(X, data, indices, indptr, y, sw, paths, codes, depths, W, b, gW, gb):
    """Σ_i sw_i · (-log P(y_i | x_i)), adding Σ_i sw_i (σ(s) - c) x_i into ``gW`` and into ``gb``.

    The rows are dense ``X (n, d)`` when ``indptr`` is empty, else the CSR matrix ``(data, indices,
    indptr)`` (``X`` is then unused): a path node's score is the sum over the row's nonzeros,
    ``O(nnz·L)`` per row. ``gW (K-1, d)`` and ``gb (K-1,)`` are accumulated into (the caller
    zeroes them). Returns the weighted loss sum (float64).
    """
    n = X.shape[0] if indptr.shape[0] == 0 else indptr.shape[0] - 1
    total = 0.0
    for i in range(n):
        k = y[i]
        w_i = sw[i]
        for level in range(depths[k]):
            node = paths[k, level]
            s = _row_dot(X, data, indices, indptr, i, W[node]) + b[node]
            code = codes[k, level]
            # -log σ(±s); the gradient of -log σ((2c - 1)s) with respect to s is σ(s) - c.
            total -= w_i * _log_sigmoid(s if code == 1 else -s)
            g = w_i * (_sigmoid(s) - code)
            _row_axpy(X, data, indices, indptr, i, g, gW[node])
            gb[node] += g
    return total


@njit(cache=True, error_model="numpy")
def sgd_epoch(
    X, y, sw, order, paths, codes, depths, V, b, scale, lrs, reg, batch_size, fit_intercept,
    gbuf, gbbuf, mark, touched, explode,
):  # fmt: skip
    """One epoch of mini-batch SGD on the full objective, touching only the nodes on each path.

    The weights are ``W = scale · V``: weight decay ``W ← (1 - ηλ) W`` on every node is a scalar update
    of ``scale`` (O(1) per step instead of O(K·d); Bottou, "Stochastic gradient descent tricks", 2012),
    and only the rows of ``V`` on the batch's paths change. Each batch's gradient is taken at the weights
    before the batch (true mini-batch SGD). ``sw`` holds the sample weights divided by their mean, so a
    batch's gradient is an unbiased estimate of the full gradient. ``lrs`` has one learning rate per batch.

    Returns ``(loss_sum, scale)``: Σ sw_i·nll_i over the epoch, each at the weights its batch saw, and
    the final scale. A batch whose mean loss is not finite or exceeds ``explode`` stops the epoch
    before its update, with ``loss_sum = nan`` (the caller restores a snapshot and lowers the rate).
    """
    n = order.shape[0]
    d = X.shape[1]
    total = 0.0
    step = 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        n_touched = 0
        batch_total = 0.0
        for t in range(start, stop):
            i = order[t]
            k = y[i]
            w_i = sw[i]
            x = X[i]
            for level in range(depths[k]):
                node = paths[k, level]
                s = scale * _dot(x, V[node]) + b[node]
                code = codes[k, level]
                batch_total -= w_i * _log_sigmoid(s if code == 1 else -s)
                g = w_i * (_sigmoid(s) - code)
                if mark[node] == 0:
                    mark[node] = 1
                    touched[n_touched] = node
                    n_touched += 1
                row = gbuf[node]
                for j in range(d):
                    row[j] += g * x[j]
                gbbuf[node] += g
        total += batch_total
        diverged = not (batch_total / (stop - start) <= explode)  # also catches NaN
        if diverged:
            for t in range(n_touched):
                node = touched[t]
                gbuf[node, :] = 0.0
                gbbuf[node] = 0.0
                mark[node] = 0
            return math.nan, scale
        eta = lrs[step] / (stop - start)
        scale *= 1.0 - lrs[step] * reg
        inv = eta / scale
        for t in range(n_touched):
            node = touched[t]
            row = gbuf[node]
            vrow = V[node]
            for j in range(d):
                vrow[j] -= inv * row[j]
                row[j] = 0.0
            if fit_intercept:
                b[node] -= eta * gbbuf[node]
            gbbuf[node] = 0.0
            mark[node] = 0
        if scale < 1e-9:  # fold the scale back in before it underflows
            for node in range(V.shape[0]):
                for j in range(d):
                    V[node, j] *= scale
            scale = 1.0
        step += 1
    return total, scale


def log_proba_from_scores(S, children, out):
    """:func:`_log_proba_from_scores` under the kernel-launch lock (parallel; see ``kernel_launch``)."""
    with kernel_launch():
        _log_proba_from_scores(S, children, out)


def topk_best_first(X, data, indices, indptr, W, b, children, k, out_classes, out_logp, visited):
    """:func:`_topk_best_first` under the kernel-launch lock (parallel; see ``kernel_launch``)."""
    with kernel_launch():
        _topk_best_first(X, data, indices, indptr, W, b, children, k, out_classes, out_logp, visited)


@njit(cache=True, parallel=True, error_model="numpy")
def _log_proba_from_scores(S, children, out):
    """Log-probability of every class from the node scores ``S (n, K-1)``, top down; ``out (n, K)``.

    Nodes are numbered breadth first (parents before children), so one pass in node order gives each
    node's log-probability before its children need it.
    """
    n, n_internal = S.shape
    for r in prange(n):
        lp = np.empty(n_internal)
        lp[0] = 0.0
        for j in range(n_internal):
            s = S[r, j]
            base = lp[j]
            for side in range(2):
                value = base + _log_sigmoid(s if side == 1 else -s)
                c = children[j, side]
                if c >= 0:
                    lp[c] = value
                else:
                    out[r, -c - 1] = value


@njit(cache=True, error_model="numpy")
def _heap_push(keys, items, size, key, item):
    # A binary max-heap on keys (log-probabilities), stored in arrays.
    pos = size
    keys[pos] = key
    items[pos] = item
    while pos > 0:
        parent = (pos - 1) >> 1
        if keys[parent] >= keys[pos]:
            break
        keys[parent], keys[pos] = keys[pos], keys[parent]
        items[parent], items[pos] = items[pos], items[parent]
        pos = parent
    return size + 1


@njit(cache=True, error_model="numpy")
def _heap_pop(keys, items, size):
    key, item = keys[0], items[0]
    size -= 1
    keys[0], items[0] = keys[size], items[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        best = left
        if left + 1 < size and keys[left + 1] > keys[left]:
            best = left + 1
        if keys[pos] >= keys[best]:
            break
        keys[pos], keys[best] = keys[best], keys[pos]
        items[pos], items[best] = items[best], items[pos]
        pos = best
    return key, item, size


@njit(cache=True, parallel=True, error_model="numpy")
def _topk_best_first(X, data, indices, indptr, W, b, children, k, out_classes, out_logp, visited):
    """The ``k`` most probable classes of each row by best-first search, without scoring every node.

    A log-probability only decreases along a path (each step adds ``log σ ≤ 0``), so when a leaf is
    popped from the max-heap no unexplored leaf can be more probable: leaves come out in order of
    decreasing probability and the first ``k`` are the exact top k (uniform-cost search). Rows as in
    :func:`loss_grad` (dense ``X``, or CSR when ``indptr`` is not empty). Writes
    ``out_classes (n, k)``, ``out_logp (n, k)`` and the number of nodes scored per row in ``visited``.
    """
    n = X.shape[0] if indptr.shape[0] == 0 else indptr.shape[0] - 1
    n_internal = children.shape[0]
    cap = 2 * n_internal + 2
    for r in prange(n):
        keys = np.empty(cap)
        items = np.empty(cap, dtype=np.int64)
        # Items: internal node j as j, leaf of class c as -c - 1 (the encoding of ``children``).
        size = _heap_push(keys, items, 0, 0.0, 0)
        found = 0
        scored = 0
        while found < k and size > 0:
            key, item, size = _heap_pop(keys, items, size)
            if item < 0:
                out_classes[r, found] = -item - 1
                out_logp[r, found] = key
                found += 1
                continue
            s = _row_dot(X, data, indices, indptr, r, W[item]) + b[item]
            scored += 1
            size = _heap_push(keys, items, size, key + _log_sigmoid(-s), children[item, 0])
            size = _heap_push(keys, items, size, key + _log_sigmoid(s), children[item, 1])
        visited[r] = scored
