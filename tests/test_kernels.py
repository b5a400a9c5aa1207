"""The compiled kernels against the NumPy reference, their exp and log1p against mpmath, and dispatch.

The full semantics suite runs on both backends in test_softmax.py; here: random shapes, axes, masks,
temperatures, special values, dtypes and memory layouts through the kernels, the code paths inside
them (long rows, column ranges split over threads, short rows), and the exp polynomial.
"""

import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import luce
from luce._kernels import _dispatch, _exp, _softmax, use_backend

mpmath.mp.dps = 40
FUNCS = ["softmax", "log_softmax", "logsumexp"]
DTYPES = [np.float32, np.float64]


# --- helpers -------------------------------------------------------------------------------------------


def _call(name, x, axis, temperature=1.0, where=None):
    kw = {"where": where}
    if name != "logsumexp":
        kw["temperature"] = temperature
    return getattr(luce, name)(x, axis, **kw)


def _reference(name, x, axis, temperature=1.0, where=None):
    with use_backend("reference"):
        return _call(name, x, axis, temperature, where)


def _kernel(name, x, axis, temperature=1.0, where=None):
    with use_backend("compiled"):
        return _call(name, x, axis, temperature, where)


def assert_matches_reference(name, got, ref, n):
    """Same shape, dtype, NaN and infinity pattern; finite values within the rounding of both sides.

    softmax: each side is within (8 + |x - max|/T)·eps of the truth, and |x - max|/T is at most
    |log p| + log n; log_softmax and logsumexp: absolute error a few eps times (|value| + log n).
    """
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    inf = np.isinf(ref)
    np.testing.assert_array_equal(np.isinf(got), inf)
    np.testing.assert_array_equal(got[inf], ref[inf])
    fin = np.isfinite(ref)
    g, r = got[fin].astype(np.float64), ref[fin].astype(np.float64)
    eps = float(np.finfo(ref.dtype).eps)
    spread = 2 * math.log(max(n, 2)) + 2
    if name == "softmax":
        tiny = float(np.finfo(ref.dtype).tiny)
        d = np.abs(np.log(np.maximum(r, tiny))) + spread
        bound = 2 * (16 + 2 * d) * eps * np.abs(r) + 2 * tiny * (16 + 2 * d) * eps + (r < tiny) * tiny
    else:
        bound = 8 * eps * (np.abs(r) + spread)
    bad = np.abs(g - r) > bound
    assert not bad.any(), f"{name}: {bad.sum()} values differ, worst {np.max(np.abs(g - r) - bound)}"


class KernelSpy:
    """Counts calls into the compiled kernels' entry points (the functions _dispatch.lookup returns)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        for name in ("softmax", "logsumexp"):
            inner = getattr(_softmax, name)

            def spy(*args, inner=inner):
                self.calls += 1
                return inner(*args)

            monkeypatch.setattr(_softmax, name, spy)


@pytest.fixture
def spy(monkeypatch):
    return KernelSpy(monkeypatch)


# --- imports and dispatch ------------------------------------------------------------------------------


def test_kernels_are_imported_only_when_a_kernel_runs_and_nothing_compiles():
    code = (
        "import sys, numpy as np, luce\n"
        "assert 'luce._kernels._softmax' not in sys.modules, 'import luce'\n"
        "luce.softmax(np.ones((4, 5)))\n"  # small: the reference under 'auto'
        "assert 'luce._kernels._softmax' not in sys.modules, 'reference call'\n"
        "from luce._kernels import use_backend\n"
        "with use_backend('compiled'):\n"
        "    for dt in (np.float32, np.float64):\n"
        "        for f in (luce.softmax, luce.log_softmax, luce.logsumexp):\n"
        "            f(np.ones((4, 5), dt)), f(np.ones((40, 5), dt), axis=0), f(np.ones((4, 50), dt))\n"
        "assert 'luce._kernels._softmax' in sys.modules\n"
        "assert not {'numba', 'llvmlite'} & set(sys.modules), 'a JIT was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_use_backend_compiled_reaches_the_kernels_for_small_arrays(spy):
    x = np.array([[1.0, 2.0, 3.0]])
    with use_backend("compiled"):
        luce.softmax(x)
        luce.log_softmax(x, axis=0)
        luce.logsumexp(x)
    assert spy.calls == 3
    with use_backend("reference"):
        luce.softmax(np.ones((300, 300)))
    assert spy.calls == 3


def test_auto_uses_the_kernels_above_the_threshold(spy):
    small = np.ones(_dispatch.MIN_SOFTMAX_SIZE - 1)
    big = np.ones(_dispatch.MIN_SOFTMAX_SIZE, np.float32)
    with use_backend("auto"):
        luce.softmax(small)
        assert spy.calls == 0
        luce.softmax(big)
        assert spy.calls == 1
        luce.softmax(big.astype(np.float16))  # computed in float32: the kernels too
        assert spy.calls == 2
        luce.logsumexp(big, b=np.ones_like(big))  # weights: the reference only
        assert spy.calls == 2


def test_axes_the_kernels_take_and_leave(spy, rng):
    x = rng.standard_normal((3, 4, 5, 6))
    with use_backend("compiled"):
        for axis in [(1, 2), (-3, -2), (2, 3), (0, 1, 2, 3)]:  # consecutive: one merged axis
            before = spy.calls
            assert_matches_reference("softmax", luce.softmax(x, axis), _reference("softmax", x, axis), 120)
            assert spy.calls == before + 1
        luce.softmax(x, (0, 2))  # not consecutive: the reference
        assert spy.calls == before + 1


def test_backend_names_are_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        _dispatch.set_backend("gpu")
    code = "import luce"
    env = {"LUCE_BACKEND": "nmba", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "LUCE_BACKEND must be one of" in out.stderr


# --- kernels against the reference ---------------------------------------------------------------------


def _random_case(rng, dtype):
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 9 if ndim > 2 else 70, ndim))
    scale = float(rng.choice([1e-3, 1.0, 30.0]))
    x = (scale * rng.standard_normal(shape) + float(rng.choice([0.0, -500.0]))).astype(dtype)
    if rng.random() < 0.5:  # sprinkle special values
        k = max(1, x.size // 6)
        x.flat[rng.integers(0, x.size, k)] = rng.choice([np.inf, -np.inf, np.nan], k, p=[0.3, 0.5, 0.2])
    if rng.random() < 0.3:
        x = np.asfortranarray(x)
    where = None
    if rng.random() < 0.5:
        mshape = tuple(s if rng.random() < 0.6 else 1 for s in shape)  # broadcast masks too
        where = rng.random(mshape) < 0.7
    axis = int(rng.integers(-ndim, ndim))
    temperature = float(rng.choice([1.0, 1.0, 0.25, 3.0, np.inf]))
    return x, axis, temperature, where


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_random_cases_match_the_reference(dtype, rng):
    for _ in range(60):
        x, axis, temperature, where = _random_case(rng, dtype)
        x_before = x.copy()
        for name in FUNCS:
            ref = _reference(name, x, axis, temperature, where)
            got = _kernel(name, x, axis, temperature, where)
            assert_matches_reference(name, got, ref, x.shape[axis])
        np.testing.assert_array_equal(x, x_before)  # never modified


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((5, 3000), -1),  # long rows: several online chunks
        ((3000, 5), 0),  # a long column axis: split over threads, states merged
        ((700, 7), -1),  # short rows: transposed tiles (more than one tile)
        ((4, 600, 9), 1),  # a middle axis
        ((3, 1100, 2), 1),  # few columns: the reduced axis is split over threads
        ((2, 2, 1100), 0),  # more columns than one block (CB)
    ],
    ids=str,
)
@pytest.mark.parametrize("temperature", [1.0, 0.7, math.inf], ids=["T1", "T0.7", "Tinf"])
def test_code_paths_match_the_reference(dtype, shape, axis, temperature, rng):
    x = (10 * rng.standard_normal(shape)).astype(dtype)
    x.flat[::211] = np.inf  # a few special slices along every axis
    x.flat[::97] = -np.inf
    x.flat[5::389] = np.nan
    where = rng.random(shape) < 0.8
    for w in [None, where]:
        for name in FUNCS:
            t = 1.0 if name == "logsumexp" else temperature
            got, ref = _kernel(name, x, axis, t, w), _reference(name, x, axis, t, w)
            assert_matches_reference(name, got, ref, 3000)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [2, 7, 8, 16, 17, 31], ids=["n2", "n7", "n8", "n16", "n17", "n31"])
def test_short_rows_fast_tiles_and_special_tiles(dtype, n, rng):
    # Rows shorter than SHORT_ROW go through transposed tiles of TILE rows (sums folded every KC
    # elements; the last tile is partial; 16x16 float32 / 8x8 float64 blocks move by register
    # transposes, the rest element by element); a special row (here in the second tile) is redone
    # alone while its neighbours keep the tile's results. Masks and temperatures on both.
    x = (10 * rng.standard_normal((3 * _softmax.TILE + 5, n))).astype(dtype)
    x[_softmax.TILE + 3, 1] = np.nan
    where = rng.random(x.shape) < 0.8
    for temperature, w in [(1.0, None), (0.7, None), (3.0, where)]:
        for name in FUNCS:
            t = 1.0 if name == "logsumexp" else temperature
            got, ref = _kernel(name, x, -1, t, w), _reference(name, x, -1, t, w)
            assert_matches_reference(name, got, ref, n)
    for name in FUNCS[:2]:  # in place: the special row is still intact when it is redone
        y = x.copy()
        with use_backend("compiled"):
            got = getattr(luce, name)(y, -1, out=y)
        assert_matches_reference(name, got, _reference(name, x, -1), n)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_rows_of_every_length_modulo_the_vector_step(dtype, rng):
    # The row passes take LANES elements per step, then one partial step: every remainder of the
    # step (and of two), with masks and temperatures, and a chunk of LANES·K (the float64 folds).
    assert 66 > 2 * _softmax.LANES
    short = _softmax.SHORT_ROW
    for n in [*range(short, short + 66), 255, 256, 257, 1000, _softmax.CHUNK + 1]:
        x = (10 * rng.standard_normal((6, n))).astype(dtype)
        where = rng.random(x.shape) < 0.8
        for temperature, w in [(1.0, None), (0.7, None), (1.0, where), (3.0, where)]:
            for name in FUNCS:
                t = 1.0 if name == "logsumexp" else temperature
                got, ref = _kernel(name, x, -1, t, w), _reference(name, x, -1, t, w)
                assert_matches_reference(name, got, ref, n)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("inplace", [False, True], ids=["new", "in-place"])
def test_special_rows_anywhere_in_a_group(dtype, inplace, rng):
    # A special row (NaN, +inf, all -inf, all masked) among ordinary ones leaves its neighbours alone,
    # in place too (a NaN row is found after the first pass has written it).
    g = 64
    x = (5 * rng.standard_normal((2 * g + 7, 40))).astype(dtype)
    where = rng.random(x.shape) < 0.9
    specials = {0: np.nan, g - 1: np.inf, g: -np.inf, g + 1: "masked", 2 * g + 6: np.nan}
    for row, value in specials.items():
        if value == "masked":
            where[row] = False
        elif value == -np.inf:
            x[row] = -np.inf
        else:
            x[row, 3] = value
    for w in [None, where]:
        for name in FUNCS[:2] if inplace else FUNCS:
            ref = _reference(name, x, -1, 1.0, w)
            if inplace:
                y = x.copy()
                with use_backend("compiled"):
                    got = getattr(luce, name)(y, -1, where=w, out=y)
            else:
                got = _kernel(name, x, -1, 1.0, w)
            assert_matches_reference(name, got, ref, 40)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_running_max_that_grows_along_the_row(dtype):
    # An increasing row: the online max grows in every chunk, so the partial sums are rescaled often.
    x = np.stack([np.linspace(-50, 50, 5000), np.linspace(50, -50, 5000), np.zeros(5000)]).astype(dtype)
    for name in FUNCS:
        assert_matches_reference(name, _kernel(name, x, -1), _reference(name, x, -1), 5000)
        assert_matches_reference(name, _kernel(name, x.T, 0), _reference(name, x.T, 0), 5000)


@pytest.mark.parametrize("axis", [0, -1])
def test_repeated_maxima_keep_tiny_tails(axis):
    # Two maxima (0) among -40s: log_softmax at a maximum is -log(2) - log1p(tail/2), the tail of about
    # 1e-14 only survives when the maxima are counted apart from the small terms (the log1p form),
    # including maxima met after the running max is set (the column code's plain-sum rows).
    col = np.full(3000, -40.0)  # columns of 3000 x 40 float64: streamed, not a cached block
    col[[0, 1500]] = 0.0
    x = np.tile(col, (40, 1))  # rows
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    tail = mpmath.mpf(2998) * mpmath.exp(-40)
    exact = float(-mpmath.log(2 + tail))
    got = _kernel("log_softmax", x, axis)
    at_max = got[:, [0, 1500]] if axis == -1 else got[[0, 1500], :]
    np.testing.assert_allclose(at_max, exact, rtol=2e-16, atol=0)
    lse = _kernel("logsumexp", x, axis).ravel()
    np.testing.assert_allclose(lse, float(mpmath.log(2 + tail)), rtol=2e-16, atol=0)


def test_softmax_row_longer_than_the_cache_path(rng):
    # Rows above ROW_CACHE_BYTES take the two-exp online path instead of exp-store-rescale.
    n = _softmax.ROW_CACHE_BYTES // 4 + 1000
    x = rng.standard_normal((2, n)).astype(np.float32)
    x[1, 7] = np.inf
    assert_matches_reference("softmax", _kernel("softmax", x, -1), _reference("softmax", x, -1), n)


@pytest.mark.parametrize("order", ["C", "F"])
def test_layouts_readonly_and_strided_inputs(order, rng):
    base = np.asarray(rng.standard_normal((40, 30, 20)), order=order)
    ro = base.copy(order=order)
    ro.setflags(write=False)
    views = {
        "contiguous": base,
        "readonly": ro,
        "sliced": base[2:30, 5:25],
        "strided": base[:, ::2, ::3],
        "negative": base[::-1],
        "transposed": base.transpose(1, 2, 0),
        "broadcast": np.broadcast_to(base[:1], base.shape),  # zero strides, read in place
        "misaligned": np.frombuffer(b"\0" + base.tobytes(), offset=1).reshape(base.shape),  # copied
    }
    for x in views.values():
        for axis in range(-3, 3):
            for name in FUNCS:
                got = _kernel(name, x, axis)
                assert_matches_reference(name, got, _reference(name, x, axis), x.shape[axis])


def test_copies_only_when_the_fast_axis_is_not_unit_strided():
    c = np.zeros((6, 5, 4))
    f = np.asfortranarray(c)

    def copied(x, axis):
        return _softmax._layout(x, axis, axis)[0] is not x

    for axis in range(3):
        assert not copied(c, axis) and not copied(f, axis)  # F order: the reversed view
    assert not copied(c[1:5, :, 1:3], 2)  # sliced outer axes, unit-strided rows
    assert not copied(c[:, 1:4], 0)  # trailing axes merge (stride 20, 4, 1)... of a column block
    assert copied(c[:, :, ::2], 2)  # a strided last axis
    assert copied(c[::-1], 1)  # negative strides
    where = np.broadcast_to(np.ones((5, 1), bool), c.shape)  # constant along the fast axis
    assert _softmax._mask_layout(where, 2, 2, False)[0] is not where
    where = np.broadcast_to(np.ones(4, bool), c.shape)  # broadcast along outer axes only
    assert _softmax._mask_layout(where, 2, 2, False)[0] is where


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_masks_of_every_broadcast_shape(dtype, rng):
    x = rng.standard_normal((6, 7, 8)).astype(dtype)
    for mshape in [(6, 7, 8), (1, 7, 8), (6, 1, 8), (6, 7, 1), (8,), (1, 1, 1)]:
        where = rng.random(mshape) < 0.6
        for axis in (0, 1, 2):
            for name in FUNCS:
                got = _kernel(name, x, axis, 1.0, where)
                assert_matches_reference(name, got, _reference(name, x, axis, 1.0, where), 8)


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((20, _softmax.PARALLEL_MIN_SIZE // 20 + 1))  # large enough for threads
    rows = [_kernel(name, x, -1) for name in FUNCS]
    cols = [_kernel(name, x.T.copy(), 0) for name in FUNCS]
    with _dispatch.serial_kernels():  # one thread
        for name, r, c in zip(FUNCS, rows, cols, strict=True):
            np.testing.assert_array_equal(_kernel(name, x, -1), r)  # rows: the same operations
            # columns: the reduced axis may be split differently, so the sums round differently
            np.testing.assert_allclose(_kernel(name, x.T.copy(), 0), c, rtol=1e-14, atol=1e-14)
    for threads in (1, 2, 3):  # the kernels' own argument: any split gives the reference's values
        for log in (False, True):
            got = _softmax.softmax(x.T.copy(), (0,), 1.0, None, log, None, threads)
            assert_matches_reference(FUNCS[log], got, _reference(FUNCS[log], x.T.copy(), 0), x.shape[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("axis", [0, 1])
def test_long_slices_meet_the_accuracy_bound(dtype, axis, rng):
    # The blocked sums keep (8 + |x - max|)·eps over 4000 terms (a plain running sum would not
    # guarantee it). Oracle: extended precision (float64 for float32).
    x = (3 * rng.standard_normal((3, 4000))).astype(dtype)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    p = _kernel("softmax", x, axis)
    wide = np.longdouble if dtype == np.float64 else np.float64
    xw = x.astype(wide)
    e = np.exp(xw - xw.max(axis=axis, keepdims=True))
    exact = e / e.sum(axis=axis, keepdims=True)
    eps = np.finfo(dtype).eps
    bound = (8 + np.abs(xw - xw.max(axis=axis, keepdims=True))) * eps
    rel = np.abs(p.astype(wide) - exact) / exact
    assert np.all(rel <= bound), float(np.max(rel / bound))


# --- the vectorisable exp ------------------------------------------------------------------------------


def _ulp_error(dtype, x):
    """Relative error of the kernels' exp (csrc/luce_exp.h) against mpmath, in units of eps."""
    x = np.asarray(x, dtype=dtype)
    got = _exp.exp_array(x)
    errs = []
    for v, g in zip(x, got, strict=True):
        exact = mpmath.exp(mpmath.mpf(float(v)))
        errs.append(float(abs((mpmath.mpf(float(g)) - exact) / exact)))
    return np.array(errs) / float(np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_exp_polynomial_on_the_reduced_range(dtype):
    # |r| <= ln(2)/2, where only the polynomial works (k = 0 or ±1): within 0.6 eps of mpmath.
    r = np.linspace(-math.log(2) / 2, math.log(2) / 2, 1001)
    assert _ulp_error(dtype, r).max() < 0.6


@pytest.mark.parametrize(("dtype", "lo"), [(np.float32, -87.0), (np.float64, -708.0)], ids=["f32", "f64"])
def test_exp_range_reduction_is_exact(dtype, lo):
    # Cody & Waite's split ln 2: with one rounded ln 2 the error grows like |k|·ulp(ln 2) (about 2.5
    # eps at -87 in float32, 100 eps at -700 in float64); with the split it stays below 0.6 eps.
    x = np.linspace(lo, -1.0, 1500)
    assert _ulp_error(dtype, x).max() < 0.6


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_exp_extremes_and_underflow(dtype):
    def f(values):
        return _exp.exp_array(values)

    special = np.array([0.0, -0.0, -np.inf, np.nan], dtype=dtype)
    got = f(special)
    assert got[0] == 1.0 and got[1] == 1.0 and got[2] == 0.0 and np.isnan(got[3])
    # Gradual underflow as np.exp: within one subnormal ulp, then exactly 0 (below -745.2 / -103.98).
    lo = -745.5 if dtype == np.float64 else -104.5
    x = np.linspace(lo, lo + 40, 4001).astype(dtype)
    with np.errstate(under="ignore"):
        ref = np.exp(x.astype(np.float64)).astype(dtype)
    sub = ref < np.finfo(dtype).tiny
    tiny_step = np.finfo(dtype).smallest_subnormal
    assert np.all(np.abs(f(x)[sub].astype(np.float64) - ref[sub]) <= tiny_step)
    assert np.all(f(np.array([lo, -1e4, -1e30], dtype=dtype)) == 0.0)
    assert f(np.array([-1e-30], dtype=dtype))[0] == 1.0


@pytest.mark.parametrize(("dtype", "hi"), [(np.float32, 43.0), (np.float64, 290.0)], ids=["f32", "f64"])
def test_exp_is_correct_up_to_its_documented_limit(dtype, hi):
    assert _ulp_error(dtype, np.linspace(0.0, hi, 400)).max() < 0.6


def test_log1p_matches_mpmath():
    t = np.concatenate([[0.0, 5e-324, 1e-300, 4.248354255291589e-18], np.geomspace(1e-18, 1e300, 2000)])
    got = _exp.log1p_array(t)
    assert got[0] == 0.0 and got[3] == 4.248354255291589e-18  # tiny tails kept exactly
    errs = [
        float(
            abs(
                (mpmath.mpf(float(g)) - mpmath.log1p(mpmath.mpf(float(v))))
                / mpmath.log1p(mpmath.mpf(float(v)))
            )
        )
        for v, g in zip(t[1:], got[1:], strict=True)
    ]
    assert max(errs) < 0.7 * 2.0**-52
    special = _exp.log1p_array(np.array([np.inf, np.nan]))
    assert special[0] == np.inf and np.isnan(special[1])


# --- the parallel paths (arrays above PARALLEL_MIN_SIZE) -----------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((300, 3500), -1),  # rows over several tasks
        ((270_000, 4), 0),  # few columns: the reduced axis split over threads, states merged
        ((300, 4000), 0),  # columns over two CB blocks, streamed (online)
        ((70_000, 16), -1),  # short rows over several tasks
    ],
    ids=str,
)
def test_parallel_paths_match_the_reference(shape, axis, rng):
    x = 5 * rng.standard_normal(shape)
    x.flat[::4099] = np.inf
    x.flat[7::1013] = -np.inf
    x.flat[11::50_021] = np.nan
    where = rng.random(shape) < 0.9
    for temperature, w in [(1.0, None), (math.inf, None), (2.0, where)]:
        for name in FUNCS:
            t = 1.0 if name == "logsumexp" else temperature
            got, ref = _kernel(name, x, axis, t, w), _reference(name, x, axis, t, w)
            assert_matches_reference(name, got, ref, shape[axis])


# --- threads --------------------------------------------------------------------------------------------


def test_use_backend_is_local_to_the_thread():
    import threading

    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with use_backend("compiled"):
            seen["worker"] = _dispatch.get_backend()
            inside.set()
            release.wait(30)

    default = _dispatch.get_backend()
    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert inside.wait(30)
        seen["main"] = _dispatch.get_backend()  # while the worker is inside its block
        with use_backend("reference"):
            seen["main_block"] = _dispatch.get_backend()
    finally:
        release.set()
        thread.join(30)
    assert seen == {"worker": "compiled", "main": default, "main_block": "reference"}
    assert _dispatch.get_backend() == default


def test_use_backend_is_local_to_the_context():
    import contextvars

    def inner():
        with use_backend("reference"):
            return _dispatch.get_backend()

    with use_backend("compiled"):
        assert contextvars.copy_context().run(inner) == "reference"
        assert _dispatch.get_backend() == "compiled"


THREADS_SCRIPT = """
import threading, numpy as np, luce
from luce._kernels import use_backend
rng = np.random.default_rng(5)
xs = [rng.normal(size=(64, 400)) * 5 for _ in range(8)]  # 25600 elements: parallel kernels
ys = [rng.integers(0, 400, 64) for _ in range(8)]
def calls(x, y):
    return (luce.softmax(x), luce.log_softmax(x), luce.logsumexp(x), luce.softmax(x, axis=0),
            luce.log_softmax(x, axis=0), luce.cross_entropy(x, y))
with use_backend("reference"):
    ref = [calls(x, y) for x, y in zip(xs, ys)]
bad = []
def work(i):
    with use_backend("compiled"):
        for _ in range(10):
            got = calls(xs[i], ys[i])
            bad.extend(i for a, b in zip(got, ref[i]) if not np.allclose(a, b, rtol=1e-12, atol=1e-15))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(bad))
"""


def test_concurrent_calls_from_python_threads():
    # Eight Python threads launching parallel (OpenMP) kernels at once, with the GIL released inside
    # them: every result is the reference's. (Under Numba's workqueue threading layer this aborted.)
    out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0"]
