"""Shared fixtures: one ``backend`` fixture over every available backend (POT style)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest


def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


GPU = _gpu_available()


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """The CPU backends every kernel supports."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
