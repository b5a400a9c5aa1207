r"""Hierarchical softmax: a binary tree over the classes and the probabilities it defines.

The tree is built by Huffman coding of the class frequencies (Mikolov et al. 2013; fastText, Joulin et al.
2017): frequent classes sit near the root, so the expected path length — the training cost per example —
is at most the entropy of the class distribution plus one bit, and never more than ``⌈log2 K⌉ + 1``
for near-uniform classes.

Every internal node ``j`` (``K - 1`` of them) owns a weight vector ``w_j`` and a bias ``b_j``, and sends
an input right with probability ``σ(s_j)``, ``s_j = w_j·x + b_j``, left with ``σ(-s_j)``. A class is the
leaf at the end of its path ``n_1 … n_L`` (root first) with codes ``c_l ∈ {0: left, 1: right}``:

.. math:: \log P(y = k \mid x) = \sum_{l=1}^{L_k} \log \sigma\big((2c_l - 1)\, s_{n_l}(x)\big)

Since ``σ(s) + σ(-s) = 1`` at every node, the leaf probabilities sum to one exactly (in exact
arithmetic), with no normaliser over the ``K`` classes.

Trees with more children per node (:func:`widen`, the ``branching`` of the classifier) put a small
softmax at each node: child ``e`` of a node with ``n`` children gets the probability
``softmax(z)_e`` of the scores ``z_0 = 0`` (the first child is the reference) and ``z_e = w·x + b``, one
weight vector per child but the first. A tree over ``K`` classes has ``K - 1`` weight vectors whatever
its branching; with two children per node this is the sigmoid tree above (``P(child 1) = σ(z_1)``).

The tree is stored as plain integer arrays (a model file holds them as tensors):

``children`` (n_internal, arity)
    the children of each internal node in order (code 0, 1, ...), padded with ``0`` (the root is
    nobody's child); ``c > 0`` is an internal node, ``c < 0`` the leaf of class ``-c - 1``. A binary
    tree has ``K - 1`` internal nodes and arity 2.
``parents`` (n_internal,)
    the parent of each internal node, ``-1`` for the root. Internal nodes are numbered breadth first,
    so the root is node 0 and every parent comes before its children.
``paths``, ``codes`` (K, L)
    the internal nodes from the root to each class's leaf and the child taken at each, padded with
    ``-1`` / ``0`` beyond the class's depth; ``L`` is the largest depth.
``depths`` (K,)
    the path length of each class.

The weight vector of child ``e >= 1`` of node ``j`` is row ``edge_row[j] + e - 1``
(:func:`edge_rows`): node after node in breadth-first order, so a binary tree's node ``j`` owns row
``j``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HuffmanTree",
    "edge_rows",
    "huffman_tree",
    "kmeans_tree",
    "log_sigmoid_np",
    "reference_log_proba",
    "reference_loss_grad",
    "reference_topk",
    "tree_from_arrays",
    "widen",
]


class HuffmanTree:
    """The arrays of a binary tree over ``n_classes`` leaves (see the module docstring)."""

    __slots__ = ("children", "codes", "depths", "edge_row", "parents", "paths")

    def __init__(self, children, parents, paths, codes, depths):
        self.children = children
        self.parents = parents
        self.paths = paths
        self.codes = codes
        self.depths = depths
        self.edge_row = edge_rows(children)

    @property
    def arity(self) -> int:
        """The most children a node has (2 for a binary tree)."""
        return self.children.shape[1]

    @property
    def n_classes(self) -> int:
        return self.depths.shape[0]

    def as_dict(self) -> dict:
        return {
            "children": self.children,
            "parents": self.parents,
            "paths": self.paths,
            "codes": self.codes,
            "depths": self.depths,
        }


def huffman_tree(counts) -> HuffmanTree:
    """Huffman tree over classes with the given frequencies (counts or summed sample weights).

    The two least frequent subtrees are merged repeatedly; the first one taken becomes the left child
    (code 0). Ties are broken by creation order (leaves in class order first), so the tree is a
    deterministic function of ``counts``.

    Parameters
    ----------
    counts : array_like, shape (K,)
        Non-negative, finite frequencies, ``K >= 2``.

    Returns
    -------
    HuffmanTree

    Examples
    --------
    >>> from luce.heads._hierarchical import huffman_tree
    >>> tree = huffman_tree([5, 1, 1, 3])
    >>> tree.depths  # the frequent class is one step from the root
    array([1, 3, 3, 2])
    >>> tree.paths[1], tree.codes[1]
    (array([0, 1, 2]), array([1, 0, 0], dtype=int8))
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.shape[0] < 2:
        raise ValueError(f"counts must have shape (K,) with K >= 2 classes, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("counts must be finite and non-negative")
    n_classes = counts.shape[0]
    # Two queues instead of a heap (van Leeuwen, 1976): the leaves sorted by (frequency, class) and the
    # merged subtrees, which are made in non-decreasing frequency; the smaller front is taken, a leaf
    # on a tie (leaves were created first). The same tree as a heap ordered by (frequency, creation
    # order), in one sort and a loop of plain comparisons. Leaves are nodes -1..-K, internal nodes 0..
    # in creation order (renumbered breadth first below).
    leaf_order = np.argsort(counts, kind="stable")
    leaf_freq = counts[leaf_order].tolist()
    leaf_node = (-leaf_order - 1).tolist()
    merged_freq, raw_children = [], []
    i = j = 0  # the fronts of the two queues

    def take():
        nonlocal i, j
        if i < n_classes and (j >= len(merged_freq) or leaf_freq[i] <= merged_freq[j]):
            i += 1
            return leaf_freq[i - 1], leaf_node[i - 1]
        j += 1
        return merged_freq[j - 1], j - 1

    for _ in range(n_classes - 1):
        fa, a = take()
        fb, b = take()
        raw_children.append((a, b))
        merged_freq.append(fa + fb)
    return _breadth_first(raw_children, len(raw_children) - 1)


def _breadth_first(raw_children, root) -> HuffmanTree:
    """The tree of ``raw_children`` (pairs of children, ``c < 0`` the leaf of class ``-c - 1``, ``c >= 0``
    an index into ``raw_children``) renumbered breadth first from ``root``: root 0, parents first."""
    arity = max(len(kids) for kids in raw_children)
    none = np.iinfo(np.int64).min  # pads the nodes with fewer children (a widened tree's)
    raw = np.array([list(kids) + [none] * (arity - len(kids)) for kids in raw_children], dtype=np.int64)
    new_id = np.empty(raw.shape[0], dtype=np.int64)
    level, done = np.array([root], dtype=np.int64), 0
    while level.shape[0]:  # one level at a time, each in its parents' order and then side order
        new_id[level] = np.arange(done, done + level.shape[0])
        done += level.shape[0]
        kids = raw[level].ravel()
        level = kids[kids >= 0]
    children = np.empty_like(raw)
    inner = raw >= 0
    children[new_id] = np.where(inner, new_id[np.where(inner, raw, 0)], np.where(raw == none, 0, raw))
    parents = np.full(raw.shape[0], -1, dtype=np.int64)
    parent_of = np.broadcast_to(new_id[:, None], raw.shape)
    parents[new_id[raw[inner]]] = parent_of[inner]
    return _paths_from_children(children, parents)


# Splits of the k-means tree whose centroids (classes × their nonzero columns) have at most this many
# entries run on a dense copy.
_DENSE_SPLIT = 1 << 18


def kmeans_tree(centroids, *, weights=None, random_state=None, max_iter=20) -> HuffmanTree:
    """Balanced binary tree over classes by recursive balanced 2-means of their centroids.

    Each set of classes is split in two halves (sizes differing by at most one) of similar centroids,
    as probabilistic label trees, Parabel and napkinXC build their trees: two centres start at two
    random classes of the set; each round ranks the classes by ``c·(m_1 - m_0)`` (the cosine
    similarity to centre 1 minus that to centre 0, for unit-norm centroids), gives the upper half
    to centre 1, and recomputes the centres as normalised means, until the halves stop changing or
    ``max_iter`` rounds. Then each half is split the same way. Every class is at depth
    ``⌊log2 K⌋`` or ``⌈log2 K⌉``; classes that a linear score tells apart well share few nodes.

    With ``weights`` (the class frequencies) a split halves the mass instead of the count: the cut
    in the ranking that brings one side's mass nearest half of the set's (so the two sides differ by
    at most the heaviest class of the set), as a weight-balanced search tree (K. Mehlhorn, "Nearly
    optimal binary search trees", Acta Informatica 5, 1975). A class of frequency share ``p`` then
    lands near depth ``log2(1/p)``, as in a Huffman tree, which on Zipf-distributed classes makes the
    frequent classes' paths, and the sum of their node errors, shorter.

    Parameters
    ----------
    centroids : ndarray or sparse matrix, shape (K, n_features)
        One row per class (e.g. the class means of ``X``); rows are L2-normalised here.
    weights : ndarray, shape (K,), optional
        Non-negative class masses: split by mass instead of by count.
    random_state : int, RandomState, Generator or None
        Seeds the starting centres.
    max_iter : int, default 20
        Rounds of 2-means per split.

    Returns
    -------
    HuffmanTree
        The tree arrays (the same layout as :func:`huffman_tree`).

    Examples
    --------
    Two groups of classes along the first and the second axis end up in different subtrees:

    >>> import numpy as np
    >>> from luce.heads._hierarchical import kmeans_tree
    >>> C = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0], [0.0, 1.0]])
    >>> tree = kmeans_tree(C, random_state=0)
    >>> tree.depths
    array([2, 2, 2, 2])
    >>> np.sort(-tree.children[1:] - 1, axis=1)  # the leaves under the two children of the root
    array([[0, 2],
           [1, 3]])
    """
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize
    from sklearn.utils import check_random_state

    if sp.issparse(centroids):
        C = sp.csr_matrix(centroids, dtype=np.float64)
    else:
        C = np.asarray(centroids, dtype=np.float64)
        if C.ndim != 2:
            raise ValueError(f"centroids must have shape (K, n_features), got shape {C.shape}")
    n_classes = C.shape[0]
    if n_classes < 2:
        raise ValueError(f"centroids must have K >= 2 rows (classes), got {n_classes}")
    if not np.all(np.isfinite(C.data if sp.issparse(C) else C)):
        raise ValueError("centroids must be finite")
    C = normalize(C)
    mass = None if weights is None else np.asarray(weights, dtype=np.float64)
    rng = check_random_state(random_state)
    if isinstance(random_state, np.random.Generator):
        rng = np.random.RandomState(random_state.integers(np.iinfo(np.int32).max))

    def unit(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        norm = float(np.sqrt(np.sum(v * v)))  # not BLAS: its threads cost more than this short sum
        return v / norm if norm > 0 else v

    def cut(members, score):
        """How many classes of ``members`` (ranked by ``score``) go to the lower side: half of them, or
        with ``weights`` as many as bring the lower side's mass closest to half (at least one on each
        side; a tie goes to the count nearest half)."""
        n = members.shape[0]
        if mass is None:
            return n // 2
        ranked = np.cumsum(mass[members[np.argsort(score, kind="stable")]])
        off = np.abs(ranked[:-1] - 0.5 * ranked[-1])  # the lower side's mass after 1 .. n-1 classes
        sizes = np.arange(1, n)
        return int(sizes[np.lexsort((np.abs(sizes - n // 2), off))[0]])

    def compact(sub):
        """``sub`` as a dense array over its nonzero columns when that is small: the many small splits
        near the leaves then cost a few BLAS calls each instead of sparse-matrix bookkeeping."""
        if not sp.issparse(sub):  # a dense part of a larger split: keep the columns its rows use
            used = np.flatnonzero(np.any(sub != 0.0, axis=0))
            return sub[:, used] if used.shape[0] < 0.75 * sub.shape[1] else sub
        used = np.zeros(sub.shape[1], dtype=bool)
        used[sub.indices] = True
        columns = np.flatnonzero(used)
        if sub.shape[0] * columns.shape[0] > _DENSE_SPLIT:
            return sub
        dense = np.zeros((sub.shape[0], columns.shape[0]))
        rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
        dense[rows, np.searchsorted(columns, sub.indices)] = sub.data
        return dense

    def split(members, sub):
        """The positions in ``members`` (class indices; ``sub`` their centroids) of the lower and the
        upper side, the upper side by the 2-means score."""
        n = members.shape[0]
        if n == 2:
            return np.array([0]), np.array([1])
        a, b = rng.choice(n, size=2, replace=False)
        row = (lambda i: sub[i].toarray()) if sp.issparse(sub) else (lambda i: sub[i])
        m0, m1 = unit(row(a)), unit(row(b))
        upper = None
        for _ in range(max_iter):
            score = np.asarray(sub @ (m1 - m0)).ravel()
            # stable sort: ties (e.g. equal centroids) split by class order, so the tree is deterministic
            new_upper = np.zeros(n, dtype=bool)
            new_upper[np.argsort(score, kind="stable")[cut(members, score) :]] = True
            if upper is not None and np.array_equal(new_upper, upper):
                break
            upper = new_upper
            in_upper = upper.astype(np.float64)
            m0, m1 = unit(sub.T @ (1.0 - in_upper)), unit(sub.T @ in_upper)
        return np.flatnonzero(~upper), np.flatnonzero(upper)

    raw_children = []

    def build(members, sub):
        # returns the raw id of the subtree of members (a leaf id -k-1 for one class)
        if members.shape[0] == 1:
            return -int(members[0]) - 1
        sub = compact(sub)
        left, right = split(members, sub)
        pair = (build(members[left], sub[left]), build(members[right], sub[right]))
        raw_children.append(pair)
        return len(raw_children) - 1

    root = build(np.arange(n_classes), C)
    return _breadth_first(raw_children, root)


def _paths_from_children(children, parents) -> HuffmanTree:
    """The tree arrays from ``children`` (breadth-first node order: parents first) and ``parents``, the
    paths walked up from all leaves at once, one level per step."""
    n_internal = children.shape[0]
    depth_node = np.zeros(n_internal, dtype=np.int64)
    for _ in range(n_internal):  # parents precede children: depth settles within the tree's height
        deeper = np.where(parents >= 0, depth_node[np.maximum(parents, 0)] + 1, 0)
        if np.array_equal(deeper, depth_node):
            break
        depth_node = deeper
    node_of, side_of = np.nonzero(children < 0)
    leaf = -children[node_of, side_of] - 1
    leaf_parent = np.empty(leaf.shape[0], dtype=np.int64)
    leaf_code = np.empty(leaf.shape[0], dtype=np.int8)
    leaf_parent[leaf], leaf_code[leaf] = node_of, side_of
    code_in_parent = np.zeros(n_internal, dtype=np.int8)
    node_in, side_in = np.nonzero(children > 0)
    code_in_parent[children[node_in, side_in]] = side_in
    depths = depth_node[leaf_parent] + 1
    paths = np.full((leaf.shape[0], int(depths.max())), -1, dtype=np.int64)
    codes = np.zeros(paths.shape, dtype=np.int8)
    k, node, code, level = np.arange(leaf.shape[0]), leaf_parent, leaf_code, depths - 1
    while k.shape[0]:
        paths[k, level], codes[k, level] = node, code
        code, node, level = code_in_parent[node], parents[node], level - 1
        up = node >= 0
        k, node, code, level = k[up], node[up], code[up], level[up]
    return HuffmanTree(children, parents, paths, codes, depths)


def edge_rows(children):
    """The weight row of each node's child 1: ``n_j - 1`` rows per node ``j`` with ``n_j`` children, in
    node order (a binary tree: ``0, 1, ..., K - 2``)."""
    children = np.asarray(children)
    per_node = np.sum(children != 0, axis=1) - 1
    return np.concatenate([[0], np.cumsum(per_node)[:-1]]).astype(np.int64)


def widen(tree, branching) -> HuffmanTree:
    """The tree with ``branching`` (a power of two) children per node: every node of ``tree`` (binary)
    takes as children its descendants ``log2(branching)`` levels down, so a node's softmax chooses among
    the groups the binary tree's splits made (leaves met on the way stay children: nodes near the
    leaves, and Huffman trees, have fewer). Depths shrink by that factor.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.heads._hierarchical import huffman_tree, widen
    >>> wide = widen(huffman_tree(np.ones(16)), 4)
    >>> wide.depths.max(), wide.children.shape  # 16 classes: a root of 4 nodes of 4 leaves
    (np.int64(2), (5, 4))
    """
    levels = int(branching).bit_length() - 1
    if branching < 2 or 1 << levels != branching:
        raise ValueError(f"branching must be a power of two >= 2, got {branching!r}")
    binary = tree.children
    if binary.shape[1] != 2:
        raise ValueError("widen takes a binary tree")
    raw_children = []

    def build(node):
        frontier = [node]
        for _ in range(levels):
            frontier = [c for x in frontier for c in (binary[x] if x >= 0 else (x,))]
        kids = [c if c < 0 else build(c) for c in frontier]
        raw_children.append(kids)
        return len(raw_children) - 1

    return _breadth_first(raw_children, build(0))


def tree_from_arrays(children, parents, paths, codes, depths, n_classes) -> HuffmanTree:
    """Rebuild a tree from stored arrays, checking that they describe one tree over the classes.

    Raises ValueError naming the inconsistent array (a model file that was edited or truncated).
    """
    arrays = {
        "children": np.asarray(children),
        "parents": np.asarray(parents),
        "paths": np.asarray(paths),
        "codes": np.asarray(codes),
        "depths": np.asarray(depths),
    }
    for name, arr in arrays.items():
        if arr.dtype.kind not in "iu":
            raise ValueError(f"tree array {name} must be integer, got dtype {arr.dtype}")
    ch = arrays["children"].astype(np.int64)
    par = arrays["parents"].astype(np.int64)
    n_internal = par.shape[0] if par.ndim == 1 else -1
    if n_internal < 1 or ch.ndim != 2 or ch.shape[0] != n_internal or not 2 <= ch.shape[1] <= 64:
        raise ValueError(
            f"tree arrays children {ch.shape} and parents {par.shape} must have shapes (n_internal, 2..64) "
            "and (n_internal,)"
        )
    leaves = np.sort(-ch[ch < 0] - 1)
    internal = np.sort(ch[ch > 0])
    present = ch != 0
    if not (
        np.array_equal(leaves, np.arange(n_classes))
        and np.array_equal(internal, np.arange(1, n_internal))
        and par[0] == -1
        and np.all(par[1:] < np.arange(1, n_internal))
        and np.all(par[1:] >= 0)
        and np.all(present[:, :2])  # every node has two children at least, padding only at the end
        and np.all(present[:, :-1] >= present[:, 1:])
    ):
        raise ValueError("tree arrays children/parents do not describe a tree over the classes")
    for j in range(1, n_internal):
        if j not in ch[par[j]]:
            raise ValueError("tree arrays children/parents disagree")
    rebuilt = _paths_from_children(ch, par)
    for name in ("paths", "codes", "depths"):
        if not np.array_equal(arrays[name], getattr(rebuilt, name)):
            raise ValueError(f"tree array {name} does not match children/parents")
    return rebuilt


def log_sigmoid_np(s):
    """``log σ(s) = -log1p(exp(-|s|)) + min(s, 0)``: accurate for every ``s`` (no overflow, no 0·inf)."""
    return np.minimum(s, 0.0) - np.log1p(np.exp(-np.abs(s)))


# -- the NumPy references of the compiled kernels (luce._kernels._heads), for the "reference" backend --


def _node_log_softmax(S, children, edge_row):
    """``(n, n_internal, arity)``: the log-probability of each child of each node from the weight rows'
    scores ``S (n, K-1)`` (``z_0 = 0``, ``z_e = S[:, edge_row + e - 1]``; -inf for padding)."""
    n_internal, arity = children.shape
    present = children != 0
    cols = np.where(present[:, 1:], edge_row[:, None] + np.arange(arity - 1), 0)
    Z = np.full((S.shape[0], n_internal, arity), -np.inf)
    Z[:, :, 0] = 0.0
    Z[:, :, 1:] = np.where(present[:, 1:], S[:, cols], -np.inf)
    m = Z.max(axis=2, keepdims=True)
    shifted = Z - m
    top = np.argmax(Z, axis=2)[..., None]
    others = np.exp(shifted)
    np.put_along_axis(others, top, 0.0, axis=2)
    return shifted - np.log1p(others.sum(axis=2, keepdims=True))


def reference_log_proba(S, children, edge_row, paths, codes, depths):
    """Log-probability of every class ``(n, K)`` from the weight rows' scores ``S (n, K-1)``: the sum of
    the log-softmax terms along each class's stored path (``O(K·L)`` per row)."""
    with np.errstate(invalid="ignore"):  # -inf - -inf never happens: z_0 = 0 bounds the max
        logp = _node_log_softmax(S, children, edge_row)
    on_path = np.arange(paths.shape[1]) < depths[:, None]  # (K, L)
    nodes = np.where(on_path, paths, 0)
    terms = logp[:, nodes, codes]  # (n, K, L)
    return np.sum(terms, axis=2, where=on_path)


def reference_loss_grad(X, y, sw, children, edge_row, paths, codes, depths, W, b):
    """``(Σ_i sw_i·(-log P(y_i | x_i)), gW, gb)`` from every weight row's score (``O(d·K)`` per row, as
    the kernel's path sums give in ``O(d·L)``); ``X`` dense or CSR, ``sw`` None for weights 1."""
    n = X.shape[0]
    sw = np.ones(n) if sw is None else sw
    scores = np.asarray(X @ W.T) + b
    logp = _node_log_softmax(scores, children, edge_row)  # (n, n_internal, arity)
    on_path = np.arange(paths.shape[1]) < depths[y][:, None]  # (n, L)
    nodes = np.where(on_path, paths[y], 0)
    code = codes[y].astype(np.int64)
    rows = np.broadcast_to(np.arange(n)[:, None], nodes.shape)
    loss = -np.sum(sw[:, None] * logp[rows, nodes, code], where=on_path)
    # d(-log P(c))/dz_e = P(e) - [e = c] at every node on the path, for the children e >= 1
    G = np.zeros_like(scores)  # each node appears at most once on a path
    arity = children.shape[1]
    for e in range(1, arity):
        has = on_path & (children[nodes, e] != 0)
        g = sw[:, None] * (np.exp(logp[rows, nodes, e]) - (code == e))
        G[rows[has], (edge_row[nodes] + e - 1)[has]] = g[has]
    return float(loss), np.asarray(X.T @ G).T, G.sum(axis=0)


def reference_topk(log_proba, k):
    """The ``k`` largest log-probabilities of each row and their classes, largest first (ties by class
    order), from the full table."""
    idx = np.argsort(-log_proba, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(log_proba, idx, axis=1)
