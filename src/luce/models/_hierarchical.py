r"""HierarchicalSoftmaxClassifier: a linear classifier whose output layer is a tree over the classes.

Objective (the SoftmaxRegression contract, with the tree's likelihood in place of the softmax):

.. math::
    f(W, b) = \frac{1}{\sum_i w_i} \sum_i w_i \Big(-\sum_{l=1}^{L_{y_i}}
              \log \sigma\big((2c_{y_i,l} - 1)(w_{n_l} \cdot x_i + b_{n_l})\big)\Big)
              + \frac{\lambda}{2} \lVert W \rVert_F^2

with one weight vector per internal node (``K - 1`` of them), the path ``n_1 … n_L`` and codes ``c`` of
class ``y_i`` (see :mod:`luce.heads._hierarchical`), sample weights ``w_i`` and ``λ = reg_strength``
(intercepts are never penalised). An example's loss and gradient touch only the ``L`` nodes on its path:
``O(d·L)`` work, ``L`` about the entropy of the class frequencies in bits (≤ ``log2 K + 1`` for
near-uniform classes) instead of ``O(d·K)`` for a full softmax. With ``branching > 2`` each term is
the log-softmax of the child taken among a node's children (see :mod:`luce.heads._hierarchical`).

The estimator runs the fit skeleton every luce linear estimator shares (:mod:`luce.models._base`:
validation, weights, solvers, warnings, defaults); this module keeps only the tree. Its objective,
:class:`TreeObjective`, is the shared linear objective (row blocks, weights, penalty, intercept, the
flat parameter vector) with the tree as its head: one weight vector per internal node, and per row
block the path sums of a compiled kernel (``tree_loss_grad`` of :mod:`luce._kernels._dispatch`, C in
``csrc/heads.h``; ``O(d·L)`` per row). Every solver of :mod:`luce.models._solvers` trains it (lbfgs,
newton-cg, gd, sgd); sgd without momentum runs :func:`path_sgd`, whose epochs touch only the nodes on
each row's path.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels import _dispatch
from .._threads import one_blas_thread
from ..heads._hierarchical import (
    edge_rows,
    huffman_tree,
    kmeans_tree,
    reference_log_proba,
    reference_loss_grad,
    reference_topk,
    widen,
)
from . import _solvers
from . import _validation as v
from ._base import PARAMETERS, LinearClassifier, Targets, _blas_threads_for, settings_of
from ._objective import LinearObjective, reduce_blocks

__all__ = ["HierarchicalSoftmaxClassifier", "TreeObjective"]

# Elements of the (rows x internal nodes) block of node scores in predict_proba.
_SCORE_BLOCK = 1 << 21


_NO_DATA = np.empty(0)
_NO_INDEX = np.empty(0, dtype=np.int64)


def _row_args(X):
    """The rows as the path kernels take them: ``(X, data, indices, indptr)``, dense ``X`` with empty
    CSR arrays, or a CSR matrix's arrays (int64 indices) with an ``X`` of shape ``(0, n_features)``.
    CSR is never densified."""
    if sp.issparse(X):
        return (
            np.empty((0, X.shape[1])),
            np.ascontiguousarray(X.data, dtype=np.float64),
            np.ascontiguousarray(X.indices, dtype=np.int64),
            np.ascontiguousarray(X.indptr, dtype=np.int64),
        )
    return np.ascontiguousarray(X, dtype=np.float64), _NO_DATA, _NO_INDEX, _NO_INDEX


def _as_rows(X):
    """float64 C-contiguous dense rows, or canonical float64 CSR (sorted, no duplicates)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sum_duplicates()  # also sorts the indices
        return X
    return np.ascontiguousarray(X, dtype=np.float64)


def class_centroids(X, y, n_classes, sample_weight=None):
    """The (weighted) mean row of each class, ``(n_classes, n_features)``: dense for dense ``X``, CSR for
    CSR ``X`` (a sparse product, never densified). Rows of classes without weight are zero."""
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    member = sp.csr_matrix((w, (y, np.arange(n))), shape=(n_classes, n))
    mass = np.asarray(member.sum(axis=1)).ravel()
    scale = sp.diags(np.divide(1.0, mass, out=np.zeros(n_classes), where=mass > 0))
    sums = member @ X
    return sp.csr_matrix(scale @ sums) if sp.issparse(sums) else scale @ np.asarray(sums)


class TreeObjective(LinearObjective):
    r"""The hierarchical-softmax objective: the shared linear part with a label tree as its head.

    ``f(θ) = Σ_i w_i (-log P(y_i | x_i)) / Σ_i w_i + λ/2 ‖W‖²`` with one weight vector per internal node
    (``n_classes`` here is the number of weight vectors, ``K - 1``, the name the solvers read). Only the
    per-block hooks are the tree's: :meth:`_block_sums` sums a row block's path losses and gradients with
    the compiled kernel (``O(d·L)`` per row); :meth:`_block_hessp` forms the block's node scores
    (``O(d·K)`` per row, used by newton-cg only) and keeps the curvature ``σ(s)σ(-s)`` of the nodes on
    each row's path.

    Parameters
    ----------
    X : ndarray or CSR matrix, shape (n_samples, n_features)
        Converted to float64 (C-contiguous, or canonical CSR: a row's node score is then a sum over its
        nonzeros, ``O(nnz·L)`` per row, and the matrix is never densified).
    y : ndarray of int, shape (n_samples,)
        Class indices in ``[0, K)``.
    tree : HuffmanTree
        From :func:`luce.heads._hierarchical.huffman_tree` or :func:`~luce.heads._hierarchical.kmeans_tree`.
    sample_weight : ndarray, shape (n_samples,), optional
    reg_strength : float, default 0
    fit_intercept : bool, default True
    node_scale : ndarray, shape (K - 1,), optional
        A diagonal preconditioner ``s_j >= 1`` per node: the parameter vector then holds
        ``(w_j / s_j, b_j / s_j)`` while :meth:`unpack`/:meth:`pack` and the objective value stay in
        the node weights ``(w_j, b_j)`` (the optimum is the same). A gradient step on the scaled
        parameters moves node ``j`` ``s_j²`` times further, which offsets the ``π_j`` (the share of the
        training weight passing through node ``j``) that its gradient carries: see
        :func:`node_scales`.
    node_step : ndarray, shape (K - 1,), optional
        The same preconditioner applied by :func:`path_sgd` as a step ``η·s_j²`` per node (pass ``s²``),
        the parameters left unscaled: the fitted weights then need no rescaling pass (at 10,000 classes
        of 20,000 words, each pass over the weights cost 0.12 s of a 2.6 s fit).

    Examples
    --------
    >>> import numpy as np
    >>> from luce.heads._hierarchical import huffman_tree
    >>> from luce.models._hierarchical import TreeObjective
    >>> obj = TreeObjective(np.eye(3), np.array([0, 1, 2]), huffman_tree(np.ones(3)))
    >>> obj.n_classes, round(obj.loss(np.zeros(obj.n_params)), 6)  # 2 nodes; mean path length 5/3 · log 2
    (2, 1.155245)
    """

    def __init__(
        self,
        X,
        y,
        tree,
        *,
        sample_weight=None,
        reg_strength=0.0,
        fit_intercept=True,
        block_rows=None,
        node_scale=None,
        node_step=None,
    ):
        self.y = np.asarray(y, dtype=np.int64)
        self.tree = tree
        self.n_classes = tree.depths.shape[0] - 1  # weight rows: one per child but each node's first
        self._setup(_as_rows(X), sample_weight, reg_strength, fit_intercept, block_rows)
        self.node_scale = None if node_scale is None else np.asarray(node_scale, dtype=np.float64)
        self.node_step = None if node_step is None else np.asarray(node_step, dtype=np.float64)

    # -- the preconditioner: theta holds (w_j, b_j) / s_j; the chain rule scales gradients by s_j ----
    def unpack(self, theta):
        coef, intercept = super().unpack(theta)
        s = self.node_scale
        if s is None:
            return coef, intercept
        return coef * s[:, None], (None if intercept is None else intercept * s)

    def pack(self, coef, intercept=None):
        s = self.node_scale
        if s is not None:
            coef = np.asarray(coef) / s[:, None]
            intercept = None if intercept is None else np.asarray(intercept) / s
        return super().pack(coef, intercept)

    def _chain(self, g):
        s = self.node_scale
        if s is None:
            return g
        g[: self.n_coef].reshape(self.n_classes, self.n_features)[...] *= s[:, None]
        if self.fit_intercept:
            g[self.n_coef :] *= s
        return g

    def loss_gradient(self, theta, *, rng=None):
        f, g = super().loss_gradient(theta, rng=rng)
        return f, self._chain(g)

    def batch_loss_gradient(self, theta, rows, *, rng=None):
        f, g = super().batch_loss_gradient(theta, rows, rng=rng)
        return f, self._chain(g)

    def hessp(self, theta, vec):
        # S H S vec: unpack scales vec into node weights, the product is scaled back
        return self._chain(super().hessp(theta, vec))

    def _sums(self, X, y, sw, coef, intercept, gradient, rng):
        # The path kernel holds no per-row temporaries, so all rows go in one call: no row blocks and no
        # per-block gradient buffers to allocate and add (they cost more than the kernel in sgd).
        return self._block_sums(X, y, sw, coef, intercept, gradient, rng)

    def _block_sums(self, X, y, sw, coef, intercept, gradient, rng):
        # rng is accepted for the shared contract and unused: no dropout in the tree.
        t = self.tree
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        b = np.zeros(coef.shape[0]) if intercept is None else np.ascontiguousarray(intercept, np.float64)
        kernel = _dispatch.lookup("tree_loss_grad", coef)
        if kernel is None:
            loss, g_coef, g_int = _blocked_reference_loss_grad(X, y, sw, t, coef, b)
        else:
            g_coef = np.zeros_like(coef)
            g_int = np.zeros(coef.shape[0])
            sw_arg = _NO_DATA if sw is None else np.ascontiguousarray(sw, dtype=np.float64)
            tree = (t.children, t.edge_row, t.paths, t.codes, t.depths)
            loss = kernel(*_row_args(X), y, sw_arg, *tree, coef, b, g_coef, g_int)
        if not gradient:
            return float(loss), None, None
        return float(loss), g_coef, (g_int if intercept is not None else None)

    def _block_hessp(self, s, coef, intercept, vec_coef, vec_intercept):
        X, y, t = self.X[s], self.y[s], self.tree
        rows = np.arange(X.shape[0])[:, None]
        nodes = t.paths[y]  # (rows, L), -1 beyond each row's depth
        on_path = nodes >= 0
        at = np.where(on_path, nodes, 0)
        scores = np.asarray(X @ coef.T)
        if intercept is not None:
            scores += intercept
        u = np.asarray(X @ vec_coef.T)
        if vec_intercept is not None:
            u += vec_intercept
        sig = expit(scores[rows, at])
        r = np.zeros_like(scores)
        # d²/ds² of -log σ(±s) is σ(s)σ(-s); each node appears at most once on a path (padding skipped).
        curv = sig * (1.0 - sig) * u[rows, at]
        r[np.broadcast_to(rows, at.shape)[on_path], nodes[on_path]] = curv[on_path]
        if self.sample_weight is not None:
            r *= self.sample_weight[s][:, None]
        return np.asarray(X.T @ r).T, (r.sum(axis=0) if intercept is not None else None)


def _blocked_reference_loss_grad(X, y, sw, tree, coef, b):
    """:func:`~luce.heads._hierarchical.reference_loss_grad` over row blocks of at most
    ``_SCORE_BLOCK`` node scores (the reference scores every node)."""
    step = max(1, _SCORE_BLOCK // max(1, coef.shape[0]))
    loss, g_coef, g_int = 0.0, np.zeros_like(coef), np.zeros(coef.shape[0])
    for r0 in range(0, X.shape[0], step):
        rows = slice(r0, r0 + step)
        part = reference_loss_grad(
            X[rows], y[rows], None if sw is None else sw[rows], tree.children, tree.edge_row, tree.paths,
            tree.codes, tree.depths, coef, b,
        )  # fmt: skip
        loss += part[0]
        g_coef += part[1]
        g_int += part[2]
    return loss, g_coef, g_int


def _batch_order(rng, n, batch_size):
    """The rows of one epoch as the shared sgd visits them: a permutation, sorted within each batch."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        order[start : start + batch_size].sort()
    return order


def path_sgd(
    objective,
    theta0,
    *,
    kernel,
    learning_rate,
    batch_size,
    max_iter,
    tol,
    n_iter_no_change,
    threshold=None,
    callback=None,
    rng,
    validation=None,
    cold_start=False,
):
    """Mini-batch SGD (no momentum) that touches only the nodes on each batch's paths.

    The same iterates, loss curve, stopping rules and divergence handling as the shared
    :func:`luce.models._solvers.sgd` with ``momentum=0`` (and the same draws from ``rng``), at
    ``O(nnz·L)`` per row instead of ``O(K·d)`` per batch: the epoch kernel (``_heads.sgd_epoch``, C in
    csrc/heads.h) keeps the weights as ``scale_j · V_j`` so that the weight decay of every node is one
    multiply, and scatters each row's gradient into the ``L`` rows of ``V`` on its path. The node
    preconditioner of the objective (``node_scale``) becomes a per-node step ``η·s_j²`` there.
    ``cold_start``: ``theta0``'s weights are zero (the estimator's initial point), so they are not read
    (reading 1.6 GB of zeros took 0.055 s at 10,000 classes).
    """
    n = objective.n_samples
    batch = _solvers._resolve_batch_size(batch_size, n)
    n_rows, fit_intercept = objective.n_classes, objective.fit_intercept
    node_scale = objective.node_scale

    # The state (V, b, scale, norm2): V and b live in the result vector theta, so the final weights need
    # no pack (a copy of the weight matrix: 1.6 GB at 10,000 classes of 20,000 words).
    theta = np.zeros(objective.n_params)
    V, b_view = LinearObjective.unpack(objective, theta)  # views of theta, in the scaled parameters
    b = b_view if fit_intercept else np.zeros(n_rows)
    scale, norm2 = np.ones(n_rows), np.zeros(n_rows)

    def reset(zeroed):
        """The state at ``theta0`` (node weights ``W = V``, scale 1); ``zeroed``: V is all zeros."""
        coef0, intercept0 = LinearObjective.unpack(objective, theta0)
        if fit_intercept:
            np.multiply(intercept0, 1.0 if node_scale is None else node_scale, out=b)
        scale[:] = 1.0
        if zeroed and (cold_start or not coef0.any()):  # nothing to write (the pages stay unmapped)
            norm2[:] = 0.0
            return
        np.multiply(coef0, 1.0 if node_scale is None else node_scale[:, None], out=V)
        np.einsum("ij,ij->i", V, V, out=norm2)

    reset(zeroed=True)
    if objective.node_step is not None:
        rate = objective.node_step
    else:
        rate = np.ones(n_rows) if node_scale is None else np.square(node_scale)
    rows = _row_args(objective.X)
    sw = _NO_DATA if objective.sample_weight is None else np.asarray(objective.sample_weight, np.float64)
    t = objective.tree
    lam = objective.reg_strength

    def epoch(order, lr, explode):
        threads = _dispatch.kernel_threads()  # node shards, joined every ~16,000 rows (csrc/heads.h)
        tree = (t.children, t.edge_row, t.paths, t.codes, t.depths)
        return kernel(*rows, objective.y, sw, order, batch, *tree, V, b, scale, norm2, rate, lr, lam,
                      fit_intercept, explode, threads)  # fmt: skip

    # A rollback (a diverging epoch: back to the start of the best epoch) replays the accepted epochs
    # from theta0 instead of copying the weights at every epoch's start: the epoch kernel gives the same
    # bits for the same order and step, and rollbacks are rare (each halves the step), while a copy of
    # the weights per epoch cost as much as the epoch itself at 10,000 classes. ``accepted`` holds the
    # generator state that drew each accepted epoch's order, and its step, since theta0.
    accepted = []
    best_start = 0  # the best epoch started after accepted[:best_start]

    def roll_back():
        reset(zeroed=False)
        replay = np.random.Generator(type(rng.bit_generator)())
        for drawn, step in accepted[:best_start]:
            replay.bit_generator.state = drawn
            epoch(_batch_order(replay, n, batch), step, math.inf)
        del accepted[best_start:]

    def theta_of():
        """The parameter vector of the current weights, a new array (for the validation loss)."""
        return objective.pack(V * scale[:, None], b if fit_intercept else None)

    lr = float(learning_rate)
    # The loss at the start, on the batch the shared sgd draws for it: one batch with a zero step.
    first = _solvers.first_batch(rng, n, batch, objective.sample_weight)
    with np.errstate(over="ignore", invalid="ignore"):
        f0 = epoch(first, 0.0, math.inf) / first.shape[0]  # lr 0: the state does not change
    best_loss = f0 if math.isfinite(f0) else math.inf
    theta_now = theta0 if validation is not None else None
    rules = _solvers._StopRules(tol, n_iter_no_change, threshold, validation, theta_now, "epochs")
    halvings, warned = 0, False
    converged, message, n_epochs, loss = False, f"reached max_iter={max_iter}", 0, math.inf
    while n_epochs < max_iter:
        explode = _solvers._explode_limit(best_loss if math.isfinite(best_loss) else 0.0, objective.n_classes)
        drawn = rng.bit_generator.state
        order = _batch_order(rng, n, batch)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = epoch(order, lr, explode) / n
        if not math.isfinite(loss) or loss > 2.0 * best_loss + 0.1:
            halvings += 1
            lr *= 0.5
            if halvings > _solvers._MAX_HALVINGS:
                raise _solvers._diverged_error(learning_rate, lr)
            warned = _solvers._warn_halving(
                learning_rate,
                lr,
                warned,
                "the loss non-finite or explode (a batch over 10x, or an epoch over 2x, the best epoch's)",
            )
            with np.errstate(over="ignore", invalid="ignore"):
                roll_back()
            rules.plateau.count = 0
            continue
        accepted.append((drawn, lr))
        if loss < best_loss:
            best_loss, best_start = loss, len(accepted) - 1
        n_epochs += 1
        if callback is not None:
            callback(n_epochs, loss)
        stop = rules.check(loss, theta_of() if validation is not None else None)
        if stop is not None:
            converged, message = True, stop
            break
    # theta holds V and b: scale V into the node weights and both into the parameters, in place, in
    # row bands on the kernel threads (memory-bound: 2 threads 0.09 s against 0.13-0.16 s on one at
    # 10,000 × 20,001)
    factor = scale if node_scale is None else scale / node_scale

    def scale_band(rows):
        np.multiply(V[rows], factor[rows, None], out=V[rows])

    bands = max(1, _dispatch.kernel_threads())
    cuts = [slice(i * n_rows // bands, (i + 1) * n_rows // bands) for i in range(bands)]
    reduce_blocks(scale_band, cuts, bands)
    if fit_intercept and node_scale is not None:
        b /= node_scale
    theta = rules.final_theta(theta)
    if converged and threshold is None and validation is None and loss > 1.5 * best_loss + tol:
        converged = False
        message = (
            f"the epoch loss oscillates (last {loss:.4g}, best {best_loss:.4g}) instead of settling; "
            f"lower learning_rate (now {lr:.3g})"
        )
    return _solvers.SolverResult(
        theta, n_epochs, converged, message, learning_rate=lr, state={}, **rules.curves()
    )


def _path_sgd_kernel(settings):
    """The epoch kernel of :func:`path_sgd` when sgd runs it (no momentum, compiled kernels), else None."""
    momentum = settings.momentum
    if settings.solver != "sgd" or isinstance(momentum, str) or momentum != 0:
        return None
    return _dispatch.lookup("tree_sgd_epoch", np.empty(1))


def node_curvature(tree):
    """A bound on the curvature of a node's loss in its scores: 1/4 for the sigmoid of two children,
    1/2 for a softmax over more (the largest eigenvalue of ``diag(p) - ppᵀ``)."""
    return 0.25 if tree.children.shape[1] == 2 else 0.5


def node_scales(tree, class_mass, lambda_max, row_norm2, reg_strength, min_share=0.0):
    r"""The diagonal preconditioner of gd/sgd on the tree: ``s_j = sqrt(max(1, (Λ/4 + λ) / (π_j R²/4 + λ)))``.

    A mini-batch gradient of node ``j`` is averaged over the whole batch but only the share ``π_j`` of
    the rows that pass through ``j`` contribute, so with one step size for all nodes a node at depth
    ``l`` learns about ``2^l`` times slower than the root. Its curvature is at most ``π_j R²/4 + λ``
    (``R²`` the largest ``‖x̃‖²``), while the automatic step size is made for ``Λ/4 + λ`` (``Λ`` the
    largest eigenvalue of the weighted Gram matrix of all rows). Scaling node ``j``'s parameters by
    ``s_j`` multiplies its curvature by ``s_j²``: the scales bring every node up to the curvature the
    step size was made for, and never above it, so any step size stable without them stays stable.
    Nodes no training weight reaches keep ``s_j = 1``. With wider nodes the scales are per weight row
    (each row of node ``j`` gets its share) and the curvature bound is 1/2 (:func:`node_curvature`)
    in place of 1/4. Returns one scale per weight row (``K - 1``).

    ``min_share``: the smallest share assumed (sgd passes ``1/batch_size``). The bound holds for the
    full gradient; a mini-batch that holds one row of a class rarer than ``1/batch_size`` gives its
    nodes the curvature of a ``1/batch_size`` share, and a scale made for ``π_j`` would overshoot by
    ``1/(π_j·batch_size)`` there (measured: 10,000 Zipf classes of text diverged twice in 5 epochs).
    """
    paths, depths = tree.paths, tree.depths
    mass = np.zeros(tree.children.shape[0])
    for k in range(depths.shape[0]):
        mass[paths[k, : depths[k]]] += class_mass[k]
    rows_per_node = np.sum(tree.children != 0, axis=1) - 1
    share = np.repeat(mass, rows_per_node) / max(float(np.sum(class_mass)), 1e-300)  # per weight row
    share = np.where(share > 0, np.maximum(share, min_share), 0.0)
    c = node_curvature(tree)
    top = c * lambda_max + reg_strength
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = top / (c * share * row_norm2 + reg_strength)
    ratio = np.where((share > 0) & np.isfinite(ratio), ratio, 1.0)
    return np.sqrt(np.maximum(ratio, 1.0))


class HierarchicalSoftmaxClassifier(LinearClassifier):
    r"""Multinomial linear classifier with a hierarchical softmax output layer (a tree over the classes).

    The classes are the leaves of a binary tree, built by Huffman coding of their frequencies in the
    training data (as fastText) or by balanced k-means of their centroids (as probabilistic label
    trees); each of the ``K - 1`` internal nodes has a weight vector and sends an
    example right with probability ``σ(w_j·x + b_j)`` (with ``branching > 2``, to each of its children
    by a small softmax). A class's probability is the product of the branch probabilities along its
    path, so (binary tree)

    .. math:: P(y = k \mid x) = \prod_{l=1}^{L_k} \sigma\big((2c_{k,l} - 1)(w_{n_l}\cdot x + b_{n_l})\big),
              \qquad \sum_k P(y = k \mid x) = 1.

    Training costs ``O(d·L)`` per example (``L ≈ log2 K``; ``O(nnz·L)`` for sparse rows, also per sgd
    epoch with the default ``momentum=0``, and :meth:`partial_fit` for streams), prediction of the most
    probable class or the top ``k`` uses best-first (exact) or beam search over the tree; only
    :meth:`predict_proba` (every class) costs ``O(d·K)`` per row.

    Parameters
    ----------
    reg_strength : float >= 0, default 1e-4
        ``λ`` of the L2 penalty ``λ/2·‖W‖²`` (intercepts are not penalised); the objective is the
        weighted mean negative log-likelihood plus the penalty, as for ``SoftmaxRegression``.
    solver : {"lbfgs", "newton-cg", "gd", "sgd"}, default "lbfgs"
        The solvers of :class:`SoftmaxRegression` (:mod:`luce.models._solvers`). Loss and gradient cost
        ``O(d·L)`` per row; newton-cg's Hessian products score every node (``O(d·K)`` per row).
    learning_rate : float > 0 or "auto", default "auto"
        gd/sgd step size; ``"auto"`` is ``1/L`` with ``L = λ_max(X̃ᵀWX̃/Σw)/4 + reg_strength`` (a bound on
        the curvature of any node's logistic loss, ``x̃ = [x, 1]``), times ``1 - momentum`` for sgd.
    threshold : float, optional
        gd/sgd stop as soon as the training loss falls below it (as in every luce estimator).
    momentum : float in [0, 1) or "adam", default 0.0
        sgd's optimiser, as in :class:`SoftmaxRegression`, but off by default (SoftmaxRegression: 0.9):
        without momentum an sgd epoch touches only the nodes on each row's path (:func:`path_sgd`,
        ``O(nnz·L)`` per row, fastText's cost), while heavy-ball momentum or Adam move every node's
        whole weight vector each batch (``O(K·d)`` per batch). The node preconditioner
        (:func:`node_scales`) already gives the deep nodes the step that momentum would build up.
        Measured on the text task of ``benchmarks/hierarchical.py`` (1,000 classes, 20,000 documents,
        5 epochs, under load): top-1 0.917 in 1.0 s without momentum, 0.924 in 587 s with 0.9.
    max_iter, tol, batch_size, fit_intercept, early_stopping, validation_fraction, \
    n_iter_no_change, warm_start, random_state, verbose
        As in :class:`SoftmaxRegression` (the same defaults). A warm start keeps the previous tree.
        ``random_state`` also seeds the k-means tree.
    tree : {"huffman", "kmeans"}, default "huffman"
        How the label tree is built. ``"huffman"``: from the class frequencies alone (fastText's tree);
        frequent classes get short paths, so training is cheapest, but a node's two sides are
        whatever classes the frequencies pair up, which a linear split may not separate (accuracy
        suffers on many classes). ``"kmeans"``: recursive 2-means of the L2-normalised (weighted)
        class means of ``X`` (:func:`luce.heads._hierarchical.kmeans_tree`), each split halving the
        classes' training mass, so each node separates two groups of similar classes and frequent
        classes get shorter paths: usually much more accurate for many classes with structure; paths
        of ``⌈log2 K⌉`` nodes for equally frequent classes. Huffman is the default because it needs
        no pass over the features and keeps the fastText behaviour; choose ``"kmeans"`` when the
        classes have structure (similar classes share words or features).
    branching : int, power of two in [2, 64], default 2
        Children per node. ``2``: the binary tree, a sigmoid per node. More: every node of the binary
        tree takes its descendants ``log2(branching)`` levels down as children
        (:func:`luce.heads._hierarchical.widen`) and chooses among them by a small softmax (scores
        ``0`` for the first child and ``w·x + b`` for the others): paths ``log2(branching)`` times
        shorter, ``O(d·L·branching)`` per example, and each decision is one multinomial split instead of
        a cascade of binary ones. Still ``K - 1`` weight vectors; newton-cg needs ``branching=2``.
    class_weight : dict, "balanced" or None, default None
        Multiplies the sample weights of each class (scikit-learn's convention). The Huffman tree is
        built from the weighted class mass.

    Attributes
    ----------
    classes_ : ndarray, shape (K,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (pandas).
    node_coef_ : ndarray, shape (K - 1, n_features)
        Weight vector of each internal node (breadth-first order: node 0 is the root); with
        ``branching > 2``, of each child but the first of each node, node after node.
    node_intercept_ : ndarray, shape (K - 1,)
        The biases of those weight vectors (zeros when ``fit_intercept=False``).
    tree_children_, tree_parents_, tree_paths_, tree_codes_, tree_depths_ : ndarray of int
        The tree as arrays (see :mod:`luce.heads._hierarchical`): children ``(n_internal, arity)``
        (``c < 0`` is the leaf of class ``-c-1``, ``0`` pads; a binary tree has ``K - 1`` nodes),
        parents ``(n_internal,)``, the root-to-leaf paths and child indices ``(K, L)`` padded with
        ``-1``/``0``, and the depths ``(K,)``.
    class_counts_ : ndarray, shape (K,)
        The training mass of each class (sample times class weights, scaled so the largest weight is
        1): the frequencies the Huffman tree is built from (also kept for the k-means tree).
    n_iter_, loss_curve_, learning_rate_, validation_loss_curve_, best_validation_loss_
        As in :class:`SoftmaxRegression`.

    Notes
    -----
    The accuracy trade-off: the tree replaces one softmax over ``K`` classes by ``≈ log2 K`` binary
    decisions, each a linear split of the classes below a node into two groups. That is only as good
    as the groups are linearly separable. The Huffman tree groups classes by frequency alone, so on
    many classes its nodes must separate unrelated mixtures (issue 17 measured top-1 0.53–0.56 against
    the full softmax's 0.83–0.85 on dense data with 10,000 classes); the k-means tree groups similar
    classes and wins wherever class means are reliable (separable clusters). On the sparse text task of
    ``benchmarks/hierarchical.py`` (TF-IDF, Zipf class frequencies, 5 path-only sgd epochs) both beat
    fastText's ``-loss hs`` (top-1 0.92 against 0.75 at 2,000 classes, 0.67 against 0.23 at 10,000),
    and the Huffman tree was the more accurate at 10,000 classes (0.67 against 0.63–0.64): that task's
    classes have no structure for k-means to find, and the means of classes seen in one or two
    documents are noise. See docs/large-k.md for the table and the trade-offs.

    A mini-batch gradient reaches a node only through the rows passing through it, so with one step
    size a node at depth ``l`` would learn ``2^l`` times slower than the root; gd and sgd therefore
    precondition each node by that share (:func:`node_scales`; the optimum does not change). With
    ``momentum=0`` (the default), ``sgd`` touches only the nodes on each row's path (:func:`path_sgd`:
    ``O(nnz·L)`` per row, the weight decay a per-node scale factor), fastText's training cost; with
    momentum or Adam the shared mini-batch ``sgd`` updates every node's full weight vector each step
    (``O(K·d)`` per batch, as for the full softmax), which costs far more on many classes.

    Every fitted attribute is a NumPy array, a list or a plain scalar, so the model file format of
    :func:`luce.save` stores it without pickle. Input is dense or sparse (CSR; the bag-of-words or TF-IDF
    rows of text, never densified: a node's score sums over the row's nonzeros); it is converted to
    float64. ``predict``/``predict_topk`` never score every node; ``predict_proba`` does
    (``K - 1`` scores per row).

    Examples
    --------
    >>> import numpy as np
    >>> from luce import HierarchicalSoftmaxClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.choice(6, size=600, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05])
    >>> X = 4 * np.eye(6)[y] + rng.standard_normal((600, 6))
    >>> clf = HierarchicalSoftmaxClassifier().fit(X, y)
    >>> clf.tree_depths_  # the frequent classes get the short paths
    array([2, 2, 3, 3, 3, 3])
    >>> round(clf.score(X, y), 3)
    0.963
    >>> labels, proba = clf.predict_topk(X[:2], 2, return_proba=True)
    >>> labels
    array([[2, 3],
           [0, 4]])
    >>> proba.round(2)
    array([[0.94, 0.04],
           [0.97, 0.02]])

    References
    ----------
    F. Morin, Y. Bengio, "Hierarchical probabilistic neural network language model", AISTATS 2005.
    T. Mikolov et al., "Distributed representations of words and phrases", NeurIPS 2013.
    A. Joulin et al., "Bag of tricks for efficient text classification" (fastText), EACL 2017.
    """

    _parameters: ClassVar[dict] = {
        **PARAMETERS,
        "class_weight": v.ClassWeight(),
        "tree": v.Options("huffman", "kmeans"),
        "branching": v.Int(2),
    }
    _coef_names = ("node_coef_", "node_intercept_")

    def __init__(
        self,
        reg_strength=1e-4,
        *,
        solver="lbfgs",
        learning_rate="auto",
        threshold=None,
        max_iter=None,
        tol=1e-4,
        batch_size="auto",
        momentum=0.0,
        fit_intercept=True,
        class_weight=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        random_state=None,
        verbose=0,
        tree="huffman",
        branching=2,
    ):
        self.reg_strength = reg_strength
        self.solver = solver
        self.learning_rate = learning_rate
        self.threshold = threshold
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.momentum = momentum
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.tree = tree
        self.branching = branching

    # -- the seams of the fit skeleton (LinearClassifier.fit): the tree ------------------------------
    def _validate_xy(self, X, y, reset):
        X, y = super()._validate_xy(X, y, reset, dtype=np.float64, order="C", y_numeric=False)
        return _as_rows(X), y

    def _encode_targets(self, y, dtype):
        check_classification_targets(y)
        classes, y_idx = v.unique_labels(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {v.label_repr(classes[0])}"
            )
        y_idx = y_idx.astype(np.int64)
        return Targets(y_idx, classes, y_idx)

    def _prepare_targets(self, targets, sample_weight, settings, X, prior=0.0):
        """The label tree: Huffman of each class's training mass, or balanced k-means of the class
        centroids of ``X`` (a warm start keeps the previous tree)."""
        k = targets.classes.shape[0]
        mass = np.bincount(targets.index, weights=sample_weight, minlength=k).astype(np.float64)
        counts = mass = mass + prior
        if settings.warm_start and hasattr(self, "tree_children_"):
            tree = _TreeArrays(self.tree_children_, self.tree_parents_, self.tree_paths_, self.tree_codes_,
                               self.tree_depths_)  # fmt: skip
            counts = self.class_counts_
        else:
            if settings.tree == "kmeans":
                centroids = class_centroids(X, targets.index, k, sample_weight)
                tree = kmeans_tree(centroids, weights=mass, random_state=settings.random_state)
            else:
                tree = huffman_tree(counts)
            if settings.branching > 2:
                tree = widen(tree, settings.branching)
        extra = {
            "class_counts_": counts,
            "tree_children_": tree.children,
            "tree_parents_": tree.parents,
            "tree_paths_": tree.paths,
            "tree_codes_": tree.codes,
            "tree_depths_": tree.depths,
            "_tree": tree,
            "_node_scale": None,
            "_gram_norm": None,
        }
        if settings.solver in ("gd", "sgd"):
            probe = TreeObjective(X, targets.values, tree, sample_weight=sample_weight,
                                  fit_intercept=settings.fit_intercept)  # fmt: skip
            # One BLAS thread: the power iteration's BLAS calls are dots of n_features, which two
            # threads did 3x slower (0.74 against 0.22 s at 20,000 features, under load).
            with np.errstate(over="ignore", invalid="ignore"), one_blas_thread():  # overflow: see
                lambda_max = _solvers.gram_norm(probe)  # _auto_learning_rate
            P = probe.X
            rows2 = np.asarray(P.multiply(P).sum(axis=1)).ravel() if sp.issparse(P) else np.square(P).sum(1)
            if sample_weight is not None:  # rows of weight 0 add no curvature
                rows2 = rows2[sample_weight > 0]
            row_norm2 = float(np.max(rows2, initial=0.0)) + settings.fit_intercept
            extra["_gram_norm"] = (X.shape[0], lambda_max)  # the automatic step reuses it (same rows)
            if np.isfinite(lambda_max) and row_norm2 > 0:
                floor = 1.0 / _solvers._resolve_batch_size(settings.batch_size, X.shape[0])
                floor = floor if settings.solver == "sgd" else 0.0
                extra["_node_scale"] = node_scales(
                    tree, mass, lambda_max, row_norm2, settings.reg_strength, min_share=floor
                )
        return Targets(targets.values, targets.classes, targets.index, extra)

    def _make_objective(self, X, targets, sample_weight, settings, validation):
        scale = targets.extra["_node_scale"]
        path = scale is not None and _path_sgd_kernel(settings) is not None
        return TreeObjective(
            X,
            targets.values,
            targets.extra["_tree"],
            sample_weight=sample_weight,
            reg_strength=0.0 if validation else settings.reg_strength,
            fit_intercept=settings.fit_intercept,
            node_scale=None if path else scale,
            node_step=np.square(scale) if path else None,  # path_sgd: as a step, weights unscaled
        )

    def _initial_theta(self, objective, targets, prior=0.0):
        """Zero weights and, with an intercept, the biases of the intercept-only optimum:
        ``log(right mass / left mass)`` at every node, so the branches start at the class frequencies."""
        theta = np.zeros(objective.n_params)
        if not objective.fit_intercept:
            return theta
        sw = objective.sample_weight
        mass = np.bincount(objective.y, weights=sw, minlength=objective.n_classes + 1) + prior
        tree = objective.tree
        children = tree.children
        # a node's mass: the classes whose paths pass through it
        on_path = np.arange(tree.paths.shape[1]) < tree.depths[:, None]
        node_mass = np.bincount(
            tree.paths[on_path], weights=np.broadcast_to(mass[:, None], on_path.shape)[on_path],
            minlength=children.shape[0],
        )  # fmt: skip
        side = np.where(children < 0, mass[np.maximum(-children - 1, 0)], node_mass[np.maximum(children, 0)])
        tiny = 1e-12 * max(float(mass.sum()), 1e-300)
        # log(mass of child e / mass of child 0) for the children e >= 1 of each node, in row order
        biases = np.log((side[:, 1:] + tiny) / (side[:, :1] + tiny))[children[:, 1:] != 0]
        theta[objective.n_coef :] = biases  # the weights stay zero
        if objective.node_scale is not None:
            theta[objective.n_coef :] /= objective.node_scale
        return theta

    def _auto_learning_rate(self, objective, settings):
        """``1/L`` with ``L = λ_max(X̃ᵀWX̃/Σw)/4 + λ`` (a node's logistic curvature is at most 1/4 and a
        row's path visits a node at most once); ``(1 - momentum)/L`` for sgd, ``1e-3`` with Adam."""
        momentum = settings.momentum if settings.solver == "sgd" else 0.0
        if momentum == "adam":
            return 1e-3
        cached = getattr(self, "_gram_norm", None)  # from _prepare_targets, on the same rows unless split
        with np.errstate(over="ignore", invalid="ignore"), one_blas_thread():  # overflow: reported below
            gram = cached[1] if cached and cached[0] == objective.n_samples else _solvers.gram_norm(objective)
            lipschitz = node_curvature(objective.tree) * gram + objective.reg_strength
        if not np.isfinite(lipschitz):
            raise ValueError(
                "learning_rate='auto' cannot be computed: the features are so large that X^T X overflows; "
                "scale the features or pass a numeric learning_rate"
            )
        return (1.0 - momentum) / lipschitz if lipschitz > 0 else 1.0 - momentum

    def _check_settings(self, settings):
        b = settings.branching
        if b > 64 or b & (b - 1):
            raise ValueError(f"branching must be a power of two in [2, 64], got {b!r}")
        if b > 2 and settings.solver == "newton-cg":
            raise ValueError(
                "solver='newton-cg' needs branching=2 (its Hessian products are the binary tree's)"
            )

    def _run_solver(self, objective, theta0, settings, rng, validation, report):
        """sgd without momentum runs :func:`path_sgd` (only the nodes on each batch's paths change);
        the other solvers, and sgd with momentum or Adam, the shared ones."""
        if settings.solver == "sgd":
            lr = settings.learning_rate
            if lr == "auto":
                lr = self._auto_learning_rate(objective, settings)
            warm = settings.warm_start and getattr(self, "node_coef_", None) is not None  # as _start
            result = self._sgd_solver(objective, theta0, settings, lr, max_iter=settings.max_iter,
                                      tol=settings.tol, n_iter_no_change=settings.n_iter_no_change,
                                      threshold=settings.threshold, callback=report, rng=rng,
                                      validation=validation, cold_start=not warm)  # fmt: skip
            if result is not None:
                return result
        return super()._run_solver(objective, theta0, settings, rng, validation, report)

    def _sgd_solver(self, objective, theta0, settings, lr, *, cold_start, **common):
        """Path-only sgd (:func:`path_sgd`) where it applies: no momentum, compiled kernels; else None.
        ``cold_start``: ``theta0`` is :meth:`_initial_theta`'s (zero weights)."""
        kernel = _path_sgd_kernel(settings)
        if kernel is None:
            return None
        return path_sgd(objective, theta0, kernel=kernel, learning_rate=lr, batch_size=settings.batch_size,
                        cold_start=cold_start, **common)  # fmt: skip

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One sgd epoch on ``(X, y)`` (whatever ``solver`` is), for data that arrive in chunks.

        ``classes`` must list every label on the first call (or come from a previous ``fit``). The first
        call builds the tree from its chunk: Huffman from the chunk's class mass (classes it lacks get
        the deepest leaves), k-means from the chunk's class means (classes it lacks get leaves wherever
        the balanced splits put them); later calls keep it, as ``warm_start``. Uses ``learning_rate``
        (``"auto"``: from the first chunk, then kept in ``learning_rate_``), ``momentum`` (``0``: the
        path-only epoch of :func:`path_sgd`; otherwise the shared sgd, whose optimiser memory carries
        over between calls) and ``batch_size``.

        Returns
        -------
        self
        """
        p = settings_of(self).replace(solver="sgd")  # whatever solver is: one sgd epoch
        first = not hasattr(self, "node_coef_")
        if first and classes is None and not hasattr(self, "classes_"):
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y = self._validate_xy(X, y, reset=first)
        cls, y_idx, sw = self._stream_targets(y, classes, sample_weight, p, X.shape[0])
        y_idx = y_idx.astype(np.int64)
        if first:
            # As for sgd: the node scales of the preconditioner come from the first chunk. Every class
            # counts one example more (Laplace's rule): a class the chunk lacks starts as rare, not as
            # impossible (a bias of -28 that sgd would take many epochs to undo).
            targets = self._prepare_targets(Targets(y_idx, cls, y_idx), sw, p, X, 1.0)
            self.classes_ = cls
            for name, value in targets.extra.items():
                setattr(self, name, value)
            self.n_iter_, self.loss_curve_ = 0, []
            self.validation_loss_curve_ = self.best_validation_loss_ = None
            self.learning_rate_ = None
            self._optimizer_state = {}
        tree = getattr(self, "_tree", None)
        if tree is None:  # after fit with a loaded model: the tree from its arrays
            tree = self._tree = _TreeArrays(self.tree_children_, self.tree_parents_, self.tree_paths_,
                                            self.tree_codes_, self.tree_depths_)  # fmt: skip
        extra = {"_tree": tree, "_node_scale": getattr(self, "_node_scale", None)}
        targets = Targets(y_idx, cls, y_idx, extra)
        objective = self._make_objective(X, targets, sw, p, False)
        if first:
            theta = self._initial_theta(objective, targets, prior=1.0)
        else:
            theta = objective.pack(self.node_coef_, self.node_intercept_ if p.fit_intercept else None)
        lr = self.learning_rate_
        if lr is None:
            lr = self._auto_learning_rate(objective, p) if p.learning_rate == "auto" else p.learning_rate
        if not hasattr(self, "_sgd_rng"):
            self._sgd_rng = self._rng()
        common = dict(max_iter=1, tol=0.0, n_iter_no_change=1, threshold=None, rng=self._sgd_rng,
                      callback=self._reporter(p.verbose, self.loss_curve_, offset=self.n_iter_))  # fmt: skip
        with _blas_threads_for(objective):
            result = self._sgd_solver(objective, theta, p, lr, cold_start=first, **common)
            if result is None:
                state = getattr(self, "_optimizer_state", None)
                result = _solvers.sgd(objective, theta, learning_rate=lr, momentum=p.momentum,
                                      batch_size=p.batch_size, state={} if state is None else state,
                                      **common)  # fmt: skip
        self._optimizer_state = result.state
        self._store(objective, result.theta, X.dtype)
        self.n_iter_ += 1
        self.learning_rate_ = float(result.learning_rate)
        return self

    def _store(self, objective, theta, dtype):
        # As the shared _store, without a copy of the weight matrix: the solver's result is not used
        # after this, so its node scales are undone in place and node_coef_ is a view of it.
        coef, intercept = LinearObjective.unpack(objective, theta)
        s = objective.node_scale
        if s is not None:
            if coef.flags.writeable:
                coef *= s[:, None]
            else:
                coef = coef * s[:, None]
            intercept = None if intercept is None else intercept * s
        self.node_coef_ = np.asarray(coef, dtype=dtype, order="C")
        b = np.zeros(objective.n_classes) if intercept is None else intercept
        self.node_intercept_ = np.array(b, dtype=dtype, copy=True)

    def _fitted_shape(self):
        if not hasattr(self, "node_coef_") or not hasattr(self, "classes_"):
            return None
        return self.classes_, self.node_coef_.shape

    # -- prediction ---------------------------------------------------------------------------------

    def _check_X(self, X):
        check_is_fitted(self, "node_coef_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, order="C", reset=False)
        return _as_rows(X)

    def _tree_arrays(self):
        W = np.ascontiguousarray(self.node_coef_, dtype=np.float64)
        b = np.ascontiguousarray(self.node_intercept_, dtype=np.float64)
        children = np.ascontiguousarray(self.tree_children_, dtype=np.int64)
        rows = self.classes_.shape[0] - 1
        if (
            W.shape != (rows, self.n_features_in_)
            or b.shape != (rows,)
            or children.ndim != 2
            or int(np.sum(children != 0)) != rows + children.shape[0]
        ):
            raise ValueError(
                f"node_coef_ {W.shape}, node_intercept_ {b.shape} and tree_children_ {children.shape} "
                "are inconsistent"
            )
        return W, b, children, edge_rows(children)

    def predict_log_proba(self, X):
        """Log-probability of every class, ``(n_samples, K)``: ``O(d·K)`` per row (all node scores)."""
        X = self._check_X(X)
        W, b, children, edge_row = self._tree_arrays()
        out = np.empty((X.shape[0], W.shape[0] + 1))
        step = max(1, _SCORE_BLOCK // max(1, W.shape[0]))
        kernel = _dispatch.lookup("tree_log_proba", W)
        for r0 in range(0, X.shape[0], step):
            scores = np.asarray(X[r0 : r0 + step] @ W.T)
            scores += b
            if kernel is None:
                out[r0 : r0 + step] = reference_log_proba(
                    scores, children, edge_row, self.tree_paths_, self.tree_codes_, self.tree_depths_
                )
            else:
                kernel(scores, children, edge_row, out[r0 : r0 + step], _dispatch.kernel_threads())
        return out

    def predict_proba(self, X):
        """Probability of every class, ``(n_samples, K)``; each row sums to one (the tree is normalised)."""
        return np.exp(self.predict_log_proba(X))

    def predict_topk(self, X, k, *, return_proba=False, beam=None):
        """The ``k`` most probable classes of each row, most probable first, by tree search.

        Exact by default: best-first search scores nodes only as it reaches them (a max-heap on path
        log-probabilities), so a confident row costs about ``O(d·k·L)`` instead of ``O(d·K)``, an
        uncertain one more (every node more probable than the ``k``-th class). With ``beam``, a beam
        search expands only the ``beam`` most probable nodes of each level: at most ``beam·L`` node
        scores per row whatever the model's confidence, but a class whose ancestor fell out of the beam
        is missed (the probabilities returned are still exact).

        Parameters
        ----------
        X : array_like or sparse matrix, shape (n_samples, n_features)
        k : int, 1 <= k <= n_classes
        return_proba : bool, default False
            Also return the probabilities of those classes.
        beam : int >= k or None, default None
            The beam width; None: the exact search. (The reference backend, which scores every node
            anyway, always returns the exact top ``k``.)

        Returns
        -------
        classes : ndarray, shape (n_samples, k)
            Labels from ``classes_``.
        proba : ndarray, shape (n_samples, k)
            Only with ``return_proba``.
        """
        X = self._check_X(X)
        n_classes = self.classes_.shape[0]
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n_classes:
            raise ValueError(f"k must be an int in [1, n_classes={n_classes}], got {k!r}")
        integral = isinstance(beam, numbers.Integral) and not isinstance(beam, bool)
        if beam is not None and not (integral and beam >= k):
            raise ValueError(f"beam must be None or an int >= k={k}, got {beam!r}")
        idx, logp = self._topk(X, int(k), None if beam is None else int(beam))
        labels = self.classes_[idx]
        return (labels, np.exp(logp)) if return_proba else labels

    def _topk(self, X, k, beam=None):
        """Class indices and log-probabilities of the ``k`` best classes of each row, best first."""
        W, b, children, edge_row = self._tree_arrays()
        kernel = _dispatch.lookup("tree_topk" if beam is None else "tree_topk_beam", W)
        if kernel is None:
            return reference_topk(self.predict_log_proba(X), k)
        idx = np.empty((X.shape[0], k), dtype=np.int64)
        logp = np.empty((X.shape[0], k))
        visited = np.empty(X.shape[0], dtype=np.int64)
        width = () if beam is None else (beam,)
        kernel(
            *_row_args(X), W, b, children, edge_row, k, *width, idx, logp, visited, _dispatch.kernel_threads()
        )
        return idx, logp

    def predict(self, X):
        """The most probable class of each row, by best-first search (never scores every node)."""
        X = self._check_X(X)
        idx, _ = self._topk(X, 1)
        return self.classes_[idx[:, 0]]


class _TreeArrays:
    """A fitted tree read back from the estimator's ``tree_*_`` arrays (for a warm start)."""

    def __init__(self, children, parents, paths, codes, depths):
        self.children, self.parents, self.paths, self.depths = (
            np.ascontiguousarray(a, dtype=np.int64) for a in (children, parents, paths, depths)
        )
        self.codes = np.ascontiguousarray(codes, dtype=np.int8)
        self.edge_row = edge_rows(self.children)
