"""Shared fixtures: backend, dtype, a seeded generator, and engine state reset.

NUMBA_CACHE_DIR is deliberately left to the environment.
"""
import numpy as np
import pytest

import fastloss


@pytest.fixture(params=fastloss.BACKENDS)
def backend(request):
    """Every backend, passed explicitly with ``backend=``."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


@pytest.fixture(autouse=True)
def _restore_engine_state():
    """A test that changes the global backend or thread count cannot leak it."""
    backend = fastloss.get_backend()
    threads = fastloss.get_num_threads()
    yield
    fastloss.set_backend(backend)
    fastloss.set_num_threads(threads)
