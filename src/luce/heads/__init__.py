"""Large output spaces: cross-entropy over a big vocabulary without the N×V logits, hierarchical softmax.

Only NumPy is imported here; SciPy's BLAS and the compiled kernels load on first use.
"""

from ._linear_ce import linear_cross_entropy

__all__ = ["linear_cross_entropy"]
