"""Argument checks shared by several modules (workbench.checks)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import workbench
from workbench import checks as C
from workbench.errors import ShapeError
from workbench.training.optimizers import SGD


def test_key_set_keeps_or_casts_the_keys():
    k = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert C.key_set("k", k) is k
    assert C.key_set("k", k, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(4), np.zeros((2, 3, 4))])
@pytest.mark.parametrize("build", [lambda k: workbench.make("centroid_ot").clusters(k),
                                   lambda k: workbench.make("diffusion").key_graph(k),
                                   lambda k: C.key_set("k", k)])
def test_structures_are_built_from_one_key_set(build, bad):
    want = re.escape(f"k: expected one key set of shape (n, d) with n >= 1, got shape {bad.shape}")
    with pytest.raises(ShapeError, match=want):
        build(bad)


def test_checked_attribute_checks_every_assignment_and_keeps_the_old_value():
    opt = SGD(lr=0.1)
    with pytest.raises(workbench.errors.ConfigurationError, match=r"lr: expected a finite number > 0, got 0"):
        opt.lr = 0
    assert opt.lr == opt._lr == 0.1
    opt.lr = 0.3
    assert opt.learning_rate() == 0.3


def test_device_float_array_checks_in_place_and_never_copies():
    """The checks of arrays that stay on the GPU (shown with a NumPy array: they use only ndim, dtype and
    NumPy functions a CuPy array dispatches): the same object back, or the error naming the argument."""
    from workbench.errors import DataError, NumericalError

    x = np.ones((2, 3, 4), np.float32)
    assert C.device_float_array("k", x, min_ndim=3) is x
    with pytest.raises(ShapeError, match=r"^k: expected shape \(\.\.\., m, d\), got shape \(3, 4\)"):
        C.device_float_array("k", x[0], min_ndim=3, shape="(..., m, d)")
    with pytest.raises(DataError, match="^k: expected float32 or float64 values on the GPU, got int64"):
        C.device_float_array("k", np.ones((2, 3), np.int64))
    bad = x.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(NumericalError, match="^k: expected finite values"):
        C.device_float_array("k", bad)
