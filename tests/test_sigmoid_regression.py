"""SigmoidRegression against scikit-learn (LogisticRegression per label, the estimator checks), torch's
BCEWithLogits (loss and autograd gradient), finite differences, and its own invariants (sparse = dense,
float32 stays float32, thresholds)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from luce.models._sigmoid import SigmoidObjective, SigmoidRegression


# -- data ---------------------------------------------------------------------------------------------
@pytest.fixture
def multilabel():
    X, Y = make_multilabel_classification(n_samples=240, n_features=8, n_classes=4, random_state=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, Y


def _sklearn_per_label(X, Y, lam, sw=None, pos_weight=None, fit_intercept=True):
    sw = np.ones(X.shape[0]) if sw is None else sw
    pw = np.ones(Y.shape[1]) if pos_weight is None else pos_weight
    coef, intercept, proba = [], [], []
    for j in range(Y.shape[1]):
        lr = LogisticRegression(
            C=1.0 / (lam * sw.sum()), tol=1e-12, max_iter=10_000, fit_intercept=fit_intercept
        )
        lr.fit(X, Y[:, j], sample_weight=sw * np.where(Y[:, j] == 1, pw[j], 1.0))
        coef.append(lr.coef_[0])
        intercept.append(lr.intercept_[0])
        proba.append(lr.predict_proba(X)[:, 1])
    return np.array(coef), np.array(intercept), np.column_stack(proba)


# -- the optimum: each label is scikit-learn's LogisticRegression ------------------------------------
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample+pos weights"])
def test_each_label_equals_sklearn_logistic_regression(multilabel, rng, solver, weighted):
    X, Y = multilabel
    lam = 1e-2
    sw = rng.uniform(0.5, 2.0, size=X.shape[0]) if weighted else None
    pw = np.array([1.0, 2.5, 0.4, 3.0]) if weighted else None
    clf = SigmoidRegression(lam, solver=solver, pos_weight=pw, tol=1e-10, max_iter=1000)
    clf.fit(X, Y, sample_weight=sw)
    coef, intercept, proba = _sklearn_per_label(X, Y, lam, sw, pw)
    np.testing.assert_allclose(clf.coef_, coef, atol=1e-6)
    np.testing.assert_allclose(clf.intercept_, intercept, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-6)


def test_without_intercept_equals_sklearn(multilabel):
    X, Y = multilabel
    clf = SigmoidRegression(0.05, fit_intercept=False, tol=1e-10).fit(X, Y)
    coef, _, proba = _sklearn_per_label(X, Y, 0.05, fit_intercept=False)
    np.testing.assert_allclose(clf.coef_, coef, atol=1e-6)
    np.testing.assert_array_equal(clf.intercept_, 0.0)
    np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-6)


def test_binary_target_is_logistic_regression():
    X, y01 = make_classification(n_samples=200, n_features=5, random_state=0)
    y = np.array(["no", "yes"])[y01]
    lam = 1e-2
    clf = SigmoidRegression(lam, tol=1e-10).fit(X, y)
    lr = LogisticRegression(C=1 / (lam * 200), tol=1e-12, max_iter=10_000).fit(X, y)
    assert clf.coef_.shape == (1, 5)
    np.testing.assert_allclose(clf.coef_, lr.coef_, atol=1e-6)
    np.testing.assert_allclose(clf.decision_function(X), lr.decision_function(X), atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(X), lr.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(clf.predict_log_proba(X), lr.predict_log_proba(X), atol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), lr.predict(X))
    assert clf.score(X, y) == lr.score(X, y)


def test_multiclass_target_is_one_vs_rest():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=1)
    lam = 1e-2
    clf = SigmoidRegression(lam, tol=1e-10).fit(X, y)
    Y = np.eye(3, dtype=int)[y]
    coef, intercept, sig = _sklearn_per_label(X, Y, lam)
    np.testing.assert_allclose(clf.coef_, coef, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X), sig / sig.sum(axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(
        clf.predict_log_proba(X), np.log(sig / sig.sum(axis=1, keepdims=True)), atol=1e-5
    )
    np.testing.assert_array_equal(clf.predict(X), np.argmax(X @ coef.T + intercept, axis=1))


# -- the objective: loss and gradient against torch, Hessian by finite differences -------------------
def test_loss_and_gradient_match_torch_bce_with_logits(multilabel, rng):
    torch = pytest.importorskip("torch")
    X, Y = multilabel
    sw, pw, lam = rng.uniform(0.0, 2.0, X.shape[0]), np.array([1.0, 3.0, 0.2, 1.5]), 0.03
    obj = SigmoidObjective(X, Y, sample_weight=sw, pos_weight=pw, reg_strength=lam, block_rows=64)
    theta = rng.normal(scale=2.0, size=obj.n_params)
    f, g = obj.loss_gradient(theta)

    W = torch.tensor(theta[: obj.n_coef].reshape(4, 8), requires_grad=True)
    b = torch.tensor(theta[obj.n_coef :], requires_grad=True)
    z = torch.tensor(X) @ W.T + b
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.tensor(Y, dtype=torch.float64), pos_weight=torch.tensor(pw), reduction="none"
    )
    ref = (per.sum(dim=1) * torch.tensor(sw)).sum() / sw.sum() + lam / 2 * (W * W).sum()
    ref.backward()
    np.testing.assert_allclose(f, ref.item(), rtol=1e-13)
    np.testing.assert_allclose(
        g, np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()]), rtol=1e-11, atol=1e-14
    )


def test_hessp_matches_finite_differences_of_the_gradient(multilabel, rng):
    X, Y = multilabel
    obj = SigmoidObjective(
        X, Y, sample_weight=rng.uniform(0.5, 1.5, X.shape[0]), pos_weight=[1, 2, 3, 0.5], reg_strength=0.1
    )
    theta, vec = rng.normal(size=obj.n_params), rng.normal(size=obj.n_params)
    h = 1e-3
    # 4th-order central differences.
    g = obj.gradient
    fd = (
        -g(theta + 2 * h * vec) + 8 * g(theta + h * vec) - 8 * g(theta - h * vec) + g(theta - 2 * h * vec)
    ) / (12 * h)
    np.testing.assert_allclose(obj.hessp(theta, vec), fd, rtol=1e-8, atol=1e-10)


def test_loss_is_exact_for_huge_logits():
    # softplus(-z) for z = 800 is e^-800 ≈ 0 and softplus(800) = 800: no overflow, no cancellation.
    obj = SigmoidObjective(np.array([[1.0]]), np.array([[1.0, 0.0]]), fit_intercept=False)
    assert obj.loss(np.array([800.0, -800.0])) == 0.0
    assert obj.loss(np.array([-800.0, 800.0])) == 1600.0
    assert obj.loss(np.array([40.0, -40.0])) == pytest.approx(2 * np.log1p(np.exp(-40.0)), rel=1e-15)


# -- inputs -------------------------------------------------------------------------------------------
def test_sparse_input_equals_dense(multilabel):
    X, Y = multilabel
    X = np.where(np.abs(X) < 0.7, 0.0, X)
    dense = SigmoidRegression(1e-2, tol=1e-10).fit(X, Y)
    sparse = SigmoidRegression(1e-2, tol=1e-10).fit(sp.csr_matrix(X), sp.csr_matrix(Y))
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-8)


def test_float32_stays_float32(multilabel):
    X, Y = multilabel
    clf32 = SigmoidRegression(1e-2, tol=1e-5).fit(X.astype(np.float32), Y)
    clf64 = SigmoidRegression(1e-2, tol=1e-10).fit(X, Y)
    X32 = X.astype(np.float32)
    assert clf32.coef_.dtype == clf32.intercept_.dtype == np.float32
    for out in (clf32.predict_proba(X32), clf32.decision_function(X32), clf32.predict_log_proba(X32)):
        assert out.dtype == np.float32
    np.testing.assert_allclose(clf32.predict_proba(X32), clf64.predict_proba(X), atol=2e-4)


def test_label_representations_and_predict_dtype(multilabel):
    X, Y = multilabel
    base = SigmoidRegression(1e-2).fit(X, Y).predict(X)
    assert base.dtype == Y.dtype and base.shape == Y.shape
    for y in (Y.tolist(), list(Y), Y.astype(bool)):
        np.testing.assert_array_equal(SigmoidRegression(1e-2).fit(X, y).predict(X), base)
    assert SigmoidRegression(1e-2).fit(X, Y.astype(bool)).predict(X).dtype == np.int64
    assert SigmoidRegression(1e-2).fit(X, Y.astype(np.float32)).predict(X).dtype == np.float32


def test_score_is_subset_accuracy(multilabel):
    X, Y = multilabel
    clf = SigmoidRegression(1e-2).fit(X, Y)
    assert (
        clf.score(X, Y) == accuracy_score(Y, clf.predict(X)) == np.mean(np.all(clf.predict(X) == Y, axis=1))
    )


# -- threshold and pos_weight -------------------------------------------------------------------------
def test_threshold_per_label_and_changeable_after_fit(multilabel):
    X, Y = multilabel
    clf = SigmoidRegression(1e-2).fit(X, Y)
    p = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict(X), (p > 0.5).astype(int))
    t = np.array([0.2, 0.5, 0.8, 0.95])
    clf.set_params(decision_threshold=t)
    np.testing.assert_array_equal(clf.predict(X), (p > t).astype(int))
    # Thresholds are compared on the logit scale: exact even where the probability rounds to 1.
    clf.set_params(decision_threshold=0.999999999999)
    z = clf.decision_function(X)
    np.testing.assert_array_equal(clf.predict(X), (expit(z) > 0.999999999999).astype(int))


def test_pos_weight_raises_recall_of_a_rare_label(rng):
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(scale=1.0, size=400) > 1.6).astype(int)[:, None]
    y = np.hstack([y, 1 - y])
    plain = SigmoidRegression(1e-3).fit(X, y)
    weighted = SigmoidRegression(1e-3, pos_weight=[10.0, 1.0]).fit(X, y)
    recall = lambda clf: clf.predict(X)[y[:, 0] == 1, 0].mean()  # noqa: E731
    assert recall(weighted) > recall(plain) + 0.2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"decision_threshold": 0.0}, "'decision_threshold' parameter .* must lie in"),
        ({"decision_threshold": 1.0}, "'decision_threshold' parameter .* must lie in"),
        (
            {"decision_threshold": [0.5, 0.5]},
            "'decision_threshold' parameter .* has 2 entries but the model has 4",
        ),
        ({"pos_weight": -1.0}, "'pos_weight' parameter .* must lie in"),
        ({"pos_weight": [1.0, np.nan, 1.0, 1.0]}, "'pos_weight' parameter .* must lie in"),
        ({"pos_weight": "big"}, "'pos_weight' parameter .* must be a number"),
        ({"reg_strength": -1.0}, "'reg_strength' parameter"),
        ({"solver": "adam"}, "'solver' parameter"),
    ],
)
def test_bad_hyper_parameters_are_named(multilabel, params, match):
    X, Y = multilabel
    with pytest.raises(ValueError, match=match):
        SigmoidRegression(**params).fit(X, Y)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.linspace(0, 1, 240), "Unknown label type"),
        (np.tile([[0, 1, 2], [2, 1, 0]], (120, 1)), "got a target of type 'multiclass-multioutput'"),
        (np.zeros(240, dtype=int), "at least 2 classes"),
    ],
    ids=["continuous", "multiclass-multioutput", "one-class"],
)
def test_bad_targets_are_named(multilabel, y, match):
    X, _ = multilabel
    with pytest.raises(ValueError, match=match):
        SigmoidRegression().fit(X, y)


# -- solvers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "atol"),
    [
        ({"solver": "gd", "tol": 1e-9, "n_iter_no_change": 50}, 2e-3),
        ({"solver": "sgd", "tol": 1e-7, "batch_size": 60, "learning_rate": 0.02, "random_state": 0}, 0.02),
        ({"solver": "sgd", "momentum": "adam", "learning_rate": 0.01, "tol": 1e-7, "random_state": 0}, 0.1),
    ],
    ids=["gd", "sgd-momentum", "sgd-adam"],
)
def test_first_order_solvers_reach_the_lbfgs_optimum(multilabel, params, atol):
    X, Y = multilabel
    exact = SigmoidRegression(0.05, tol=1e-10).fit(X, Y)
    clf = SigmoidRegression(0.05, **params).fit(X, Y)
    np.testing.assert_allclose(clf.predict_proba(X), exact.predict_proba(X), atol=atol)
    assert clf.learning_rate_ is not None and clf.loss_curve_[-1] <= clf.loss_curve_[0]


def test_early_stopping_and_warm_start(multilabel):
    X, Y = multilabel
    clf = SigmoidRegression(1e-3, solver="sgd", early_stopping=True, random_state=0, max_iter=50).fit(X, Y)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_loss_ == min(clf.validation_loss_curve_)
    cold = SigmoidRegression(1e-2, tol=1e-8).fit(X, Y)
    warm = SigmoidRegression(1e-2, tol=1e-8, warm_start=True)
    warm.coef_, warm.intercept_, warm.multilabel_ = cold.coef_, cold.intercept_, True
    warm.fit(X, Y)
    assert warm.n_iter_ <= 1
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-7)


def test_model_file_round_trip(multilabel, tmp_path):
    import luce

    X, Y = multilabel
    clf = SigmoidRegression(1e-2, pos_weight=[1.0, 2.0, 1.0, 0.5], decision_threshold=[0.3, 0.5, 0.5, 0.7])
    clf.fit(X.astype(np.float32), Y.astype(bool))
    back = luce.load(luce.save(clf, tmp_path / "multi.luce"))
    assert type(back) is SigmoidRegression and back.multilabel_
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(back.predict_proba(X32), clf.predict_proba(X32))
    np.testing.assert_array_equal(back.predict(X32), clf.predict(X32))
    assert back.predict(X32).dtype == clf.predict(X32).dtype == np.int64
    assert back.coef_.dtype == np.float32
