"""Inputs other projects' suites and fuzzing throw at the family: array-API edge slices without warnings,
the global floating-point error state, SciPy's dtype promotion for logsumexp weights, pandas input,
big-endian arrays, empty axes and mistyped flags. References: scipy.special and NumPy itself."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.special

import luce

inf, nan = np.inf, np.nan

# Rows each exercising one edge rule of docs/conventions.md.
EDGE_ROWS = np.array(
    [
        [1.0, 2.0, 3.0, -12.0],
        [-inf, -inf, -inf, -inf],
        [1.0, inf, inf, 0.0],
        [1.0, inf, -inf, 0.0],
        [1.0, nan, 3.0, 4.0],
        [-60000.0, 0.0, 3.0, -20.0],
    ]
)
MASK = np.array([True, False, True, True])


def _equal(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _maps(x, where=None):
    """Every public map on one input (NumPy or array-API), as a dict of results."""
    target = np.array([0, 3, 1, 1, 2, 2])
    ones = luce.softmax(x, temperature=np.inf) * 0 + 1  # ones of x's kind and dtype (inf * 0 avoided)
    return {
        "softmax": luce.softmax(x, where=where),
        "log_softmax": luce.log_softmax(x, where=where),
        "logsumexp": luce.logsumexp(x, where=where),
        "hardmax": luce.hardmax(x, where=where),
        "sigmoid": luce.sigmoid(x),
        "log_sigmoid": luce.log_sigmoid(x),
        "sparsemax": luce.sparsemax(x, where=where),
        "entmax15": luce.entmax15(x, where=where),
        "entmax_bisect": luce.entmax_bisect(x, where=where),
        "topk_softmax": luce.topk_softmax(x, 2),
        "gumbel_softmax": luce.gumbel_softmax(x, rng=0),
        "gumbel_hard": luce.gumbel_softmax(x, hard=True, rng=0),
        "online": luce.OnlineSoftmax().update(x, where=where).normalize(x, where=where),
        "online_lse": luce.OnlineSoftmax().update(x, where=where).logsumexp(),
        "cross_entropy": luce.cross_entropy(x, target, reduction="none"),
        "cross_entropy_grad": luce.cross_entropy(x, target, label_smoothing=0.1, return_grad=True),
        "binary_ce": luce.binary_cross_entropy_with_logits(x, ones * 0.5, reduction="none"),
        "sparsemax_loss": luce.sparsemax_loss(x, target, reduction="none"),
        "softmax_vjp": luce.softmax_vjp(luce.softmax(x), ones),
        "log_softmax_vjp": luce.log_softmax_vjp(luce.log_softmax(x), ones),
    }


# --- the global floating-point error state is not ours to depend on -----------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
def test_results_do_not_depend_on_np_seterr(dtype, backend):
    x = EDGE_ROWS.astype(dtype)
    with np.errstate(all="ignore"):
        expected = _maps(x, where=MASK)
    with np.errstate(all="raise"):  # a caller's np.seterr(all="raise") must not turn into errors
        got = _maps(x, where=MASK)
        lse_zero = luce.logsumexp([1.0, 2.0], b=[1.0, -1.0] * np.exp([0.0, -1.0]), return_sign=True)
        tail = luce.softmax(np.float16([0.0, -12.0]))  # float16 subnormal result: an underflowing cast
    for name, value in expected.items():
        _equal(got[name], value)
    assert lse_zero[1] in (0.0, -1.0, 1.0)
    np.testing.assert_allclose(tail.astype(np.float64), scipy.special.softmax([0.0, -12.0]), rtol=2e-3)


def test_calibration_does_not_depend_on_np_seterr(rng):
    y = rng.integers(0, 4, 50)
    z = rng.normal(size=(50, 4)) * 300 + 400 * np.eye(4)[y]  # over-confident: exp underflows
    expected = luce.TemperatureScaling().fit(z, y)
    with np.errstate(all="raise"):
        got = luce.TemperatureScaling().fit(z, y)
        proba = got.predict_proba(z)
    assert got.temperature_ == expected.temperature_
    np.testing.assert_array_equal(proba, expected.predict_proba(z))


# --- array-API input: the edge suite with warnings as errors --------------------------------------------


def test_array_api_edge_slices_never_warn():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray(EDGE_ROWS)
    where = xp.asarray(MASK)
    expected = _maps(EDGE_ROWS, where=MASK)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _maps(x, where=where)
        masked = luce.softmax(x, where=xp.asarray([False] * 4))  # fully masked slices
        lse_b = luce.logsumexp(xp.asarray([1.0, 1.0]), b=xp.asarray([1.0, -1.0]), return_sign=True)
    for name, value in expected.items():
        _equal(got[name], value)
    np.testing.assert_array_equal(np.asarray(masked), np.zeros(EDGE_ROWS.shape))
    # b summing to zero: log 0 = -inf with sign 0, as SciPy.
    ref = scipy.special.logsumexp([1.0, 1.0], b=[1.0, -1.0], return_sign=True)
    assert (float(lse_b[0]), float(lse_b[1])) == (float(ref[0]), float(ref[1]))


# --- logsumexp promotes the dtype of b as SciPy does ----------------------------------------------------

# Bool x is left out: luce's dtype rule makes it float64 first (docs/conventions.md), SciPy keeps bool.
X_DTYPES = [np.float16, np.float32, np.float64, np.int32]
B_DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_]


@pytest.mark.parametrize("x_dtype", X_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("b_dtype", B_DTYPES, ids=lambda d: np.dtype(d).name)
def test_logsumexp_promotes_b_like_scipy(x_dtype, b_dtype, backend):
    x = np.array([[2, 1, 0], [1, 1, 1]]).astype(x_dtype)
    b = np.array([1, 1, 0]).astype(b_dtype) if b_dtype is np.bool_ else np.array([1, -1, 2]).astype(b_dtype)
    value, sign = luce.logsumexp(x, b=b, return_sign=True)
    ref_value, ref_sign = scipy.special.logsumexp(x, axis=-1, b=b, return_sign=True)
    assert value.dtype == ref_value.dtype and sign.dtype == ref_sign.dtype
    rtol = {np.float16: 1e-3, np.float32: 1e-6}.get(ref_value.dtype.type, 1e-14)
    np.testing.assert_allclose(value, ref_value, rtol=rtol)
    np.testing.assert_array_equal(sign, ref_sign)


def test_logsumexp_float32_x_with_float64_b_is_computed_in_float64():
    # The case: a float32 result would round the cancellation 1 - exp(-1e-7) away.
    x = np.float32([2.0, 2.0 - 2**-20])
    b = np.float64([1.0, -1.0])
    value, sign = luce.logsumexp(x, b=b, return_sign=True)
    ref_value, ref_sign = scipy.special.logsumexp(x, b=b, return_sign=True)
    assert value.dtype == np.float64
    np.testing.assert_allclose(value, ref_value, rtol=1e-14)
    assert sign == ref_sign


# --- pandas, byte order, empty axes -----------------------------------------------------------------------


def test_pandas_input_returns_what_scipy_returns():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, -1.0, 4.0]})
    series = frame["a"]
    for ours, theirs in [
        (luce.softmax, scipy.special.softmax),
        (luce.log_softmax, scipy.special.log_softmax),
        (luce.logsumexp, scipy.special.logsumexp),
    ]:
        for data in (frame, series):
            got, ref = ours(data, axis=-1), theirs(data, axis=-1)
            assert type(got) is type(ref)  # an ndarray, or a NumPy scalar for a Series' logsumexp
            np.testing.assert_allclose(got, ref, rtol=1e-14)
    np.testing.assert_allclose(luce.sparsemax(frame), luce.sparsemax(frame.to_numpy()))
    loss = luce.cross_entropy(frame, pd.Series([0, 1, 1]))
    np.testing.assert_allclose(loss, luce.cross_entropy(frame.to_numpy(), np.array([0, 1, 1])))


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4"])
def test_byte_order_keeps_the_dtype(dtype, backend):
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], dtype=dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    for f in (luce.softmax, luce.log_softmax, luce.logsumexp, luce.sparsemax, luce.entmax15, luce.hardmax):
        got = f(x)
        assert got.dtype == native.dtype, f.__name__
        np.testing.assert_array_equal(got, f(native))
    assert luce.topk_softmax(x, 2)[0].dtype == native.dtype
    assert luce.gumbel_softmax(x, rng=0).dtype == native.dtype


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gumbel_softmax_of_an_empty_axis_is_empty_like_softmax(hard, dtype):
    x = np.zeros((3, 0), dtype=dtype)
    y = luce.gumbel_softmax(x, hard=hard, rng=0)
    assert y.shape == (3, 0) and y.dtype == luce.softmax(x).dtype == dtype
    assert luce.gumbel_softmax(np.zeros((0, 4), dtype=dtype), hard=hard, rng=0).shape == (0, 4)


# --- flags and numbers: the wrong type is refused, naming the argument -----------------------------------

X2 = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
T2 = np.array([0, 2])
CALLS = {
    "softmax": lambda **kw: luce.softmax(X2, **kw),
    "log_softmax": lambda **kw: luce.log_softmax(X2, **kw),
    "logsumexp": lambda **kw: luce.logsumexp(X2, **kw),
    "gumbel_softmax": lambda **kw: luce.gumbel_softmax(X2, rng=0, **kw),
    "sample": lambda **kw: luce.sample(X2, rng=0, **kw),
    "cross_entropy": lambda **kw: luce.cross_entropy(X2, T2, **kw),
    "binary_cross_entropy_with_logits": lambda **kw: luce.binary_cross_entropy_with_logits(X2, X2 * 0, **kw),
    "sparsemax_loss": lambda **kw: luce.sparsemax_loss(X2, T2, **kw),
    "entmax15_loss": lambda **kw: luce.entmax15_loss(X2, T2, **kw),
    "linear_cross_entropy": lambda **kw: luce.linear_cross_entropy(X2, np.eye(3), T2, **kw),
}
BAD = [
    ("softmax", "temperature", "2"),
    ("softmax", "temperature", True),
    ("log_softmax", "temperature", "0.5"),
    ("log_softmax", "temperature", [2.0]),
    ("logsumexp", "keepdims", "yes"),
    ("logsumexp", "keepdims", 1),
    ("logsumexp", "return_sign", "no"),
    ("gumbel_softmax", "hard", "no"),
    ("gumbel_softmax", "hard", 0),
    ("gumbel_softmax", "temperature", True),
    ("sample", "temperature", "1"),
    ("sample", "size", "3"),
    ("sample", "size", 2.5),
    ("sample", "size", (2, "3")),
    ("sample", "top_k", 2.0),
    ("sample", "top_k", True),
    ("cross_entropy", "return_grad", "no"),
    ("cross_entropy", "temperature", False),
    ("cross_entropy", "label_smoothing", "0.1"),
    ("binary_cross_entropy_with_logits", "return_grad", "yes"),
    ("sparsemax_loss", "return_grad", 1),
    ("entmax15_loss", "return_grad", "True"),
    ("linear_cross_entropy", "return_grad", "no"),
    ("linear_cross_entropy", "chunk_size", 2.0),
    ("linear_cross_entropy", "label_smoothing", True),
]


@pytest.mark.parametrize(("function", "argument", "value"), BAD, ids=lambda v: repr(v))
def test_mistyped_arguments_raise_type_error_naming_them(function, argument, value):
    with pytest.raises(TypeError, match=argument):
        CALLS[function](**{argument: value})


@pytest.mark.parametrize("flag", [np.True_, np.False_])
def test_numpy_bools_and_numbers_are_accepted(flag):
    np.testing.assert_array_equal(
        luce.logsumexp(X2, keepdims=flag), scipy.special.logsumexp(X2, axis=-1, keepdims=bool(flag))
    )
    np.testing.assert_allclose(
        luce.softmax(X2, temperature=np.float32(2.0)), scipy.special.softmax(X2 / 2, axis=-1)
    )
    np.testing.assert_allclose(
        luce.softmax(X2, temperature=np.int64(2)), scipy.special.softmax(X2 / 2, axis=-1)
    )
    assert luce.sample(X2, size=np.int64(3), rng=0).shape == (3, 2)


def test_scalar_results_are_numpy_scalars_and_axis_none_means_every_axis():
    # As NumPy's reductions and scipy.special: a 0-d result is a NumPy scalar, axis=None reduces all.
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    for ours, theirs in [(luce.logsumexp, scipy.special.logsumexp), (luce.softmax, scipy.special.softmax)]:
        got, ref = ours(x, axis=None), theirs(x, axis=None)
        assert type(got) is type(ref)
        np.testing.assert_allclose(got, ref, rtol=1e-15)
    value, sign = luce.logsumexp([1.0, 2.0], b=[1.0, -2.0], return_sign=True)
    assert type(value) is type(sign) is np.float64
    assert type(luce.log_softmax(np.float32(3.0))) is np.float32
    out = np.empty(())
    assert luce.logsumexp([1.0, 2.0], out=out) is out  # out= still returns the array given


@pytest.mark.parametrize("kind", ["torch", "array_api_strict"])
def test_zero_dimensional_array_api_input_keeps_its_shape(kind):
    # np.ascontiguousarray turned 0-d results into shape (1,) on the way back (found by fuzzing).
    xp = pytest.importorskip(kind)
    x = xp.asarray(3.0)
    for f in (luce.softmax, luce.sparsemax, luce.entmax15, luce.entmax_bisect, luce.hardmax):
        assert tuple(f(x).shape) == (), f.__name__
    assert tuple(luce.gumbel_softmax(x, rng=0).shape) == ()
    assert tuple(luce.sparsemax_vjp(f(x), xp.asarray(2.0)).shape) == ()
