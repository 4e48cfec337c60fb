"""One exception family. Every message names the argument, what was received and what was expected."""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error this library raises on purpose."""


class ShapeError(WorkbenchError, ValueError):
    """An array has the wrong rank, a mismatched dimension, or is empty."""


class ConfigurationError(WorkbenchError, ValueError):
    """A parameter or option is invalid, or a backend cannot serve the call."""


class NumericalError(WorkbenchError, ArithmeticError):
    """An input holds NaN or infinity, or a computation left the finite range."""


class DataError(WorkbenchError, ValueError):
    """A data file or data set cannot be read or does not hold what was expected."""


__all__ = ["WorkbenchError", "ShapeError", "ConfigurationError", "NumericalError", "DataError"]
