"""Attention Workbench: attention mechanisms as batched, tested, fast operators.

>>> import numpy as np, workbench
>>> q = k = v = np.random.default_rng(0).standard_normal((2, 16, 64), dtype=np.float32)
>>> workbench.make("multi_head", num_heads=8)(q, k, v).shape
(2, 16, 64)
"""
from workbench import errors
from workbench.mechanisms import Mechanism
from workbench.registry import MechanismInfo, list_mechanisms, make, register, registry

__version__ = "0.1.0"

__all__ = ["errors", "Mechanism", "MechanismInfo", "list_mechanisms", "make", "register", "registry", "__version__"]
