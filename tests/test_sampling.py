"""sample, gumbel_softmax and topk_softmax.

Sampled frequencies are checked against the probabilities with a chi-square test at a fixed seed
(p > 1e-4: a correct sampler fails it with probability 1e-4 for a given seed, and the seed is fixed,
so the test is deterministic; a sampler off by a few percent on 20 000 draws fails it).
"""

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from scipy.stats import chisquare

import luce

N_DRAWS = 20_000


def assert_frequencies(draws, probs):
    probs = np.asarray(probs, dtype=float)
    counts = np.bincount(np.asarray(draws).ravel(), minlength=probs.size)
    support = probs > 0
    assert counts[~support].sum() == 0, "drew a category of probability 0"
    expected = probs[support] / probs[support].sum() * counts.sum()
    result = chisquare(counts[support], expected)
    assert result.pvalue > 1e-4, (counts, expected)


# --- sample -----------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_sample_frequencies_follow_softmax(temperature):
    x = np.array([1.0, 0.2, -0.5, 2.0, 0.0, -np.inf])
    draws = luce.sample(x, temperature=temperature, size=N_DRAWS, rng=12345)
    assert draws.shape == (N_DRAWS,) and draws.dtype == np.int64
    assert_frequencies(draws, scipy_softmax(np.where(np.isinf(x), -np.inf, x / temperature)))


def test_sample_a_wrong_distribution_is_detected():
    # The check has power: a 5% shift of mass between two categories is rejected.
    x = np.array([0.0, 0.0, 0.0, 0.0])
    draws = luce.sample(x, size=N_DRAWS, rng=7)
    with pytest.raises(AssertionError):
        assert_frequencies(draws, [0.30, 0.20, 0.25, 0.25])


def test_sample_top_k_renormalises_over_the_k_largest():
    x = np.array([3.0, 1.0, 2.5, -1.0, 0.5])
    draws = luce.sample(x, top_k=3, size=N_DRAWS, rng=1)
    keep = np.array([True, True, True, False, False])
    assert_frequencies(draws, np.where(keep, scipy_softmax(x), 0.0))


def test_sample_top_p_keeps_the_nucleus():
    x = np.log(np.array([0.5, 0.25, 0.15, 0.06, 0.04]))
    draws = luce.sample(x, top_p=0.8, size=N_DRAWS, rng=2)
    # 0.5 + 0.25 = 0.75 < 0.8, so the nucleus is the first three categories.
    assert_frequencies(draws, [0.5, 0.25, 0.15, 0.0, 0.0])
    greedy = luce.sample(x, top_p=0.3, size=50, rng=3)
    np.testing.assert_array_equal(greedy, 0)


def test_sample_batches_axis_and_size_shapes(rng):
    x = rng.standard_normal((3, 6, 2))
    draws = luce.sample(x, axis=1, size=(4, 5), rng=0)
    assert draws.shape == (4, 5, 3, 2)
    assert draws.min() >= 0 and draws.max() < 6
    # Each distribution of the batch is sampled from its own logits.
    one = luce.sample(np.array([[0.0, 50.0, 0.0], [50.0, 0.0, 0.0]]), size=100, rng=0)
    assert (one[:, 0] == 1).all() and (one[:, 1] == 0).all()
    assert luce.sample(7.0, rng=0) == 0


def test_sample_batch_frequencies():
    x = np.array([[0.0, 1.0, 2.0], [2.0, 2.0, -1.0]])
    draws = luce.sample(x, size=N_DRAWS, rng=99)
    assert_frequencies(draws[:, 0], scipy_softmax(x[0]))
    assert_frequencies(draws[:, 1], scipy_softmax(x[1]))


def test_sample_is_deterministic_under_a_seed(rng):
    x = rng.standard_normal((4, 30))
    a = luce.sample(x, size=10, rng=42, top_k=10, top_p=0.9)
    b = luce.sample(x, size=10, rng=np.random.default_rng(42), top_k=10, top_p=0.9)
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(5)
    first, second = luce.sample(x, size=10, rng=gen), luce.sample(x, size=10, rng=gen)
    assert (first != second).any()  # a Generator advances


def test_sample_plus_infinity_entries_are_drawn_uniformly():
    x = np.array([np.inf, 5.0, np.inf, np.inf])
    assert_frequencies(luce.sample(x, size=N_DRAWS, rng=11), [1 / 3, 0, 1 / 3, 1 / 3])


def test_sample_infinite_temperature_is_uniform_over_finite():
    x = np.array([10.0, -3.0, -np.inf, 0.0])
    assert_frequencies(luce.sample(x, temperature=np.inf, size=N_DRAWS, rng=4), [1 / 3, 1 / 3, 0, 1 / 3])


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        ([0.0, np.nan], {}, ValueError, "NaN in distribution 0"),
        ([[0.0, 1.0], [-np.inf, -np.inf]], {}, ValueError, "no finite logit in distribution 1"),
        (np.zeros((2, 0)), {}, ValueError, "no categories"),
        ([0.0, 1.0], {"top_k": 0}, ValueError, "top_k"),
        ([0.0, 1.0], {"top_p": 0.0}, ValueError, "top_p"),
        ([0.0, 1.0], {"top_p": "0.5"}, TypeError, "top_p"),
        ([0.0, 1.0], {"rng": "seed"}, TypeError, "rng"),
        ([0.0, 1.0], {"temperature": -1.0}, ValueError, "temperature"),
        ([0.0, 1.0], {"size": -2}, ValueError, "size"),
        ([0.0, 1.0], {"axis": (0,)}, TypeError, "axis"),
    ],
)
def test_sample_bad_arguments(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        luce.sample(x, **kwargs)


# --- gumbel_softmax ---------------------------------------------------------------------------


def test_gumbel_softmax_is_a_distribution_and_deterministic(rng):
    x = rng.standard_normal((5, 8))
    y = luce.gumbel_softmax(x, 0.7, rng=3)
    assert (y >= 0).all()
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(y, luce.gumbel_softmax(x, 0.7, rng=np.random.default_rng(3)))
    # It is softmax((x + g)/T) for the Generator's Gumbel draws.
    g = np.random.default_rng(3).gumbel(size=x.shape)
    np.testing.assert_allclose(y, scipy_softmax((x + g) / 0.7, axis=-1), rtol=1e-12)


def test_gumbel_softmax_hard_samples_follow_softmax():
    x = np.array([0.5, -1.0, 1.5, 0.0])
    hard = luce.gumbel_softmax(np.tile(x, (N_DRAWS, 1)), 0.3, hard=True, rng=21)
    assert set(np.unique(hard)) == {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(-1), 1.0)
    assert_frequencies(hard.argmax(-1), scipy_softmax(x))


def test_gumbel_softmax_axis_dtype_and_edges():
    x = np.array([[1.0, 2.0], [-np.inf, -np.inf], [np.nan, 0.0], [0.0, -np.inf]], dtype=np.float32)
    y = luce.gumbel_softmax(x.T, axis=0, rng=0).T
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0].sum(), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(y[1], 0.0)
    assert np.isnan(y[2]).all()
    np.testing.assert_array_equal(y[3], [1.0, 0.0])
    hard = luce.gumbel_softmax(x, hard=True, rng=0)
    np.testing.assert_array_equal(hard[1], 0.0)
    assert np.isnan(hard[2]).all()
    np.testing.assert_array_equal(hard[3], [1.0, 0.0])


# --- topk_softmax -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 4, 40])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_topk_softmax_matches_full_softmax(backend, rng, k, dtype):
    x = (rng.standard_normal((6, 40)) * 3).astype(dtype)
    x[0, :5] = x[0, 7]  # ties come out in increasing index order
    probs, idx = luce.topk_softmax(x, k)
    full = scipy_softmax(x.astype(np.float64), axis=-1)
    order = np.argsort(-x.astype(np.float64), axis=-1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, order)
    assert probs.dtype == dtype and idx.dtype == np.int64
    tol = 1e-15 if dtype == np.float64 else 1e-7
    np.testing.assert_allclose(probs, np.take_along_axis(full, order, -1), rtol=tol, atol=tol)


def test_topk_softmax_axis_and_edges(backend):
    inf, nan = np.inf, np.nan
    x = np.array([[1.0, 3.0, 2.0], [inf, 0.0, inf], [-inf, -inf, -inf], [0.0, nan, 1.0]])
    probs, idx = luce.topk_softmax(x.T, 2, axis=0)
    assert probs.shape == idx.shape == (2, 4)
    np.testing.assert_allclose(probs[:, 0], scipy_softmax([1.0, 3.0, 2.0])[[1, 2]])
    np.testing.assert_array_equal(idx[:, 0], [1, 2])
    np.testing.assert_array_equal(probs[:, 1], [0.5, 0.5])
    np.testing.assert_array_equal(idx[:, 1], [0, 2])
    np.testing.assert_array_equal(probs[:, 2], 0.0)
    assert np.isnan(probs[:, 3]).all()
    # Huge logits: exact, no overflow.
    p, i = luce.topk_softmax([1e4, 0.0, -1e4], 2)
    np.testing.assert_array_equal(p, [1.0, np.exp(-1e4)])
    np.testing.assert_array_equal(i, [0, 1])


def test_topk_softmax_bad_k():
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 3\]"):
        luce.topk_softmax([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="k must be"):
        luce.topk_softmax([1.0, 2.0, 3.0], 1.5)
