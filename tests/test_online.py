"""OnlineSoftmax: any chunking and any merge order give the one-shot logsumexp/softmax to 1e-12
(relative, float64); mpmath for exact values; edge semantics as softmax."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as scipy_logsumexp
from scipy.special import softmax as scipy_softmax

import luce
from luce import OnlineSoftmax


def split(x, cuts, axis=-1):
    return np.split(x, sorted(cuts), axis=axis)


def fold(chunks, axis=-1):
    state = OnlineSoftmax(axis)
    for c in chunks:
        state.update(c)
    return state


def assert_rel(a, b, rtol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 300), max_size=12),
    order=st.randoms(use_true_random=False),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]),
)
def test_any_chunking_and_merge_order_equals_one_shot(cuts, order, scale):
    x = np.random.default_rng(0).standard_normal((3, 300)) * scale
    parts = split(x, cuts)
    states = [OnlineSoftmax().update(p) for p in parts]
    order.shuffle(states)
    # Merge as an unbalanced random tree.
    while len(states) > 1:
        i = order.randrange(len(states) - 1)
        states[i : i + 2] = [states[i].merge(states[i + 1])]
    total = states[0]
    assert_rel(total.logsumexp(), scipy_logsumexp(x, axis=-1))
    probs = np.concatenate([total.normalize(p) for p in parts], axis=-1)
    # Relative to 1e-12 in the normal range (subnormal probabilities carry fewer digits).
    np.testing.assert_allclose(probs, scipy_softmax(x, axis=-1), rtol=1e-12, atol=1e-300)
    logp = np.concatenate([total.log_normalize(p) for p in parts], axis=-1)
    np.testing.assert_allclose(logp, x - scipy_logsumexp(x, axis=-1, keepdims=True), rtol=1e-12, atol=1e-12)


def test_sequential_update_equals_merges_and_luce_logsumexp(rng):
    x = rng.standard_normal((4, 5, 97)) * 10
    seq = fold(split(x, [10, 11, 50, 96]))
    halves = fold(split(x[..., :40], [7])).merge(fold(split(x[..., 40:], [3, 30])))
    assert_rel(seq.logsumexp(), luce.logsumexp(x))
    assert_rel(halves.logsumexp(), seq.logsumexp())


def test_merge_is_associative_and_commutative(rng):
    x = rng.standard_normal((2, 90)) * 5
    a, b, c = (OnlineSoftmax().update(p) for p in split(x, [20, 50]))
    left = a.merge(b).merge(c)
    right = a.merge(b.merge(c))
    swapped = c.merge(a).merge(b)
    for s in (right, swapped):
        assert_rel(s.logsumexp(), left.logsumexp(), rtol=1e-15)
    # merge leaves both operands untouched
    assert_rel(a.logsumexp(), scipy_logsumexp(x[:, :20], axis=-1))


def test_log1p_form_keeps_tails():
    # Without it, 0 + log(1 + e^-40) rounds to 0. mpmath at 50 digits:
    mpmath.mp.dps = 50
    want = float(mpmath.log1p(mpmath.exp(-40)))
    state = OnlineSoftmax().update([[0.0]]).update([[-40.0]])
    assert state.logsumexp()[0] == pytest.approx(want, rel=1e-15)
    merged = OnlineSoftmax().update([[-40.0]]).merge(OnlineSoftmax().update([[0.0]]))
    assert merged.logsumexp()[0] == pytest.approx(want, rel=1e-15)


def test_exact_values_against_mpmath(rng):
    mpmath.mp.dps = 50
    x = rng.standard_normal(200) * 50
    state = fold(split(x[None], [7, 100, 101]))
    want = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in x))
    assert state.logsumexp()[0] == pytest.approx(float(want), rel=1e-15)


def test_axis_zero_masks_and_dtypes(rng):
    x = rng.standard_normal((40, 3)).astype(np.float32)
    mask = rng.random((40, 3)) < 0.6
    state = OnlineSoftmax(axis=0)
    state.update(x[:15], where=mask[:15]).update(x[15:], where=mask[15:])
    want = scipy_logsumexp(np.where(mask, x.astype(np.float64), -np.inf), axis=0)
    assert_rel(state.logsumexp(), want)
    p = state.normalize(x[15:], where=mask[15:])
    assert p.dtype == np.float32
    assert (p[~mask[15:]] == 0).all()
    assert state.max.shape == state.sum.shape == (3,)
    assert state.logsumexp().dtype == np.float64


def test_edge_semantics():
    inf, nan = np.inf, np.nan
    state = OnlineSoftmax().update([[1.0, 2.0], [inf, 0.0], [-inf, -inf], [nan, 0.0], [0.0, 1.0]])
    state.update([[3.0], [inf], [-inf], [1.0], [np.nan]])
    lse = state.logsumexp()
    assert lse[0] == pytest.approx(scipy_logsumexp([1.0, 2.0, 3.0]))
    assert lse[1] == inf and lse[2] == -inf and np.isnan(lse[3]) and np.isnan(lse[4])
    p = state.normalize([[3.0], [inf], [-inf], [1.0], [0.0]])
    assert p[1, 0] == 0.5  # two +inf entries share the mass
    assert p[2, 0] == 0.0 and np.isnan(p[3, 0]) and np.isnan(p[4, 0])
    lp = state.log_normalize([[3.0], [0.0], [-inf], [1.0], [0.0]])
    assert lp[1, 0] == -inf and lp[2, 0] == -inf
    empty = OnlineSoftmax().update(np.zeros((2, 0)))
    np.testing.assert_array_equal(empty.logsumexp(), -inf)
    np.testing.assert_array_equal(empty.merge(OnlineSoftmax().update([[0.0], [1.0]])).logsumexp(), [0.0, 1.0])


def test_merge_with_an_empty_state_and_errors(rng):
    x = rng.standard_normal((2, 5))
    full = OnlineSoftmax().update(x)
    assert_rel(OnlineSoftmax().merge(full).logsumexp(), full.logsumexp(), rtol=0)
    assert_rel(full.merge(OnlineSoftmax()).logsumexp(), full.logsumexp(), rtol=0)
    with pytest.raises(ValueError, match="no state yet"):
        OnlineSoftmax().logsumexp()
    with pytest.raises(ValueError, match="batch shape"):
        full.update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="cannot merge"):
        full.merge(OnlineSoftmax().update(np.zeros((3, 4))))
    with pytest.raises(TypeError, match="OnlineSoftmax"):
        full.merge(x)
    with pytest.raises(ValueError, match="scalar"):
        OnlineSoftmax().update(1.0)
    with pytest.raises(ValueError, match="out of bounds"):
        OnlineSoftmax(axis=3).update(x)
    with pytest.raises(TypeError, match="axis"):
        OnlineSoftmax(axis=(0, 1))
    assert "batch_shape=(2,)" in repr(full)


def test_streaming_a_long_axis_matches_softmax(rng):
    # The use case: normalise a vocabulary chunk by chunk, never holding the whole row of probabilities.
    x = rng.standard_normal((2, 10_000)) * 4
    state = OnlineSoftmax()
    for start in range(0, 10_000, 1_024):
        state.update(x[:, start : start + 1_024])
    p_last = state.normalize(x[:, -16:])
    assert_rel(p_last, luce.softmax(x)[:, -16:])
    assert math.isclose(float(state.sum[0] * np.exp(state.max[0])), float(np.exp(x[0]).sum()), rel_tol=1e-12)
