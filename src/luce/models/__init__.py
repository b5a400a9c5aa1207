"""Estimators with the scikit-learn API, all on one linear-model skeleton.

Every estimator runs the fit skeleton of :mod:`luce.models._base` (validate -> encode targets ->
objective -> solver -> record -> warn); the math is an objective with the contract of
:class:`~luce.models._objective.Objective` (loss, gradient, loss_gradient, hessp over row blocks) and the
optimisation is in :mod:`luce.models._solvers`. Importing this package imports scikit-learn, so ``luce``
exposes the estimators lazily.

Besides the estimators, this namespace is the seam for the layer above that evaluates the blocks
elsewhere (:mod:`luce.distributed`): the block functions of the softmax objective, the flat parameter
vector, the checked settings of an estimator and the end of the fit skeleton. Those names are for luce's
own layers (not in ``luce.__all__``).
"""

from ._base import fit_objective, settings_of
from ._hierarchical import HierarchicalSoftmaxClassifier
from ._objective import (
    Objective,
    ParameterVector,
    block_gram,
    block_hessp,
    block_loss_gradient,
    unpack_params,
)
from ._sigmoid import SigmoidRegression
from ._softmax_regression import SoftmaxRegression
from ._validation import check_two_weighted_classes, check_warm_start_classes, label_repr, unique_labels

__all__ = [
    "HierarchicalSoftmaxClassifier",
    "Objective",
    "ParameterVector",
    "SigmoidRegression",
    "SoftmaxRegression",
    "block_gram",
    "block_hessp",
    "block_loss_gradient",
    "check_two_weighted_classes",
    "check_warm_start_classes",
    "fit_objective",
    "label_repr",
    "settings_of",
    "unique_labels",
    "unpack_params",
]
