import numpy as np
import pytest

from luce._kernels import use_backend


@pytest.fixture
def rng():
    """A seeded generator; tests never touch the global np.random state."""
    return np.random.default_rng(20261122)


@pytest.fixture(params=["reference", "compiled"])
def backend(request):
    """Run a test against the NumPy reference and against the compiled kernels."""
    with use_backend(request.param):
        yield request.param
