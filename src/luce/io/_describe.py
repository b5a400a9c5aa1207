"""What an exporter needs to know about a fitted linear model, read in one place from its public fitted
attributes (``coef_``, ``intercept_``, ``classes_``, ``temperature_``, ``multilabel_``) and its decision
threshold parameter, so no exporter reaches into an estimator's private methods."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LinearModel", "describe_linear"]


@dataclass(frozen=True)
class LinearModel:
    """``logits = X @ coef.T + intercept``, then the link.

    ``mode`` says what ``predict``/``predict_proba`` do with the logits:

    - ``"softmax"``: ``softmax(logits / temperature)``; label ``classes[argmax logits]``;
    - ``"binary"`` (one sigmoid): ``[σ(-z), σ(z)]``; label ``classes[z > logit(threshold)]``;
    - ``"one-vs-rest"``: normalised sigmoids; label ``classes[argmax logits]``;
    - ``"multilabel"``: ``σ(logits)``; label ``logits > logit(threshold)`` per label, in ``classes``' dtype.
    """

    estimator: str
    mode: str
    coef: np.ndarray  # (n_outputs, n_features), float64
    intercept: np.ndarray  # (n_outputs,), float64
    classes: np.ndarray
    temperature: float
    threshold: np.ndarray | None  # (n_outputs,) cut on the probability (binary and multi-label)

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]


def _decision_threshold(model, n_outputs: int) -> np.ndarray:
    # SigmoidRegression's cut is `decision_threshold`; files and models from before the rename call it
    # `threshold` (which now names the loss threshold that stops training).
    t = getattr(model, "decision_threshold", None)
    if t is None and not hasattr(model, "decision_threshold"):
        t = getattr(model, "threshold", None)
    t = np.asarray(0.5 if t is None else t, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and t.shape != (n_outputs,)):
        raise ValueError(f"the decision threshold has shape {t.shape}; the model has {n_outputs} outputs")
    t = np.broadcast_to(t, (n_outputs,)).copy()
    if not np.all((t > 0) & (t < 1)):
        raise ValueError(f"the decision threshold must lie in (0, 1), got {t.tolist()}")
    return t


def describe_linear(model, name: str, link: str) -> LinearModel:
    """The :class:`LinearModel` of a fitted ``model`` whose link (``"softmax"`` or ``"sigmoid"``) is
    known from its class; ValueError when it is not fitted or its arrays disagree."""
    missing = [a for a in ("coef_", "intercept_", "classes_") if not hasattr(model, a)]
    if missing:
        raise ValueError(f"model is not fitted (no {', '.join(missing)}); call fit first")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    classes = np.asarray(model.classes_)
    temperature = float(getattr(model, "temperature_", 1.0))
    if link == "softmax":
        mode = "softmax"
    elif bool(getattr(model, "multilabel_", False)):
        mode = "multilabel"
    else:
        mode = "binary" if coef.shape[:1] == (1,) else "one-vs-rest"
    n_labels = 2 if mode == "binary" else coef.shape[0]  # one weight vector for the two classes
    if coef.ndim != 2 or intercept.shape != (coef.shape[0],) or classes.shape != (n_labels,):
        raise ValueError(
            f"model arrays are inconsistent: coef_ {coef.shape}, intercept_ {intercept.shape}, "
            f"classes_ {classes.shape}; expected (n_classes, n_features), (n_classes,), (n_classes,)"
        )
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise ValueError("model coef_/intercept_ contain NaN or inf; refit the model")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"model temperature_ must be finite and > 0, got {temperature}")
    threshold = _decision_threshold(model, coef.shape[0]) if mode in ("binary", "multilabel") else None
    return LinearModel(name, mode, coef, intercept, classes, temperature, threshold)
