"""Gradients of softmax/log_softmax: vjps against finite differences and the explicit Jacobian."""

import numpy as np
import pytest

import luce


def fd_jacobian(f, x, h=1e-5):
    """4th-order central differences of f at x (float64): J[i, j] = d f_i / d x_j."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_softmax_vjp_matches_finite_differences(temperature, rng):
    x = rng.standard_normal(6)
    c = rng.standard_normal(6)
    jac = fd_jacobian(lambda z: luce.softmax(z / temperature), x)
    p = luce.softmax(x / temperature)
    np.testing.assert_allclose(luce.softmax_vjp(p, c) / temperature, c @ jac, rtol=1e-8, atol=1e-10)


def test_log_softmax_vjp_matches_finite_differences(rng):
    x = 3 * rng.standard_normal(7)
    c = rng.standard_normal(7)
    jac = fd_jacobian(luce.log_softmax, x)
    np.testing.assert_allclose(luce.log_softmax_vjp(luce.log_softmax(x), c), c @ jac, rtol=1e-8, atol=1e-10)


def test_jacobian_matches_finite_differences_and_vjp(rng):
    x = rng.standard_normal(5)
    p = luce.softmax(x)
    jac = luce.softmax_jacobian(p)
    np.testing.assert_allclose(jac, fd_jacobian(luce.softmax, x), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(jac, jac.T)  # symmetric
    np.testing.assert_allclose(jac.sum(axis=0), 0, atol=1e-15)
    for _ in range(3):
        c = rng.standard_normal(5)
        np.testing.assert_allclose(luce.softmax_vjp(p, c), c @ jac, rtol=1e-13, atol=1e-15)


def test_jacobian_batches_over_leading_axes(rng):
    p = luce.softmax(rng.standard_normal((2, 3, 4)))
    jac = luce.softmax_jacobian(p)
    assert jac.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(jac[1, 2], np.diag(p[1, 2]) - np.outer(p[1, 2], p[1, 2]))
    with pytest.raises(ValueError, match="probs must have at least one axis"):
        luce.softmax_jacobian(0.5)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vjp_any_axis(axis, rng):
    x = rng.standard_normal((3, 4, 5))
    c = rng.standard_normal((3, 4, 5))
    moved_x, moved_c = np.moveaxis(x, axis, -1), np.moveaxis(c, axis, -1)
    expected = np.empty_like(moved_x)
    for idx in np.ndindex(moved_x.shape[:-1]):
        expected[idx] = c_row = moved_c[idx]
        expected[idx] = c_row @ luce.softmax_jacobian(luce.softmax(moved_x[idx]))
    got = luce.softmax_vjp(luce.softmax(x, axis), c, axis)
    np.testing.assert_allclose(np.moveaxis(got, axis, -1), expected, rtol=1e-12, atol=1e-14)


def test_masked_vjp_is_the_gradient_of_the_unmasked_part(rng):
    x = rng.standard_normal(6)
    c = rng.standard_normal(6)
    keep = np.array([True, False, True, True, False, True])
    p = luce.softmax(x, where=keep)
    g = luce.softmax_vjp(p, c, where=keep)
    sub = luce.softmax_jacobian(luce.softmax(x[keep]))
    np.testing.assert_allclose(g[keep], c[keep] @ sub, rtol=1e-12)
    assert np.all(g[~keep] == 0)
    lg = luce.log_softmax_vjp(luce.log_softmax(x, where=keep), c, where=keep)
    sub_fd = fd_jacobian(luce.log_softmax, x[keep])
    np.testing.assert_allclose(lg[keep], c[keep] @ sub_fd, rtol=1e-8)
    assert np.all(lg[~keep] == 0)


def test_vjp_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"cotangent of shape \(2,\) must have the shape of probs \(3,\)"):
        luce.softmax_vjp([0.2, 0.3, 0.5], [1.0, 2.0])


def test_vjp_dtype_preserved():
    p = luce.softmax(np.array([1.0, 2.0], np.float32))
    assert luce.softmax_vjp(p, np.ones(2, np.float32)).dtype == np.float32
    assert luce.log_softmax_vjp(np.log(p), np.ones(2, np.float32)).dtype == np.float32
