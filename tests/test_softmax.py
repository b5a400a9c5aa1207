"""softmax, log_softmax, logsumexp: exact values, edge rules and properties, on every backend."""

import math

import mpmath
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import luce

mpmath.mp.dps = 50  # exact references: 50 significant digits
FLOATS = [np.float16, np.float32, np.float64]
EPS = {np.float16: np.finfo(np.float16).eps, np.float32: np.finfo(np.float32).eps, np.float64: 2.0**-52}


def mp_softmax(x, temperature=1.0):
    xs = [mpmath.mpf(float(v)) / mpmath.mpf(temperature) for v in x]
    m = max(xs)
    es = [mpmath.exp(v - m) for v in xs]
    s = mpmath.fsum(es)
    return [e / s for e in es], [v - m - mpmath.log(s) for v in xs], m + mpmath.log(s)


# --- the classic worked examples, exactly as printed -------------------------------------------------


@pytest.mark.parametrize(
    ("x", "printed"),
    [
        ([2.0, 1.0, 0.1], "[0.65900114 0.24243297 0.09856589]"),
        ([0.3, 2.9, 4.0], "[0.01821127 0.24519181 0.73659691]"),
        ([1010, 1000, 990], "[9.99954600e-01 4.53978686e-05 2.06106005e-09]"),
    ],
    ids=["2-1-0.1", "0.3-2.9-4", "no-overflow"],
)
def test_classic_examples_print_exactly(x, printed, backend):
    assert np.array_str(luce.softmax(x)) == printed


def test_log1p_form_keeps_tiny_tails(backend):
    # Without the log1p form of log-sum-exp, log(1 + 4.2e-18) rounds to 0.
    x = np.array([0.0, -40.0])
    assert luce.log_softmax(x)[0] == -4.248354255291589e-18
    assert luce.logsumexp(x) == 4.248354255291589e-18
    big = np.tile(x, (3000, 1))  # large enough for the kernels under "auto"
    assert np.all(luce.log_softmax(big)[:, 0] == -4.248354255291589e-18)


# --- accuracy against mpmath -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("spread", [1e-5, 1e-2, 1.0, 30.0, 1e2, 1e4], ids=lambda s: f"spread{s:g}")
@pytest.mark.parametrize("offset", [0.0, -500.0, 1e4], ids=["at0", "neg", "big"])
def test_softmax_relative_error_bound(dtype, spread, offset, backend, rng):
    x = (offset + spread * rng.standard_normal((6, 257))).astype(dtype)
    p = luce.softmax(x)
    eps = EPS[dtype]
    tiny = np.finfo(dtype).tiny
    for row, prow in zip(x, p, strict=True):
        exact, _, _ = mp_softmax(row)
        exact = np.array([float(e) for e in exact])
        normal = exact >= tiny
        bound = (8 + np.abs(row.astype(np.float64) - row.max())) * eps
        rel = np.abs(prow[normal].astype(np.float64) - exact[normal]) / exact[normal]
        assert np.all(rel <= bound[normal]), rel.max()


@pytest.mark.parametrize("spread", [1e-3, 1.0, 50.0, 1e3], ids=lambda s: f"spread{s:g}")
def test_log_softmax_and_logsumexp_absolute_error_float64(spread, backend, rng):
    x = spread * rng.standard_normal((4, 300))
    x[0, :5] = [0.0, -40.0, -700.0, -37.0, -1e-9]  # near-saturated tails
    lp, lse = luce.log_softmax(x), luce.logsumexp(x)
    for row, lprow, lserow in zip(x, lp, lse, strict=True):
        _, exact_lp, exact_lse = mp_softmax(row)
        exact_lp = np.array([float(e) for e in exact_lp])
        assert np.all(np.abs(lprow - exact_lp) <= 1e-14 * np.maximum(1, np.abs(exact_lp)))
        assert abs(lserow - float(exact_lse)) <= 1e-14 * max(1, abs(float(exact_lse)))


@pytest.mark.parametrize("temperature", [1e-3, 0.5, 3.0, 1e4])
def test_temperature_matches_mpmath(temperature, backend, rng):
    x = 10 * rng.standard_normal(200)
    p, lp = luce.softmax(x, temperature=temperature), luce.log_softmax(x, temperature=temperature)
    exact_p, exact_lp, _ = mp_softmax(x, temperature)
    exact_p = np.array([float(e) for e in exact_p])
    exact_lp = np.array([float(e) for e in exact_lp])
    normal = exact_p > np.finfo(np.float64).tiny
    d = np.abs(x - x.max()) / temperature
    assert np.all(np.abs(p - exact_p)[normal] <= (8 + 2 * d[normal]) * EPS[np.float64] * exact_p[normal])
    assert np.allclose(lp, exact_lp, rtol=1e-14, atol=1e-14)


# --- agreement with SciPy ----------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, (0, 2), (1, 2)], ids=str)
def test_agrees_with_scipy(axis, backend, rng):
    x = 5 * rng.standard_normal((7, 40, 33))
    np.testing.assert_allclose(luce.softmax(x, axis), scipy.special.softmax(x, axis=axis), rtol=1e-13)
    np.testing.assert_allclose(
        luce.log_softmax(x, axis), scipy.special.log_softmax(x, axis=axis), rtol=1e-13, atol=1e-13
    )
    np.testing.assert_allclose(luce.logsumexp(x, axis), scipy.special.logsumexp(x, axis=axis), rtol=1e-13)
    np.testing.assert_allclose(
        luce.logsumexp(x, axis, keepdims=True),
        scipy.special.logsumexp(x, axis=axis, keepdims=True),
        rtol=1e-13,
    )


def test_logsumexp_weights_and_sign_agree_with_scipy(rng):
    x = rng.standard_normal((5, 9))
    b = rng.standard_normal((5, 9))
    value, sign = luce.logsumexp(x, b=b, return_sign=True)
    ref_value, ref_sign = scipy.special.logsumexp(x, axis=-1, b=b, return_sign=True)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_array_equal(sign, ref_sign)
    direct = np.sum(b * np.exp(x), axis=-1)
    np.testing.assert_allclose(sign * np.exp(value), direct, rtol=1e-12)
    # Without return_sign a negative sum is NaN (its log is not real).
    np.testing.assert_array_equal(np.isnan(luce.logsumexp(x, b=b)), direct < 0)
    # Broadcasting weights: a row vector scales every row.
    bb = np.abs(b[0])
    np.testing.assert_allclose(luce.logsumexp(x, b=bb), np.log(np.sum(bb * np.exp(x), axis=-1)), rtol=1e-12)


def test_logsumexp_weights_zero_and_inf():
    assert luce.logsumexp([5.0, 1.0], b=[0.0, 1.0]) == 1.0
    assert luce.logsumexp([np.inf, 1.0], b=[0.0, 1.0]) == 1.0  # a zero weight drops the +inf entry
    assert luce.logsumexp([np.inf, 1.0], b=[2.0, 1.0]) == np.inf
    value, sign = luce.logsumexp([np.inf, 1.0], b=[-2.0, 1.0], return_sign=True)
    assert (value, sign) == (np.inf, -1.0)
    assert np.isnan(luce.logsumexp([np.inf, np.inf], b=[1.0, -1.0]))
    assert luce.logsumexp([1.0, 2.0], b=[0.0, 0.0], return_sign=True) == (-np.inf, 0.0)


# --- edge semantics, over dtypes, axes, memory orders and backends --------------------------------------


def _slice_cases(dtype):
    """Rows of one test matrix, each exercising one edge rule, with the expected softmax row."""
    nan, inf = np.nan, np.inf
    rows = {
        "plain": ([1.0, 2.0, 3.0, 4.0], None),
        "plus-inf-shared": ([1.0, inf, inf, 0.0], [0, 0.5, 0.5, 0]),
        "one-plus-inf": ([1.0, inf, -inf, 0.0], [0, 1, 0, 0]),
        "minus-inf-zero": ([-inf, 0.0, -inf, 0.0], [0, 0.5, 0, 0.5]),
        "all-minus-inf": ([-inf, -inf, -inf, -inf], [0, 0, 0, 0]),
        "nan-row": ([1.0, nan, 3.0, 4.0], [nan, nan, nan, nan]),
        "inf-and-nan": ([inf, nan, 3.0, 4.0], [nan, nan, nan, nan]),
    }
    return rows


@pytest.mark.parametrize("dtype", FLOATS, ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3], ids=lambda a: f"axis{a}")
@pytest.mark.parametrize("order", ["C", "F"])
def test_edge_rules_any_axis(dtype, axis, order, backend):
    cases = _slice_cases(dtype)
    x_rows = np.array([r for r, _ in cases.values()], dtype=np.float64)
    with np.errstate(all="ignore"):
        expected = np.array(
            [scipy.special.softmax(r) if e is None else e for r, e in cases.values()], dtype=np.float64
        )
    # Put the slices along `axis` of a 3-D array, replicated along the other two axes.
    base = np.broadcast_to(x_rows[:, None, :], (len(cases), 3, 4))  # (case, rep, slice)
    exp3 = np.broadcast_to(expected[:, None, :], (len(cases), 3, 4))
    target_axis = axis % 3
    perm = [0, 1]
    perm.insert(target_axis, 2)
    x = np.asarray(np.transpose(base, perm), dtype=dtype, order=order)
    exp = np.transpose(exp3, perm)
    x_before = x.copy()
    p = luce.softmax(x, axis=axis)
    lp = luce.log_softmax(x, axis=axis)
    lse = luce.logsumexp(x, axis=axis)
    np.testing.assert_array_equal(x, x_before)  # inputs are never modified
    assert p.dtype == dtype and lp.dtype == dtype and lse.dtype == dtype
    tol = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(p.astype(np.float64), exp, rtol=tol, atol=tol)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(lp.astype(np.float64), np.log(exp), rtol=10 * tol, atol=10 * tol)
    with np.errstate(all="ignore"):
        row_lse = [scipy.special.logsumexp(r) for r in x_rows.astype(dtype).astype(np.float64)]
    # The reduced axis is gone; the (case, rep) axes keep their order.
    exp_lse = np.broadcast_to(np.array(row_lse)[:, None], (len(cases), 3))
    np.testing.assert_allclose(lse.astype(np.float64), exp_lse, rtol=10 * tol)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("axis", [0, -1])
def test_where_masks(dtype, axis, backend):
    x = np.array([[1.0, 2.0, np.nan, 4.0], [0.5, 0.5, 0.5, 0.5], [3.0, 1.0, 2.0, 0.0]], dtype=dtype)
    where = np.array([[True, True, False, True], [False, False, False, False], [True, False, True, False]])
    if axis == 0:
        x, where = x.T.copy(), where.T.copy()
    p = luce.softmax(x, axis=axis, where=where)
    lp = luce.log_softmax(x, axis=axis, where=where)
    lse = luce.logsumexp(x, axis=axis, where=where)
    if axis == 0:
        p, lp, x, where = p.T, lp.T, x.T, where.T
    # A masked NaN is ignored; masked entries get 0 / -inf.
    assert np.all(p[~where] == 0) and np.all(lp[~where] == -np.inf)
    ref0 = scipy.special.softmax(np.array([1.0, 2.0, 4.0], dtype=dtype).astype(np.float64))
    tol = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(p[0, [0, 1, 3]].astype(np.float64), ref0, rtol=tol)
    # A fully masked slice gives zeros / -inf / -inf, never NaN.
    assert np.all(p[1] == 0) and np.all(lp[1] == -np.inf) and lse[1] == -np.inf
    np.testing.assert_allclose(lse[2].astype(np.float64), np.logaddexp(3.0, 2.0), rtol=tol)


def test_where_broadcasts_and_is_checked(backend):
    x = np.arange(12.0).reshape(3, 4)
    p = luce.softmax(x, where=np.array([True, False, True, True]))
    assert np.all(p[:, 1] == 0)
    with pytest.raises(ValueError, match=r"where of shape \(5,\) does not broadcast to x of shape \(3, 4\)"):
        luce.softmax(x, where=np.ones(5, dtype=bool))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        luce.softmax(x, where=np.ones(4))


def test_empty_axis(backend):
    x = np.zeros((3, 0))
    assert luce.softmax(x).shape == (3, 0)
    assert luce.log_softmax(x).shape == (3, 0)
    np.testing.assert_array_equal(luce.logsumexp(x), [-np.inf] * 3)
    assert luce.logsumexp([]) == -np.inf
    assert luce.softmax(np.zeros((0, 5))).shape == (0, 5)
    assert luce.logsumexp(np.zeros((0, 5))).shape == (0,)


def test_temperature_rules(backend):
    x = np.array([1.0, 2.0, -np.inf, 3.0])
    np.testing.assert_allclose(luce.softmax(x, temperature=2.0), scipy.special.softmax(x / 2.0), rtol=1e-14)
    np.testing.assert_array_equal(luce.softmax(x, temperature=np.inf), [1 / 3, 1 / 3, 0, 1 / 3])
    np.testing.assert_array_equal(luce.softmax([1.0, np.inf], temperature=np.inf), [0.0, 1.0])
    masked = luce.softmax(x, temperature=math.inf, where=np.array([True, False, True, True]))
    np.testing.assert_array_equal(masked, [0.5, 0, 0, 0.5])
    for bad in [0, -1.0, np.nan]:
        with pytest.raises(ValueError, match=f"temperature must be > 0.*{bad}"):
            luce.softmax(x, temperature=bad)
    with pytest.raises(TypeError, match="temperature"):
        luce.log_softmax(x, temperature="hot")


# --- inputs: dtypes, containers, memory layouts ----------------------------------------------------------


def test_dtype_rules(backend):
    assert luce.softmax([1, 2, 3]).dtype == np.float64
    assert luce.softmax(np.array([True, False])).dtype == np.float64
    assert luce.logsumexp(np.array([1, 2], dtype=np.int8)).dtype == np.float64
    assert luce.softmax(np.ones(3, np.float16)).dtype == np.float16
    with pytest.raises(TypeError, match="complex"):
        luce.softmax(np.array([1 + 1j, 2]))
    with pytest.raises(TypeError, match="numeric"):
        luce.softmax(np.array(["a", "b"]))
    # float16 is computed in float32: no overflow from exp in float16 range.
    p16 = luce.softmax(np.array([11.0, 0.0], np.float16))
    np.testing.assert_allclose(p16.astype(float), scipy.special.softmax([11.0, 0.0]), rtol=1e-3)


def test_scalars_lists_and_readonly(backend):
    assert luce.softmax(3.0) == 1.0 and luce.log_softmax(3.0) == 0.0 and luce.logsumexp(3.0) == 3.0
    x = np.linspace(-3, 3, 5000).reshape(50, 100)
    x.setflags(write=False)
    np.testing.assert_allclose(luce.softmax(x), scipy.special.softmax(x, axis=-1), rtol=1e-13)
    strided = np.linspace(-3, 3, 20000).reshape(100, 200)[::2, ::3]
    np.testing.assert_allclose(luce.log_softmax(strided, axis=0), scipy.special.log_softmax(strided, axis=0))


@pytest.mark.parametrize("axis", [2, -3, (0, 0)], ids=str)
def test_axis_errors_name_axis_and_shape(axis):
    with pytest.raises(ValueError, match=r"axis .* for x of shape \(3, 4\)"):
        luce.softmax(np.ones((3, 4)), axis=axis)
    with pytest.raises(TypeError, match="axis must be an int"):
        luce.logsumexp(np.ones((3, 4)), axis=1.5)


def test_tuple_axis_equals_flattened(backend, rng):
    x = rng.standard_normal((4, 5, 6))
    flat = x.reshape(4, 30)
    np.testing.assert_allclose(luce.softmax(x, axis=(1, 2)).reshape(4, 30), luce.softmax(flat), rtol=1e-14)
    np.testing.assert_allclose(luce.logsumexp(x, axis=(-1, -2)), luce.logsumexp(flat), rtol=1e-14)


# --- array-API inputs come back as the same kind of array ----------------------------------------------


def test_array_api_strict_round_trip():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]])
    p = luce.softmax(x)
    assert type(p) is type(x)
    np.testing.assert_allclose(np.asarray(p), luce.softmax(np.asarray(x)), rtol=1e-15)
    lse = luce.logsumexp(x, where=xp.asarray([True, False, True]))
    np.testing.assert_allclose(np.asarray(lse), [np.logaddexp(1.0, 3.0), 0.0], rtol=1e-15)


def test_torch_round_trip():
    torch = pytest.importorskip("torch")
    x = torch.tensor([[1.0, 2.0, 3.0], [5.0, 1.0, 1.0]], dtype=torch.float32)
    p = luce.softmax(x, temperature=2.0)
    assert isinstance(p, torch.Tensor) and p.dtype == torch.float32
    torch.testing.assert_close(p, torch.softmax(x / 2.0, dim=-1))
    torch.testing.assert_close(luce.log_softmax(x, axis=0), torch.log_softmax(x, dim=0))
    torch.testing.assert_close(luce.logsumexp(x), torch.logsumexp(x, dim=-1))


# --- properties (hypothesis) ---------------------------------------------------------------------------

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
rows = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7), elements=finite
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_probabilities_sum_to_one_and_keep_order(x):
    p = luce.softmax(x)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    # Order is preserved: a larger score never gets a smaller probability.
    i = np.argsort(x, axis=-1, kind="stable")
    assert np.all(np.diff(np.take_along_axis(p, i, axis=-1), axis=-1) >= 0)


@settings(max_examples=60, deadline=None)
@given(rows, st.floats(-1e3, 1e3))
def test_shift_invariance(x, c):
    np.testing.assert_allclose(luce.softmax(x + c), luce.softmax(x), atol=1e-9, rtol=1e-6)
    np.testing.assert_allclose(luce.logsumexp(x + c), luce.logsumexp(x) + c, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 12), elements=st.floats(-50, 50)), st.data())
def test_where_equals_slicing(x, data):
    keep = data.draw(hnp.arrays(np.bool_, x.shape))
    p = luce.softmax(x, where=keep)
    lp = luce.log_softmax(x, where=keep)
    if keep.any():
        np.testing.assert_allclose(p[keep], scipy.special.softmax(x[keep]), rtol=1e-12)
        np.testing.assert_allclose(lp[keep], scipy.special.log_softmax(x[keep]), rtol=1e-12, atol=1e-12)
        assert luce.logsumexp(x, where=keep) == pytest.approx(scipy.special.logsumexp(x[keep]), rel=1e-12)
    assert np.all(p[~keep] == 0)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 10), elements=st.integers(-5, 5).map(float)))
def test_zero_temperature_limit_is_hardmax(x):
    np.testing.assert_allclose(luce.softmax(x, temperature=1e-3), luce.hardmax(x), atol=1e-12)


# --- out=: written in place of a new array --------------------------------------------------------------


def _with_specials(x, axis):
    """x with a NaN slice, a +inf slice and an all -inf slice along ``axis`` (2-D x)."""
    x = x.copy()
    sl = (lambda i: (slice(None), i)) if axis == 0 else (lambda i: (i, slice(None)))
    x[sl(0)][1] = np.nan
    x[sl(1)][2] = np.inf
    x[sl(2)] = -np.inf
    return x


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_out_is_filled_and_returned(op, axis, order, backend, rng):
    x = rng.standard_normal((40, 30)) * 5
    where = rng.random((40, 30)) < 0.8
    expected = getattr(scipy.special, op)(np.where(where, x / 2, -np.inf), axis=axis)
    if order == "strided":
        out = np.empty((80, 60))[::2, ::2]
    else:
        out = np.empty(x.shape, order=order)
    got = getattr(luce, op)(x, axis, temperature=2.0, where=where, out=out)
    assert got is out
    np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("x_order", ["C", "F"])
@pytest.mark.parametrize("out_order", ["C", "F"])
def test_out_layouts_with_fortran_input(x_order, out_order, backend, rng):
    # A Fortran-ordered x is read as C order reversed; an out in the same order is written directly.
    x = np.asarray(rng.standard_normal((30, 4, 50)) * 3, order=x_order)
    for axis in (0, 2, (1, 2)):
        out = np.empty(x.shape, order=out_order)
        assert luce.log_softmax(x, axis, out=out) is out
        np.testing.assert_allclose(out, scipy.special.log_softmax(x, axis=axis), rtol=1e-13)
        expected = scipy.special.logsumexp(x, axis=axis)
        red = np.empty(expected.shape, order=out_order)
        assert luce.logsumexp(x, axis, out=red) is red
        np.testing.assert_allclose(red, expected, rtol=1e-14)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_out_may_be_x_itself(op, axis, dtype, order, backend, rng):
    x = _with_specials((rng.standard_normal((64, 48)) * 4).astype(dtype), axis)
    x = np.asarray(x, order=order)  # Fortran order: axis 0 is read as rows, in place
    expected = getattr(luce, op)(x, axis)
    y = x.copy(order="K")
    assert getattr(luce, op)(y, axis, out=y) is y
    np.testing.assert_array_equal(y, expected)
    finite = np.isfinite(x).all(axis=axis)
    keep = (slice(None), finite) if axis == 0 else (finite, slice(None))
    ref = getattr(scipy.special, op)(x.astype(np.float64)[keep], axis=axis)
    np.testing.assert_allclose(y[keep], ref, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("axis", [0, -1])
def test_out_overlapping_x_by_one_row(axis, backend, rng):
    buf = _with_specials(rng.standard_normal((65, 48)), 1 - (axis % 2))
    x, out = buf[:-1], buf[1:]
    expected = luce.softmax(x.copy(), axis)
    luce.softmax(x, axis, out=out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [0, 1, (1, 2)])
def test_logsumexp_out(keepdims, axis, backend, rng):
    x = rng.standard_normal((6, 5, 40)) * 3
    expected = scipy.special.logsumexp(x, axis=axis, keepdims=keepdims)
    out = np.empty(expected.shape)
    assert luce.logsumexp(x, axis, keepdims=keepdims, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    out_f = np.empty(expected.shape, order="F")
    value, sign = luce.logsumexp(x, axis, keepdims=keepdims, return_sign=True, out=out_f)
    assert value is out_f and np.all(sign == 1)
    np.testing.assert_allclose(out_f, expected, rtol=1e-14)


def test_out_float16_and_int_inputs(backend):
    x16 = np.array([[11.0, 0.0, -3.0]] * 4, np.float16)
    out = np.empty_like(x16)
    assert luce.softmax(x16, out=out) is out
    expected = scipy.special.softmax([11.0, 0.0, -3.0]) * np.ones((4, 1))
    np.testing.assert_allclose(out.astype(float), expected, rtol=1e-3, atol=1e-6)  # f16 subnormals
    out64 = np.empty(3)
    luce.log_softmax([1, 2, 3], out=out64)
    np.testing.assert_allclose(out64, scipy.special.log_softmax([1.0, 2.0, 3.0]), rtol=1e-15)


def test_out_errors_name_the_problem():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\), the result has shape \(3, 4\)"):
        luce.softmax(x, out=np.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="out has dtype float64, the result has dtype float32"):
        luce.log_softmax(x, out=np.empty((3, 4)))
    with pytest.raises(ValueError, match=r"out has shape \(3, 1\), the result has shape \(3,\)"):
        luce.logsumexp(x, out=np.empty((3, 1), np.float32))
    readonly = np.empty((3, 4), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        luce.softmax(x, out=readonly)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        luce.softmax(x, out=[[0.0] * 4] * 3)


def test_out_is_refused_for_array_api_input():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="out= is supported for NumPy input only"):
        luce.softmax(torch.ones(3), out=np.empty(3))
