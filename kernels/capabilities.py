"""What each kernel serves, backend by backend, and in words why not (xFormers' ``not_supported_reasons``).

Every kernel entry module (``kernels/flash.py``, ``kernels/dense.py``, …) declares its specs once with
:func:`declare`: a :class:`Kernel` holding one :class:`KernelSpec` per backend (the NumPy reference,
the Numba CPU kernel, the CuPy GPU kernel). A spec states the dtypes it takes, whether it takes a
mask, a causal flag or a graph (an edge list), its largest head dimension where it has one, the array
library it computes on, and — for a backend without an implementation — the reason in words.
``spec.not_supported_reasons(inputs)`` lists why it cannot serve one call (empty: it can), where
:class:`Inputs` describes the call (dtypes, shapes, mask present, causal, graph present, array
library). :func:`select` is the dispatcher: ``"auto"`` takes the first backend of
:data:`PREFERENCE` whose reasons are empty for every kernel asked; an explicit backend with reasons
raises :class:`BackendError` listing them. A mechanism using several kernels is served by a backend
only if each of them is (:func:`backends_of`; the reasons are their union).

Equivalent plain code: ``next(b for b in PREFERENCE if not kernel.spec(b).not_supported_reasons(inputs))``.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: The ``backend`` values every entry point accepts.
BACKENDS = ("auto", "numpy", "numba", "cupy")

#: The order in which ``"auto"`` tries the backends: the first that serves the call wins.
PREFERENCE = ("cupy", "numba", "numpy")

#: The array library each backend computes on.
LIBRARY = {"numpy": "numpy", "numba": "numpy", "cupy": "cupy"}

_LIBRARY_NAME = {"numpy": "NumPy", "cupy": "CuPy"}

#: The dtypes the kernels compute in (``workbench`` casts every input to one of them).
FLOATS = ("float32", "float64")


class BackendError(ValueError):
    """A backend was asked for that cannot serve this call; the message says why."""


def array_library(x) -> str:
    """``"cupy"`` for a CuPy array (without importing CuPy when the caller has not), else ``"numpy"``."""
    cp = sys.modules.get("cupy")
    return "cupy" if cp is not None and isinstance(x, cp.ndarray) else "numpy"


@dataclass(frozen=True)
class Inputs:
    """What one call brings, as the specs read it: ``Inputs.of((q, k, v), mask=m, causal=True)``."""

    dtypes: tuple = ()  # dtype names, each once, e.g. ("float32",)
    shapes: tuple = ()  # one shape per array
    libraries: tuple = ("numpy",)  # array libraries, each once
    mask: bool = False
    causal: bool = False
    graph: bool = False

    @classmethod
    def of(cls, arrays: Iterable, *, mask=None, causal=False, graph=False) -> "Inputs":
        """Describe a call on ``arrays`` (``None`` entries skipped); ``mask`` and ``graph`` count when not None/False."""
        arrays = [a for a in arrays if a is not None]
        dtypes = [a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype for a in arrays]
        return cls(dtypes=tuple(dict.fromkeys(str(d) for d in dtypes)),
                   shapes=tuple(tuple(np.shape(a)) for a in arrays),
                   libraries=tuple(dict.fromkeys(array_library(a) for a in arrays)) or ("numpy",),
                   mask=mask is not None, causal=bool(causal), graph=graph is not None and graph is not False)

    @property
    def head_dim(self) -> int:
        """The widest last axis of the arrays (the head dimension of ``q, k, v``)."""
        return max((s[-1] for s in self.shapes if s), default=0)


@dataclass(frozen=True)
class KernelSpec:
    """What one kernel serves on one backend (xFormers' operator attributes)."""

    kernel: str
    backend: str  # "numpy" | "numba" | "cupy"
    dtypes: tuple | None = FLOATS  # None: any dtype
    masks: bool = False  # takes a boolean mask
    causal: bool = False  # has a causal form
    graph: bool = False  # takes a graph (an edge list)
    max_head_dim: int | None = None  # None: no limit
    missing: str | None = None  # why this backend has no implementation (None: it has one)

    @property
    def library(self) -> str:
        """The array library the backend computes on (``"numpy"`` or ``"cupy"``)."""
        return LIBRARY[self.backend]

    def static_reasons(self) -> list[str]:
        """Why this backend cannot serve any call (empty when it is implemented)."""
        return [] if self.missing is None else [self.missing]

    def input_reasons(self, inputs: Inputs) -> list[str]:
        """Why this backend cannot serve ``inputs`` in particular."""
        reasons = []
        others = [lib for lib in inputs.libraries if lib != self.library]
        if others:
            got = " and ".join(_LIBRARY_NAME[lib] for lib in others)
            reasons.append(f"{self.backend} needs {_LIBRARY_NAME[self.library]} arrays, got {got} arrays")
        if self.dtypes is not None:
            bad = [d for d in inputs.dtypes if d not in self.dtypes]
            if bad:
                reasons.append(f"{self.kernel} takes dtypes {', '.join(self.dtypes)}, got {', '.join(bad)}")
        if inputs.mask and not self.masks:
            reasons.append(f"{self.kernel} takes no mask")
        if inputs.causal and not self.causal:
            reasons.append(f"{self.kernel} has no causal form")
        if inputs.graph and not self.graph:
            reasons.append(f"{self.kernel} takes no graph")
        if self.max_head_dim is not None and inputs.head_dim > self.max_head_dim:
            reasons.append(f"{self.backend} {self.kernel} takes head dimensions up to {self.max_head_dim}, "
                           f"got {inputs.head_dim}")
        return reasons

    def not_supported_reasons(self, inputs: Inputs) -> list[str]:
        """Every reason this backend cannot serve ``inputs``; empty when it can."""
        return self.static_reasons() + self.input_reasons(inputs)


@dataclass(frozen=True)
class Kernel:
    """One kernel's specs, one per backend."""

    name: str
    specs: tuple

    def spec(self, backend: str) -> KernelSpec:
        for s in self.specs:
            if s.backend == backend:
                return s
        return KernelSpec(self.name, backend, missing=f"no {backend} spec for {self.name}")

    @property
    def backends(self) -> dict:
        """``backend → None`` (implemented) or the reason why not, for every backend."""
        return backends_of((self,))

    def not_supported_reasons(self, backend: str, inputs: Inputs) -> list[str]:
        """Why ``backend`` cannot serve ``inputs`` (``"auto"``: why none can); empty when it can."""
        return not_supported_reasons(backend, inputs, (self,))

    @classmethod
    def from_backends(cls, name: str, backends: Mapping) -> "Kernel":
        """A kernel from a hand-written map ``backend → None | reason`` (any dtype, mask or graph)."""
        return cls(name, tuple(KernelSpec(name, b, dtypes=None, masks=True, causal=True, graph=True,
                                          missing=backends.get(b, f"no {b} backend declared"))
                               for b in LIBRARY))


_NOT_YET = object()


def declare(name: str, *, dtypes=FLOATS, masks=False, causal=False, graph=False, max_head_dim=None,
            numba: str | None = None, cupy=_NOT_YET, cupy_limits: Mapping | None = None) -> Kernel:
    """The specs of one kernel: the NumPy reference, the Numba kernel (``numba``: None, or why there
    is none) and the CuPy kernel (``cupy``: None once it exists, or why there is none; by default
    ``"no CuPy kernel for <name> yet"``). The three take the same inputs, except what
    ``cupy_limits`` narrows for the CuPy kernel (e.g. ``{"dtypes": ("float32",), "max_head_dim": 128}``)."""
    cupy = f"no CuPy kernel for {name} yet" if cupy is _NOT_YET else cupy
    common = dict(dtypes=dtypes, masks=masks, causal=causal, graph=graph, max_head_dim=max_head_dim)
    return Kernel(name, (KernelSpec(name, "numpy", **common), KernelSpec(name, "numba", missing=numba, **common),
                         KernelSpec(name, "cupy", missing=cupy, **{**common, **dict(cupy_limits or {})})))


def as_kernels(supported) -> tuple:
    """A :class:`Kernel`, several, or a map ``backend → None | reason`` (a mechanism's ``backends``) as kernels."""
    if isinstance(supported, Kernel):
        return (supported,)
    if isinstance(supported, Mapping):
        return (Kernel.from_backends("this kernel", supported),)
    return tuple(supported)


def _union(lists) -> list[str]:
    return list(dict.fromkeys(r for rs in lists for r in rs))


def not_supported_reasons(backend: str, inputs: Inputs, kernels) -> list[str]:
    """Why ``backend`` cannot serve ``inputs`` with every kernel of ``kernels``: the kernels' reasons
    without inputs first, then those of these inputs (each once). ``"auto"``: empty when some
    backend serves, else one entry per backend. Empty: it can serve."""
    kernels = as_kernels(kernels)
    if backend == "auto":
        per = {b: not_supported_reasons(b, inputs, kernels) for b in PREFERENCE}
        if any(not r for r in per.values()):
            return []
        return [f"{b}: {'; '.join(r)}" for b, r in per.items()]
    if backend not in LIBRARY:
        return [f"backend must be one of {BACKENDS}, got {backend!r}"]
    specs = [k.spec(backend) for k in kernels]
    return _union([s.static_reasons() for s in specs] + [s.input_reasons(inputs) for s in specs])


def backends_of(kernels) -> dict:
    """``backend → None | reason`` for a mechanism using ``kernels``: a backend serves only if every
    kernel does; the reason joins the kernels' reasons with ``"; "``."""
    kernels = as_kernels(kernels)
    return {b: "; ".join(_union(k.spec(b).static_reasons() for k in kernels)) or None for b in LIBRARY}


def describe(kernels) -> str:
    """The kernels' names, ``"dense + graph"``."""
    return " + ".join(k.name for k in as_kernels(kernels))


def select(backend: str, inputs: Inputs, kernels) -> str:
    """The backend that runs a call: ``backend`` itself if it serves ``inputs`` with every kernel, or
    for ``"auto"`` the first of :data:`PREFERENCE` that does. Raises :class:`BackendError` naming the reasons."""
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, got {backend!r}")
    kernels = as_kernels(kernels)
    if backend == "auto":
        for b in PREFERENCE:
            if not not_supported_reasons(b, inputs, kernels):
                return b
        why = " | ".join(not_supported_reasons("auto", inputs, kernels))
        raise BackendError(f"no backend can serve {describe(kernels)}: {why}")
    reasons = not_supported_reasons(backend, inputs, kernels)
    if reasons:
        raise BackendError(f"backend {backend!r} cannot serve {describe(kernels)}: {'; '.join(reasons)}")
    return backend
