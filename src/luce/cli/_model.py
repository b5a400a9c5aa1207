"""A model file as the commands see it: the model, its final estimator, what ``luce train`` recorded.

A model file holds either a table Pipeline (written by ``luce train`` or by Python's ``luce.save`` of a
Pipeline), which takes the raw table, or a bare estimator saved from Python, which takes the numeric
columns it was fitted on (by name when it knows them, else every numeric column in file order).
Predictions always come from the model's own ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._app import DataError
from ._data import conform_features

__all__ = ["Loaded", "load_model"]


@dataclass
class Loaded:
    model: object  # what luce.load returned
    info: dict  # the "luce_cli" user metadata (empty for files saved from Python)
    user: dict  # all user metadata
    path: Path

    @property
    def final(self):
        """The estimator at the end of a Pipeline (or the model itself)."""
        from sklearn.pipeline import Pipeline

        return self.model[-1] if isinstance(self.model, Pipeline) else self.model

    @property
    def multilabel(self) -> bool:
        return bool(getattr(self.final, "multilabel_", False))

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.final.classes_)

    @property
    def targets(self) -> list[str] | None:
        """The target column(s) recorded at training time, if any."""
        t = self.info.get("targets") or self.info.get("target")
        if t is None:
            return None
        return [t] if isinstance(t, str) else [str(v) for v in t]

    @property
    def labels(self) -> list[str]:
        """Names of a multi-label model's outputs (its target columns, or label_0, label_1, ...)."""
        targets = self.targets
        n = self.final.coef_.shape[0]
        if targets is not None and len(targets) == n:
            return targets
        return [f"label_{j}" for j in range(n)]

    def input(self, df, source, *, ignore=()):
        """What to pass to the model's ``predict`` for the rows of ``df``."""
        from ._data import model_columns

        if model_columns(self.model) is not None:  # a table Pipeline: it selects its columns by name
            return conform_features(self.model, df, source)
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None:
            names = [str(n) for n in np.asarray(names).tolist()]
            missing = [c for c in names if c not in df.columns]
            if missing:
                raise DataError(
                    f"{source} lacks the column(s) {', '.join(map(repr, missing[:5]))} the model was fit on"
                )
            return df[names]
        skip = set(ignore) | set(self.targets or ())
        columns = [c for c in df.columns if c not in skip]
        n = getattr(self.model, "n_features_in_", None)
        if n is not None and len(columns) != n:
            raise DataError(
                f"{source} has {len(columns)} feature columns but the model expects {n} (it was saved "
                "without feature names, so the columns are taken in file order)"
            )
        try:
            return df[columns].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{source} has non-numeric columns, and the model (a bare {type(self.model).__name__} "
                "saved from Python) takes numbers only"
            ) from None


def load_model(path: Path) -> Loaded:
    from ..io import load, read_metadata

    model = load(path)
    user = read_metadata(path).get("user") or {}
    loaded = Loaded(model=model, info=dict(user.get("luce_cli") or {}), user=user, path=Path(path))
    if not hasattr(loaded.final, "predict_proba"):
        raise DataError(f"{path} holds a {type(loaded.final).__name__}, which does not predict probabilities")
    return loaded
