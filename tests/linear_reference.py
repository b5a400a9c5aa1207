"""Float64 SciPy references of the fit engine's block sums (softmax head), shared by the kernel tests."""

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from luce._kernels import use_backend


def _weights(sw, n):
    return np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)


def _offset(b):
    return 0 if b is None else np.asarray(b, dtype=np.float64)


def scipy_sums(X, y, sw, W, b, eps=0.0):
    """``Σ w CE, Σ w (p - q) xᵀ, Σ w (p - q)`` in float64 (``eps``: label smoothing)."""
    X = np.asarray(X, dtype=np.float64)
    n, K = X.shape[0], W.shape[0]
    sw = _weights(sw, n)
    Z = X @ W.T.astype(np.float64) + _offset(b)
    q = np.full((n, K), eps / K)
    q[np.arange(n), y] += 1 - eps
    loss = float(sw @ -(q * log_softmax(Z, axis=1)).sum(axis=1))
    R = (softmax(Z, axis=1) - q) * sw[:, None]
    return loss, R.T @ X, R.sum(axis=0)


def scipy_hessp(X, sw, W, b, V, v):
    """The Hessian-vector sums ``Σ r xᵀ, Σ r`` for the direction ``(V, v)``, in float64."""
    X = np.asarray(X, dtype=np.float64)
    sw = _weights(sw, X.shape[0])
    P = softmax(X @ W.T.astype(np.float64) + _offset(b), axis=1)
    U = X @ V.T.astype(np.float64) + _offset(v)
    R = P * (U - (P * U).sum(axis=1, keepdims=True)) * sw[:, None]
    return R.T @ X, R.sum(axis=0)


def assert_sums_match(sums, hessp, reference, reference_hessp, rtol, atol, intercept):
    """The loss, gradient and Hessian-vector sums of a kernel against the references above."""
    (loss, gW, gb), (hW, hb) = sums, hessp
    (ref_loss, ref_gW, ref_gb), (ref_hW, ref_hb) = reference, reference_hessp
    assert loss == pytest.approx(ref_loss, rel=rtol)
    np.testing.assert_allclose(gW, ref_gW, rtol=rtol, atol=atol)
    np.testing.assert_allclose(hW, ref_hW, rtol=rtol, atol=atol)
    if intercept:
        np.testing.assert_allclose(gb, ref_gb, rtol=rtol, atol=atol)
        np.testing.assert_allclose(hb, ref_hb, rtol=rtol, atol=atol)
    else:
        assert gb is None and hb is None


def assert_backends_agree(make_objective, theta, vec, rtol):
    """Whole evaluations of ``make_objective()`` (loss and gradient, Hessian products in two directions
    at one point, the loss alone) the same on the compiled and the NumPy reference paths."""
    results = {}
    for backend in ("reference", "compiled"):
        with use_backend(backend):
            obj = make_objective()
            f, g = obj.loss_gradient(theta)
            results[backend] = (f, g, obj.hessp(theta, vec), obj.hessp(theta, g), obj.loss(theta))
    for a, b in zip(results["compiled"], results["reference"], strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def assert_matches_finite_differences(obj, theta, vec, h):
    """``obj``'s gradient and Hessian-vector product at ``theta`` against central differences of its
    loss and gradient (step ``h``)."""
    fd = np.array([(obj.loss(theta + h * e) - obj.loss(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    np.testing.assert_allclose(obj.gradient(theta), fd, rtol=1e-6, atol=1e-8)
    hv_fd = (obj.gradient(theta + h * vec) - obj.gradient(theta - h * vec)) / (2 * h)
    np.testing.assert_allclose(obj.hessp(theta, vec), hv_fd, rtol=1e-6, atol=1e-8)
    return hv_fd
