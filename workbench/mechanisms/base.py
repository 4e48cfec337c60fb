"""The mechanism base class: parameters declared once with ``param``, called like SDPA."""
from __future__ import annotations

import numpy as np
import param

import kernels
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.inputs import Batch, all_finite, prepare

_NO_GPU = "no CuPy kernel yet: the GPU kernels arrive with their own issue"


class Mechanism(param.Parameterized):
    """Base of every attention mechanism.

    Subclasses declare parameters as ``param`` attributes (type, bounds, default, doc) and
    implement ``_forward(batch) -> (B, Lq, dv)`` and, where weights are defined,
    ``_weights(batch) -> (B, Lq, Lk)`` on validated, flattened inputs.
    """

    #: Registry metadata (class attributes, read by :func:`workbench.registry.register`).
    family: str = ""
    theory: str | None = None
    formula: str = ""
    time_complexity: str = ""
    memory_complexity: str = ""
    needs_graph: bool = False
    #: True for mechanisms that read ``graph=`` (from ``Batch.graph``); others refuse one.
    accepts_graph: bool = False
    backends: dict = {"numpy": None, "numba": None, "cupy": _NO_GPU}
    registry_name: str = ""

    backend = param.Selector(
        default="auto", objects=list(kernels.BACKENDS),
        doc="Kernel backend: 'auto' (Numba for NumPy arrays, CuPy for CuPy arrays), 'numpy' "
            "(the reference), 'numba' or 'cupy'.",
    )

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.param) - {"name"})
        if unknown:
            known = sorted(n for n in self.param if n != "name")
            raise ConfigurationError(f"{type(self).__name__}: unknown parameter(s) {unknown}; known: {known}")
        try:
            super().__init__(**params)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from None

    # -- public API -------------------------------------------------------------------------
    def __call__(self, q, k, v, *, mask=None, graph=None):
        """Attend: ``q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) → (..., Lq, dv)``."""
        self._check_graph_arg(graph)
        batch = prepare(q, k, v, mask, graph=graph)
        self._check(batch)
        out = self._run(self._forward, batch)
        return batch.restore(self._finite(out, "output"))

    def weights(self, q, k, *, mask=None, graph=None):
        """Attention weights ``(..., Lq, Lk)``; rows sum to 1 over allowed keys (0 if none)."""
        self._check_graph_arg(graph)
        batch = prepare(q, k, None, mask, need_v=False, graph=graph)
        self._check(batch)
        w = self._run(self._weights, batch)
        return batch.restore(self._finite(w, "weights"))

    def input_notes(self, q, k) -> list[str]:
        """Warnings about inputs the mechanism accepts but reads in a way users may not expect
        (e.g. points outside a geometric mechanism's domain); empty by default."""
        return []

    def params(self) -> dict:
        """Current parameter values by name."""
        return {n: getattr(self, n) for n in self.param if n != "name"}

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # -- for subclasses ----------------------------------------------------------------------
    def _check(self, batch: Batch) -> None:
        """Mechanism-specific validation of the shapes (raise ShapeError/ConfigurationError)."""

    def _forward(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def _weights(self, batch: Batch) -> np.ndarray:
        raise ConfigurationError(f"{type(self).__name__}: attention weights are not defined for this mechanism")

    def _scale(self, d: int) -> float:
        s = getattr(self, "scale", None)
        return 1.0 / np.sqrt(d) if s is None else float(s)

    # -- helpers -------------------------------------------------------------------------------
    def _check_graph_arg(self, graph) -> None:
        if graph is not None and not self.accepts_graph:
            raise ConfigurationError(
                f"graph: {type(self).__name__} does not use a graph (got {type(graph).__name__}); "
                f"graph mechanisms: {', '.join(self._graph_mechanisms())}")

    @staticmethod
    def _graph_mechanisms() -> list:
        from workbench.registry import registry

        return [n for n, info in registry.items() if getattr(info.cls, "accepts_graph", False)]

    def _run(self, fn, batch):
        try:
            return fn(batch)
        except kernels.BackendError as exc:
            raise ConfigurationError(f"backend: {exc}") from None

    def _finite(self, x: np.ndarray, what: str) -> np.ndarray:
        if not all_finite(x):
            raise NumericalError(
                f"{type(self).__name__}: the {what} left the finite range (inputs too large for "
                f"{x.dtype}); rescale the inputs or use float64"
            )
        return x
