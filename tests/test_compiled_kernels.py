"""The kernels are compiled at install: no public call compiles anything or loads a JIT.

One fresh interpreter calls every public function that has a compiled kernel, on the compiled backend and
on "auto" with arrays large enough for the kernels, and then looks at what it imported.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from luce._kernels import _dispatch, _runtime

JIT_MODULES = ("numba", "llvmlite")

_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import luce
    from luce._kernels import use_backend

    rng = np.random.default_rng(0)
    y = rng.integers(0, 40, size=300)
    X = rng.standard_normal((300, 12))
    for backend in ("compiled", "auto"):
        with use_backend(backend):
            for dtype in (np.float32, np.float64):
                z = rng.standard_normal((300, 40)).astype(dtype)
                luce.softmax(z)
                luce.log_softmax(z, axis=0)
                luce.logsumexp(z, axis=-1)
                luce.softmax(z[:, :8])
                luce.softmax(z, where=z > -1.0, temperature=0.5)
                luce.cross_entropy(z, y, return_grad=True, label_smoothing=0.1)
                luce.sparsemax(z)
                luce.entmax15(z)
                luce.entmax_bisect(z, alpha=1.3)
                luce.topk_softmax(z, 3)
                luce.sample(z, rng=rng)
                luce.gumbel_softmax(z, rng=rng)
                luce.linear_cross_entropy(X.astype(dtype), rng.standard_normal((40, 12)).astype(dtype), y)
    luce.SoftmaxRegression(max_iter=5).fit(X, y % 3).predict_proba(X)
    luce.SoftmaxRegression(solver="sgd", max_iter=2).fit(X, y % 3)
    tree = luce.HierarchicalSoftmaxClassifier(max_iter=3).fit(X, y)
    tree.predict_proba(X)
    tree.predict_topk(X, 3)
    print(sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite"}))
    """
)


@pytest.mark.slow
def test_no_public_call_loads_a_jit():
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", f"a public call loaded {out.stdout.strip()}"


def test_every_registered_operation_has_its_compiled_function():
    x = np.zeros((4, 4))
    with _dispatch.use_backend("compiled"):
        for op in _dispatch._REGISTRY:
            assert callable(_dispatch.lookup(op, x)), op


def test_the_kernels_report_where_they_run():
    assert _runtime.max_threads() >= 1
    assert _runtime.isa().split()[0] in ("x86-64-v4", "x86-64-v3", "x86-64", "aarch64", "generic")
