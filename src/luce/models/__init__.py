"""Estimators with the scikit-learn API, built on one objective contract.

:class:`SoftmaxRegression` orchestrates; the math is :class:`~luce.models._objective.Objective`
(loss, gradient, loss_gradient, hessp over row blocks) and the optimisation is in
:mod:`luce.models._solvers`. Importing this package imports scikit-learn, so ``luce`` exposes these
names lazily.
"""

from ._hierarchical import HierarchicalSoftmaxClassifier as HierarchicalSoftmaxClassifier
from ._objective import Objective
from ._softmax_regression import SoftmaxRegression

__all__ = ["Objective", "SoftmaxRegression"]
