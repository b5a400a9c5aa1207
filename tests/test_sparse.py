"""sparsemax, entmax15, entmax_bisect and their vjps.

References written here, independently of luce: the sort-based definitions (per row, in Python
float64), a root finder (scipy.optimize.brentq) for general α, the closed-form Jacobians, central finite
differences, and the `entmax` package (PyTorch) when installed. Every test that can reach a kernel runs
against both backends.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

import luce

# --- independent references -------------------------------------------------------------------


def sparsemax_sorted(z):
    """Martins & Astudillo (2016), Algorithm 1, one row at a time."""
    z = np.asarray(z, dtype=np.float64)
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        row = z[idx]
        s = np.sort(row)[::-1]
        cs = np.cumsum(s)
        k = max(j for j in range(1, len(s) + 1) if 1 + j * s[j - 1] > cs[j - 1])
        tau = (cs[k - 1] - 1) / k
        out[idx] = np.maximum(row - tau, 0)
    return out


def entmax15_sorted(z):
    """Peters, Niculae & Martins (2019), Algorithm 2 (on z/2), one row at a time."""
    z = np.asarray(z, dtype=np.float64) / 2
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        row = z[idx]
        s = np.sort(row)[::-1]
        best = None
        for k in range(1, len(s) + 1):
            top = s[:k]
            mean = top.mean()
            ss = ((top - mean) ** 2).sum()
            delta = (1 - ss) / k
            if delta < 0:
                break
            tau = mean - math.sqrt(delta)
            if tau <= s[k - 1]:
                best = tau
        out[idx] = np.maximum(row - best, 0) ** 2
    return out


def entmax_root(z, alpha):
    """α-entmax by a bracketing root finder on τ (a different algorithm from luce's)."""
    z = (alpha - 1) * np.asarray(z, dtype=np.float64)
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        row = z[idx] - z[idx].max()
        f = lambda tau, row=row: (np.maximum(row - tau, 0) ** (1 / (alpha - 1))).sum() - 1  # noqa: E731
        tau = brentq(f, -1.0, 0.0, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
        p = np.maximum(row - tau, 0) ** (1 / (alpha - 1))
        out[idx] = p / p.sum()
    return out


def jacobian_closed_form(p, power):
    """J = diag(s) - s sᵀ / Σs with s = p^power on the support (power 0: the indicator)."""
    s = np.where(p > 0, p**power if power else 1.0, 0.0)
    return np.diag(s) - np.outer(s, s) / s.sum()


MAPS = {
    "sparsemax": (luce.sparsemax, sparsemax_sorted),
    "entmax15": (luce.entmax15, entmax15_sorted),
    "bisect-1.5": (lambda x, **k: luce.entmax_bisect(x, 1.5, **k), entmax15_sorted),
    "bisect-2": (lambda x, **k: luce.entmax_bisect(x, 2.0, **k), sparsemax_sorted),
}


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MAPS))
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4], ids=lambda s: f"scale{s:g}")
def test_matches_sort_based_definition(backend, rng, name, scale):
    ours, reference = MAPS[name]
    x = rng.standard_normal((7, 53)) * scale
    np.testing.assert_allclose(ours(x), reference(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_float32_large_rows_match_definition(backend, rng, name):
    # The kernel's linear-time search on long rows: random, all candidates (tiny scale), many ties.
    ours, reference = MAPS[name]
    rows = [
        rng.standard_normal(5000),
        rng.standard_normal(5000) * 1e-3,
        np.round(rng.standard_normal(5000) * 2) / 2,
        np.zeros(5000),
    ]
    x = np.stack(rows).astype(np.float32)
    got = ours(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference(x.astype(np.float64)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8, 2.0, 3.0])
def test_entmax_bisect_matches_root_finder(backend, rng, alpha):
    x = rng.standard_normal((5, 40)) * 2
    np.testing.assert_allclose(luce.entmax_bisect(x, alpha), entmax_root(x, alpha), rtol=0, atol=1e-12)


def test_entmax_bisect_alpha_one_is_softmax(rng):
    x = rng.standard_normal((3, 9))
    np.testing.assert_array_equal(luce.entmax_bisect(x, 1.0), luce.softmax(x))


def test_entmax_bisect_few_iterations_still_sums_to_one(backend, rng):
    x = rng.standard_normal((4, 30))
    p = luce.entmax_bisect(x, 1.3, n_iter=1)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)
    assert (p >= 0).all()


def test_known_values():
    np.testing.assert_allclose(luce.sparsemax([2.0, 1.5, 0.1]), [0.75, 0.25, 0.0], rtol=0, atol=1e-15)
    # entmax15([2, 1, -2]): τ from (1 - τ)² + (1/2 - τ)² = 1 → τ = (3 - √7)/4.
    tau = (3 - math.sqrt(7)) / 4
    expected = [(1 - tau) ** 2, (0.5 - tau) ** 2, 0.0]
    np.testing.assert_allclose(luce.entmax15([2.0, 1.0, -2.0]), expected, rtol=1e-15)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15", "bisect-1.5"])
def test_against_entmax_package(backend, rng, name):
    torch = pytest.importorskip("torch")
    entmax = pytest.importorskip("entmax")
    peer = {
        "sparsemax": lambda t: entmax.sparsemax(t, dim=-1),
        "entmax15": lambda t: entmax.entmax15(t, dim=-1),
        "bisect-1.5": lambda t: entmax.entmax_bisect(t, 1.5, dim=-1, n_iter=60),
    }[name]
    x = rng.standard_normal((6, 300)) * 3
    ours = MAPS[name][0]
    np.testing.assert_allclose(ours(x), peer(torch.from_numpy(x)).numpy(), rtol=0, atol=1e-10)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(ours(x32), peer(torch.from_numpy(x32)).numpy(), rtol=0, atol=2e-6)


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MAPS))
def test_simplex_shift_invariance_and_exact_zeros(backend, rng, name):
    ours = MAPS[name][0]
    x = rng.standard_normal((4, 25)) * 3
    p = ours(x)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(ours(x + 123.0), p, rtol=0, atol=1e-12)
    margin = 1.0 if name in ("sparsemax", "bisect-2") else 2.0
    far = x <= x.max(-1, keepdims=True) - margin
    assert (p[far] == 0).all()
    order = np.argsort(x, axis=-1)
    assert (np.diff(np.take_along_axis(p, order, -1), axis=-1) >= 0).all()


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2)], ids=str)
def test_axis_matches_moving_the_axis_last(backend, rng, axis):
    x = rng.standard_normal((4, 5, 6))
    got = luce.sparsemax(x, axis=axis)
    axes = axis if isinstance(axis, tuple) else (axis,)
    moved = np.moveaxis(x, axes, range(-len(axes), 0))
    flat = moved.reshape(*moved.shape[: moved.ndim - len(axes)], -1)
    want = np.moveaxis(sparsemax_sorted(flat).reshape(moved.shape), range(-len(axes), 0), axes)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_dtypes_layouts_and_inputs_are_respected():
    x = np.arange(12.0).reshape(3, 4) / 3
    assert luce.sparsemax(x.astype(np.float16)).dtype == np.float16
    assert luce.entmax15(x.astype(np.float32)).dtype == np.float32
    assert luce.sparsemax(np.arange(4)).dtype == np.float64
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_allclose(luce.sparsemax(ro), sparsemax_sorted(x), atol=1e-15)
    np.testing.assert_allclose(luce.sparsemax(np.asfortranarray(x)), sparsemax_sorted(x), atol=1e-15)
    np.testing.assert_allclose(luce.sparsemax(x[:, ::-1]), sparsemax_sorted(x[:, ::-1]), atol=1e-15)
    kept = x.copy()
    luce.entmax15(kept)
    np.testing.assert_array_equal(kept, x)
    assert luce.sparsemax(3.0) == 1.0
    assert luce.sparsemax(np.zeros((2, 0))).shape == (2, 0)
    with pytest.raises(TypeError, match="complex"):
        luce.sparsemax(np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match="out of bounds"):
        luce.entmax15(np.ones((2, 3)), axis=2)


def test_array_api_input_round_trips():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray([[2.0, 1.5, 0.1]])
    got = luce.sparsemax(x)
    assert type(got) is type(x)
    np.testing.assert_allclose(np.asarray(got), [[0.75, 0.25, 0.0]], atol=1e-15)


# --- edge semantics ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MAPS))
def test_edge_semantics_follow_softmax(backend, name):
    ours = MAPS[name][0]
    inf, nan = np.inf, np.nan
    x = np.array(
        [
            [1.0, 2.0, 3.0, 0.5],
            [inf, 1.0, inf, 2.0],
            [-inf, -inf, -inf, -inf],
            [1.0, nan, 2.0, 0.0],
            [-inf, 0.0, -inf, 0.3],
        ]
    )
    p = ours(x)
    np.testing.assert_allclose(p[0].sum(), 1.0)
    inf_row = x[1] == inf
    np.testing.assert_array_equal(p[1], np.where(inf_row, 1.0 / inf_row.sum(), 0.0))
    np.testing.assert_array_equal(p[2], 0.0)
    assert np.isnan(p[3]).all()
    finite = np.isfinite(x[4])
    np.testing.assert_allclose(p[4][finite], ours(x[4][finite]), atol=1e-15)
    assert (p[4][~finite] == 0).all()


@pytest.mark.parametrize("name", list(MAPS))
def test_where_mask_equals_dropping_the_entries(backend, rng, name):
    ours = MAPS[name][0]
    x = rng.standard_normal((6, 11))
    x[0, 3] = np.nan  # a NaN at a masked position is ignored
    mask = rng.random((6, 11)) < 0.7
    mask[0, 3] = False
    mask[1] = False  # fully masked: zeros
    mask[2, :] = False
    mask[2, 4] = True
    p = ours(x, where=mask)
    assert (p[~mask] == 0).all()
    np.testing.assert_array_equal(p[1], 0.0)
    assert p[2, 4] == 1.0
    for i in (0, 3, 4, 5):
        np.testing.assert_allclose(p[i][mask[i]], ours(x[i][mask[i]]), atol=1e-14)


# --- gradients --------------------------------------------------------------------------------

VJPS = {
    "sparsemax": (luce.sparsemax, luce.sparsemax_vjp, 0.0),
    "entmax15": (luce.entmax15, luce.entmax15_vjp, 0.5),
    "bisect-1.3": (
        lambda x: luce.entmax_bisect(x, 1.3),
        lambda p, c, **k: luce.entmax_bisect_vjp(p, c, 1.3, **k),
        0.7,
    ),
}


@pytest.mark.parametrize("name", list(VJPS))
def test_vjp_equals_closed_form_jacobian_and_finite_differences(rng, name):
    forward, vjp, power = VJPS[name]
    x = rng.standard_normal(12) * 1.5
    c = rng.standard_normal(12)
    p = forward(x)
    jac = jacobian_closed_form(p, power)
    np.testing.assert_allclose(vjp(p, c), jac.T @ c, rtol=1e-12, atol=1e-14)
    # Fourth-order central differences of <c, f(x)>, away from support changes (f is piecewise smooth).
    h = 1e-5
    fd = np.empty(12)
    for i in range(12):
        e = np.zeros(12)
        e[i] = h
        fd[i] = (
            -c @ forward(x + 2 * e) + 8 * c @ forward(x + e) - 8 * c @ forward(x - e) + c @ forward(x - 2 * e)
        ) / (12 * h)
    np.testing.assert_allclose(vjp(p, c), fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_vjp_against_entmax_autograd(rng, name):
    torch = pytest.importorskip("torch")
    entmax = pytest.importorskip("entmax")
    forward, vjp, _ = VJPS[name]
    peer = entmax.sparsemax if name == "sparsemax" else entmax.entmax15
    x = rng.standard_normal((3, 20)) * 2
    c = rng.standard_normal((3, 20))
    xt = torch.tensor(x, requires_grad=True)
    (peer(xt, dim=-1) * torch.from_numpy(c)).sum().backward()
    np.testing.assert_allclose(vjp(forward(x), c), xt.grad.numpy(), rtol=0, atol=1e-12)


def test_vjp_axis_mask_and_special_values():
    p = luce.sparsemax([[2.0, 1.5, 0.1], [0.0, 0.0, 0.0]])
    g = luce.sparsemax_vjp(p.T, np.ones((3, 2)), axis=0)
    np.testing.assert_allclose(g, 0.0, atol=1e-15)  # a constant cotangent has zero gradient
    mask = np.array([True, True, False])
    pm = luce.entmax15([1.0, 0.5, 9.0], where=mask)
    gm = luce.entmax15_vjp(pm, [1.0, 0.0, 5.0], where=mask)
    assert gm[2] == 0.0
    np.testing.assert_allclose(gm[:2], luce.entmax15_vjp(pm[:2], [1.0, 0.0]), atol=1e-15)
    assert np.isnan(luce.entmax15_vjp([np.nan, 0.5, 0.5], [1.0, 0.0, 0.0])).all()
    np.testing.assert_array_equal(luce.sparsemax_vjp(np.zeros(3), np.ones(3)), 0.0)
    with pytest.raises(ValueError, match="cotangent of shape"):
        luce.sparsemax_vjp(np.ones(3) / 3, np.ones(4))


def test_bisect_vjp_limits():
    x = np.array([1.0, 0.2, -0.5, 0.9])
    c = np.array([0.3, -1.0, 2.0, 0.5])
    p1 = luce.softmax(x)
    np.testing.assert_allclose(luce.entmax_bisect_vjp(p1, c, 1.0), luce.softmax_vjp(p1, c), rtol=1e-14)
    p2 = luce.sparsemax(x)
    np.testing.assert_allclose(luce.entmax_bisect_vjp(p2, c, 2.0), luce.sparsemax_vjp(p2, c), rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alpha": 0.5}, ValueError, "alpha"),
        ({"alpha": np.inf}, ValueError, "alpha"),
        ({"alpha": "1.5"}, TypeError, "alpha"),
        ({"n_iter": 0}, ValueError, "n_iter"),
        ({"n_iter": 2.5}, ValueError, "n_iter"),
    ],
)
def test_entmax_bisect_rejects_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        luce.entmax_bisect([1.0, 2.0], **kwargs)
