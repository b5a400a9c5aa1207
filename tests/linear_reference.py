"""Float64 SciPy references of the fit engine's block sums (softmax head), shared by the kernel tests."""

import numpy as np
import pytest
from scipy.special import log_softmax, softmax


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
