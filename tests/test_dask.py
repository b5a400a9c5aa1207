"""SoftmaxRegression on Dask: the same optimum as in memory, on a real 2-process LocalCluster and locally.

The references are independent of the dask code: the in-memory fit of the same estimator, the objective
written out here with scipy.special.log_softmax, and scikit-learn's LogisticRegression at
``C = 1 / (reg_strength · Σw)``.
"""

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from luce import SoftmaxRegression

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from luce.distributed import _dask  # noqa: E402  (after the importorskip guards)

REG = 1e-3
TIGHT = dict(tol=1e-10, max_iter=500)  # both fits run to the optimum, not to a loose gradient test


# -- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    """A real cluster: 2 worker processes (with nannies) on loopback, shared by the module.

    ``set_as_default=False``: tests opt in with ``client.as_current()``, so the local-scheduler tests
    really run without a client.
    """
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        # The scheduler's HTTP server (health routes) starts even without a dashboard, on 8787 unless told
        # otherwise; a port of 0 never collides with another cluster on the machine (the collision is a
        # UserWarning, an error under filterwarnings=error).
        dashboard_address=":0",
        host="127.0.0.1",
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _problem(rng, n=1500, d=5, k=4):
    """Features with different scales and an offset, labels drawn from a softmax model."""
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 0.7
    W = rng.standard_normal((k, d))
    z = X @ W.T + rng.standard_normal(k)
    y = np.argmax(z + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def _reference_objective(X, y, classes, coef, intercept, sw, reg):
    """The objective written out: weighted mean cross-entropy + reg/2 ||W||² (scipy's log_softmax)."""
    idx = np.searchsorted(classes, y)
    logp = scipy.special.log_softmax(X @ coef.T + intercept, axis=1)
    w = np.ones(len(y)) if sw is None else sw
    return -np.sum(w * logp[np.arange(len(y)), idx]) / np.sum(w) + 0.5 * reg * np.sum(coef**2)


def _assert_same_optimum(fitted, expected, X, y, sw=None, reg=REG):
    f_dask = _reference_objective(X, y, fitted.classes_, fitted.coef_, fitted.intercept_, sw, reg)
    f_mem = _reference_objective(X, y, expected.classes_, expected.coef_, expected.intercept_, sw, reg)
    assert abs(f_dask - f_mem) <= 1e-8 * abs(f_mem), (f_dask, f_mem)
    np.testing.assert_array_equal(fitted.classes_, expected.classes_)
    # Probabilities from the coefficients (scipy), so that no compiled softmax kernel is involved.
    p_dask = scipy.special.softmax(X @ fitted.coef_.T + fitted.intercept_, axis=1)
    p_mem = scipy.special.softmax(X @ expected.coef_.T + expected.intercept_, axis=1)
    np.testing.assert_allclose(p_dask, p_mem, rtol=0, atol=1e-6)


def _prepared_keys(client):
    """Keys of prepared data blocks held in the cluster's memory (a chunk may be copied to both workers)."""
    return {k for keys in client.has_what().values() for k in keys if str(k).startswith("_prepare")}


class _ChunkComputations(distributed.diagnostics.plugin.SchedulerPlugin):
    """Counts, on the scheduler, how often each prepared chunk reaches memory."""

    name = "luce-test-chunk-computations"

    def __init__(self):
        self.counts = collections.Counter()

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory" and str(key).startswith("_prepare"):
            self.counts[key] += 1


def _add_counter(dask_scheduler):
    dask_scheduler.add_plugin(_ChunkComputations())


def _recomputed_chunks(dask_scheduler):
    plugin = dask_scheduler.plugins[_ChunkComputations.name]
    dask_scheduler.remove_plugin(name=_ChunkComputations.name)
    return sum(1 for n in plugin.counts.values() if n > 1)


# -- without a client: the local threaded scheduler ------------------------------------------------


@pytest.mark.parametrize("persist", [True, False], ids=["persisted", "streamed"])
def test_threaded_scheduler_without_client(rng, persist):
    X, y = _problem(rng)
    sw = rng.uniform(0.2, 3.0, len(y))
    expected = SoftmaxRegression(REG, **TIGHT).fit(X, y, sample_weight=sw)
    Xd, yd, swd = da.from_array(X, chunks=(400, 3)), da.from_array(y, chunks=250), da.from_array(sw)
    with dask.config.set({"scheduler": "threads", "luce.persist": persist}):
        assert _dask.active_client() is None
        fitted = SoftmaxRegression(REG, **TIGHT).fit(Xd, yd, sample_weight=swd)
    assert isinstance(fitted.coef_, np.ndarray)
    assert fitted.n_features_in_ == X.shape[1]
    _assert_same_optimum(fitted, expected, X, y, sw)


@pytest.mark.parametrize(
    "layout",
    [
        "numpy-y",
        "scalar-weight",
        "frame-numpy-y",
        "frame-unknown-chunks-y",
        "series-other-partitions",
        "numpy-X",
        "sparse-chunks",
    ],
)
def test_input_layouts(rng, layout):
    X, y = _problem(rng, n=900, k=3)
    X[rng.random(X.shape) < 0.4] = 0.0  # sparse enough for the CSR layout
    Xd, sw = da.from_array(X, chunks=200), None
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=4)
    series = dd.from_pandas(pd.Series(y), npartitions=4)
    inputs = {
        "numpy-y": (Xd, y),
        "scalar-weight": (Xd, da.from_array(y, chunks=300)),
        "frame-numpy-y": (frame, y),
        "frame-unknown-chunks-y": (frame, series.to_dask_array()),
        "series-other-partitions": (Xd, dd.from_pandas(pd.Series(y), npartitions=3)),
        "numpy-X": (X, da.from_array(y, chunks=300)),
        "sparse-chunks": (
            Xd.map_blocks(sp.csr_matrix, meta=sp.csr_matrix((0, 0))),
            da.from_array(y, chunks=200),
        ),
    }
    if layout == "scalar-weight":
        sw = 2.5
    expected = SoftmaxRegression(REG, **TIGHT).fit(X, y, sample_weight=sw)
    with dask.config.set(scheduler="threads"):
        fitted = SoftmaxRegression(REG, **TIGHT).fit(*inputs[layout], sample_weight=sw)
    _assert_same_optimum(fitted, expected, X, y)


def test_float32_trains_in_float32(rng):
    X, y = _problem(rng)
    X32 = X.astype(np.float32)
    expected = SoftmaxRegression(REG).fit(X32, y)
    fitted = SoftmaxRegression(REG).fit(da.from_array(X32, chunks=500), da.from_array(y, chunks=500))
    assert fitted.coef_.dtype == np.float32
    np.testing.assert_allclose(fitted.predict_proba(X32), expected.predict_proba(X32), atol=2e-4)


def test_matches_scikit_learn(rng):
    # An independent optimum: LogisticRegression(C = 1 / (reg_strength * n)) minimises the same function.
    X, y = _problem(rng, k=3)
    lr = LogisticRegression(C=1.0 / (REG * len(y)), tol=1e-12, max_iter=5000).fit(X, y)
    fitted = SoftmaxRegression(REG, solver="newton-cg", **TIGHT).fit(
        da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    )
    np.testing.assert_allclose(fitted.predict_proba(X), lr.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "options",
    [
        dict(class_weight="balanced", fit_intercept=False),
        dict(class_weight={0: 2.0, 1: 0.5}, reg_strength=0.1),
        dict(label_smoothing=0.1, reg_strength=0.0),
    ],
    ids=["balanced-no-intercept", "dict-weights", "label-smoothing"],
)
def test_options_mean_what_they_mean_in_memory(rng, options):
    X, y = _problem(rng, k=3)
    sw = rng.uniform(0.0, 2.0, len(y))
    expected = SoftmaxRegression(**{"reg_strength": REG, **TIGHT, **options}).fit(X, y, sample_weight=sw)
    fitted = SoftmaxRegression(**{"reg_strength": REG, **TIGHT, **options}).fit(
        da.from_array(X, chunks=350), da.from_array(y, chunks=350), sample_weight=sw
    )
    np.testing.assert_allclose(fitted.coef_, expected.coef_, atol=1e-6)
    np.testing.assert_allclose(fitted.intercept_, expected.intercept_, atol=1e-6)
    np.testing.assert_allclose(fitted.predict_proba(X), expected.predict_proba(X), atol=1e-6)


def test_warm_start_continues_from_the_previous_fit(rng):
    X, y = _problem(rng, k=3)
    Xd, yd = da.from_array(X, chunks=400), da.from_array(y, chunks=400)
    model = SoftmaxRegression(REG, tol=1e-10, max_iter=3, warm_start=True)
    with pytest.warns(ConvergenceWarning, match="reached max_iter=3"):
        model.fit(Xd, yd)
    start = _reference_objective(X, y, model.classes_, model.coef_, model.intercept_, None, REG)
    model.set_params(max_iter=500).fit(Xd, yd)
    # The second fit starts where the first ended: its first loss is the objective there.
    assert model.loss_curve_[0] == pytest.approx(start, rel=1e-12)
    _assert_same_optimum(model, SoftmaxRegression(REG, **TIGHT).fit(X, y), X, y)
    with pytest.raises(ValueError, match="warm_start=True needs the classes"):
        model.fit(Xd, yd + 1)


def test_blocks_hold_at_most_one_sub_block_of_probabilities(rng, monkeypatch):
    # A chunk of 5000 rows x 4 classes is evaluated in sub-blocks of 2**18 / 4 rows at most, never whole.
    monkeypatch.setattr(_dask, "_BLOCK_ELEMENTS", 4 * 700)
    seen = []
    real = _dask.block_loss_gradient

    def spy(X_block, *args, **kwargs):
        seen.append(X_block.shape[0])
        return real(X_block, *args, **kwargs)

    monkeypatch.setattr(_dask, "block_loss_gradient", spy)
    X, y = _problem(rng, n=5000)
    with dask.config.set(scheduler="synchronous"):
        fitted = SoftmaxRegression(REG, **TIGHT).fit(
            da.from_array(X, chunks=5000), da.from_array(y, chunks=5000)
        )
    assert max(seen) == 700
    assert sum(seen[:8]) == 5000  # the first pass covers every row exactly once
    _assert_same_optimum(fitted, SoftmaxRegression(REG, **TIGHT).fit(X, y), X, y)


def test_tree_reduction_has_fixed_fan_in():
    parts = [dask.delayed(np.float64)(i) for i in range(20)]
    total = _dask._tree(parts, lambda *xs: sum(xs), split_every=8)
    graph = dict(total.__dask_graph__())
    assert len(graph) == 20 + 3 + 1  # 20 leaves, 3 partial sums (8, 8, 4), 1 root
    assert total.compute(scheduler="synchronous") == sum(range(20))


@pytest.mark.parametrize("binary", [False, True], ids=["3-classes", "2-classes"])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "decision_function"])
def test_predictions_are_lazy_chunk_for_chunk(rng, method, binary):
    X, y = _problem(rng, k=2 if binary else 3)
    model = SoftmaxRegression(REG).fit(X, y)
    Xd = da.from_array(X, chunks=(400, 2))
    out = getattr(model, method)(Xd)
    assert isinstance(out, da.Array)
    assert out.chunks[0] == Xd.chunks[0]
    expected = getattr(model, method)(X)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    with dask.config.set(scheduler="threads"):
        got = out.compute()
    if method == "predict":
        np.testing.assert_array_equal(got, expected)
    else:  # the same computation on fewer rows: equal up to BLAS blocking (a few ulps)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_dataframe_predictions_check_feature_names_eagerly(rng):
    X, y = _problem(rng, k=3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = SoftmaxRegression(REG).fit(frame, y)
    ddf = dd.from_pandas(frame, npartitions=3)
    proba = model.predict_proba(ddf)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(scheduler="threads"), model.predict_proba(frame), rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(ddf.rename(columns={"f0": "other"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(da.from_array(X, chunks=500))


def test_bad_input_raises_clear_errors(rng):
    X, y = _problem(rng, n=200, k=3)
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    with pytest.raises(ValueError, match="solver='sgd' cannot train"):
        SoftmaxRegression(solver="sgd").fit(Xd, yd)
    with pytest.raises(ValueError, match="y must be 1-D"):
        SoftmaxRegression().fit(Xd, dd.from_pandas(pd.DataFrame({"a": y, "b": y}), npartitions=2))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SoftmaxRegression().fit(Xd, yd[:-1])
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxRegression().fit(Xd, da.zeros(200, chunks=50, dtype=int))
    bad = X.copy()
    bad[123, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SoftmaxRegression().fit(da.from_array(bad, chunks=50), yd)
    with pytest.raises(ValueError, match="Negative values in data passed to sample_weight"):
        SoftmaxRegression().fit(Xd, yd, sample_weight=-np.ones(200))
    with pytest.raises(ValueError, match="Unknown label type"):
        SoftmaxRegression().fit(Xd, da.from_array(rng.standard_normal(200), chunks=50))
    with pytest.raises(ValueError, match=r"luce\.persist"), dask.config.set({"luce.persist": "sometimes"}):
        SoftmaxRegression().fit(Xd, yd)
    with pytest.raises(ValueError, match="X must be 2-D"):
        SoftmaxRegression().fit(Xd[:, 0], yd)


def test_fitting_numpy_does_not_import_dask():
    code = (
        "import sys, numpy as np; from luce import SoftmaxRegression; "
        "m = SoftmaxRegression().fit(np.eye(4), [0, 1, 0, 1]); m.predict_proba(np.eye(4)); "
        "print('dask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- on the 2-process LocalCluster ------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample-weights"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_cluster_fit_has_the_in_memory_optimum(client, rng, solver, weighted):
    X, y = _problem(rng)
    sw = rng.uniform(0.2, 3.0, len(y)) if weighted else None
    expected = SoftmaxRegression(REG, solver=solver, **TIGHT).fit(X, y, sample_weight=sw)
    Xd = da.from_array(X, chunks=((500, 300, 700), (2, 3)))  # uneven rows, split columns
    yd = da.from_array(y, chunks=600)  # other row chunks: realigned to X's
    swd = None if sw is None else da.from_array(sw, chunks=500)
    held = []
    with client.as_current():
        assert _dask.active_client() is client
        fitted = SoftmaxRegression(
            REG, solver=solver, verbose=lambda i, loss: held.append(len(_prepared_keys(client))), **TIGHT
        ).fit(Xd, yd, sample_weight=swd)
        proba = fitted.predict_proba(Xd)
        assert proba.chunks[0] == Xd.chunks[0]
        proba = proba.compute()
    # luce.persist="auto": the data fit easily, so the 3 prepared chunks stay on the workers.
    assert set(held) == {3}
    _assert_same_optimum(fitted, expected, X, y, sw)
    np.testing.assert_allclose(proba, expected.predict_proba(X), atol=1e-6)


def test_cluster_dataframe_and_series(client, rng):
    X, y = _problem(rng, k=3)
    labels = np.array(["cat", "dog", "emu"], dtype=object)[y]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["label"] = labels
    frame["weight"] = rng.uniform(0.2, 3.0, len(y))
    ddf = dd.from_pandas(frame, npartitions=4)
    features = [f"f{i}" for i in range(X.shape[1])]
    expected = SoftmaxRegression(REG, class_weight="balanced", **TIGHT).fit(
        frame[features], frame["label"], sample_weight=frame["weight"].to_numpy()
    )
    with client.as_current():
        fitted = SoftmaxRegression(REG, class_weight="balanced", **TIGHT).fit(
            ddf[features], ddf["label"], sample_weight=ddf["weight"]
        )
        predicted = fitted.predict(ddf[features]).compute()
    np.testing.assert_array_equal(fitted.feature_names_in_, features)
    # The balanced weights written out: Σw / (K · Σ_{y_i = k} w_i), times the sample weight.
    classes, idx = np.unique(labels, return_inverse=True)
    per_class = np.bincount(idx, weights=frame["weight"])
    w = frame["weight"].to_numpy() * (per_class.sum() / (3 * per_class))[idx]
    f = [_reference_objective(X, labels, classes, m.coef_, m.intercept_, w, REG) for m in (fitted, expected)]
    assert abs(f[0] - f[1]) <= 1e-8 * f[1]
    np.testing.assert_allclose(
        fitted.predict_proba(frame[features]), expected.predict_proba(frame[features]), atol=1e-6
    )
    np.testing.assert_array_equal(predicted, expected.predict(frame[features]))


def test_cluster_streams_when_persist_is_off(client, rng):
    # luce.persist=False (what "auto" picks for data larger than half the cluster memory): no prepared
    # chunk stays on the workers between iterations; each pass recomputes them from the graph.
    X, y = _problem(rng, n=1200, k=3)
    held = []
    with client.as_current(), dask.config.set({"luce.persist": False}):
        fitted = SoftmaxRegression(
            REG, verbose=lambda i, loss: held.append(len(_prepared_keys(client))), **TIGHT
        ).fit(da.from_array(X, chunks=300), da.from_array(y, chunks=300))
    assert set(held) == {0}
    _assert_same_optimum(fitted, SoftmaxRegression(REG, **TIGHT).fit(X, y), X, y)


def test_cluster_survives_a_killed_worker(client, rng):
    X, y = _problem(rng)
    sw = rng.uniform(0.2, 3.0, len(y))
    expected = SoftmaxRegression(REG, **TIGHT).fit(X, y, sample_weight=sw)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_worker(i, loss):
        # From iteration 1 on, SIGKILL the first worker that holds a prepared chunk no other worker has a
        # copy of (work stealing copies some), so that the next pass must recompute it.
        if i == 0 or killed:
            return
        holders = collections.defaultdict(set)
        for worker, keys in client.has_what().items():
            for key in keys:
                if str(key).startswith("_prepare"):
                    holders[key].add(worker)
        alone = sorted(next(iter(w)) for w in holders.values() if len(w) == 1)
        if alone:
            os.kill(pids[alone[0]], signal.SIGKILL)
            killed.append(pids[alone[0]])

    client.run_on_scheduler(_add_counter)
    with client.as_current():
        fitted = SoftmaxRegression(REG, verbose=kill_a_worker, **TIGHT).fit(
            da.from_array(X, chunks=250), da.from_array(y, chunks=250), sample_weight=sw
        )
    assert len(killed) == 1
    # The chunks that lived only on the killed worker were computed again, from the dask arrays' graph.
    assert client.run_on_scheduler(_recomputed_chunks) >= 1
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker for the next tests
    assert killed[0] not in client.run(os.getpid).values()
    _assert_same_optimum(fitted, expected, X, y, sw)


# -- 400 MB workers (issue 16) ---------------------------------------------------------------------------

# With the Numba kernels, a worker's first softmax loaded Numba and llvmlite (+105 MiB measured:
# 198 -> 304 MiB, 356 MiB while compiling), past dask's pause threshold of 80 % of 400 MB; the paused
# workers never resumed and the compute hung (tests/dask_small_workers.py shows each step's memory).


@pytest.mark.slow  # two worker processes start (5-10 s)
def test_predict_and_fit_on_two_workers_of_400_mb():
    script = Path(__file__).with_name("dask_small_workers.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--memory-limit", "400MB", "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a hang is killed with its workers
    )
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"predict_proba/fit on 400 MB workers did not finish in 300 s:\n{out}")
    assert proc.returncode == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    steps = {s["step"]: s for s in report["steps"]}
    assert {"predict_proba", "fit"} <= set(steps), out
    # The same numbers as in memory: predictions to rounding, the fit to the optimiser's tolerance.
    assert report["predict_proba_max_error"] < 1e-12, out
    assert report["fit_max_coef_difference"] < 1e-4, out
    # Nothing compiles at call time in a worker (issue 16: no JIT module is loaded by a public call).
    for s in report["steps"]:
        assert not {"numba", "llvmlite"} & set(s["modules"]), out


# -- the seam: models find the dask fitter, never import it ------------------------------------------


def test_models_never_import_distributed_and_dask_input_still_fits():
    code = (
        "import sys, numpy as np\n"
        "from luce.models import SoftmaxRegression\n"
        "X = np.random.default_rng(0).normal(size=(60, 3)); y = np.arange(60) % 3\n"
        "SoftmaxRegression().fit(X, y).predict(X)\n"
        "assert 'luce.distributed' not in sys.modules, 'an in-memory fit imported luce.distributed'\n"
        "import dask.array as da\n"
        "clf = SoftmaxRegression().fit(da.from_array(X, chunks=20), da.from_array(y, chunks=20))\n"
        "assert 'luce.distributed' in sys.modules\n"
        "print(clf.predict(da.from_array(X, chunks=20)).compute()[:3])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("[")


@pytest.mark.parametrize("weight", [5e-324, 1e308], ids=["subnormal", "huge"])
def test_weights_are_freely_scalable_on_dask(rng, weight):
    X, y = _problem(rng, n=300, k=3)
    Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    plain = SoftmaxRegression(REG, tol=1e-8).fit(X, y)
    weighted = SoftmaxRegression(REG, tol=1e-8).fit(Xd, yd, sample_weight=da.full(300, weight, chunks=100))
    np.testing.assert_allclose(weighted.coef_, plain.coef_, rtol=1e-6, atol=1e-8)


def test_dask_refuses_what_memory_refuses(rng):
    from luce import SigmoidRegression

    X, y = _problem(rng, n=200, k=3)
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    with pytest.raises(TypeError, match="SigmoidRegression cannot train on dask input yet"):
        SigmoidRegression().fit(Xd, yd)
    with pytest.raises(ValueError, match=r"'class_weight' parameter .* finite weight >= 0"):
        SoftmaxRegression(class_weight={0: -1.0}).fit(Xd, yd)
    warm = SoftmaxRegression(warm_start=True).fit(Xd, yd)
    with pytest.raises(ValueError, match="which had 5 features; X has 4"):
        warm.fit(Xd[:, :4], yd)
