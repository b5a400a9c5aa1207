"""Hierarchical softmax: the Huffman tree, exact probabilities, best-first top-k, solvers, sklearn checks."""

import heapq
import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from scipy.special import expit, log_expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import luce
from luce import HierarchicalSoftmaxClassifier
from luce._kernels import _heads, use_backend
from luce.heads._hierarchical import edge_rows, huffman_tree, kmeans_tree, tree_from_arrays, widen
from luce.models._hierarchical import TreeObjective, _row_args, node_scales

# -- references written here, independent of the kernels -------------------------------------------


def brute_log_proba(W, b, paths, codes, depths, X):
    """log P(k | x) for every class by walking each class's path with scipy's log_expit."""
    out = np.empty((X.shape[0], depths.shape[0]))
    for k in range(depths.shape[0]):
        nodes = paths[k, : depths[k]]
        signs = 2.0 * codes[k, : depths[k]] - 1.0
        out[:, k] = log_expit((X @ W[nodes].T + b[nodes]) * signs).sum(axis=1)
    return out


def brute_proba_by_walking(W, b, children, X):
    """P(k | x) for every class as the product of the branch sigmoids met walking down ``children``
    from the root (a depth-first walk in NumPy; reads no stored paths or codes)."""
    out = np.zeros((X.shape[0], children.shape[0] + 1))
    stack = [(0, np.ones(X.shape[0]))]
    while stack:
        node, reach = stack.pop()
        right = expit(X @ W[node] + b[node])
        for child, branch in ((children[node, 0], 1.0 - right), (children[node, 1], right)):
            if child < 0:
                out[:, -child - 1] = reach * branch
            else:
                stack.append((child, reach * branch))
    return out


def brute_objective(theta, X, y, sw, tree, lam, fit_intercept=True):
    n_int, d = tree.children.shape[0], X.shape[1]
    W = theta[: n_int * d].reshape(n_int, d)
    b = theta[n_int * d :] if fit_intercept else np.zeros(n_int)
    lp = brute_log_proba(W, b, tree.paths, tree.codes, tree.depths, X)
    return -np.sum(sw * lp[np.arange(len(y)), y]) / sw.sum() + 0.5 * lam * np.sum(W * W)


def huffman_cost(freqs):
    """Optimal expected code length × total (sum of merged weights), the classic Huffman identity."""
    heap = list(map(float, freqs))
    heapq.heapify(heap)
    cost = 0.0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def blobs(rng, n_classes=12, n=600, d=5, spread=3.0, zipf=1.0):
    p = 1.0 / np.arange(1, n_classes + 1) ** zipf
    y = rng.choice(n_classes, size=n, p=p / p.sum())
    y[:n_classes] = np.arange(n_classes)  # every class present
    centers = spread * rng.standard_normal((n_classes, d))
    return centers[y] + rng.standard_normal((n, d)), y


# -- the tree ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3, 7, 64, 301])
def test_huffman_tree_is_an_optimal_prefix_code(n_classes, rng):
    counts = rng.integers(1, 1000, n_classes).astype(float)
    tree = huffman_tree(counts)
    depths = tree.depths
    # a full binary tree: Kraft's sum is exactly one
    assert math.fsum(2.0 ** -depths.astype(float)) == 1.0
    # optimal: the weighted path length equals the Huffman cost computed independently
    assert np.dot(counts, depths) == pytest.approx(huffman_cost(counts), rel=1e-12)
    p = counts / counts.sum()
    entropy = -np.sum(p * np.log2(p))
    assert entropy <= np.dot(p, depths) < entropy + 1
    # following each class's codes from the root through children ends at its own leaf
    for k in range(n_classes):
        node = 0
        for level in range(depths[k]):
            assert tree.paths[k, level] == node
            node = tree.children[node, tree.codes[k, level]]
        assert node == -k - 1
        assert np.all(tree.paths[k, depths[k] :] == -1)
    # breadth-first numbering: parents come before children
    assert tree.parents[0] == -1 and np.all(tree.parents[1:] < np.arange(1, n_classes - 1))


def test_huffman_tree_edge_cases():
    uniform = huffman_tree(np.ones(8))
    np.testing.assert_array_equal(uniform.depths, 3)
    skewed = huffman_tree([2.0**-k for k in range(6)])
    np.testing.assert_array_equal(skewed.depths, [1, 2, 3, 4, 5, 5])
    assert huffman_tree([0.0, 0.0, 5.0]).depths.max() == 2  # zero counts are allowed
    with pytest.raises(ValueError, match="K >= 2"):
        huffman_tree([1.0])
    with pytest.raises(ValueError, match="non-negative"):
        huffman_tree([1.0, -1.0])


def test_tree_from_arrays_round_trip_and_corruption(rng):
    tree = huffman_tree(rng.integers(1, 50, 9))
    again = tree_from_arrays(**tree.as_dict(), n_classes=9)
    for key, value in tree.as_dict().items():
        np.testing.assert_array_equal(getattr(again, key), value)
    bad = tree.as_dict()
    bad["children"] = bad["children"].copy()
    bad["children"][0] = bad["children"][0, ::-1]
    with pytest.raises(ValueError, match="does not match"):
        tree_from_arrays(**bad, n_classes=9)
    bad = tree.as_dict()
    bad["children"] = np.where(bad["children"] == -1, -2, bad["children"])
    with pytest.raises(ValueError, match="do not describe a tree"):
        tree_from_arrays(**bad, n_classes=9)


@pytest.mark.parametrize("n_classes", [2, 3, 5, 64, 301])
def test_kmeans_tree_is_balanced_and_deterministic(n_classes, rng):
    C = rng.standard_normal((n_classes, 8))
    tree = kmeans_tree(C, random_state=3)
    # a full binary tree (Kraft's sum is one) with every leaf at depth floor or ceil of log2 K
    assert math.fsum(2.0 ** -tree.depths.astype(float)) == 1.0
    log2k = math.log2(n_classes)
    assert set(np.unique(tree.depths)) <= {math.floor(log2k), math.ceil(log2k)}
    checked = tree_from_arrays(**tree.as_dict(), n_classes=n_classes)  # a consistent binary tree
    np.testing.assert_array_equal(checked.paths, tree.paths)
    again = kmeans_tree(scipy.sparse.csr_matrix(C), random_state=3)  # sparse centroids: the same tree
    np.testing.assert_array_equal(again.children, tree.children)


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_kmeans_tree_with_weights_splits_the_mass_in_halves(layout, rng):
    # Zipf class masses: every split puts the two sides' masses within the heaviest class of the node
    # of each other (the cut nearest half of the ranked masses), so frequent classes get short paths.
    n_classes = 300
    C = rng.standard_normal((n_classes, 40)) * (rng.random((n_classes, 40)) < 0.3)
    C = scipy.sparse.csr_matrix(C) if layout == "csr" else C
    mass = 1.0 / np.arange(1, n_classes + 1) ** 0.8
    tree = kmeans_tree(C, weights=mass, random_state=0)
    assert math.fsum(2.0 ** -tree.depths.astype(float)) == 1.0  # still a full binary tree
    subtree_mass = np.zeros(tree.children.shape[0])
    heaviest = np.zeros(tree.children.shape[0])
    for j in range(tree.children.shape[0] - 1, -1, -1):  # children are numbered after their parent
        sides = [mass[-c - 1] if c < 0 else subtree_mass[c] for c in tree.children[j]]
        top = [mass[-c - 1] if c < 0 else heaviest[c] for c in tree.children[j]]
        subtree_mass[j], heaviest[j] = sum(sides), max(top)
        assert abs(sides[0] - sides[1]) <= heaviest[j] * (1 + 1e-12)
    balanced = kmeans_tree(C, random_state=0)
    assert np.average(tree.depths, weights=mass) < np.average(balanced.depths, weights=mass)
    assert tree.depths[0] < balanced.depths[0]


def test_kmeans_tree_splits_along_the_centroid_groups(rng):
    # 4 tight groups of 8 classes around 4 orthogonal directions: every subtree of 8 leaves is one group
    groups = rng.permutation(np.repeat(np.arange(4), 8))
    C = 10.0 * np.eye(4)[groups] + 0.1 * rng.standard_normal((32, 4))
    tree = kmeans_tree(C, random_state=0)
    assert np.all(tree.depths == 5)
    for j in (3, 4, 5, 6):  # the four nodes at depth 2 (breadth-first numbering)
        leaves, stack = [], [j]
        while stack:
            for c in tree.children[stack.pop()]:
                (leaves.append(-c - 1) if c < 0 else stack.append(c))
        assert len(set(groups[leaves])) == 1
    with pytest.raises(ValueError, match="K >= 2"):
        kmeans_tree(C[:1])
    with pytest.raises(ValueError, match="finite"):
        kmeans_tree(np.full((3, 2), np.nan))


def circle_classes(rng, n_classes=16, n=2400):
    """Train and test sets of classes on a circle (separable clusters) with Zipf frequencies: the
    Huffman tree pairs classes by frequency, i.e. from anywhere on the circle."""
    p = 1.0 / np.arange(1, n_classes + 1)
    angle = 2 * np.pi * rng.permutation(n_classes) / n_classes
    centers = 5.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    sets = []
    for _ in range(2):
        y = rng.choice(n_classes, size=n, p=p / p.sum())
        y[:n_classes] = np.arange(n_classes)
        sets += [centers[y] + 0.3 * rng.standard_normal((n, 2)), y]
    return sets


def test_kmeans_tree_is_more_accurate_than_huffman_on_separable_clusters(rng):
    X, y, X_test, y_test = circle_classes(rng)
    scores = {}
    for tree in ("huffman", "kmeans"):
        clf = HierarchicalSoftmaxClassifier(reg_strength=1e-4, tree=tree, max_iter=300, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores[tree] = clf.fit(X, y).score(X_test, y_test)
    # a k-means node separates two arcs of the circle (a line does); a Huffman node two random sets
    assert scores["kmeans"] >= 0.97
    assert scores["huffman"] <= scores["kmeans"] - 0.2


def text_like(rng, n=400, d=600, n_classes=12):
    """Sparse count rows: each class draws its words from its own subset of the vocabulary."""
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)])
    words = rng.integers(0, d // 2, (n_classes, 40))
    rows, cols = [], []
    for i, k in enumerate(y):
        picked = np.concatenate([rng.choice(words[k], 8), rng.integers(0, d, 4)])
        rows.append(np.full(picked.size, i))
        cols.append(picked)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = scipy.sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, d))  # duplicates add up
    return X, y


@pytest.mark.parametrize("tree", ["huffman", "kmeans"])
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_sparse_input_fits_the_same_model_as_dense(tree, solver, rng):
    X, y = text_like(rng)
    # sgd takes the same steps on both; lbfgs preconditions dense and CSR data differently (Jacobi for
    # many dense features, none for CSR: see luce.models._solvers), so it is compared at the optimum.
    converge = solver == "lbfgs"
    params = dict(reg_strength=1e-3, tree=tree, solver=solver, random_state=0)
    params.update(tol=1e-10, max_iter=1000) if converge else params.update(tol=1e-8, max_iter=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sparse_fit = HierarchicalSoftmaxClassifier(**params).fit(X, y)
        dense_fit = HierarchicalSoftmaxClassifier(**params).fit(X.toarray(), y)
    rtol, atol, p_atol = (0, 1e-5, 1e-6) if converge else (1e-7, 1e-9, 1e-9)
    np.testing.assert_array_equal(sparse_fit.tree_children_, dense_fit.tree_children_)
    np.testing.assert_allclose(sparse_fit.node_coef_, dense_fit.node_coef_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(sparse_fit.node_intercept_, dense_fit.node_intercept_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(sparse_fit.predict_proba(X), dense_fit.predict_proba(X.toarray()), atol=p_atol)
    np.testing.assert_array_equal(sparse_fit.predict_topk(X, 3), dense_fit.predict_topk(X.toarray(), 3))
    assert sparse_fit.score(X, y) >= 0.9


def test_sparse_input_is_never_densified(rng, monkeypatch):
    X, y = text_like(rng)

    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in type(X).__mro__:
        for name in ("toarray", "todense", "__array__"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, refuse)
    with pytest.raises(AssertionError, match="densified"):
        np.asarray(X.toarray())  # the guard is in place
    for solver in ("lbfgs", "sgd", "newton-cg"):  # sgd's automatic rate: power iteration, d > 512
        clf = HierarchicalSoftmaxClassifier(tree="kmeans", solver=solver, max_iter=5, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        proba = clf.predict_proba(X)
        assert proba.shape == (400, 12)
        assert clf.predict(X).shape == (400,) and clf.predict_topk(X, 2).shape == (400, 2)


# -- probabilities and search -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["huffman", "kmeans", "kmeans-csr"])
def fitted(request):
    rng = np.random.default_rng(7)
    X, y = blobs(rng, n_classes=40, n=1500, d=6, spread=2.0)
    tree, _, layout = request.param.partition("-")
    if layout == "csr":
        X[rng.random(X.shape) < 0.3] = 0.0
        X = scipy.sparse.csr_matrix(X)
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-3, max_iter=60, tol=1e-5, tree=tree, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    return clf, X[:200]


def dense(X):
    return X.toarray() if scipy.sparse.issparse(X) else X


def test_predict_proba_is_exact_and_normalised(fitted, backend):
    clf, X = fitted
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 40)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    walked = brute_proba_by_walking(clf.node_coef_, clf.node_intercept_, clf.tree_children_, dense(X))
    np.testing.assert_allclose(walked.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, walked, rtol=1e-10, atol=1e-15)
    ref = brute_log_proba(
        clf.node_coef_, clf.node_intercept_, clf.tree_paths_, clf.tree_codes_, clf.tree_depths_, dense(X)
    )
    np.testing.assert_allclose(clf.predict_log_proba(X), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(proba, np.exp(ref), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k", [1, 3, 40])
def test_topk_and_predict_equal_argsort_of_predict_proba(fitted, k, backend):
    clf, X = fitted
    proba = clf.predict_proba(X)
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    labels, top_p = clf.predict_topk(X, k, return_proba=True)
    np.testing.assert_array_equal(labels, clf.classes_[order])
    np.testing.assert_allclose(top_p, np.take_along_axis(proba, order, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def weight_rows(children):
    """The weight row of each node's child 1, counted out node by node (n_j - 1 rows each)."""
    rows, next_row = [], 0
    for kids in children:
        rows.append(next_row)
        next_row += int(np.count_nonzero(kids)) - 1
    return rows


def node_log_softmax(W, b, children, node, X):
    """(n, n_children): log-probabilities of a node's children, the first child's score 0."""
    kids = [c for c in children[node] if c != 0]
    r = weight_rows(children)[node]
    z = np.column_stack(
        [np.zeros(X.shape[0])] + [X @ W[r + e - 1] + b[r + e - 1] for e in range(1, len(kids))]
    )
    return kids, scipy.special.log_softmax(z, axis=1)


def python_beam_search(W, b, children, x, k, beam):
    """Level-by-level beam search written out in Python: expand every frontier node, keep the ``beam``
    most probable internal children as the next frontier, collect leaves; the k most probable leaves."""
    frontier, leaves = [(0.0, 0)], []
    while frontier:
        nxt = []
        for key, node in frontier:
            kids, logp = node_log_softmax(W, b, children, node, x[None, :])
            for child, branch in zip(kids, logp[0], strict=True):
                (leaves if child < 0 else nxt).append((key + branch, child))
        frontier = sorted(nxt, key=lambda t: -t[0])[:beam]
    best = sorted(leaves, key=lambda t: -t[0])[:k]
    return [-c - 1 for _, c in best], [v for v, _ in best]


def brute_proba_softmax_walk(W, b, children, X):
    """P(k | x) for every class as the product of the node softmax probabilities met walking down
    ``children`` from the root (any number of children per node)."""
    out = np.zeros((X.shape[0], W.shape[0] + 1))
    stack = [(0, np.ones(X.shape[0]))]
    while stack:
        node, reach = stack.pop()
        kids, logp = node_log_softmax(W, b, children, node, X)
        for e, child in enumerate(kids):
            if child < 0:
                out[:, -child - 1] = reach * np.exp(logp[:, e])
            else:
                stack.append((child, reach * np.exp(logp[:, e])))
    return out


@pytest.mark.parametrize(("k", "beam"), [(1, 1), (3, 3), (5, 8), (3, 64)])
def test_beam_search_equals_a_python_beam_search(fitted, k, beam, backend):
    clf, X = fitted
    labels, top_p = clf.predict_topk(X, k, return_proba=True, beam=beam)
    proba = clf.predict_proba(X)
    idx = np.searchsorted(clf.classes_, labels)
    # whatever the beam keeps, the probabilities returned are the exact ones, in decreasing order
    np.testing.assert_allclose(top_p, np.take_along_axis(proba, idx, axis=1), rtol=1e-12)
    assert np.all(np.diff(top_p, axis=1) <= 0) and all(len(set(row)) == k for row in idx)
    if backend == "reference" or beam >= 40:  # the reference, and a beam as wide as the tree: exact
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(idx, order)
        return
    Xd = dense(X)
    for r in range(0, 200, 7):
        classes, _ = python_beam_search(
            clf.node_coef_, clf.node_intercept_, clf.tree_children_, Xd[r], k, beam
        )
        np.testing.assert_array_equal(idx[r], classes)


def test_beam_search_misses_classes_only_when_narrow(fitted):
    clf, X = fitted
    exact = clf.predict_topk(X, 3)
    hits = np.mean(
        [len(set(a) & set(b)) / 3 for a, b in zip(exact, clf.predict_topk(X, 3, beam=3), strict=True)]
    )
    assert 0.5 <= hits < 1.0  # a beam of 3 loses some of the exact top 3 on 40 overlapping blobs
    with pytest.raises(ValueError, match="beam must be None or an int >= k=3"):
        clf.predict_topk(X, 3, beam=2)


def test_log_sigmoid_form_keeps_saturated_branches_finite(fitted):
    # Node scores of ±1e4: log σ(s) = min(s, 0) - log1p(exp(-|s|)) stays exact where log(σ(s)) is -inf.
    clf, X = fitted
    big = HierarchicalSoftmaxClassifier().set_params()
    for key, value in vars(clf).items():
        if key.endswith("_"):
            setattr(big, key, value)
    big.node_coef_ = 1e4 * clf.node_coef_
    logp = big.predict_log_proba(X[:20])
    ref = brute_log_proba(
        big.node_coef_, big.node_intercept_, big.tree_paths_, big.tree_codes_, big.tree_depths_, dense(X[:20])
    )
    assert np.all(np.isfinite(logp)) and logp.min() < -1e3
    # CSR scores sum the nonzeros in another order than the dense product; log σ(s) ≈ -exp(-s) for
    # s ≈ 300 turns that last-bit difference in s into ~1e-12 relative
    rtol = 1e-10 if scipy.sparse.issparse(X) else 1e-12
    np.testing.assert_allclose(logp, ref, rtol=rtol)
    np.testing.assert_array_equal(big.predict(X[:20]), big.classes_[ref.argmax(axis=1)])


def test_best_first_search_scores_few_nodes(rng):
    # Well separated classes: the top class is found after about one path, not all K - 1 nodes.
    X, y = blobs(rng, n_classes=64, n=1000, d=64, spread=1.0)
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-2, max_iter=400).fit(X, y)
    Xc = np.ascontiguousarray(X[:300])
    idx = np.empty((300, 1), dtype=np.int64)
    logp = np.empty((300, 1))
    visited = np.empty(300, dtype=np.int64)
    _heads.topk_best_first(
        *_row_args(Xc),
        clf.node_coef_,
        clf.node_intercept_,
        clf.tree_children_,
        edge_rows(clf.tree_children_),
        1,
        idx,
        logp,
        visited,
        2,
    )
    assert np.median(visited) <= 2 * clf.tree_depths_.max() < 63
    np.testing.assert_array_equal(clf.classes_[idx[:, 0]], clf.predict(Xc))


# -- solvers ----------------------------------------------------------------------------------------


def test_lbfgs_reaches_the_optimum_of_the_brute_force_objective(rng, backend):
    X, y = blobs(rng, n_classes=6, n=300, d=3, spread=1.5)
    sw = rng.uniform(0.5, 2.0, 300)
    lam = 1e-2
    clf = HierarchicalSoftmaxClassifier(reg_strength=lam, tol=1e-10, max_iter=500).fit(X, y, sw)
    tree = huffman_tree(np.bincount(y, weights=sw))
    np.testing.assert_array_equal(clf.tree_children_, tree.children)
    theta = np.concatenate([clf.node_coef_.ravel(), clf.node_intercept_])
    f = brute_objective(theta, X, y, sw, tree, lam)
    ref = scipy.optimize.minimize(
        brute_objective, np.zeros_like(theta), args=(X, y, sw, tree, lam), method="BFGS", tol=1e-12
    )
    assert f == pytest.approx(ref.fun, rel=1e-9)
    assert clf.loss_curve_[-1] == pytest.approx(f, rel=1e-12)
    np.testing.assert_allclose(theta, ref.x, atol=2e-4)


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_loss_gradient_kernel_matches_finite_differences(layout, rng):
    X, y = blobs(rng, n_classes=5, n=40, d=3)
    X[rng.random(X.shape) < 0.4] = 0.0  # rows with zeros (and some empty rows) for the CSR kernel
    X[:3] = 0.0
    tree = huffman_tree(np.bincount(y))
    sw = rng.uniform(0.5, 2.0, 40)
    sw /= sw.sum()
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    rows = _row_args(X if layout == "dense" else scipy.sparse.csr_matrix(X))
    loss = _heads.loss_grad(
        *rows, y, sw, tree.children, tree.edge_row, tree.paths, tree.codes, tree.depths, W, b, gW, gb
    )
    theta = np.concatenate([W.ravel(), b])
    assert loss == pytest.approx(brute_objective(theta, X, y, sw, tree, 0.0), rel=1e-13)
    h = 1e-5
    fd = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        vals = [brute_objective(theta + s * e, X, y, sw, tree, 0.0) for s in (2, 1, -1, -2)]
        fd[j] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    np.testing.assert_allclose(np.concatenate([gW.ravel(), gb]), fd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(
    ("lam", "lr_low", "lr_high", "layout"),
    [(0.05, 0.1, 0.5, "dense"), (0.05, 0.1, 0.5, "csr"), (1.0, 0.95, 0.97, "csr"), (0.0, 0.1, 0.5, "csr")],
    ids=["decay", "decay-csr", "decay-factor-folded-back", "no-decay"],  # (1 - ηλ)^7 < 1e-9: the fold
)
def test_sgd_epoch_equals_dense_minibatch_sgd(lam, lr_low, lr_high, layout, rng):
    """Path-only updates + the per-node weight-decay factors are exactly dense mini-batch SGD on f."""
    X, y = blobs(rng, n_classes=9, n=50, d=4)
    X[rng.random(X.shape) < 0.3] = 0.0
    tree = huffman_tree(np.bincount(y))
    sw = rng.uniform(0.5, 2.0, 50)
    batch = 8
    order = rng.permutation(50)
    lr = rng.uniform(lr_low, lr_high)
    rate = rng.uniform(0.9, 1.0, 8)  # per-node step multipliers (the node preconditioner)
    rate[0] = 1.0
    W0, b0 = rng.standard_normal((8, 4)), rng.standard_normal(8)
    # dense reference: gradient of the batch's weighted mean loss + the penalty on every node, then a step
    W, b, total = W0.copy(), b0.copy(), 0.0
    for start in range(0, 50, batch):
        rows = order[start : start + batch]
        gW, gb, nll = np.zeros_like(W), np.zeros_like(b), 0.0
        for i in rows:
            nodes = tree.paths[y[i], : tree.depths[y[i]]]
            codes = tree.codes[y[i], : tree.depths[y[i]]]
            s = W[nodes] @ X[i] + b[nodes]
            nll -= sw[i] * np.sum(log_expit((2.0 * codes - 1.0) * s))
            g = sw[i] * (expit(s) - codes)
            np.add.at(gW, nodes, g[:, None] * X[i])
            np.add.at(gb, nodes, g)
        weight = sw[rows].sum()
        total += len(rows) * (nll / weight + 0.5 * lam * np.sum(W * W))
        W = W - lr * rate[:, None] * (gW / weight + lam * W)
        b = b - lr * rate * gb / weight
    rows = _row_args(X if layout == "dense" else scipy.sparse.csr_matrix(X))
    runs = []
    for n_threads in (1, 2, 3):
        V, bk, scale = W0.copy(), b0.copy(), np.ones(8)
        norm2 = np.sum(V * V, axis=1)
        got = _heads.sgd_epoch(
            *rows, y, sw, order, batch, tree.children, tree.edge_row, tree.paths, tree.codes, tree.depths,
            V, bk, scale, norm2, rate, lr, lam, True, np.inf, n_threads,
        )  # fmt: skip
        runs.append((got, V, bk, scale, norm2))
    for other in runs[1:]:  # the threads split the nodes, each node's steps in row order: the same bits
        assert other[0] == runs[0][0]
        for a, b_ in zip(other[1:], runs[0][1:], strict=True):
            np.testing.assert_array_equal(a, b_)
    if lam == 1.0:  # without the fold the factors would have fallen below 1e-9
        assert np.all(np.abs(scale) >= 1e-9) and (1 - lr * rate[0] * lam) ** 7 < 1e-9
    np.testing.assert_allclose(scale[:, None] * V, W, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(bk, b, rtol=1e-12, atol=1e-14)
    if lam > 0:  # the penalty's row norms are kept only when there is a penalty
        np.testing.assert_allclose(norm2, np.sum(V * V, axis=1), rtol=1e-9, atol=1e-12)
    assert got == pytest.approx(total, rel=1e-12)


def test_sgd_epoch_node_shards_give_the_same_bits_for_any_threads_and_chunks(rng, monkeypatch):
    # 60 classes: 59 nodes in 8 blocks of 8, so two or more threads split them into shards; chunks of
    # 21 rows (3 batches) join the shards' threads 10 times an epoch. Every output must be the same bits.
    X, y = text_like(rng, n=200, d=50, n_classes=60)
    sw = rng.uniform(0.5, 2.0, 200)
    tree = huffman_tree(np.bincount(y, minlength=60).astype(float))
    k1 = tree.children.shape[0]
    W0, b0 = 0.1 * rng.standard_normal((k1, 50)), 0.1 * rng.standard_normal(k1)
    order, rate = rng.permutation(200), rng.uniform(1.0, 3.0, k1)
    runs = {}
    for chunk_rows in (16384, 21):
        monkeypatch.setattr(_heads, "_SGD_CHUNK_ROWS", chunk_rows)
        for n_threads in (1, 2, 3):
            V, b, scale = W0.copy(), b0.copy(), np.ones(k1)
            norm2 = np.sum(V * V, axis=1)
            got = _heads.sgd_epoch(
                *_row_args(X), y, sw, order, 7, tree.children, tree.edge_row, tree.paths, tree.codes,
                tree.depths, V, b, scale, norm2, rate, 0.3, 0.05, True, np.inf, n_threads,
            )  # fmt: skip
            runs[chunk_rows, n_threads] = (got, V, b, scale, norm2)
    first = runs[16384, 1]
    assert math.isfinite(first[0]) and np.any(first[1] != W0)
    for key, run in runs.items():
        assert run[0] == first[0], key
        for a, ref in zip(run[1:], first[1:], strict=True):
            np.testing.assert_array_equal(a, ref, err_msg=str(key))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_sgd_epoch_reports_a_batch_that_explodes(rng, n_threads):
    # The node shards run a chunk of batches without synchronisation, so a batch over `explode` is found
    # after its chunk: NaN, and path_sgd discards the epoch (a rollback). With explode = inf it is finite.
    X, y = blobs(rng, n_classes=5, n=40, d=3)
    tree = huffman_tree(np.bincount(y))
    V0 = 50.0 * rng.standard_normal((4, 3))

    def epoch(explode):
        V, b = V0.copy(), np.zeros(4)
        return _heads.sgd_epoch(
            *_row_args(X), y, np.empty(0), np.arange(40), 10, tree.children, tree.edge_row, tree.paths,
            tree.codes, tree.depths, V, b, np.ones(4), np.sum(V * V, axis=1), np.ones(4), 0.1, 0.0, True,
            explode, n_threads,
        )  # fmt: skip

    assert math.isfinite(epoch(math.inf))
    assert epoch(math.inf) / 40 > 1.0  # the batches' mean objective: some batch is over 1
    assert math.isnan(epoch(1.0))


@pytest.mark.parametrize("tree", ["huffman", "kmeans"])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_path_only_sgd_equals_the_shared_dense_sgd(tree, layout, rng):
    # The reference backend trains with the shared solver (every node's weights each batch, NumPy
    # gradients); the compiled one with the path-only epoch kernel: the same iterates and loss curve.
    X, y = text_like(rng, n=600, d=200, n_classes=24)
    X = X if layout == "csr" else X.toarray()
    sw = rng.uniform(0.2, 2.0, 600)
    params = dict(reg_strength=1e-2, solver="sgd", momentum=0.0, batch_size=50, max_iter=4, tol=0.0,
                  tree=tree, random_state=0)  # fmt: skip
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[name] = HierarchicalSoftmaxClassifier(**params).fit(X, y, sw)
    ref, fast = fits["reference"], fits["compiled"]
    assert fast.n_iter_ == ref.n_iter_ == 4
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fast.node_intercept_, ref.node_intercept_, rtol=1e-9, atol=1e-13)


def test_path_only_sgd_with_zero_weight_batches_equals_the_shared_sgd(rng):
    # 60% of the rows weigh nothing: about 1 batch of 4 in 8 has only the penalty (weight decay) to apply.
    X, y = text_like(rng, n=300, d=100, n_classes=6)
    sw = np.where(rng.random(300) < 0.6, 0.0, rng.uniform(0.5, 2.0, 300))
    sw[:6] = 1.0
    params = dict(reg_strength=0.05, solver="sgd", momentum=0.0, batch_size=4, max_iter=3, tol=0.0,
                  random_state=1)  # fmt: skip
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # the automatic step is halved: on both
            fits[name] = HierarchicalSoftmaxClassifier(**params).fit(X, y, sw)
    ref, fast = fits["reference"], fits["compiled"]
    assert fast.learning_rate_ == ref.learning_rate_
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-11)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fast.node_intercept_, ref.node_intercept_, rtol=1e-9, atol=1e-13)


def test_path_only_sgd_halves_the_step_as_the_shared_sgd(rng):
    # A step far too large: both solvers roll back to the best epoch's start and halve it, the same way.
    X, y = blobs(rng, n_classes=8, n=300, d=4)
    params = dict(solver="sgd", momentum=0.0, learning_rate=500.0, max_iter=12, tol=0.0, random_state=0)
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with pytest.warns(RuntimeWarning, match="halving"):
                fits[name] = HierarchicalSoftmaxClassifier(**params).fit(30 * X, y)
    ref, fast = fits["reference"], fits["compiled"]
    assert fast.learning_rate_ == ref.learning_rate_ < 500.0
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-8, atol=1e-10)


def test_default_sgd_is_the_path_only_epoch(rng, monkeypatch):
    # momentum defaults to 0 for the tree: solver="sgd" and partial_fit take the path-only epoch, never
    # the shared O(K·d) step (SoftmaxRegression keeps its 0.9).
    from luce.models import _solvers

    assert HierarchicalSoftmaxClassifier().momentum == 0.0
    assert luce.SoftmaxRegression().momentum == 0.9

    def shared(*args, **kwargs):
        raise AssertionError("the shared sgd ran")

    monkeypatch.setattr(_solvers, "sgd", shared)
    X, y = text_like(rng, n=300, d=50, n_classes=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = HierarchicalSoftmaxClassifier(solver="sgd", max_iter=3, random_state=0).fit(X, y)
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 4
    with pytest.raises(AssertionError, match="the shared sgd ran"):
        HierarchicalSoftmaxClassifier(solver="sgd", momentum=0.9, max_iter=1).fit(X, y)


def test_path_only_sgd_rolls_back_to_a_later_epoch_as_the_shared_sgd(rng, monkeypatch):
    # A step that diverges after some epochs were accepted: the path-only sgd rolls back by replaying the
    # accepted epochs up to the best one from the start (no weight copies); the shared sgd restores its
    # copy of that epoch's start. The same iterates, loss curve and final step either way.
    import luce.models._hierarchical as module

    X, y = blobs(np.random.default_rng(0), n_classes=8, n=300, d=4)
    params = dict(solver="sgd", momentum=0.0, learning_rate=5.0, max_iter=12, tol=0.0, random_state=0)
    generators = []
    batch_order = module._batch_order
    monkeypatch.setattr(module, "_batch_order", lambda g, n, b: generators.append(g) or batch_order(g, n, b))
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with pytest.warns(RuntimeWarning, match="halving"):
                fits[name] = HierarchicalSoftmaxClassifier(**params).fit(3 * X, y)
    replayed = [g for g in generators if g is not generators[0]]
    assert len(replayed) >= 2  # epochs were replayed: the rollback went past the first epoch
    ref, fast = fits["reference"], fits["compiled"]
    assert fast.learning_rate_ == ref.learning_rate_ < 5.0
    assert len(fast.loss_curve_) == len(ref.loss_curve_) == 12
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fast.node_intercept_, ref.node_intercept_, rtol=1e-8, atol=1e-10)


def test_node_scales_equalise_the_curvature_bounds(rng):
    _, y = blobs(rng, n_classes=20, n=500, d=4)
    w = rng.uniform(0.5, 2.0, 500)
    tree = huffman_tree(np.bincount(y, weights=w))
    lam_max, r2, lam = 3.0, 5.0, 1e-3
    s = node_scales(tree, np.bincount(y, weights=w), lam_max, r2, lam)
    # the share of the weight through each node, by walking every row's path down the children
    share = np.zeros(19)
    for i in range(500):
        node = 0
        while node >= 0:
            share[node] += w[i] / w.sum()
            node = next(c for c in tree.children[node] if c == -y[i] - 1 or (c >= 0 and below(tree, c, y[i])))
            node = max(node, -1)
    top = lam_max / 4 + lam  # the curvature bound the step size is made for
    scaled = s > 1.0
    # a node is scaled exactly when its own bound is below the step's, and then up to it exactly
    np.testing.assert_array_equal(scaled, share * r2 / 4 + lam < top)
    assert np.all(s >= 1.0) and scaled.sum() >= 10
    np.testing.assert_allclose(s[scaled] ** 2 * (share[scaled] * r2 / 4 + lam), top, rtol=1e-12)


def below(tree, node, k):
    """Whether the leaf of class k is in the subtree of internal node ``node``."""
    stack = [node]
    while stack:
        for c in tree.children[stack.pop()]:
            if c == -k - 1:
                return True
            if c >= 0:
                stack.append(c)
    return False


def test_scaled_parameters_keep_the_objective_and_chain_the_gradient(rng):
    X, y = blobs(rng, n_classes=6, n=80, d=3)
    tree = huffman_tree(np.bincount(y))
    s = rng.uniform(1.0, 4.0, 5)
    plain = TreeObjective(X, y, tree, reg_strength=0.1)
    scaled = TreeObjective(X, y, tree, reg_strength=0.1, node_scale=s)
    W, b = rng.standard_normal((5, 3)), rng.standard_normal(5)
    theta = scaled.pack(W, b)
    np.testing.assert_allclose(theta[:15].reshape(5, 3) * s[:, None], W, rtol=1e-15)
    assert scaled.loss(theta) == pytest.approx(plain.loss(plain.pack(W, b)), rel=1e-14)
    f = scaled.loss
    h = 1e-6
    fd = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    np.testing.assert_allclose(scaled.gradient(theta), fd, rtol=1e-6, atol=1e-8)
    v = rng.standard_normal(theta.size)
    hv = (scaled.gradient(theta + h * v) - scaled.gradient(theta - h * v)) / (2 * h)
    np.testing.assert_allclose(scaled.hessp(theta, v), hv, rtol=1e-5, atol=1e-7)


def test_sgd_trains_the_deep_nodes_in_a_few_epochs(rng):
    # 64 balanced classes of text-like rows: depth 6, a leaf's parent sees 1/32 of each batch. With one
    # step size for every node the deep nodes hardly move in 5 epochs (0.77 here against 0.94); the
    # node scales make them learn like the root. (Heavy-ball momentum 0.9, the setting this was
    # measured with; the default momentum=0 reaches 0.89 in 5 epochs here, see the momentum docstring.)
    X, y = text_like(rng, n=3200, d=600, n_classes=64)
    X = X.multiply(1.0 / np.sqrt(X.multiply(X).sum(axis=1))).tocsr()  # unit rows, as TF-IDF
    best = HierarchicalSoftmaxClassifier(reg_strength=1e-3, max_iter=300).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd = HierarchicalSoftmaxClassifier(
            reg_strength=1e-3, solver="sgd", momentum=0.9, max_iter=5, tol=0.0, n_iter_no_change=5,
            random_state=0,
        ).fit(X, y)  # fmt: skip
    assert sgd.score(X, y) >= best.score(X, y) - 0.03


def test_sgd_approaches_the_lbfgs_optimum(rng):
    X, y = blobs(rng, n_classes=10, n=800, d=4, spread=1.5)
    lbfgs = HierarchicalSoftmaxClassifier(reg_strength=1e-2, max_iter=500).fit(X, y)
    sgd = HierarchicalSoftmaxClassifier(
        reg_strength=1e-2, solver="sgd", batch_size=32, max_iter=200, tol=1e-4, random_state=0
    ).fit(X, y)
    tree = huffman_tree(np.bincount(y))
    sw = np.ones(len(y))

    def f(c):
        return brute_objective(
            np.concatenate([c.node_coef_.ravel(), c.node_intercept_]), X, y, sw, tree, 1e-2
        )

    assert f(lbfgs) <= f(sgd) <= 1.02 * f(lbfgs)
    assert abs(sgd.score(X, y) - lbfgs.score(X, y)) <= 0.02
    # the same seed gives the same model
    again = HierarchicalSoftmaxClassifier(
        reg_strength=1e-2, solver="sgd", batch_size=32, max_iter=200, tol=1e-4, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(again.node_coef_, sgd.node_coef_)


def test_two_classes_is_logistic_regression(rng):
    X, y = blobs(rng, n_classes=2, n=200, d=3, spread=1.0)
    lam = 1e-2
    clf = HierarchicalSoftmaxClassifier(reg_strength=lam, tol=1e-10, max_iter=500).fit(X, y)
    ref = LogisticRegression(C=1 / (lam * 200), tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-6, atol=1e-8)


def test_sgd_divergence_halves_the_learning_rate(rng):
    X, y = blobs(rng, n_classes=4, n=200, d=3)
    clf = HierarchicalSoftmaxClassifier(solver="sgd", learning_rate=1e6, max_iter=30, random_state=0)
    with pytest.warns(RuntimeWarning, match="halving"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs are spent halving the step
        clf.fit(1e3 * X, y)
    assert np.all(np.isfinite(clf.node_coef_)) and clf.learning_rate_ < 1e6


def test_verbose_and_callback(rng, capsys):
    X, y = blobs(rng, n_classes=3, n=90, d=2)
    seen = []
    HierarchicalSoftmaxClassifier(verbose=lambda i, loss: seen.append((i, loss))).fit(X, y)
    # As every luce estimator: iteration 0 is the starting point, then one report per iteration.
    assert [i for i, _ in seen] == list(range(len(seen))) and all(np.isfinite(v) for _, v in seen)
    HierarchicalSoftmaxClassifier(verbose=2).fit(X, y)
    assert "Iter(Epoch): 1, Loss: " in capsys.readouterr().out


def test_string_labels_and_fitted_state_is_plain(rng):
    X, y = blobs(rng, n_classes=5, n=200, d=3)
    names = np.array(["ant", "bee", "cat", "dog", "eel"])[y]
    clf = HierarchicalSoftmaxClassifier().fit(X, names)
    assert set(clf.predict(X)) <= set(names)
    assert clf.predict_topk(X[:4], 2).dtype == names.dtype
    for key, value in vars(clf).items():
        if key.endswith("_") and value is not None:
            assert isinstance(value, np.ndarray | int | float | str | list), key
            assert not isinstance(value, list) or all(isinstance(x, float) for x in value), key


@pytest.mark.parametrize("tree", ["huffman", "kmeans"])
def test_model_file_round_trip(tree, rng, tmp_path):
    pytest.importorskip("safetensors")
    X, y = blobs(rng, n_classes=7, n=300, d=3)
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-2, tree=tree, random_state=0).fit(X, y)
    path = luce.save(clf, tmp_path / "hs.luce")
    loaded = luce.load(path)
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.tree_children_, clf.tree_children_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_topk(X, 3), clf.predict_topk(X, 3))
    Xs = scipy.sparse.csr_matrix(X)
    np.testing.assert_array_equal(loaded.predict_topk(Xs, 3), clf.predict_topk(X, 3))


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        # The messages every luce estimator gives (the parameters are checked in one place).
        (
            {"solver": "newton"},
            ValueError,
            "'solver' parameter of HierarchicalSoftmaxClassifier must be a str",
        ),
        (
            {"reg_strength": -1.0},
            ValueError,
            r"'reg_strength' parameter .* must be a float in the range \[0, inf\)",
        ),
        ({"max_iter": 0}, ValueError, r"'max_iter' parameter .* must be an int in the range \[1, inf\)"),
        ({"batch_size": 2.5}, TypeError, "'batch_size' parameter .* must be an int"),
        ({"learning_rate": 0.0}, ValueError, r"'learning_rate' parameter .* range \(0, inf\)"),
        ({"learning_rate": "fast"}, ValueError, "'learning_rate' parameter .* must be a str among {'auto'}"),
        ({"fit_intercept": "yes"}, TypeError, "'fit_intercept' parameter .* must be an instance of 'bool'"),
        ({"tree": "kmean"}, ValueError, "'tree' parameter .* must be a str among .*'kmeans'"),
    ],
)
def test_bad_parameters(params, error, match, rng):
    X, y = blobs(rng, n_classes=3, n=30, d=2)
    with pytest.raises(error, match=match):
        HierarchicalSoftmaxClassifier(**params).fit(X, y)


def test_bad_input(rng):
    X, y = blobs(rng, n_classes=3, n=30, d=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        HierarchicalSoftmaxClassifier().fit(X, np.zeros(30))
    clf = HierarchicalSoftmaxClassifier().fit(X, y)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, n_classes=3\]"):
        clf.predict_topk(X, 4)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :1])


@pytest.mark.parametrize("solver", ["newton-cg", "gd"])
def test_every_shared_solver_reaches_the_brute_force_optimum(solver, rng):
    X, y = blobs(rng, n_classes=6, n=300, d=3, spread=1.5)
    lam = 1e-2
    tree = huffman_tree(np.bincount(y))
    sw = np.ones(300)
    ref = scipy.optimize.minimize(
        brute_objective, np.zeros(5 * 4), args=(X, y, sw, tree, lam), method="BFGS", tol=1e-12
    )
    kwargs = {"tol": 1e-9, "max_iter": 200} if solver == "newton-cg" else {"tol": 1e-12, "max_iter": 20000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # gd: the plateau rule may need every step
        clf = HierarchicalSoftmaxClassifier(reg_strength=lam, solver=solver, **kwargs).fit(X, y)
    theta = np.concatenate([clf.node_coef_.ravel(), clf.node_intercept_])
    assert brute_objective(theta, X, y, sw, tree, lam) == pytest.approx(ref.fun, rel=1e-6)


def test_warm_start_keeps_the_tree_and_continues(rng):
    X, y = blobs(rng, n_classes=6, n=300, d=3)
    # max_iter: the reweighted refit needs 98-101 lbfgs iterations to reach tol=1e-8, depending on the
    # last bits of the log σ evaluations (Numba's libm or the kernels' exp/log1p)
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-2, tol=1e-8, max_iter=300, warm_start=True).fit(X, y)
    children = clf.tree_children_.copy()
    sw = np.where(y == 0, 50.0, 1.0)  # other class mass: a cold fit would build another tree
    assert not np.array_equal(huffman_tree(np.bincount(y, weights=sw)).children, children)
    clf.fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(clf.tree_children_, children)
    again = HierarchicalSoftmaxClassifier(reg_strength=1e-2, tol=1e-8, warm_start=True).fit(X, y)
    again.fit(X, y)
    assert again.n_iter_ <= 1


# -- streams ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tree", ["huffman", "kmeans"])
def test_partial_fit_is_one_sgd_epoch_per_call(tree, rng):
    # The compiled backend runs the path-only epoch, the reference one the shared dense sgd: the same
    # steps, call after call (the rng carries over between calls in both).
    X, y = text_like(rng, n=500, d=300, n_classes=16)
    params = dict(reg_strength=1e-3, solver="sgd", momentum=0.0, batch_size=64, tree=tree, random_state=3)
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name):
            clf = HierarchicalSoftmaxClassifier(**params).partial_fit(X[:200], y[:200], classes=np.arange(16))
            fits[name] = clf.partial_fit(X[200:], y[200:]).partial_fit(X[:300], y[:300])
    ref, fast = fits["reference"], fits["compiled"]
    np.testing.assert_array_equal(fast.tree_children_, ref.tree_children_)
    assert fast.n_iter_ == ref.n_iter_ == 3 and len(fast.loss_curve_) == 3
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fast.node_intercept_, ref.node_intercept_, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_partial_fit_learns_a_stream_with_late_classes(momentum, rng):
    X, y = text_like(rng, n=2400, d=600, n_classes=12)
    X_test, y_test = X[2000:], y[2000:]
    names = np.array([f"c{k:02d}" for k in range(12)])
    late = y >= 10  # classes 10 and 11 appear only after the first chunk
    order = np.concatenate([np.flatnonzero(~late[:2000])[:400], rng.permutation(2000)])
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-4, momentum=momentum, tree="kmeans", random_state=0)
    clf.partial_fit(X[order[:400]], names[y[order[:400]]], classes=names)
    assert clf.n_iter_ == 1 and clf.classes_.tolist() == names.tolist()
    for _ in range(4):
        for start in range(400, order.size, 400):
            rows = order[start : start + 400]
            clf.partial_fit(X[rows], names[y[rows]])
    assert clf.n_iter_ == 1 + 4 * 5 and len(clf.loss_curve_) == clf.n_iter_
    batch = HierarchicalSoftmaxClassifier(reg_strength=1e-4, max_iter=300).fit(X[:2000], names[y[:2000]])
    assert clf.score(X_test, names[y_test]) >= batch.score(X_test, names[y_test]) - 0.05
    assert np.mean(clf.predict(X_test[y_test >= 10]) == names[y_test[y_test >= 10]]) >= 0.8


def test_partial_fit_errors(rng):
    X, y = blobs(rng, n_classes=3, n=30, d=2)
    with pytest.raises(ValueError, match="classes must be passed"):
        HierarchicalSoftmaxClassifier().partial_fit(X, y)
    clf = HierarchicalSoftmaxClassifier().partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on the last call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :1], y)
    with pytest.raises(ValueError, match="balanced"):
        HierarchicalSoftmaxClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_concurrent_predictions_from_threads_agree(rng):
    # The kernels release the GIL and run OpenMP inside: eight Python threads predicting at once get
    # the single-threaded answers.
    import threading

    X, y = text_like(rng, n=600, d=300, n_classes=20)
    clf = HierarchicalSoftmaxClassifier(reg_strength=1e-3, tree="kmeans", random_state=0).fit(X, y)
    ref_p, ref_top = clf.predict_proba(X), clf.predict_topk(X, 3)
    bad = []

    def work():
        for _ in range(5):
            bad.append(not np.array_equal(clf.predict_proba(X), ref_p))
            bad.append(not np.array_equal(clf.predict_topk(X, 3), ref_top))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bad) == 80 and not any(bad)


# -- wider nodes: a softmax over 4, 8, ... children ---------------------------------------------------


@pytest.mark.parametrize("branching", [4, 8])
@pytest.mark.parametrize("base", ["huffman", "kmeans"])
def test_widen_collapses_binary_levels(branching, base, rng):
    counts = rng.integers(1, 100, 50)
    binary = (
        huffman_tree(counts)
        if base == "huffman"
        else kmeans_tree(rng.standard_normal((50, 4)), random_state=0)
    )
    wide = widen(binary, branching)
    checked = tree_from_arrays(**wide.as_dict(), n_classes=50)  # a consistent tree over the 50 classes
    np.testing.assert_array_equal(checked.paths, wide.paths)
    assert wide.children.shape[1] <= branching and np.all(np.count_nonzero(wide.children, axis=1) >= 2)
    levels = branching.bit_length() - 1
    np.testing.assert_array_equal(wide.depths, -(-binary.depths // levels))  # ceil(depth / levels)
    # every class keeps the group of leaves it shared with its binary-tree neighbours at the bottom
    for k in range(50):
        assert wide.children[wide.paths[k, wide.depths[k] - 1], wide.codes[k, wide.depths[k] - 1]] == -k - 1
    assert np.sum(np.count_nonzero(wide.children, axis=1) - 1) == 49  # K - 1 weight rows
    with pytest.raises(ValueError, match="power of two"):
        widen(binary, 6)


@pytest.fixture(scope="module", params=["huffman-4", "kmeans-4", "kmeans-8-csr"])
def wide_fit(request):
    rng = np.random.default_rng(11)
    X, y = blobs(rng, n_classes=30, n=1200, d=6, spread=2.0)
    tree, branching, *layout = request.param.split("-")
    if layout:
        X[rng.random(X.shape) < 0.3] = 0.0
        X = scipy.sparse.csr_matrix(X)
    clf = HierarchicalSoftmaxClassifier(
        reg_strength=1e-3, max_iter=60, tol=1e-5, tree=tree, branching=int(branching), random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf, X[:150]


def test_wide_tree_predict_proba_is_the_product_of_node_softmaxes(wide_fit, backend):
    clf, X = wide_fit
    assert clf.tree_children_.shape[1] > 2 and clf.node_coef_.shape == (29, 6)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    walked = brute_proba_softmax_walk(clf.node_coef_, clf.node_intercept_, clf.tree_children_, dense(X))
    np.testing.assert_allclose(walked.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, walked, rtol=1e-10, atol=1e-15)
    assert (
        clf.score(X, clf.predict(X)) == 1.0 and np.mean(clf.predict(X) == clf.classes_[proba.argmax(1)]) == 1
    )


@pytest.mark.parametrize("k", [1, 4, 30])
def test_wide_tree_topk_is_exact_and_beam_equals_a_python_beam_search(wide_fit, k, backend):
    clf, X = wide_fit
    proba = clf.predict_proba(X)
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    labels, top_p = clf.predict_topk(X, k, return_proba=True)
    np.testing.assert_array_equal(labels, clf.classes_[order])
    np.testing.assert_allclose(top_p, np.take_along_axis(proba, order, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    beamed = np.searchsorted(clf.classes_, clf.predict_topk(X, k, beam=max(k, 2)))
    if backend == "compiled":
        Xd, W, b, children = dense(X), clf.node_coef_, clf.node_intercept_, clf.tree_children_
        for r in range(0, 150, 11):
            np.testing.assert_array_equal(
                beamed[r], python_beam_search(W, b, children, Xd[r], k, max(k, 2))[0]
            )


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_wide_tree_loss_gradient_kernel_matches_finite_differences(layout, rng):
    X, y = blobs(rng, n_classes=11, n=40, d=3)
    X[rng.random(X.shape) < 0.4] = 0.0
    tree = widen(huffman_tree(np.bincount(y)), 4)
    sw = rng.uniform(0.5, 2.0, 40)
    W, b = rng.standard_normal((10, 3)), rng.standard_normal(10)

    def objective(theta):
        p = brute_proba_softmax_walk(theta[:30].reshape(10, 3), theta[30:], tree.children, X)
        return -np.sum(sw * np.log(p[np.arange(40), y]))

    gW, gb = np.zeros_like(W), np.zeros_like(b)
    rows = _row_args(X if layout == "dense" else scipy.sparse.csr_matrix(X))
    args = (tree.children, tree.edge_row, tree.paths, tree.codes, tree.depths)
    loss = _heads.loss_grad(*rows, y, sw, *args, W, b, gW, gb)
    theta = np.concatenate([W.ravel(), b])
    assert loss == pytest.approx(objective(theta), rel=1e-12)
    h = 1e-5
    fd = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        vals = [objective(theta + s * e) for s in (2, 1, -1, -2)]
        fd[j] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    np.testing.assert_allclose(np.concatenate([gW.ravel(), gb]), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_wide_tree_trains_the_same_on_both_backends(solver, rng):
    # The reference backend's loss and gradient score every weight row in NumPy; the compiled one
    # follows the paths in C (sgd: the path-only epoch against the shared dense sgd).
    X, y = text_like(rng, n=600, d=200, n_classes=24)
    params = dict(reg_strength=1e-2, solver=solver, momentum=0.0, batch_size=50, max_iter=4, tol=0.0,
                  tree="kmeans", branching=8, random_state=0)  # fmt: skip
    fits = {}
    for name in ("reference", "compiled"):
        with use_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[name] = HierarchicalSoftmaxClassifier(**params).fit(X, y)
    ref, fast = fits["reference"], fits["compiled"]
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(fast.node_coef_, ref.node_coef_, rtol=1e-8, atol=1e-11)


def test_wide_tree_learns_and_round_trips(rng, tmp_path):
    X, y, X_test, y_test = circle_classes(rng, n_classes=16)
    wide = HierarchicalSoftmaxClassifier(reg_strength=1e-4, tree="kmeans", branching=4, max_iter=300,
                                         random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        wide.fit(X, y)
        binary = HierarchicalSoftmaxClassifier(tree="kmeans", max_iter=1, random_state=0).fit(X, y)
    # every wide node takes the binary tree's descendants two levels down: depths halve, rounded up
    np.testing.assert_array_equal(wide.tree_depths_, (binary.tree_depths_ + 1) // 2)
    assert wide.score(X_test, y_test) >= 0.97
    pytest.importorskip("safetensors")
    loaded = luce.load(luce.save(wide, tmp_path / "wide.luce"))
    assert loaded.get_params() == wide.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), wide.predict_proba(X_test))
    np.testing.assert_array_equal(
        loaded.predict_topk(X_test, 3, beam=4), wide.predict_topk(X_test, 3, beam=4)
    )


def test_branching_errors(rng):
    X, y = blobs(rng, n_classes=5, n=60, d=2)
    with pytest.raises(ValueError, match="power of two"):
        HierarchicalSoftmaxClassifier(branching=3).fit(X, y)
    with pytest.raises(ValueError, match="newton-cg"):
        HierarchicalSoftmaxClassifier(branching=4, solver="newton-cg").fit(X, y)
