"""cross_entropy: values and gradients against torch.nn.functional (when installed), against a NumPy
formula written here, exact values from mpmath, and fourth-order finite differences; both backends."""

import math

import mpmath
import numpy as np
import pytest
from scipy.special import log_softmax as scipy_log_softmax
from scipy.stats import entropy

import luce


def reference_loss(z, target, *, weight=None, ignore_index=None, eps=0.0, reduction="mean", t=1.0):
    """The definition, class axis last: -Σ_c w_c q_c log p_c with torch's weighted mean."""
    z = np.asarray(z, dtype=np.float64)
    n_classes = z.shape[-1]
    lp = scipy_log_softmax(z / t, axis=-1)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        active = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
        y = np.where(active, target, 0)
        q = (1 - eps) * np.eye(n_classes)[y] + eps / n_classes
        wy = w[y]
        nll = -(1 - eps) * wy * np.take_along_axis(lp, y[..., None], -1)[..., 0]
        smooth = -eps / n_classes * (w * lp).sum(-1)
        per = np.where(active, nll + smooth, 0.0)
        denominator = np.where(active, wy, 0.0).sum()
    else:
        q = (1 - eps) * target + eps / n_classes
        per = -(w * q * lp).sum(-1)
        denominator = per.size
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / denominator


def fd_grad(f, z, h=1e-4):
    """Fourth-order central differences of a scalar function."""
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        g[idx] = (-f(z + 2 * e) + 8 * f(z + e) - 8 * f(z - e) + f(z - 2 * e)) / (12 * h)
    return g


OPTIONS = [
    {},
    {"label_smoothing": 0.2},
    {"weight": "w"},
    {"weight": "w", "label_smoothing": 0.3, "ignore_index": 2},
    {"ignore_index": 1, "temperature": 2.5},
    {"weight": "w", "temperature": 0.3, "label_smoothing": 1.0},
]


def _resolve(options, w):
    return {k: (w if v == "w" else v) for k, v in options.items()}


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_index_targets_match_torch(backend, rng, options, reduction, dtype):
    torch = pytest.importorskip("torch")
    n, c = 40, 9
    z = rng.standard_normal((n, c)) * 3
    y = rng.integers(0, c, n)
    y[:3] = 2
    y[3:5] = 1
    kw = _resolve(options, rng.uniform(0.2, 2.0, c))
    loss, grad = luce.cross_entropy(z.astype(dtype), y, reduction=reduction, return_grad=True, **kw)
    zt = torch.tensor(z, requires_grad=True)
    t = kw.get("temperature", 1.0)
    tkw = {k: (torch.from_numpy(v) if k == "weight" else v) for k, v in kw.items() if k != "temperature"}
    tkw.setdefault("ignore_index", -100)
    want = torch.nn.functional.cross_entropy(zt / t, torch.from_numpy(y), reduction=reduction, **tkw)
    want.sum().backward()
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=0, atol=tol)


@pytest.mark.parametrize("options", [{}, {"weight": "w"}, {"weight": "w", "label_smoothing": 0.15}])
def test_probability_targets_match_torch(backend, rng, options):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((30, 7)) * 2
    q = rng.dirichlet(np.ones(7), 30)
    kw = _resolve(options, rng.uniform(0.2, 2.0, 7))
    loss, grad = luce.cross_entropy(z, q, return_grad=True, **kw)
    zt = torch.tensor(z, requires_grad=True)
    tkw = {k: (torch.from_numpy(v) if k == "weight" else v) for k, v in kw.items()}
    want = torch.nn.functional.cross_entropy(zt, torch.from_numpy(q), **tkw)
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=0, atol=1e-15)


def test_class_axis_one_matches_torch_layout(backend, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((4, 5, 3, 2))
    y = rng.integers(0, 5, (4, 3, 2))
    w = rng.uniform(0.5, 2.0, 5)
    loss, grad = luce.cross_entropy(z, y, axis=1, weight=w, label_smoothing=0.1, return_grad=True)
    zt = torch.tensor(z, requires_grad=True)
    want = torch.nn.functional.cross_entropy(
        zt, torch.from_numpy(y), weight=torch.from_numpy(w), label_smoothing=0.1
    )
    want.backward()
    np.testing.assert_allclose(loss, want.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_matches_numpy_definition_and_finite_differences(backend, rng, options, reduction):
    z = rng.standard_normal((6, 5)) * 2
    y = rng.integers(0, 5, 6)
    y[0] = 2
    kw = _resolve(options, rng.uniform(0.2, 2.0, 5))
    ref_kw = {
        "weight": kw.get("weight"),
        "ignore_index": kw.get("ignore_index"),
        "eps": kw.get("label_smoothing", 0.0),
        "t": kw.get("temperature", 1.0),
    }
    loss, grad = luce.cross_entropy(z, y, reduction=reduction, return_grad=True, **kw)
    np.testing.assert_allclose(loss, reference_loss(z, y, reduction=reduction, **ref_kw), rtol=1e-13)
    total = lambda zz: reference_loss(zz, y, reduction=reduction, **ref_kw).sum()  # noqa: E731
    np.testing.assert_allclose(grad, fd_grad(total, z), rtol=0, atol=1e-9)


def test_probability_targets_against_definition_and_fd(backend, rng):
    z = rng.standard_normal((5, 4, 6))
    q = rng.dirichlet(np.ones(4), (5, 6)).transpose(0, 2, 1)  # class axis 1
    w = rng.uniform(0.5, 1.5, 4)
    loss, grad = luce.cross_entropy(z, q, axis=1, weight=w, label_smoothing=0.05, return_grad=True)
    zl, ql = np.moveaxis(z, 1, -1), np.moveaxis(q, 1, -1)
    np.testing.assert_allclose(loss, reference_loss(zl, ql, weight=w, eps=0.05), rtol=1e-13)

    def f(zz):
        return reference_loss(np.moveaxis(zz, 1, -1), ql, weight=w, eps=0.05)

    np.testing.assert_allclose(grad, fd_grad(f, z), rtol=0, atol=1e-10)


def test_cross_entropy_of_log_probabilities_is_the_entropy(rng):
    # CE(log q, q) = H(q): the minimum over logits, reached at the target (KL = 0).
    q = rng.dirichlet(np.ones(6), 4)
    loss = luce.cross_entropy(np.log(q), q, reduction="none")
    np.testing.assert_allclose(loss, entropy(q, axis=-1), rtol=1e-13)
    _, grad = luce.cross_entropy(np.log(q), q, return_grad=True)
    np.testing.assert_allclose(grad, 0.0, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_exact_for_huge_logit_gaps(backend, dtype):
    z = np.array([[1e4, 0.0], [0.0, 1e4], [-3e38, 3e38]], dtype=dtype)
    loss = luce.cross_entropy(z, np.array([1, 1, 0]), reduction="none")
    assert loss[0] == 1e4
    assert loss[1] == 0.0
    if dtype == np.float64:
        assert loss[2] == pytest.approx(6e38, rel=1e-15)
    else:  # 6e38 is past float32's range: the true value rounds to inf
        assert loss[2] == np.inf


def test_log1p_keeps_tiny_losses(backend):
    # Without the log1p form of log-sum-exp, log(1 + e^-40) rounds to 0. mpmath, 50 digits:
    mpmath.mp.dps = 50
    for gap in (40.0, 700.0):
        want = float(mpmath.log1p(mpmath.exp(-gap)))
        got = luce.cross_entropy(np.array([[0.0, -gap]]), [0])
        assert got == pytest.approx(want, rel=1e-15)
        assert got > 0


def test_values_against_mpmath(backend, rng):
    mpmath.mp.dps = 50
    z = rng.standard_normal((3, 5)) * 20
    y = np.array([0, 3, 4])
    got = luce.cross_entropy(z, y, label_smoothing=0.1, reduction="none")
    for i in range(3):
        row = [mpmath.mpf(float(v)) for v in z[i]]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
        nll = lse - row[y[i]]
        smooth = mpmath.fsum(lse - v for v in row) / 5
        want = float(mpmath.mpf("0.9") * nll + mpmath.mpf("0.1") * smooth)
        assert got[i] == pytest.approx(want, rel=2e-15, abs=1e-15)


def test_float32_kernel_accuracy(rng):
    # The float32 kernel's exp polynomial and lane sums: within a few float32 ulps of float64.
    z = (rng.standard_normal((8, 3000)) * 4).astype(np.float32)
    y = rng.integers(0, 3000, 8)
    with luce._kernels.use_backend("compiled"):
        loss, grad = luce.cross_entropy(z, y, label_smoothing=0.1, reduction="none", return_grad=True)
    want_loss, want_grad = luce.cross_entropy(
        z.astype(np.float64), y, label_smoothing=0.1, reduction="none", return_grad=True
    )
    np.testing.assert_allclose(loss, want_loss, rtol=2e-7)
    # g = p - q cancels; its error is relative to the terms: a few ulps of p + q.
    scale = scipy_log_softmax(z.astype(np.float64), axis=-1)
    scale = np.exp(scale) + 0.1 / 3000 + 0.9 * np.eye(3000)[y]
    assert (np.abs(grad - want_grad) <= 8 * np.finfo(np.float32).eps * scale).all()


def test_edge_values(backend):
    inf, nan = np.inf, np.nan
    z = np.array(
        [
            [1.0, -inf, 0.0],  # -inf class not targeted: finite
            [1.0, -inf, 0.0],  # targeted: infinite
            [1.0, nan, 0.0],  # NaN: NaN
            [inf, 1.0, inf],  # +inf entries share the mass
            [-inf, -inf, -inf],
        ]
    )
    y = np.array([0, 1, 0, 0, 0])
    loss, grad = luce.cross_entropy(z, y, reduction="none", return_grad=True)
    assert np.isfinite(loss[0]) and loss[1] == inf and np.isnan(loss[2])
    assert loss[3] == pytest.approx(math.log(2)) and loss[4] == inf
    np.testing.assert_allclose(grad[3], [-0.5, 0.0, 0.5])
    assert grad[0, 1] == 0.0 and np.isnan(grad[2]).all()
    smoothed = luce.cross_entropy(z[:1], y[:1], label_smoothing=0.1)
    assert smoothed == inf  # smoothing puts mass on the -inf class


def test_reductions_and_ignored_rows(backend, rng):
    z = rng.standard_normal((5, 4))
    y = np.array([1, -1, 2, -1, 0])
    per, grad = luce.cross_entropy(z, y, ignore_index=-1, reduction="none", return_grad=True)
    assert per[1] == per[3] == 0.0
    np.testing.assert_array_equal(grad[[1, 3]], 0.0)
    mean = luce.cross_entropy(z, y, ignore_index=-1)
    np.testing.assert_allclose(mean, per.sum() / 3, rtol=1e-15)
    nothing, g0 = luce.cross_entropy(z, np.full(5, -1), ignore_index=-1, return_grad=True)
    assert np.isnan(nothing)  # as torch: an empty mean
    np.testing.assert_array_equal(g0, 0.0)
    assert np.isnan(luce.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int)))
    assert luce.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int), reduction="sum") == 0.0


def test_temperature_infinity_is_uniform(backend):
    loss, grad = luce.cross_entropy([[5.0, 0.0, -2.0, -np.inf]], [1], temperature=np.inf, return_grad=True)
    assert loss == pytest.approx(math.log(3))
    np.testing.assert_array_equal(grad, 0.0)


def test_dtype_and_array_kinds(rng):
    z = rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 1])
    assert luce.cross_entropy(z.astype(np.float16), y).dtype == np.float16
    assert luce.cross_entropy(np.arange(12).reshape(4, 3), y).dtype == np.float64
    torch = pytest.importorskip("torch")
    loss, grad = luce.cross_entropy(torch.from_numpy(z), torch.from_numpy(y), return_grad=True)
    assert isinstance(loss, torch.Tensor) and isinstance(grad, torch.Tensor)
    np.testing.assert_allclose(grad.numpy(), luce.cross_entropy(z, y, return_grad=True)[1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 3]), ValueError, "class index 3"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1, 1]), ValueError, r"shape \(2,\)"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), np.ones((2, 2))), ValueError, "probabilities"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [True, False]), TypeError, "dtype bool"),
        (
            lambda: luce.cross_entropy(np.ones((2, 3)), np.ones((2, 3)) / 3, ignore_index=0),
            ValueError,
            "ignore",
        ),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], reduction="avg"), ValueError, "reduction"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], label_smoothing=1.5), ValueError, "smoothing"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], weight=[1.0, 2.0]), ValueError, "weight"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], temperature=0), ValueError, "temperature"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], axis=(0, 1)), TypeError, "axis"),
        (lambda: luce.cross_entropy(np.ones((2, 3)), [0, 1], axis=2), ValueError, "out of bounds"),
        (lambda: luce.cross_entropy(1.0, 0), ValueError, "class axis"),
        (lambda: luce.cross_entropy(np.ones((2, 0)), [0, 0]), ValueError, "no classes"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_kernel_path_mixes_special_rows(rng):
    # Rows the kernel hands to the reference (NaN, +inf, all -inf) among ordinary ones.
    z = rng.standard_normal((64, 300))
    z[5, 7] = np.nan
    z[9, :3] = np.inf
    z[11] = -np.inf
    y = rng.integers(0, 300, 64)
    with luce._kernels.use_backend("compiled"):
        got = luce.cross_entropy(z, y, label_smoothing=0.1, reduction="none", return_grad=True)
    with luce._kernels.use_backend("reference"):
        want = luce.cross_entropy(z, y, label_smoothing=0.1, reduction="none", return_grad=True)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


def test_float32_exp_of_the_kernels_is_within_one_ulp():
    # The cross-entropy and top-k kernels take exp from csrc/luce_exp.h (the one exp of every kernel),
    # in the row's precision; here its float32 on x <= 0 against float64 NumPy, gradual underflow included.
    from luce._kernels import _exp

    xs = -np.linspace(0.0, 103.0, 200_001).astype(np.float32)
    got = _exp.exp_array(xs).astype(np.float64)
    want = np.exp(xs.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)  # subnormal spacing below 2^-126
    assert (np.abs(got - want) <= ulp).all()
    special = _exp.exp_array(np.array([0.0, -np.inf, np.nan, -105.0], dtype=np.float32))
    assert special[0] == 1.0 and special[1] == 0.0 and np.isnan(special[2]) and special[3] == 0.0
