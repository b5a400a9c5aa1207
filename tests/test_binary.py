"""binary_cross_entropy_with_logits: against torch (weight, pos_weight, reductions, gradients), mpmath
exact values at large |logits|, and fourth-order finite differences."""

import mpmath
import numpy as np
import pytest

import luce


def fd_grad(f, x, h=1e-4):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return g


def mp_loss(x, y, pw=1.0, w=1.0):
    """-w [pw·y·log σ(x) + (1 - y)·log(1 - σ(x))] at 50 digits."""
    mpmath.mp.dps = 50
    x, y = mpmath.mpf(float(x)), mpmath.mpf(float(y))
    sig = 1 / (1 + mpmath.exp(-x))
    one_minus = 1 / (1 + mpmath.exp(x))
    total = 0
    if y != 0:
        total -= pw * y * mpmath.log(sig)
    if y != 1:
        total -= (1 - y) * mpmath.log(one_minus)
    return float(w * total)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_matches_torch(rng, reduction, weights):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((8, 5)) * 4
    y = (rng.random((8, 5)) < 0.4).astype(float)
    y[0] = rng.random(5)  # soft labels
    kw = {}
    if weights in ("weight", "both"):
        kw["weight"] = rng.uniform(0.1, 2.0, (8, 1))
    if weights in ("pos_weight", "both"):
        kw["pos_weight"] = rng.uniform(0.5, 3.0, 5)
    loss, grad = luce.binary_cross_entropy_with_logits(x, y, reduction=reduction, return_grad=True, **kw)
    xt = torch.tensor(x, requires_grad=True)
    tkw = {k: torch.from_numpy(v) for k, v in kw.items()}
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.from_numpy(y), reduction=reduction, **tkw
    )
    want.sum().backward()
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("x", [-1e4, -745.0, -40.0, -1e-8, 0.0, 3.0, 40.0, 800.0, 1e4])
@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
def test_exact_values_at_any_scale(x, y):
    got = luce.binary_cross_entropy_with_logits([x], [y], pos_weight=[2.0])
    want = mp_loss(x, y, pw=2.0)
    assert got == pytest.approx(want, rel=1e-14, abs=1e-300)


def test_gradient_keeps_relative_accuracy_in_the_tails():
    # σ(-x) at x = 40 is e^-40; computing it as 1 - σ(x) would give 0.
    _, grad = luce.binary_cross_entropy_with_logits([40.0], [1.0], return_grad=True)
    assert grad[0] == pytest.approx(-np.exp(-40.0) / (1 + np.exp(-40.0)), rel=1e-15)


def test_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((4, 3)) * 2
    y = rng.random((4, 3))
    w = rng.uniform(0.5, 2.0, (4, 3))
    pw = rng.uniform(0.5, 2.0, 3)
    _, grad = luce.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, return_grad=True)

    def f(xx):
        return luce.binary_cross_entropy_with_logits(xx, y, weight=w, pos_weight=pw)

    np.testing.assert_allclose(grad, fd_grad(f, x), rtol=0, atol=1e-10)


def test_loss_is_nonnegative_and_zero_at_a_certain_target():
    assert luce.binary_cross_entropy_with_logits([np.inf, -np.inf], [1.0, 0.0]) == 0.0
    loss = luce.binary_cross_entropy_with_logits(
        np.linspace(-50, 50, 101), np.full(101, 0.7), reduction="none"
    )
    assert (loss >= 0).all()
    assert np.isnan(luce.binary_cross_entropy_with_logits([np.nan, 1.0], [1.0, 1.0], reduction="none")[0])


def test_dtypes_and_empty_input():
    assert luce.binary_cross_entropy_with_logits(np.zeros(3, np.float32), np.ones(3)).dtype == np.float32
    assert luce.binary_cross_entropy_with_logits(np.zeros(3, np.float16), np.ones(3)).dtype == np.float16
    assert np.isnan(luce.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0)))
    assert luce.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0), reduction="sum") == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": np.ones(4)}, ValueError, "target must have the shape"),
        ({"weight": np.ones(4)}, ValueError, "weight of shape"),
        ({"pos_weight": np.ones(2)}, ValueError, "pos_weight of shape"),
        ({"reduction": "max"}, ValueError, "reduction"),
        ({"target": np.ones(3, dtype=complex)}, TypeError, "complex"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"logits": np.zeros(3), "target": np.ones(3), **kwargs}
    with pytest.raises(error, match=match):
        luce.binary_cross_entropy_with_logits(**args)
