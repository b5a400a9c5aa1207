"""SoftmaxRegression against scikit-learn's LogisticRegression and the tutorial it grew from.

References: LogisticRegression(C = 1/(reg_strength·Σw), tol=1e-10) (C = 2/(reg_strength·Σw) for two
classes) with the objective evaluated independently by scipy.special.log_softmax; scipy's
minimize_scalar for the temperature; torch is not needed here.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_blobs,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight
from threadpoolctl import threadpool_limits

import luce
from luce.models import SoftmaxRegression
from luce.models import _objective as objective_module


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """Small problems: BLAS threads only add hand-off latency (the estimator does the same below 4M)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def objective(W, b, X, y_idx, w, reg):
    """The documented objective, written out with SciPy."""
    logp = log_softmax(X @ W.T + b, axis=1)[np.arange(len(y_idx)), y_idx]
    return float(-(w @ logp) / w.sum() + 0.5 * reg * np.sum(W * W))


def _load(name):
    if name == "iris":
        X, y = load_iris(return_X_y=True)
    elif name == "wine":
        X, y = load_wine(return_X_y=True)
    elif name == "digits":
        X, y = load_digits(return_X_y=True)
        X, y = X[:400], y[:400]
    elif name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = make_classification(
            n_samples=300, n_features=12, n_informative=6, n_classes=4, n_clusters_per_class=1, random_state=0
        )
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("weighting", ["none", "sample_weight", "class_weight"])
@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer", "make_classification"])
def test_same_optimum_as_scikit_learn(name, weighting):
    X, y = _load(name)
    reg = 1e-2
    rng = np.random.default_rng(7)
    sw = rng.uniform(0.2, 3.0, len(y)) if weighting == "sample_weight" else None
    cw = "balanced" if weighting == "class_weight" else None
    ours = SoftmaxRegression(reg_strength=reg, tol=1e-10, max_iter=1000, class_weight=cw).fit(
        X, y, sample_weight=sw
    )

    classes, y_idx = np.unique(y, return_inverse=True)
    w = np.ones(len(y)) if sw is None else sw.copy()
    if cw is not None:
        w = w * compute_class_weight(cw, classes=classes, y=y)[y_idx]
    K = len(classes)
    C = (2.0 if K == 2 else 1.0) / (reg * w.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # scikit-learn's line search at tol=1e-10
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000, class_weight=cw).fit(X, y, sample_weight=sw)
    if K == 2:  # scikit-learn's single vector is the logit difference: split it symmetrically
        W_ref = np.vstack([-ref.coef_ / 2, ref.coef_ / 2])
        b_ref = np.array([-ref.intercept_[0] / 2, ref.intercept_[0] / 2])
    else:
        W_ref, b_ref = ref.coef_, ref.intercept_
    f_ours = objective(ours.coef_, ours.intercept_, X, y_idx, w, reg)
    f_ref = objective(W_ref, b_ref, X, y_idx, w, reg)
    assert f_ours == pytest.approx(f_ref, rel=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4 * (1 + K))
    np.testing.assert_array_equal(ours.classes_, ref.classes_)


def test_newton_cg_reaches_the_same_optimum():
    X, y = _load("wine")
    a = SoftmaxRegression(reg_strength=1e-2, tol=1e-10).fit(X, y)
    b = SoftmaxRegression(reg_strength=1e-2, tol=1e-10, solver="newton-cg").fit(X, y)
    w = np.ones(len(y))
    f_a = objective(a.coef_, a.intercept_, X, y, w, 1e-2)
    assert objective(b.coef_, b.intercept_, X, y, w, 1e-2) == pytest.approx(f_a, rel=1e-12)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-6)


def test_sample_weight_is_exactly_repetition():
    """Integer weights and repeated rows define the same objective (estimator-checks data, converged)."""
    rng = np.random.RandomState(42)
    X, y, sw = rng.rand(15, 30), rng.randint(0, 3, size=15), rng.randint(0, 5, size=15)
    kw = dict(reg_strength=1e-1, tol=1e-10, max_iter=500)
    repeated = SoftmaxRegression(**kw).fit(X.repeat(sw, axis=0), y.repeat(sw))
    weighted = SoftmaxRegression(**kw).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7)


def test_binary_has_two_vectors_and_sklearn_shapes():
    X, y = _load("breast_cancer")
    labels = np.where(y == 1, "benign", "malignant")
    clf = SoftmaxRegression(reg_strength=1e-2).fit(X, labels)
    assert clf.coef_.shape == (2, X.shape[1]) and clf.intercept_.shape == (2,)
    assert clf.predict_proba(X).shape == (len(y), 2)
    d = clf.decision_function(X)
    assert d.shape == (len(y),)
    z = X @ clf.coef_.T + clf.intercept_
    np.testing.assert_allclose(d, z[:, 1] - z[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), np.where(d > 0, clf.classes_[1], clf.classes_[0]))
    # The symmetric optimum: the penalty splits the logit difference evenly.
    np.testing.assert_allclose(clf.coef_[0], -clf.coef_[1], atol=1e-6)


def test_tutorial_gradient_descent_prints_every_100_iterations(capsys):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxRegression(solver="gd", learning_rate=0.1, threshold=0.1, max_iter=20_000, verbose=1).fit(
        X, y
    )
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = re.compile(r"^Iter\(Epoch\): (\d+), Loss: (\d+\.\d+)$")
    iters = [int(pattern.match(line).group(1)) for line in lines]
    assert iters == list(range(0, clf.n_iter_ + 1, 100))
    losses = [float(pattern.match(line).group(2)) for line in lines]
    assert losses[0] == pytest.approx(np.log(3), abs=1e-6)
    assert np.all(np.diff(losses) < 0)
    # It stops at the first iteration whose cost is under the threshold (or at max_iter).
    assert clf.loss_curve_[-1] < 0.1 <= min(clf.loss_curve_[:-1])
    assert len(clf.loss_curve_) == clf.n_iter_ + 1
    assert clf.score(X, y) > 0.95


def test_tutorial_stops_at_max_iter_with_a_convergence_warning(capsys):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with pytest.warns(ConvergenceWarning, match="max_iter=250"):
        clf = SoftmaxRegression(solver="gd", learning_rate=0.1, threshold=0.1, max_iter=250, verbose=1).fit(
            X, y
        )
    assert clf.n_iter_ == 250
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()] == [
        "Iter(Epoch): 0",
        "Iter(Epoch): 100",
        "Iter(Epoch): 200",
    ]


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "gd", "sgd"])
def test_verbose_callable_sees_every_iteration(solver):
    X, y = _load("iris")
    seen = []
    clf = SoftmaxRegression(solver=solver, verbose=lambda i, loss: seen.append((i, loss)), random_state=0)
    clf.set_params(max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert [loss for _, loss in seen] == clf.loss_curve_
    first = 1 if solver == "sgd" else 0
    assert [i for i, _ in seen] == list(range(first, first + len(seen)))
    assert seen[-1][0] == clf.n_iter_


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_float32_trains_in_float32(solver, monkeypatch):
    X, y = _load("wine")
    dtypes = set()
    real = objective_module.block_loss_gradient

    def spy(Xb, yb, sw, coef, intercept, **kwargs):
        dtypes.update({Xb.dtype, coef.dtype, intercept.dtype})
        return real(Xb, yb, sw, coef, intercept, **kwargs)

    monkeypatch.setattr(objective_module, "block_loss_gradient", spy)
    clf = SoftmaxRegression(solver=solver, reg_strength=1e-2, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X.astype(np.float32), y)
    assert dtypes == {np.dtype(np.float32)}
    assert clf.coef_.dtype == np.float32 and clf.intercept_.dtype == np.float32
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    ref = SoftmaxRegression(solver=solver, reg_strength=1e-2, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-3)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "gd"])
def test_sparse_equals_dense_and_is_never_densified(solver, monkeypatch):
    X, y = _load("make_classification")
    X[np.abs(X) < 0.7] = 0.0
    kinds = []
    real = objective_module.block_loss_gradient

    def spy(Xb, *args, **kwargs):
        kinds.append(sp.issparse(Xb))
        return real(Xb, *args, **kwargs)

    kw = dict(solver=solver, reg_strength=1e-2, tol=1e-9, max_iter=300)
    if solver == "gd":
        kw.update(tol=1e-12, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = SoftmaxRegression(**kw).fit(X, y)
        monkeypatch.setattr(objective_module, "block_loss_gradient", spy)
        sparse = SoftmaxRegression(**kw).fit(sp.csr_matrix(X), y)
    assert kinds and all(kinds)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sparse.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X), atol=1e-8)


@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["plain", "heavy-ball"])
def test_sparse_sgd_and_partial_fit_equal_the_dense_path(momentum, monkeypatch):
    """sgd and partial_fit on CSR input take O(batch nonzeros × K) steps (lazy weight decay, lazy
    momentum): the same model as the dense input's dense-gradient steps, up to rounding."""
    X, y = _load("make_classification")
    X[np.abs(X) < 0.7] = 0.0
    lazy = objective_module.LazyMomentumSGD if momentum else objective_module.LazySparseSGD
    steps = []
    real_step = lazy.step
    monkeypatch.setattr(lazy, "step", lambda self, *a: steps.append(1) or real_step(self, *a))
    kw = dict(solver="sgd", reg_strength=1e-2, momentum=momentum, batch_size=32, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = SoftmaxRegression(**kw).fit(X, y)
        sparse = SoftmaxRegression(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-9, atol=1e-12)
    classes = np.unique(y)
    online_dense = SoftmaxRegression(**kw).partial_fit(X, y, classes=classes).partial_fit(X, y)
    online_sparse = SoftmaxRegression(**kw).partial_fit(sp.csr_matrix(X), y, classes=classes)
    online_sparse.partial_fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(online_sparse.coef_, online_dense.coef_, rtol=1e-9, atol=1e-12)
    assert len(steps) >= 7 * len(y) // 32  # every sparse epoch ran the lazy steps


def test_sgd_converges_near_the_optimum():
    X, y = _load("iris")
    exact = SoftmaxRegression(reg_strength=1e-2, tol=1e-10).fit(X, y)
    for momentum, lr in [(0.9, "auto"), ("adam", 0.01)]:
        clf = SoftmaxRegression(
            solver="sgd",
            reg_strength=1e-2,
            momentum=momentum,
            learning_rate=lr,
            batch_size=150,
            max_iter=3000,
            tol=1e-9,
            n_iter_no_change=50,
            random_state=0,
        ).fit(X, y)
        np.testing.assert_allclose(clf.predict_proba(X), exact.predict_proba(X), atol=2e-3)


def test_partial_fit_is_a_multinomial_minibatch_step():
    X, y = _load("iris")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = SoftmaxRegression(reg_strength=0.1, momentum=0.0, learning_rate=0.5, batch_size=150)
    clf.partial_fit(X, labels, classes=np.unique(labels))
    # One full-batch step from zero: W = -lr * ((P - Y)^T X / n + reg W) with P uniform.
    Y = np.eye(3)[y]
    np.testing.assert_allclose(clf.coef_, -0.5 * ((1 / 3 - Y).T @ X / 150), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(clf.intercept_, -0.5 * (1 / 3 - Y).mean(axis=0), rtol=1e-12, atol=1e-15)
    losses = []
    for _ in range(30):
        clf.partial_fit(X, labels)
        losses.append(clf.loss_curve_[-1])
    assert clf.n_iter_ == 31 and len(clf.loss_curve_) == 31
    assert losses[-1] < losses[0] < np.log(3)
    assert clf.score(X, labels) > 0.9


def test_partial_fit_errors():
    X, y = _load("iris")
    clf = SoftmaxRegression()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on the last call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="balanced"):
        SoftmaxRegression(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_pandas_string_labels_and_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _load("iris")
    frame = pd.DataFrame(X, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    labels = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y])
    clf = SoftmaxRegression().fit(frame, labels)
    assert list(clf.feature_names_in_) == list(frame.columns) and clf.n_features_in_ == 4
    assert set(clf.predict(frame)) == {"setosa", "versicolor", "virginica"}
    np.testing.assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    np.testing.assert_allclose(
        clf.predict_proba(frame), SoftmaxRegression().fit(X, y).predict_proba(X), atol=1e-10
    )


def test_class_weight_dict_equals_sample_weight():
    X, y = _load("wine")
    a = SoftmaxRegression(reg_strength=1e-2, tol=1e-10, class_weight={0: 1.0, 1: 3.0, 2: 0.5}).fit(X, y)
    b = SoftmaxRegression(reg_strength=1e-2, tol=1e-10).fit(X, y, sample_weight=np.array([1.0, 3.0, 0.5])[y])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-8)


def test_label_smoothing_reaches_the_optimum_of_the_smoothed_objective():
    X, y = _load("iris")
    eps, reg = 0.3, 1e-2
    n, d = X.shape
    q = np.full((n, 3), eps / 3)
    q[np.arange(n), y] += 1 - eps

    def smoothed(theta):  # written out with SciPy; gradient softmax - q
        W, b = theta[: 3 * d].reshape(3, d), theta[3 * d :]
        logp = log_softmax(X @ W.T + b, axis=1)
        r = (np.exp(logp) - q) / n
        grad = np.concatenate([(r.T @ X + reg * W).ravel(), r.sum(axis=0)])
        return -(q * logp).sum() / n + 0.5 * reg * np.sum(W * W), grad

    ref = minimize(smoothed, np.zeros(3 * d + 3), jac=True, method="BFGS", options={"gtol": 1e-10})
    clf = SoftmaxRegression(reg_strength=reg, label_smoothing=eps, tol=1e-10).fit(X, y)
    W, b = ref.x[: 3 * d].reshape(3, d), ref.x[3 * d :]
    np.testing.assert_allclose(clf.predict_proba(X), np.exp(log_softmax(X @ W.T + b, axis=1)), atol=1e-6)
    plain = SoftmaxRegression(reg_strength=reg).fit(X, y)
    assert clf.predict_proba(X).max() < plain.predict_proba(X).max()


def test_logit_dropout_is_seeded_and_trains():
    X, y = _load("iris")
    kw = dict(solver="gd", logit_dropout=0.3, max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = SoftmaxRegression(**kw).fit(X, y)
        b = SoftmaxRegression(**kw).fit(X, y)
        c = SoftmaxRegression(**{**kw, "random_state": 1}).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    assert a.score(X, y) > 0.9


def test_early_stopping_keeps_the_best_validation_loss():
    X, y = _load("make_classification")
    clf = SoftmaxRegression(
        solver="sgd",
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        max_iter=500,
        random_state=0,
    ).fit(X, y)
    assert clf.best_validation_loss_ == min(clf.validation_loss_curve_)
    assert len(clf.validation_loss_curve_) == clf.n_iter_ < 500
    assert SoftmaxRegression().fit(X, y).validation_loss_curve_ is None


def test_warm_start_continues_from_the_previous_fit():
    X, y = _load("digits")
    cold = SoftmaxRegression(reg_strength=1e-2, tol=1e-8, max_iter=1000).fit(X, y)
    warm = SoftmaxRegression(reg_strength=1e-2, tol=1e-8, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.set_params(max_iter=5).fit(X, y)
    warm.set_params(max_iter=1000).fit(X, y)
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-5)
    restart = warm.fit(X, y)  # already at the optimum: (almost) nothing to do
    assert restart.n_iter_ <= 3


def test_reaching_max_iter_warns():
    X, y = _load("digits")
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SoftmaxRegression(max_iter=2).fit(X, y)


def test_diverging_learning_rate_is_halved_with_one_warning():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = SoftmaxRegression(solver="gd", learning_rate=1000.0, max_iter=300).fit(X, y)
    runtime = [w for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1 and "learning_rate=1000.0" in str(runtime[0].message)
    assert np.all(np.isfinite(clf.coef_)) and clf.learning_rate_ < 1000
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_sgd_rolls_back_and_recovers_from_a_huge_learning_rate(momentum):
    """Unscaled iris, lr=100: the loss explodes; sgd returns to its best epoch, halves, and trains."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = SoftmaxRegression(solver="sgd", learning_rate=100.0, momentum=momentum, random_state=0).fit(
            X, y
        )
    runtime = [w for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1 and "learning_rate=100.0" in str(runtime[0].message)
    assert clf.learning_rate_ < 1.0
    assert clf.loss_curve_[-1] < 0.3 and clf.score(X, y) > 0.9


@pytest.mark.parametrize("learning_rate", [5.0, 50.0])
def test_sgd_momentum_does_not_carry_divergence_past_a_halving(learning_rate):
    """Small full-batch problem: the velocity built at the diverging step must not survive the rollback."""
    X, y = make_blobs(30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        clf = SoftmaxRegression(
            solver="sgd", reg_strength=1e-2, learning_rate=learning_rate, momentum=0.9, random_state=0
        ).fit(X, y)
    assert clf.learning_rate_ > 0.1  # a handful of halvings, not forty
    assert np.all(np.isfinite(clf.coef_)) and clf.score(X, y) > 0.9


def test_unrecoverable_divergence_names_learning_rate():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="learning_rate"):
            SoftmaxRegression(solver="sgd", learning_rate=1.0).fit(X * 1e200, y)


def test_lbfgs_never_returns_non_finite_coefficients():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = SoftmaxRegression(reg_strength=0.0, max_iter=500).fit(X.astype(np.float32) * 1e18, y)
    assert np.all(np.isfinite(clf.coef_)) and np.all(np.isfinite(clf.predict_proba(X.astype(np.float32))))


def test_calibrate_minimises_the_validation_nll():
    X, y = _load("digits")
    clf = SoftmaxRegression(reg_strength=1e-5, max_iter=500).fit(X[:250], y[:250])
    assert clf.temperature_ == 1.0
    z = clf.decision_function(X[250:])
    nll = lambda s: -log_softmax(z / np.exp(s), axis=1)[np.arange(len(z)), y[250:]].mean()  # noqa: E731
    expected = np.exp(minimize_scalar(nll, bounds=(-7, 7), method="bounded", options={"xatol": 1e-10}).x)
    pred = clf.predict(X[250:])
    clf.calibrate(X[250:], y[250:])
    assert clf.temperature_ == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(clf.predict(X[250:]), pred)
    np.testing.assert_allclose(
        clf.predict_proba(X[250:]), np.exp(log_softmax(z / expected, axis=1)), atol=1e-5
    )
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[250:])), clf.predict_proba(X[250:]), rtol=1e-12)
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.calibrate(X[:3], [0, 1, 11])


def test_save_delegates_to_luce_io(tmp_path, monkeypatch):
    X, y = _load("iris")
    clf = SoftmaxRegression().fit(X, y)
    calls = []
    import luce.io

    monkeypatch.setattr(luce.io, "save", lambda model, path: calls.append((model, path)) or path)
    assert clf.save(tmp_path / "m.luce") == tmp_path / "m.luce"
    assert calls == [(clf, tmp_path / "m.luce")]


def test_lazy_public_name():
    assert luce.SoftmaxRegression is SoftmaxRegression


def test_fitted_state_is_arrays_and_json_scalars():
    import json

    X, y = _load("iris")
    clf = SoftmaxRegression(solver="sgd", random_state=0, early_stopping=True).fit(X, y)
    for name, value in vars(clf).items():
        if name.endswith("_") and not name.startswith("_"):
            assert isinstance(value, np.ndarray) or json.dumps(value), name


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"solver": "liblinear"}, "'solver' parameter of SoftmaxRegression must be a str among"),
        ({"reg_strength": -1.0}, "'reg_strength' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter"),
        ({"learning_rate": "fast"}, "'learning_rate' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"momentum": 1.0}, "'momentum' parameter"),
        ({"momentum": "nesterov"}, "'momentum' parameter"),
        ({"class_weight": "auto"}, "'class_weight' parameter"),
        ({"label_smoothing": 1.0}, "'label_smoothing' parameter"),
        ({"logit_dropout": 0.2}, "logit_dropout=0.2 needs solver='gd' or 'sgd'"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"verbose": -1}, "'verbose' parameter"),
    ],
)
def test_bad_parameters(params, match):
    X, y = _load("iris")
    with pytest.raises(ValueError, match=re.escape(match) if "(" in match else match):
        SoftmaxRegression(**params).fit(X, y)


def test_bad_parameter_types():
    X, y = _load("iris")
    with pytest.raises(TypeError, match="'tol' parameter"):
        SoftmaxRegression(tol="small").fit(X, y)
    with pytest.raises(TypeError, match="'fit_intercept' parameter"):
        SoftmaxRegression(fit_intercept="yes").fit(X, y)


def test_bad_input():
    X, y = _load("iris")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SoftmaxRegression().fit(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        SoftmaxRegression().fit(bad, y)
    with pytest.raises(ValueError, match="only one class: 2"):
        SoftmaxRegression().fit(X, np.full(len(y), 2))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SoftmaxRegression().fit(X, y[:-1])
    with pytest.raises(ValueError, match="Negative values in data passed to sample_weight"):
        SoftmaxRegression().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match=re.escape("sample_weight.shape == (3,)")):
        SoftmaxRegression().fit(X, y, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="only one class with positive weight"):
        SoftmaxRegression().fit(X, y, sample_weight=(y == 0).astype(float))
    with pytest.raises(ValueError, match="Unknown label type"):
        SoftmaxRegression().fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(TypeError, match=re.escape("y mixes label types ['int', 'str']")):
        SoftmaxRegression().fit(X[:4], np.array(["a", 1, "b", 2], dtype=object))
    with pytest.raises(NotFittedError):
        SoftmaxRegression().predict(X)
    clf = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but SoftmaxRegression is expecting 4"):
        clf.predict(X[:, :2])


def test_weights_leaving_one_class_are_refused():
    X, y = load_iris(return_X_y=True)
    sw = (y == 2).astype(float)
    with pytest.raises(ValueError, match=r"leaves only one class with positive weight \(2\)"):
        SoftmaxRegression().fit(X, y, sample_weight=sw)


def test_warm_start_needs_the_same_classes():
    X, y = load_iris(return_X_y=True)
    clf = SoftmaxRegression(warm_start=True, max_iter=500).fit(X, y)
    keep = y < 2
    with pytest.raises(ValueError, match="warm_start=True needs the classes of the previous fit"):
        clf.fit(X[keep], y[keep])
