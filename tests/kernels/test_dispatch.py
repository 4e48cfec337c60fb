import numpy as np
import pytest

import kernels
from kernels.dispatch import resolve_backend
from kernels.dense import DENSE
from kernels.flash import FLASH

SUPPORT = {"numpy": None, "numba": None, "cupy": "no CuPy kernel yet"}


def test_auto_picks_numba_for_numpy_arrays():
    assert resolve_backend("auto", [np.zeros(1)], FLASH) == "numba"
    assert resolve_backend("auto", [np.zeros(1)], SUPPORT) == "numba"  # a hand-written map, as mechanisms may declare
    assert resolve_backend("auto", [np.zeros(1)], {"numpy": None, "numba": "absent"}) == "numpy"


def test_unavailable_backend_says_why():
    with pytest.raises(kernels.BackendError, match="backend 'cupy' cannot serve dense: no CuPy kernel for dense yet"):
        resolve_backend("cupy", [np.zeros(1)], DENSE)
    with pytest.raises(kernels.BackendError, match="backend 'cupy' cannot serve flash: cupy needs CuPy arrays"):
        resolve_backend("cupy", [np.zeros(1, np.float32)], FLASH)
    with pytest.raises(kernels.BackendError, match="no CuPy kernel yet"):
        resolve_backend("cupy", [np.zeros(1)], SUPPORT)
    with pytest.raises(kernels.BackendError, match="backend must be one of"):
        resolve_backend("gpu", [np.zeros(1)], FLASH)


def test_kernels_import_nothing_from_workbench():
    import pathlib
    import re

    root = pathlib.Path(kernels.__file__).parent
    for path in root.rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+workbench", path.read_text(), re.M), path
