"""Shift invariance at any magnitude, for every map of the softmax family, on both backends.

Each map depends on its scores only through the differences ``x - max x`` (logsumexp: up to adding the
shift). The scores are ``c + y`` with ``y`` on a grid that ``c + y`` represents exactly, so the shifted
input holds exactly the differences of ``y``: every map must give ``map(y)`` to rounding, whatever the
magnitude of ``c`` (a map that forms ``x - logsumexp(x)`` loses ``|c|·eps`` there).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luce
from luce._kernels import use_backend

BACKENDS = ["reference", "compiled"]

# (shift, grid step): c + k·step is exact for |k·step| < |c| / 2 in float64.
SHIFTS = [2.0**20, -(2.0**20), 2.0**40, 2.0**50, -(2.0**50)]
GRID = 0.25


def _targets(n_classes, n_rows):
    return np.arange(n_rows) % n_classes


def _online(x, log):
    state = luce.OnlineSoftmax().update(x[:, :2]).update(x[:, 2:])
    return state.log_normalize(x) if log else state.normalize(x)


def _linear_ce(z, **kwargs):
    # logits = X @ W.T with X a column of ones: the products are exact, z comes through unchanged.
    n_rows, n_classes = z.shape
    target = _targets(n_classes, n_rows)
    loss_rows = [
        luce.linear_cross_entropy(np.ones((1, 1)), z[i][:, None], target[i : i + 1], **kwargs)
        for i in range(n_rows)
    ]
    return np.array([float(v) for v in loss_rows])


def _linear_ce_grad(z, chunk_size):
    n_rows, n_classes = z.shape
    target = _targets(n_classes, n_rows)
    grads = []
    for i in range(n_rows):
        _, (_, _, db) = luce.linear_cross_entropy(
            np.ones((1, 1)), np.zeros((n_classes, 1)), target[i : i + 1], bias=z[i],
            chunk_size=chunk_size, label_smoothing=0.1, return_grad=True,
        )  # fmt: skip
        grads.append(db)
    return np.array(grads)


# name -> function of a (rows, classes) float64 array, returning the arrays compared.
MAPS = {
    "softmax": lambda x: luce.softmax(x),
    "softmax_T": lambda x: luce.softmax(x, temperature=0.5),
    "log_softmax": lambda x: luce.log_softmax(x),
    "sparsemax": lambda x: luce.sparsemax(x),
    "entmax15": lambda x: luce.entmax15(x),
    "entmax_bisect": lambda x: luce.entmax_bisect(x, alpha=1.3),
    "hardmax": lambda x: luce.hardmax(x),
    "gumbel_softmax": lambda x: luce.gumbel_softmax(x, rng=7),
    "gumbel_hard": lambda x: luce.gumbel_softmax(x, hard=True, rng=7),
    "sample": lambda x: luce.sample(x, size=5, rng=7),
    "sample_top": lambda x: luce.sample(x, top_k=3, top_p=0.8, size=5, rng=7),
    "topk_softmax": lambda x: luce.topk_softmax(x, 3),
    "online_normalize": lambda x: _online(x, log=False),
    "online_log_normalize": lambda x: _online(x, log=True),
    "cross_entropy": lambda x: luce.cross_entropy(x, _targets(x.shape[1], x.shape[0]), reduction="none"),
    "cross_entropy_grad": lambda x: luce.cross_entropy(
        x,
        _targets(x.shape[1], x.shape[0]),
        label_smoothing=0.2,
        weight=np.arange(1.0, x.shape[1] + 1),
        return_grad=True,
    ),
    "cross_entropy_probs": lambda x: luce.cross_entropy(
        x, np.full(x.shape, 1.0 / x.shape[1]), return_grad=True
    ),
    "sparsemax_loss": lambda x: luce.sparsemax_loss(x, _targets(x.shape[1], x.shape[0]), return_grad=True),
    "entmax15_loss": lambda x: luce.entmax15_loss(x, _targets(x.shape[1], x.shape[0]), return_grad=True),
    "linear_cross_entropy": lambda x: _linear_ce(x),
    "linear_cross_entropy_smoothed": lambda x: _linear_ce(x, label_smoothing=0.3),
    "linear_cross_entropy_grad": lambda x: _linear_ce_grad(x, chunk_size=None),
    "linear_cross_entropy_grad_chunked": lambda x: _linear_ce_grad(x, chunk_size=2),
}


def _flat(result):
    if isinstance(result, tuple):
        return [a for r in result for a in _flat(r)]
    return [np.asarray(result, dtype=np.float64)]


def _assert_same(shifted, exact, rtol=1e-12):
    for a, b in zip(_flat(shifted), _flat(exact), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300)


steps = st.lists(st.integers(-80, 80), min_size=5, max_size=5)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("name", list(MAPS))
@settings(max_examples=15, deadline=None)
@given(rows=st.lists(steps, min_size=1, max_size=3), which=st.integers(0, len(SHIFTS) - 1))
def test_every_map_is_shift_invariant_at_large_magnitude(name, backend_name, rows, which):
    y = np.array(rows, dtype=np.float64) * GRID
    c = SHIFTS[which]
    x = c + y
    assert np.array_equal(x - c, y)  # the grid is exact at this magnitude
    with use_backend(backend_name):
        _assert_same(MAPS[name](x), MAPS[name](y))


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(rows=st.lists(steps, min_size=1, max_size=3), which=st.integers(0, len(SHIFTS) - 1))
def test_logsumexp_moves_with_the_shift(backend_name, rows, which):
    y = np.array(rows, dtype=np.float64) * GRID
    c = SHIFTS[which]
    with use_backend(backend_name):
        value = luce.logsumexp(c + y)
        expected = c + luce.logsumexp(y)
    assert np.all(np.abs(value - expected) <= np.spacing(np.abs(expected)))


@pytest.mark.parametrize("shift", [1e17, -1e17, 1e300], ids=["1e17", "-1e17", "1e300"])
def test_ties_at_huge_magnitude_share_the_mass(shift, backend):
    # The reproduction: equal scores of magnitude 1e17 must get probability 1/2 each, not 1.
    x = np.array([[shift, shift]])
    half = np.full((1, 2), 0.5)
    np.testing.assert_array_equal(luce.topk_softmax(x, 2)[0], half)
    np.testing.assert_array_equal(luce.OnlineSoftmax().update(x).normalize(x), half)
    np.testing.assert_allclose(luce.OnlineSoftmax().update(x).log_normalize(x), np.log(half), rtol=1e-15)
    loss = luce.linear_cross_entropy(np.ones((1, 1)), np.full((2, 1), shift), [0])
    np.testing.assert_allclose(float(loss), np.log(2.0), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32], ids=["f32"])
def test_shift_invariance_in_float32(dtype, backend, rng):
    y = (rng.integers(-40, 40, size=(4, 9)) * 0.25).astype(dtype)
    c = dtype(2.0**18)
    x = c + y
    assert np.array_equal(x - c, y)
    for name in ("softmax", "log_softmax", "topk_softmax", "online_normalize", "cross_entropy_grad"):
        _assert_same(MAPS[name](x), MAPS[name](y), rtol=1e-6)
