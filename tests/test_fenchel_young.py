"""sparsemax_loss and entmax15_loss: the Fenchel–Young definition computed here from a sort-based
prediction map, the entmax package's losses (PyTorch) when installed, finite differences, L >= 0 and
L = 0 exactly at the target."""

import numpy as np
import pytest

import luce
from test_sparse import entmax15_sorted, sparsemax_sorted

ALPHA = {"sparsemax": 2.0, "entmax15": 1.5}
LOSS = {"sparsemax": luce.sparsemax_loss, "entmax15": luce.entmax15_loss}
MAP = {"sparsemax": sparsemax_sorted, "entmax15": entmax15_sorted}


def fy_reference(name, z, q):
    """Ω*(z) + Ω(q) - <z, q> with Ω(p) = (Σ p^α - 1)/(α(α-1)) and Ω*(z) = <z, p*> - Ω(p*)."""
    alpha = ALPHA[name]
    p = MAP[name](z)

    def omega(r):
        return ((r**alpha).sum(-1) - 1) / (alpha * (alpha - 1))

    return (z * p).sum(-1) - omega(p) + omega(q) - (z * q).sum(-1)


def fd_grad(f, z, h=1e-6):
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        g[idx] = (-f(z + 2 * e) + 8 * f(z + e) - 8 * f(z - e) + f(z - 2 * e)) / (12 * h)
    return g


@pytest.mark.parametrize("name", list(LOSS))
def test_index_targets_match_definition_and_gradient(backend, rng, name):
    z = rng.standard_normal((8, 6)) * 1.5
    y = rng.integers(0, 6, 8)
    q = np.eye(6)[y]
    loss, grad = LOSS[name](z, y, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, fy_reference(name, z, q), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, MAP[name](z) - q, rtol=0, atol=1e-14)

    def total(zz):
        return fy_reference(name, zz, q).sum()

    np.testing.assert_allclose(grad, fd_grad(total, z), rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", list(LOSS))
def test_probability_targets_match_definition(backend, rng, name):
    z = rng.standard_normal((5, 3, 7))
    q = rng.dirichlet(np.ones(7) * 0.5, (5, 3))
    q[0, 0] = np.eye(7)[2]
    loss, grad = LOSS[name](z, q, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, fy_reference(name, z, q), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, MAP[name](z) - q, atol=1e-14)
    moved, g_moved = LOSS[name](np.moveaxis(z, -1, 1), np.moveaxis(q, -1, 1), axis=1, return_grad=True)
    np.testing.assert_allclose(moved, loss.mean(), rtol=1e-14)
    np.testing.assert_allclose(g_moved, np.moveaxis(grad, -1, 1) / 15, atol=1e-15)


@pytest.mark.parametrize("name", list(LOSS))
def test_against_entmax_package(rng, name):
    torch = pytest.importorskip("torch")
    entmax = pytest.importorskip("entmax")
    peer = entmax.SparsemaxLoss if name == "sparsemax" else entmax.Entmax15Loss
    z = rng.standard_normal((10, 12)) * 2
    y = rng.integers(0, 12, 10)
    y[:2] = 3
    loss, grad = LOSS[name](z, y, ignore_index=3, return_grad=True)
    zt = torch.tensor(z, requires_grad=True)
    want = peer(ignore_index=3, reduction="sum")(zt, torch.from_numpy(y)) / 8
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), atol=1e-14)


@pytest.mark.parametrize("name", list(LOSS))
def test_nonnegative_and_exactly_zero_at_the_target(backend, rng, name):
    z = rng.standard_normal((200, 5)) * 3
    y = rng.integers(0, 5, 200)
    assert (LOSS[name](z, y, reduction="none") >= 0).all()
    q = rng.dirichlet(np.ones(5), 200)
    assert (LOSS[name](z, q, reduction="none") >= 0).all()
    # Index target with the margin (1 for sparsemax, 2 for 1.5-entmax): the prediction is one-hot.
    margin = 1.0 if name == "sparsemax" else 2.0
    zm = np.where(np.eye(5)[y] > 0, 10.0, 10.0 - margin - rng.random((200, 5)))
    loss, grad = LOSS[name](zm, y, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, 0.0)
    np.testing.assert_array_equal(grad, 0.0)
    # Probability target equal to the prediction.
    p = luce.sparsemax(z) if name == "sparsemax" else luce.entmax15(z)
    np.testing.assert_array_equal(LOSS[name](z, p, reduction="none"), 0.0)


def test_reductions_ignore_and_edges(backend):
    z = np.array([[1.0, 2.0, 0.0], [3.0, -np.inf, 0.0], [np.nan, 1.0, 0.0], [np.inf, 0.0, 1.0]])
    loss = luce.sparsemax_loss(z, [0, 1, 0, 0], reduction="none")
    assert loss[0] > 0 and loss[1] == np.inf and np.isnan(loss[2]) and np.isnan(loss[3])
    per = luce.entmax15_loss(z[:2], [0, 2], reduction="none")
    assert luce.entmax15_loss(z[:2], [0, 2], reduction="sum") == pytest.approx(per.sum(), rel=1e-15)
    assert luce.entmax15_loss(z[:2], [0, -1], ignore_index=-1) == pytest.approx(per[0], rel=1e-15)
    assert np.isnan(luce.sparsemax_loss(z[:1], [5], ignore_index=5))
    with pytest.raises(ValueError, match="class index 3"):
        luce.sparsemax_loss(z, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="reduction"):
        luce.entmax15_loss(z, [0, 1, 2, 0], reduction="avg")
