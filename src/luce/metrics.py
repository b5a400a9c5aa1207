"""Calibration metrics: the top-label reliability curve and the expected calibration error (ECE).

A classifier is calibrated when, among the samples it predicts with confidence ``c``, a fraction ``c``
is right. The reliability curve bins the top-label confidences ``max_k p_k`` into equal-width bins
``(i/B, (i+1)/B]`` and compares, per bin, the mean confidence with the accuracy; the ECE is their
gap averaged over the samples (Naeini, Cooper & Hauskrecht 2015; Guo et al. 2017).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

__all__ = ["ReliabilityCurve", "expected_calibration_error", "reliability_curve"]


class ReliabilityCurve(NamedTuple):
    """Per-bin statistics of a top-label reliability curve (``B`` bins).

    Attributes
    ----------
    edges : ndarray, shape (B + 1,)
        Bin edges ``0, 1/B, ..., 1``; bin ``i`` holds confidences in ``(edges[i], edges[i+1]]`` (bin 0
        also holds 0).
    confidence : ndarray, shape (B,)
        Mean top-label confidence of the samples in each bin; NaN for empty bins.
    accuracy : ndarray, shape (B,)
        Fraction of the samples in each bin whose top label is right; NaN for empty bins.
    counts : ndarray of int, shape (B,)
        Number of samples in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray


def _check(y_true, proba, n_bins, classes):
    p = np.asarray(proba)
    if p.dtype.kind not in "fiub":
        raise TypeError(f"proba must be a real numeric array, got dtype {p.dtype}")
    p = p.astype(np.float64, copy=False)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"proba must have shape (n_samples, n_classes), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("proba has no samples (shape (0, n_classes)); calibration needs at least one")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("proba must hold probabilities in [0, 1] (no NaN or inf)")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    y = np.asarray(y_true)
    if y.shape != (p.shape[0],):
        raise ValueError(f"y_true must have shape ({p.shape[0]},) to match proba {p.shape}, got {y.shape}")
    if classes is None:
        if y.dtype.kind not in "iu":
            raise TypeError(
                "y_true must hold integer column indices of proba when classes is not given, "
                f"got dtype {y.dtype}"
            )
        if y.min() < 0 or y.max() >= p.shape[1]:
            raise ValueError(
                f"y_true must hold column indices in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]"
            )
        index = y
    else:
        labels = np.asarray(classes)
        if labels.shape != (p.shape[1],):
            raise ValueError(
                f"classes must have shape ({p.shape[1]},) to match proba {p.shape}, got {labels.shape}"
            )
        lookup = {v: i for i, v in enumerate(labels.tolist())}
        unknown = sorted({repr(v) for v in y.tolist() if v not in lookup})
        if unknown:
            raise ValueError(f"y_true holds labels not in classes: {', '.join(unknown[:5])}")
        index = np.array([lookup[v] for v in y.tolist()], dtype=np.intp)
    return index, p


def reliability_curve(y_true, proba, n_bins=15, *, classes=None) -> ReliabilityCurve:
    """Top-label reliability curve: per confidence bin, mean confidence, accuracy and count.

    Parameters
    ----------
    y_true : array_like, shape (n_samples,)
        True labels: column indices of ``proba``, or labels from ``classes``.
    proba : array_like, shape (n_samples, n_classes)
        Predicted probabilities; column ``k`` is class ``k`` (or ``classes[k]``).
    n_bins : int, default 15
        Number of equal-width bins on ``[0, 1]``.
    classes : array_like, shape (n_classes,), optional
        The label of each column (an estimator's ``classes_``). The predicted label is the first
        column of maximal probability.

    Returns
    -------
    ReliabilityCurve
        ``(edges, confidence, accuracy, counts)``.

    Examples
    --------
    >>> import numpy as np
    >>> from luce.metrics import reliability_curve
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> curve = reliability_curve([0, 1, 1, 1], proba, n_bins=2)
    >>> curve.counts, curve.accuracy, curve.confidence
    (array([0, 4]), array([ nan, 0.75]), array([ nan, 0.75]))
    """
    index, p = _check(y_true, proba, n_bins, classes)
    top = np.argmax(p, axis=1)
    conf = np.take_along_axis(p, top[:, None], axis=1)[:, 0]
    correct = (top == index).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" on the inner edges puts a confidence equal to an edge into the bin it closes: (lo, hi].
    bins = np.searchsorted(edges[1:-1], conf, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(bins, weights=conf, minlength=n_bins) / counts
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / counts
    return ReliabilityCurve(edges, confidence, accuracy, counts)


def expected_calibration_error(y_true, proba, n_bins=15, *, classes=None) -> float:
    r"""Expected calibration error of the top label, with equal-width confidence bins.

    .. math:: \mathrm{ECE} = \sum_{b=1}^{B} \frac{n_b}{n} \,\big|\mathrm{acc}(b) - \mathrm{conf}(b)\big|

    where bin ``b`` holds the samples whose top probability lies in ``((b-1)/B, b/B]``, ``acc(b)`` is the
    fraction of them predicted right and ``conf(b)`` their mean top probability. 0 is perfect; it is at
    most 1.

    Parameters
    ----------
    y_true : array_like, shape (n_samples,)
        True labels: column indices of ``proba``, or labels from ``classes``.
    proba : array_like, shape (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default 15
        Number of equal-width bins (15 as in Guo et al.).
    classes : array_like, shape (n_classes,), optional
        The label of each column (an estimator's ``classes_``).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from luce.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> expected_calibration_error(["a", "b", "b", "b"], proba, n_bins=2, classes=["a", "b"])
    0.0
    >>> expected_calibration_error([0, 0, 0, 0], proba, n_bins=2)
    0.25

    References
    ----------
    M. P. Naeini, G. F. Cooper, M. Hauskrecht, "Obtaining well calibrated probabilities using Bayesian
    binning", AAAI 2015. C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern neural
    networks", ICML 2017.
    """
    curve = reliability_curve(y_true, proba, n_bins, classes=classes)
    filled = curve.counts > 0
    gaps = np.abs(curve.accuracy[filled] - curve.confidence[filled])
    return float(np.sum(curve.counts[filled] * gaps) / np.sum(curve.counts))
