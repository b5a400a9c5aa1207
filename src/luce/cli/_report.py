"""Classification metrics and the Rich tables that show them (shared by train, evaluate and demo)."""

from __future__ import annotations

import numpy as np

from ..metrics import expected_calibration_error

__all__ = ["classification_metrics", "metrics_table", "per_class_table"]


def classification_metrics(y_true, proba, classes) -> dict:
    """Accuracy, log-loss, macro/weighted precision/recall/F1 and ECE of predictions ``proba``."""
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    y_pred = classes[np.argmax(proba, axis=1)]
    out = {
        "n_samples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
    }
    for average in ("macro", "weighted"):
        # Averaged over the classes present in y_true or y_pred (scikit-learn's default labels).
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    out["ece"] = expected_calibration_error(y_true, proba, classes=classes)
    return out


_NAMES = {
    "accuracy": "accuracy",
    "log_loss": "log-loss",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "f1_macro": "F1 (macro)",
    "precision_weighted": "precision (weighted)",
    "recall_weighted": "recall (weighted)",
    "f1_weighted": "F1 (weighted)",
    "ece": "expected calibration error (15 bins)",
}


def metrics_table(metrics: dict, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, name in _NAMES.items():
        if key in metrics:
            table.add_row(name, f"{metrics[key]:.4f}")
    table.add_row("samples", str(metrics["n_samples"]))
    return table


def per_class_table(y_true, proba, classes, title="Per class"):
    from rich.table import Table
    from sklearn.metrics import precision_recall_fscore_support

    classes = np.asarray(classes)
    y_pred = classes[np.argmax(proba, axis=1)]
    p, r, f, support = precision_recall_fscore_support(
        np.asarray(y_true), y_pred, labels=classes, average=None, zero_division=0
    )
    mean_p = np.asarray(proba).mean(axis=0)
    table = Table(title=title, title_justify="left")
    for name in ("class", "precision", "recall", "F1", "support", "mean p"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for k, c in enumerate(classes.tolist()):
        table.add_row(
            str(c), f"{p[k]:.3f}", f"{r[k]:.3f}", f"{f[k]:.3f}", str(int(support[k])), f"{mean_p[k]:.3f}"
        )
    return table
