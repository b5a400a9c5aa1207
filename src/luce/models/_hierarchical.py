r"""HierarchicalSoftmaxClassifier: a linear classifier whose output layer is a Huffman tree over the classes.

Objective (the SoftmaxRegression contract, with the tree's likelihood in place of the softmax):

.. math::
    f(W, b) = \frac{1}{\sum_i w_i} \sum_i w_i \Big(-\sum_{l=1}^{L_{y_i}}
              \log \sigma\big((2c_{y_i,l} - 1)(w_{n_l} \cdot x_i + b_{n_l})\big)\Big)
              + \frac{\lambda}{2} \lVert W \rVert_F^2

with one weight vector per internal node (``K - 1`` of them), the path ``n_1 … n_L`` and codes ``c`` of
class ``y_i`` (see :mod:`luce.heads._hierarchical`), sample weights ``w_i`` and ``λ = reg_strength``
(intercepts are never penalised). An example's loss and gradient touch only the ``L`` nodes on its path:
``O(d·L)`` work, ``L`` about the entropy of the class frequencies in bits (≤ ``log2 K + 1`` for
near-uniform classes) instead of ``O(d·K)`` for a full softmax.

Solvers: ``"lbfgs"`` runs :func:`scipy.optimize.minimize` (L-BFGS-B) on the full objective, whose
loss and gradient are one pass over the examples' paths (a Numba kernel). ``"sgd"`` runs mini-batch
epochs in which only the nodes on the batch's paths move; the L2 decay of every node is a scalar
factor (Bottou 2012), so a step costs ``O(batch·d·L)``, not ``O(K·d)``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ..heads._hierarchical import huffman_tree

__all__ = ["HierarchicalSoftmaxClassifier"]

_SOLVERS = ("lbfgs", "sgd")
# Elements of the (rows x internal nodes) block of node scores in predict_proba.
_SCORE_BLOCK = 1 << 21
_MAX_HALVINGS = 40


def _kernels():
    from .._kernels import _numba_heads  # Numba loads here, on first fit/predict

    return _numba_heads


def _log_sigmoid(s):
    return np.minimum(s, 0.0) - np.log1p(np.exp(-np.abs(s)))


class HierarchicalSoftmaxClassifier(ClassifierMixin, BaseEstimator):
    r"""Multinomial linear classifier with a hierarchical (binary-tree) softmax output layer.

    The classes are the leaves of a binary tree built by Huffman coding of their frequencies in the
    training data (as fastText); each of the ``K - 1`` internal nodes has a weight vector and sends an
    example right with probability ``σ(w_j·x + b_j)``. A class's probability is the product of the
    branch probabilities along its path, so

    .. math:: P(y = k \mid x) = \prod_{l=1}^{L_k} \sigma\big((2c_{k,l} - 1)(w_{n_l}\cdot x + b_{n_l})\big),
              \qquad \sum_k P(y = k \mid x) = 1.

    Training costs ``O(d·L)`` per example (``L ≈ log2 K``), prediction of the most probable class or
    the top ``k`` uses best-first search over the tree; only :meth:`predict_proba` (every class) costs
    ``O(d·K)`` per row.

    Parameters
    ----------
    reg_strength : float >= 0, default 1e-4
        ``λ`` of the L2 penalty ``λ/2·‖W‖²`` (intercepts are not penalised); the objective is the
        weighted mean negative log-likelihood plus the penalty, as for ``SoftmaxRegression``.
    solver : {"lbfgs", "sgd"}, default "lbfgs"
        ``"lbfgs"``: L-BFGS-B on the full objective; ``"sgd"``: mini-batch stochastic gradient epochs.
    max_iter : int >= 1, default 100
        L-BFGS iterations, or SGD epochs.
    tol : float >= 0, default 1e-4
        lbfgs: stop when the max-abs projected gradient is at most ``tol``. sgd: an epoch whose mean loss
        does not improve on the best by ``tol`` counts towards ``n_iter_no_change``.
    learning_rate : float > 0 or "auto", default "auto"
        sgd step size; ``"auto"`` is ``1/L`` with ``L = λ_max(X̃ᵀX̃/n)/4 + reg_strength`` (a bound on the
        curvature of any node's logistic loss, ``x̃ = [x, 1]``).
    batch_size : int >= 1, default 256
        sgd mini-batch size (capped at ``n_samples``).
    n_iter_no_change : int >= 1, default 5
        sgd: stop after this many epochs without improvement by ``tol``.
    threshold : float, default 0.0
        sgd: stop as soon as an epoch's mean loss falls below it.
    fit_intercept : bool, default True
        Fit a bias per internal node.
    class_weight : dict, "balanced" or None, default None
        Multiplies the sample weights of each class (scikit-learn's convention).
    random_state : int, RandomState or None, default None
        Seeds the sgd shuffling.
    verbose : int or callable, default 0
        1 prints ``Iter(Epoch): i, Loss: cost`` after every iteration/epoch; a callable receives
        ``(iteration, loss)``.

    Attributes
    ----------
    classes_ : ndarray, shape (K,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (pandas).
    node_coef_ : ndarray, shape (K - 1, n_features)
        Weight vector of each internal node (breadth-first order: node 0 is the root).
    node_intercept_ : ndarray, shape (K - 1,)
        Bias of each internal node (zeros when ``fit_intercept=False``).
    tree_children_, tree_parents_, tree_paths_, tree_codes_, tree_depths_ : ndarray of int
        The tree as arrays (see :mod:`luce.heads._hierarchical`): children ``(K-1, 2)`` (``c < 0`` is
        the leaf of class ``-c-1``), parents ``(K-1,)``, the root-to-leaf paths and branch codes
        ``(K, L)`` padded with ``-1``/``0``, and the depths ``(K,)``.
    class_counts_ : ndarray, shape (K,)
        Summed sample weights per class: the frequencies the Huffman tree was built from.
    n_iter_ : int
        Iterations (lbfgs) or epochs (sgd) run.
    loss_curve_ : ndarray
        The objective after each iteration (lbfgs) or each epoch's mean loss plus penalty (sgd).

    Notes
    -----
    Every fitted attribute is a NumPy array or a plain scalar, so the model file format of
    :func:`luce.save` stores it without pickle. Input is dense; it is converted to float64.

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
    0.962
    >>> clf.predict_topk(X[:2], 2, return_proba=True)
    (array([[2, 3],
           [0, 4]]), array([[0.93594196, 0.04178221],
           [0.9751596 , 0.02319417]]))

    References
    ----------
    F. Morin, Y. Bengio, "Hierarchical probabilistic neural network language model", AISTATS 2005.
    T. Mikolov et al., "Distributed representations of words and phrases", NeurIPS 2013.
    A. Joulin et al., "Bag of tricks for efficient text classification" (fastText), EACL 2017.
    """

    def __init__(
        self,
        reg_strength=1e-4,
        *,
        solver="lbfgs",
        max_iter=100,
        tol=1e-4,
        learning_rate="auto",
        batch_size=256,
        n_iter_no_change=5,
        threshold=0.0,
        fit_intercept=True,
        class_weight=None,
        random_state=None,
        verbose=0,
    ):
        self.reg_strength = reg_strength
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter_no_change = n_iter_no_change
        self.threshold = threshold
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    # -- parameters ---------------------------------------------------------------------------------

    def _check_params(self):
        def real(name, low, low_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if value < low or (low_open and value == low):
                raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
            return float(value)

        def integer(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int >= 1, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
            return int(value)

        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        real("reg_strength", 0.0)
        real("tol", 0.0)
        integer("max_iter")
        integer("batch_size")
        integer("n_iter_no_change")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number, got {self.threshold!r}")
        if not (isinstance(self.learning_rate, str) and self.learning_rate == "auto"):
            if isinstance(self.learning_rate, str):
                raise ValueError(f"learning_rate must be a float > 0 or 'auto', got {self.learning_rate!r}")
            real("learning_rate", 0.0, low_open=True)
        if not isinstance(self.fit_intercept, bool | np.bool_):
            raise TypeError(f"fit_intercept must be a bool, got {self.fit_intercept!r}")
        if not (isinstance(self.verbose, numbers.Integral) or callable(self.verbose)):
            raise TypeError(f"verbose must be an int or a callable (iteration, loss), got {self.verbose!r}")

    def _report(self, iteration, loss):
        if callable(self.verbose):
            self.verbose(iteration, loss)
        elif self.verbose:
            print(f"Iter(Epoch): {iteration}, Loss: {loss}")

    # -- fitting ------------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Build the Huffman tree from the class frequencies and fit the node weights.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
            Class labels of any type; at least two classes.
        sample_weight : array_like, shape (n_samples,), optional
            Non-negative weights; the objective is their weighted mean loss.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, order="C", y_numeric=False)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(
                f"HierarchicalSoftmaxClassifier needs samples of at least 2 classes in the data, got "
                f"only one class: {classes[0]!r}"
            )
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        counts = np.bincount(y_idx, weights=sw, minlength=classes.shape[0])
        if self.class_weight is not None:
            sw = sw * compute_sample_weight(self.class_weight, y)
        sw_sum = float(sw.sum())
        if not sw_sum > 0:
            raise ValueError("sample_weight must have a positive sum (the objective is their weighted mean)")

        tree = huffman_tree(counts)
        self.classes_ = classes
        self.class_counts_ = counts
        self.tree_children_ = tree.children
        self.tree_parents_ = tree.parents
        self.tree_paths_ = tree.paths
        self.tree_codes_ = tree.codes
        self.tree_depths_ = tree.depths
        y_idx = y_idx.astype(np.int64)
        n_internal = classes.shape[0] - 1
        coef = np.zeros((n_internal, X.shape[1]))
        intercept = self._initial_intercept(y_idx, sw) if self.fit_intercept else np.zeros(n_internal)
        if self.solver == "lbfgs":
            coef, intercept = self._fit_lbfgs(X, y_idx, sw / sw_sum, coef, intercept)
        else:
            coef, intercept = self._fit_sgd(X, y_idx, sw / (sw_sum / X.shape[0]), coef, intercept)
        self.node_coef_ = coef
        self.node_intercept_ = intercept
        return self

    def _initial_intercept(self, y_idx, sw):
        """Biases of the intercept-only optimum: log(right mass / left mass) at every node.

        Starting there, every node's branch probabilities already match the class frequencies.
        """
        mass = np.bincount(y_idx, weights=sw, minlength=self.classes_.shape[0])
        children = self.tree_children_
        n_internal = children.shape[0]
        node_mass = np.zeros(n_internal)
        for j in range(n_internal - 1, -1, -1):  # children have larger numbers than their parent
            for c in children[j]:
                node_mass[j] += mass[-c - 1] if c < 0 else node_mass[c]

        def side_mass(c):
            return mass[-c - 1] if c < 0 else node_mass[c]

        left = np.array([side_mass(c) for c in children[:, 0]])
        right = np.array([side_mass(c) for c in children[:, 1]])
        tiny = 1e-12 * max(float(mass.sum()), 1e-300)
        return np.log((right + tiny) / (left + tiny))

    def _fit_lbfgs(self, X, y_idx, sw, coef, intercept):
        """L-BFGS-B on the full objective; ``sw`` sums to one."""
        k = _kernels()
        n_internal, d = coef.shape
        lam = float(self.reg_strength)
        paths, codes, depths = self.tree_paths_, self.tree_codes_, self.tree_depths_
        gW = np.empty_like(coef)
        gb = np.empty(n_internal)
        curve = []

        def fun(theta):
            W = theta[: n_internal * d].reshape(n_internal, d)
            b = theta[n_internal * d :] if self.fit_intercept else intercept
            gW.fill(0.0)
            gb.fill(0.0)
            loss = k.loss_grad(X, y_idx, sw, paths, codes, depths, W, b, gW, gb)
            loss += 0.5 * lam * float(np.vdot(W, W))
            grad_w = gW + lam * W
            if not math.isfinite(loss):
                return math.inf, np.zeros_like(theta)
            grad = np.concatenate([grad_w.ravel(), gb]) if self.fit_intercept else grad_w.ravel()
            return loss, grad

        def callback(intermediate_result):
            curve.append(float(intermediate_result.fun))
            self._report(len(curve), curve[-1])

        theta0 = np.concatenate([coef.ravel(), intercept]) if self.fit_intercept else coef.ravel()
        # L-BFGS-B's own vector updates are level-1 BLAS calls on theta; OpenBLAS threads on those only
        # spin (100x slower on a busy 2-core machine), so they run single-threaded.
        with threadpool_limits(1, user_api="blas"):
            res = scipy.optimize.minimize(
                fun,
                theta0,
                method="L-BFGS-B",
                jac=True,
                callback=callback,
                options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 64 * np.finfo(float).eps},
            )
        theta = res.x if np.all(np.isfinite(res.x)) else theta0
        self.n_iter_ = int(res.nit)
        self.loss_curve_ = np.asarray(curve, dtype=np.float64)
        if res.status == 1:  # iteration limit
            warnings.warn(
                f"lbfgs did not converge in max_iter={self.max_iter} iterations; increase max_iter or "
                "scale the features",
                ConvergenceWarning,
                stacklevel=3,
            )
        W = theta[: n_internal * d].reshape(n_internal, d).copy()
        b = theta[n_internal * d :].copy() if self.fit_intercept else intercept
        return W, b

    def _auto_learning_rate(self, X, sw):
        # Power iteration for λ_max of X̃ᵀ diag(sw) X̃ / n, x̃ = [x, 1] (sw has mean 1).
        rng = np.random.default_rng(0)
        v = rng.standard_normal(X.shape[1] + 1)
        lam_max = 0.0
        for _ in range(30):
            v /= np.linalg.norm(v)
            xv = X @ v[:-1] + (v[-1] if self.fit_intercept else 0.0)
            w = np.empty_like(v)
            w[:-1] = X.T @ (sw * xv)
            w[-1] = float(np.sum(sw * xv)) if self.fit_intercept else 0.0
            w /= X.shape[0]
            lam_max = float(np.linalg.norm(w))
            v = w
            if lam_max == 0.0:
                break
        lipschitz = lam_max / 4.0 + float(self.reg_strength)
        if not math.isfinite(lipschitz):
            raise ValueError(
                "learning_rate='auto' cannot be computed: the features are so large that X^T X overflows; "
                "scale the features or pass a numeric learning_rate"
            )
        return 1.0 / lipschitz if lipschitz > 0 else 1.0

    def _fit_sgd(self, X, y_idx, sw, coef, intercept):
        """Mini-batch SGD epochs; ``sw`` has mean one."""
        k = _kernels()
        n = X.shape[0]
        n_internal = coef.shape[0]
        lam = float(self.reg_strength)
        rng = check_random_state(self.random_state)
        lr = self._auto_learning_rate(X, sw) if self.learning_rate == "auto" else float(self.learning_rate)
        batch = min(int(self.batch_size), n)
        n_batches = -(-n // batch)
        V, b, scale = coef, intercept, 1.0
        gbuf = np.zeros_like(V)
        gbbuf = np.zeros(n_internal)
        mark = np.zeros(n_internal, dtype=np.uint8)
        touched = np.empty(n_internal, dtype=np.int64)
        curve = []
        best = math.inf
        no_change = 0
        halvings = 0
        warned = False
        converged = False
        # A batch whose mean loss is 10x the starting model's has diverged (the start is the
        # intercept-only optimum when fit_intercept, uniform branches otherwise).
        loss0 = k.loss_grad(
            X, y_idx, sw / n, self.tree_paths_, self.tree_codes_, self.tree_depths_, V, b,
            gbuf, gbbuf,
        )  # fmt: skip
        gbuf.fill(0.0)
        gbbuf.fill(0.0)
        explode = 10.0 * max(loss0, 1.0)
        # Snapshots at the start of the previous and of the current epoch: the last update of an epoch
        # is only checked by the next batch, so a divergence rolls back one whole accepted epoch.
        previous = current = (V.copy(), b.copy(), scale, 0)
        while len(curve) < self.max_iter:
            if lam * lr >= 1.0:
                lr = 0.5 / lam  # the weight-decay factor (1 - ηλ) must stay positive
            order = rng.permutation(n).astype(np.int64)
            lrs = np.full(n_batches, lr)
            total, scale = k.sgd_epoch(
                X, y_idx, sw, order, self.tree_paths_, self.tree_codes_, self.tree_depths_, V, b, scale,
                lrs, lam, batch, bool(self.fit_intercept), gbuf, gbbuf, mark, touched, explode,
            )  # fmt: skip
            loss = total / n + 0.5 * lam * scale * scale * float(np.vdot(V, V))
            if not (math.isfinite(loss) and np.all(np.isfinite(b))):
                halvings += 1
                if halvings > _MAX_HALVINGS:
                    raise ValueError(
                        f"the loss is not finite (or explodes) with learning_rate={self.learning_rate!r}, "
                        f"even after halving it {_MAX_HALVINGS} times to {lr:.3g}; scale the features or "
                        "lower learning_rate"
                    )
                lr *= 0.5
                if not warned:
                    warnings.warn(
                        f"learning_rate={self.learning_rate!r} made the loss non-finite or explode; "
                        f"halving it (now {lr:.3g}) and retrying",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    warned = True
                V, b, scale = previous[0].copy(), previous[1].copy(), previous[2]
                del curve[previous[3] :]
                current = previous
                best, no_change = min(curve, default=math.inf), 0
                continue
            curve.append(loss)
            previous, current = current, (V.copy(), b.copy(), scale, len(curve))
            self._report(len(curve), loss)
            if loss < self.threshold:
                converged = True
                break
            no_change = no_change + 1 if loss > best - self.tol else 0
            best = min(best, loss)
            if no_change >= self.n_iter_no_change:
                converged = True
                break
        epoch = len(curve)
        self.n_iter_ = epoch
        self.loss_curve_ = np.asarray(curve, dtype=np.float64)
        self.learning_rate_ = lr
        if not converged:
            warnings.warn(
                f"sgd did not converge in max_iter={self.max_iter} epochs; increase max_iter",
                ConvergenceWarning,
                stacklevel=3,
            )
        return V * scale, b

    # -- prediction ---------------------------------------------------------------------------------

    def _check_X(self, X):
        check_is_fitted(self, "node_coef_")
        X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        return X

    def _params(self):
        W = np.ascontiguousarray(self.node_coef_, dtype=np.float64)
        b = np.ascontiguousarray(self.node_intercept_, dtype=np.float64)
        children = np.ascontiguousarray(self.tree_children_, dtype=np.int64)
        if W.shape != (children.shape[0], self.n_features_in_) or b.shape != (children.shape[0],):
            raise ValueError(
                f"node_coef_ {W.shape}, node_intercept_ {b.shape} and tree_children_ {children.shape} "
                "are inconsistent"
            )
        return W, b, children

    def predict_log_proba(self, X):
        """Log-probability of every class, ``(n_samples, K)``: ``O(d·K)`` per row (all node scores)."""
        X = self._check_X(X)
        W, b, children = self._params()
        out = np.empty((X.shape[0], children.shape[0] + 1))
        step = max(1, _SCORE_BLOCK // max(1, children.shape[0]))
        k = _kernels()
        for r0 in range(0, X.shape[0], step):
            scores = X[r0 : r0 + step] @ W.T
            scores += b
            k.log_proba_from_scores(scores, children, out[r0 : r0 + step])
        return out

    def predict_proba(self, X):
        """Probability of every class, ``(n_samples, K)``; each row sums to one (the tree is normalised)."""
        return np.exp(self.predict_log_proba(X))

    def predict_topk(self, X, k, *, return_proba=False):
        """The ``k`` most probable classes of each row, most probable first, by best-first tree search.

        Nodes are scored only as the search reaches them (a max-heap on path log-probabilities), so
        a confident row costs about ``O(d·k·L)`` instead of ``O(d·K)``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        k : int, 1 <= k <= n_classes
        return_proba : bool, default False
            Also return the probabilities of those classes.

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
        idx, logp = self._topk(X, int(k))
        labels = self.classes_[idx]
        return (labels, np.exp(logp)) if return_proba else labels

    def _topk(self, X, k):
        W, b, children = self._params()
        idx = np.empty((X.shape[0], k), dtype=np.int64)
        logp = np.empty((X.shape[0], k))
        visited = np.empty(X.shape[0], dtype=np.int64)
        _kernels().topk_best_first(X, W, b, children, k, idx, logp, visited)
        return idx, logp

    def predict(self, X):
        """The most probable class of each row, by best-first search (never scores every node)."""
        X = self._check_X(X)
        idx, _ = self._topk(X, 1)
        return self.classes_[idx[:, 0]]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
