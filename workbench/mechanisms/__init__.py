"""Every mechanism module; importing this package registers them all."""
from workbench.mechanisms.base import Mechanism
from workbench.mechanisms import scaled_dot_product, multi_head, flash, linear, local_global  # noqa: F401

__all__ = ["Mechanism"]
