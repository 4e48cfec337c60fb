"""The mechanism base class: parameters declared once with ``param``, called like SDPA."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import param

import kernels
from kernels import capabilities
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.inputs import Batch, all_finite, prepare

#: What a mechanism that declares no kernels (nor ``backends``) runs on: its own NumPy code.
_OWN_NUMPY = capabilities.Kernel.from_backends("NumPy code", {
    "numpy": None,
    "numba": "no Numba kernel: the mechanism declares no kernels (kernels_used) and computes with NumPy",
    "cupy": "no CuPy kernel: the mechanism declares no kernels (kernels_used) and computes with NumPy",
})


class Mechanism(param.Parameterized):
    """Base of every attention mechanism.

    Subclasses declare parameters as ``param`` attributes (type, bounds, default, doc) and
    implement ``_forward(batch) -> (B, Lq, dv)`` and, where weights are defined,
    ``_weights(batch) -> (B, Lq, Lk)`` on validated, flattened inputs.

    Backends: a subclass names the kernels it calls in ``kernels_used`` (e.g.
    ``(kernels.flash.FLASH,)``); its ``backends`` are derived from them (a backend serves the
    mechanism only if it serves every kernel; the reason is the union of theirs). Each call resolves
    ``backend`` once against those kernels, refuses an unsupported one with the reasons in words, and
    hands the result on as ``batch.backend``. A mechanism computing with its own NumPy code may
    declare ``backends`` by hand instead (``backend → None | reason``).
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
    #: The kernels (:class:`kernels.capabilities.Kernel`) the mechanism calls.
    kernels_used: tuple = (_OWN_NUMPY,)
    #: ``backend → None (serves) | reason``: derived from :attr:`kernels_used` (read by the registry).
    backends: dict = capabilities.backends_of(kernels_used)
    registry_name: str = ""
    #: True where a row's weights depend on the query's position (windows, sequence order): such
    #: mechanisms are calibrated on a contiguous block of keys rather than a random sample.
    position_dependent: bool = False
    #: True where each row of weights is one softmax over per-key scores; False for mixtures
    #: (heads or experts averaged) and random-feature estimates, whose entropy over many keys a
    #: key sample misjudges (calibration then checks it on a few queries against all keys).
    softmax_rows: bool = True
    #: Names of the learned parameters :meth:`load_weights` accepts (``x @ W`` convention, biases
    #: ``b_*``); empty for mechanisms without any.
    learned_weights: tuple = ()
    #: Why the mechanism cannot run as key shards merged by log-sum-exp (:meth:`shard_partial`,
    #: :mod:`workbench.distributed`); None for those that can (they define :meth:`_shard_partial`).
    not_shardable: str | None = ("its output is not one softmax over the keys, so partial results over "
                                 "key shards cannot be merged by their log-sum-exp")

    backend = param.Selector(
        default="auto", objects=list(kernels.BACKENDS),
        doc="Kernel backend: 'auto' (Numba for NumPy arrays, CuPy for CuPy arrays), 'numpy' "
            "(the reference), 'numba' or 'cupy'.",
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "backends" in cls.__dict__ and "kernels_used" not in cls.__dict__:  # declared by hand
            cls.kernels_used = (capabilities.Kernel.from_backends(cls.__name__, cls.backends),)
        cls.backends = capabilities.backends_of(cls.kernels_used)

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.param) - {"name"})
        if unknown:
            known = sorted(n for n in self.param if n != "name")
            raise ConfigurationError(f"{type(self).__name__}: unknown parameter(s) {unknown}; known: {known}")
        for name, value in params.items():
            self._check_number(name, value)
        try:
            super().__init__(**params)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from None
        self._loaded_weights: dict | None = None

    @classmethod
    def _check_number(cls, name: str, value) -> None:
        """Numbers are numbers: no booleans (``True`` is not 1 head), nothing infinite or NaN."""
        p = cls.param[name] if name in cls.param else None
        if not isinstance(p, param.Number) or value is None:
            return
        if isinstance(value, (bool, np.bool_)):
            raise ConfigurationError(f"{name}: expected a number, got the boolean {value!r}")
        if isinstance(value, (int, float, np.integer, np.floating)) and not math.isfinite(float(value)):
            raise ConfigurationError(f"{name}: expected a finite number, got {value!r}")

    def _check_numbers(self) -> None:
        """:meth:`_check_number` of every current value (parameters may be set after construction)."""
        for name in self.param:
            if name != "name":
                self._check_number(name, getattr(self, name))

    # -- public API -------------------------------------------------------------------------
    def __call__(self, q, k, v, *, mask=None, graph=None):
        """Attend: ``q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) → (..., Lq, dv)``."""
        self._check_numbers()
        self._check_graph_arg(graph)
        batch = self._prepare(q, k, v, mask, graph=graph)
        self._check(batch)
        out = self._run(self._forward, batch)
        return batch.restore(self._finite(out, "output"))

    def weights(self, q, k, *, mask=None, graph=None):
        """Attention weights ``(..., Lq, Lk)``; rows sum to 1 over allowed keys (0 if none)."""
        self._check_numbers()
        self._check_graph_arg(graph)
        batch = self._prepare(q, k, None, mask, need_v=False, graph=graph)
        self._check(batch)
        w = self._run(self._weights, batch)
        return batch.restore(self._finite(w, "weights"))

    def shard_partial(self, q, k, v, *, mask=None, query_offset: int = 0, key_offset: int = 0):
        """``(out (..., Lq, dv), lse (..., Lq))`` of the queries at positions ``query_offset + i``
        over the key shard at positions ``key_offset + j`` (``mask`` sliced to the shard): merged
        over all shards by :func:`workbench.distributed.merge_partials` it equals the call on all
        keys (after :meth:`shard_finish`; per head for multi-head: ``out (..., Lq, h, dh)``,
        ``lse (..., Lq, h)``). Raises ConfigurationError naming why where :attr:`not_shardable`."""
        if self.not_shardable:
            raise ConfigurationError(f"{self.registry_name or type(self).__name__}: cannot run by key shards: "
                                     f"{self.not_shardable}")
        from workbench.checks import integer

        q0 = integer("query_offset", query_offset, minimum=0)
        k0 = integer("key_offset", key_offset, minimum=0)
        self._check_numbers()
        if np.ndim(q) < 2:
            raise ShapeError(f"q: key shards take queries of shape (..., Lq, d), got {np.shape(q)}")
        batch = self._prepare(q, k, v, mask)
        self._check_shard(batch)
        out, lse = self._run(lambda b: self._shard_partial(b, q0, k0), batch)
        return batch.restore(out), batch.restore(lse, trailing=1)

    def _shard_partial(self, b, query_offset: int, key_offset: int):
        raise NotImplementedError

    def _check_shard(self, b) -> None:
        """The checks of one shard's inputs (default: those of a call); see :meth:`check_sharded`."""
        self._check(b)

    def check_sharded(self, lq: int, lk: int) -> None:
        """Checks of a sharded call's whole shapes (``Lq`` queries, ``Lk`` keys) that no single shard can
        make (e.g. local-global's ``Lq == Lk``); ShapeError naming the arrays. Default: none."""

    def _shard_causal_offset(self, query_offset: int, key_offset: int) -> int:
        """The causal rule ``j ≤ i + causal_offset`` in global positions, written in a shard's local
        ones (query ``i = query_offset + r``, key ``j = key_offset + c``)."""
        return self.causal_offset + query_offset - key_offset

    def shard_finish(self, out, d: int, dv: int, dtype=None):
        """The merged partial output → the call's output (default: itself; e.g. ``W_o`` after merged
        heads). ``d``, ``dv``: the widths of the keys and values; ``dtype``: that of the queries."""
        return out

    def backend_for(self, *arrays) -> str:
        """The backend a call on ``arrays`` runs on: :attr:`backend` resolved against
        :attr:`kernels_used` (``"auto"``: the first of CuPy, Numba, NumPy serving all of them);
        ConfigurationError naming the reasons when it cannot serve."""
        try:
            return capabilities.select(self.backend, self._call_inputs(arrays), self.kernels_used)
        except kernels.BackendError as exc:
            raise ConfigurationError(f"backend: {exc}") from None

    @staticmethod
    def _call_inputs(arrays) -> capabilities.Inputs:
        """The kernels' view of a call on ``arrays``: every input is cast to float64 if all are
        float64, else to float32 (as :func:`workbench.inputs.prepare` does)."""
        inputs = capabilities.Inputs.of(arrays)
        return dataclasses.replace(inputs, dtypes=("float64",) if inputs.dtypes == ("float64",) else ("float32",))

    def not_supported_reasons(self, backend: str, q, k, v=None, *, mask=None, graph=None) -> list[str]:
        """Why ``backend`` (or, for ``"auto"``, every backend) cannot serve a call on these inputs,
        in words; empty when it can. The kernels' reasons (:attr:`kernels_used`) for the inputs as a
        call would validate them, and a ``graph`` this configuration does not use. Invalid shapes
        raise as a call would."""
        inputs = self._call_inputs((q, k, v))
        if inputs.libraries == ("numpy",):
            prepare(q, k, v, mask, need_v=v is not None)  # validation, as a call
        reasons = capabilities.not_supported_reasons(backend, inputs, self.kernels_used)
        if graph is not None and not self.uses_graph():
            reasons.append(f"{type(self).__name__} does not use a graph in this configuration")
        return reasons

    def input_notes(self, q, k) -> list[str]:
        """Warnings about inputs the mechanism accepts but reads in a way users may not expect
        (e.g. points outside a geometric mechanism's domain); empty by default."""
        return []

    def load_weights(self, source, *, key_map: str | None = None, prefix: str = "", max_bytes: int | None = None):
        """Use trained weights: ``source`` a dict of arrays, a PyTorch ``state_dict`` or an
        ``.npz``/``.safetensors`` path; ``key_map`` and ``prefix`` as :mod:`workbench.weights`
        (None: the names of :meth:`state_dict`). A missing, unknown or mis-shaped key raises
        ShapeError naming it; nothing changes then. Returns the mechanism."""
        if not self.learned_weights:
            raise ConfigurationError(f"{type(self).__name__}: has no learned weights to load")
        from workbench.weights import map_keys, read_weights

        weights = map_keys(read_weights(source, max_bytes=max_bytes), key_map, prefix)
        self._loaded_weights = self._accept_weights(weights)
        return self

    def state_dict(self, d: int | None = None, dv: int | None = None) -> dict:
        """The weights in use, by :attr:`learned_weights` name (copies): the loaded ones, else those
        the parameters give for inputs of width ``d`` (values ``dv``); what :meth:`load_weights` takes back."""
        if not self.learned_weights:
            raise ConfigurationError(f"{type(self).__name__}: has no learned weights")
        if self._loaded_weights is not None:
            return {k: v.copy() for k, v in self._loaded_weights.items()}
        if d is None:
            raise ConfigurationError("d: no weights are loaded; give the input width d (and dv) to get the "
                                     "weights the parameters define")
        return self._initial_weights(int(d), int(d if dv is None else dv))

    def with_params(self, **changes) -> "Mechanism":
        """A new mechanism of this type with these parameters changed; loaded weights go with it
        (a rebuild from :meth:`params` alone would fall back to the seeded ones)."""
        new = type(self)(**{**self.params(), **changes})
        if self._loaded_weights is not None:
            new._loaded_weights = {k: v.copy() for k, v in self._loaded_weights.items()}
        return new

    @property
    def weights_loaded(self) -> bool:
        """Whether :meth:`load_weights` has set this mechanism's weights."""
        return self._loaded_weights is not None

    def _accept_weights(self, weights: dict) -> dict:
        """Check ``weights`` (names and shapes, errors naming the key) and return what to keep."""
        raise NotImplementedError

    def _initial_weights(self, d: int, dv: int) -> dict:
        """The weights the parameters define for widths ``d``, ``dv`` (no weights loaded)."""
        raise NotImplementedError

    def params(self) -> dict:
        """Current parameter values by name."""
        return {n: getattr(self, n) for n in self.param if n != "name"}

    def nondefault_params(self) -> dict:
        """The parameters whose value differs from the declared default (what rebuilds this one)."""
        objs = type(self).param.objects("existing")
        out = {}
        for n, v in self.params().items():
            try:
                same = bool(v == objs[n].default)
            except Exception:  # values whose == is not a bool (arrays)
                same = v is objs[n].default
            if not same:
                out[n] = v
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # -- for subclasses ----------------------------------------------------------------------
    def _prepare(self, q, k, v, mask=None, *, need_v: bool = True, graph=None) -> Batch:
        """The validated, flattened inputs (:func:`workbench.inputs.prepare`) with the backend of the
        call resolved once (:meth:`backend_for`) as ``batch.backend``."""
        b = prepare(q, k, v, mask, need_v=need_v, graph=graph)
        return dataclasses.replace(b, backend=self.backend_for(b.q, b.k, b.v))

    def _check(self, batch: Batch) -> None:
        """Mechanism-specific validation of the shapes (raise ShapeError/ConfigurationError)."""

    def _forward(self, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    def _weights(self, batch: Batch) -> np.ndarray:
        raise ConfigurationError(f"{type(self).__name__}: attention weights are not defined for this mechanism")

    def _scale(self, d: int) -> float:
        s = getattr(self, "scale", None)
        return self.default_scale(d) if s is None else float(s)

    def logit_scale(self, d: int) -> float:
        """The scale ``s`` of the dot-product logits ``s·q·k`` at key width ``d`` (its ``scale``, or
        :meth:`default_scale`)."""
        return self._scale(d)

    # -- temperature: one convention for every family ---------------------------------------------
    @classmethod
    def temperature_parameter(cls) -> str | None:
        """The parameter that sets the temperature ``T``: ``"temperature"`` where the mechanism
        declares one (its logits are a score divided by ``T``), else ``"scale"`` (logits
        ``s·q·k`` with ``s = s₀/T``, ``s₀`` = :meth:`default_scale`), else None. ``T = 1`` is every
        mechanism's default; :func:`workbench.calibrate` fits ``T``."""
        names = cls.param
        if "temperature" in names:
            return "temperature"
        if "scale" in names:
            return "scale"
        return None

    def default_scale(self, d: int) -> float:
        """``s₀ = 1/√d`` for key width ``d`` (per head where the mechanism splits heads)."""
        return 1.0 / np.sqrt(d)

    def current_temperature(self, d: int) -> float | None:
        """The current ``T`` for key width ``d`` (see :meth:`temperature_parameter`)."""
        which = self.temperature_parameter()
        if which == "temperature":
            return float(getattr(self, "temperature"))
        if which == "scale":
            return float(self.default_scale(d) / self._scale(d))
        return None

    def temperature_params(self, t: float, d: int) -> dict:
        """The parameter values that give temperature ``t`` at key width ``d`` (``{}`` if none)."""
        which = self.temperature_parameter()
        if which == "temperature":
            return {"temperature": float(t)}
        if which == "scale":
            return {"scale": float(self.default_scale(d) / t)}
        return {}

    def calibration_params(self, keys: np.ndarray, target: float) -> tuple[dict, str]:
        """Parameters :func:`workbench.calibrate` sets before fitting the temperature, and the rule in words.

        ``keys (n, d)`` the calibration sample, ``target`` the entropy to reach. Euclidean
        mechanisms accept any vector: ``({}, "")``. Geometric ones bring the keys into their
        domain (a curvature whose ball contains them), so that calibrated geometric attention
        never sees points projected onto a boundary; others make the target reachable.
        """
        return {}, ""

    # -- helpers -------------------------------------------------------------------------------
    def uses_graph(self) -> bool:
        """Whether this configuration reads ``graph=`` (a mode may ignore it: then it is refused)."""
        return bool(self.accepts_graph)

    def _check_graph_arg(self, graph) -> None:
        if graph is not None and not self.uses_graph():
            mode = "" if not self.accepts_graph else " in this configuration"
            raise ConfigurationError(
                f"graph: {type(self).__name__} does not use a graph{mode} (got {type(graph).__name__}); "
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
