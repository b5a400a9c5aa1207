"""Classification metrics and the Rich tables that show them (shared by train, evaluate and demo).

Labels always come from the model's own ``predict`` (its decision threshold, its multi-label
indicators); probabilities from ``predict_proba`` feed only the probability metrics.
"""

from __future__ import annotations

import numpy as np

from ..metrics import expected_calibration_error

__all__ = [
    "classification_metrics",
    "confusion_table",
    "metrics_table",
    "multilabel_metrics",
    "per_class_table",
    "per_label_table",
]


def classification_metrics(y_true, y_pred, proba, classes) -> dict:
    """Accuracy, log-loss, precision/recall/F1, ECE, the majority baseline and, for two classes,
    ROC-AUC and PR-AUC (``classes[1]`` is the positive class)."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    out = {
        "n_samples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
    }
    _, counts = np.unique(y_true, return_counts=True)
    out["baseline_accuracy"] = float(counts.max() / len(y_true))
    if len(classes) == 2 and len(counts) == 2:
        positive = y_true == classes[1]
        out["roc_auc"] = float(roc_auc_score(positive, proba[:, 1]))
        out["pr_auc"] = float(average_precision_score(positive, proba[:, 1]))
    for average in ("macro", "weighted"):
        # Averaged over the classes present in y_true or y_pred (scikit-learn's default labels).
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    out["ece"] = expected_calibration_error(y_true, proba, classes=classes)
    return out


def multilabel_metrics(Y_true, Y_pred, proba) -> dict:
    """Subset accuracy, Hamming loss, micro/macro F1 and the mean per-label log-loss."""
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, log_loss

    Y_true = np.asarray(Y_true, dtype=int)
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1 - 1e-15)
    losses = [log_loss(Y_true[:, j], p[:, j], labels=[0, 1]) for j in range(Y_true.shape[1])]
    return {
        "n_samples": len(Y_true),
        "subset_accuracy": float(accuracy_score(Y_true, Y_pred)),
        "hamming_loss": float(hamming_loss(Y_true, Y_pred)),
        "f1_micro": float(f1_score(Y_true, Y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(Y_true, Y_pred, average="macro", zero_division=0)),
        "log_loss": float(np.mean(losses)),
    }


_NAMES = {
    "accuracy": "accuracy",
    "baseline_accuracy": "accuracy of always the majority class",
    "subset_accuracy": "subset accuracy (all labels right)",
    "hamming_loss": "Hamming loss",
    "log_loss": "log-loss",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (average precision)",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "f1_macro": "F1 (macro)",
    "f1_micro": "F1 (micro)",
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


def per_class_table(y_true, y_pred, proba, classes, title="Per class"):
    from rich.table import Table
    from sklearn.metrics import precision_recall_fscore_support

    classes = np.asarray(classes)
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


def per_label_table(Y_true, Y_pred, proba, labels, title="Per label"):
    from rich.table import Table
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(
        np.asarray(Y_true, dtype=int), Y_pred, average=None, zero_division=0
    )
    table = Table(title=title, title_justify="left")
    for name in ("label", "precision", "recall", "F1", "positives", "mean p"):
        table.add_column(name, justify="left" if name == "label" else "right")
    mean_p = np.asarray(proba).mean(axis=0)
    for k, name in enumerate(labels):
        table.add_row(
            str(name), f"{p[k]:.3f}", f"{r[k]:.3f}", f"{f[k]:.3f}", str(int(support[k])), f"{mean_p[k]:.3f}"
        )
    return table


def confusion_table(y_true, y_pred, classes, title="Confusion matrix (rows: true, columns: predicted)"):
    from rich.table import Table
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=np.asarray(classes))
    table = Table(title=title, title_justify="left")
    table.add_column("true \\ predicted")
    for c in classes:
        table.add_column(str(c), justify="right")
    for k, c in enumerate(classes):
        table.add_row(str(c), *(str(int(v)) for v in cm[k]))
    return table
