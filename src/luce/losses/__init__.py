"""Losses built on the softmax family: cross-entropy, binary cross-entropy with logits, and the
Fenchel–Young losses of sparsemax and 1.5-entmax. Each can return its gradient from the same pass."""

from ._binary import binary_cross_entropy_with_logits
from ._cross_entropy import cross_entropy
from ._fenchel_young import entmax15_loss, sparsemax_loss

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "entmax15_loss", "sparsemax_loss"]
