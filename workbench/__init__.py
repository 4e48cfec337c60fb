"""Attention Workbench: attention mechanisms as batched, tested, fast operators.

>>> import numpy as np, workbench
>>> q = k = v = np.random.default_rng(0).standard_normal((2, 16, 64), dtype=np.float32)
>>> workbench.make("multi_head", num_heads=8)(q, k, v).shape
(2, 16, 64)
"""
from workbench import errors
from workbench.mechanisms import Mechanism
from workbench.registry import MechanismInfo, list_mechanisms, make, register, registry


def calibrate(name_or_mechanism, keys, *, target_entropy: float = 0.5, **kwargs):
    """A mechanism whose self-attention over ``keys`` has mean normalised entropy ``target_entropy``
    (:func:`workbench.calibration.calibrate`; imported on first use)."""
    from workbench.calibration import calibrate as _calibrate

    return _calibrate(name_or_mechanism, keys, target_entropy=target_entropy, **kwargs)


__version__ = "0.1.0"

__all__ = ["errors", "Mechanism", "MechanismInfo", "calibrate", "list_mechanisms", "make", "register", "registry",
           "__version__"]
