"""The mechanism registry: every mechanism is registered once, here, and found everywhere.

``list_mechanisms()`` gives the names, ``make(name, **params)`` a configured instance and
``registry[name]`` the metadata (family, theory, formula, complexity, graph need, kernels, backends).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Iterator

from workbench.errors import ConfigurationError


@dataclass(frozen=True)
class MechanismInfo:
    """What the registry knows about one mechanism (all taken from its class attributes)."""

    name: str
    cls: type
    family: str
    theory: str | None
    formula: str
    time_complexity: str
    memory_complexity: str
    needs_graph: bool
    backends: dict = field(default_factory=dict)  # backend -> None (supported) or reason
    kernels: tuple = ()  # names of the kernels the mechanism calls (its backends are derived from them)

    @property
    def summary(self) -> str:
        """First line of the class docstring."""
        return (self.cls.__doc__ or "").strip().splitlines()[0] if self.cls.__doc__ else ""

    def not_supported_reasons(self, backend: str, q, k, v=None, *, mask=None, graph=None, **params) -> list[str]:
        """Why ``backend`` cannot serve these inputs for the mechanism configured with ``params``
        (empty: it can); see :meth:`workbench.mechanisms.base.Mechanism.not_supported_reasons`."""
        return self.cls(**params).not_supported_reasons(backend, q, k, v, mask=mask, graph=graph)

    @property
    def parameters(self) -> dict:
        """``param`` objects of the mechanism, by name (``name`` excluded)."""
        return {n: p for n, p in self.cls.param.objects("existing").items() if n != "name"}


class Registry(Mapping):
    """Read-only mapping ``name → MechanismInfo``, in registration order."""

    def __init__(self) -> None:
        self._items: dict[str, MechanismInfo] = {}

    def __getitem__(self, name: str) -> MechanismInfo:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigurationError(
                f"name: no mechanism {name!r}; registered: {', '.join(self._items) or 'none'}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({list(self._items)})"

    def add(self, name: str, cls: type) -> None:
        if name in self._items and self._items[name].cls is not cls:
            raise ConfigurationError(f"name: mechanism {name!r} is already registered by {self._items[name].cls}")
        missing = [a for a in ("family", "formula", "time_complexity", "memory_complexity") if not getattr(cls, a, None)]
        if missing:
            raise ConfigurationError(f"{cls.__name__}: registration needs class attributes {missing}")
        self._items[name] = MechanismInfo(
            name=name,
            cls=cls,
            family=cls.family,
            theory=getattr(cls, "theory", None),
            formula=cls.formula,
            time_complexity=cls.time_complexity,
            memory_complexity=cls.memory_complexity,
            needs_graph=bool(getattr(cls, "needs_graph", False)),
            backends=dict(cls.backends),
            kernels=tuple(kn.name for kn in getattr(cls, "kernels_used", ())),
        )


registry = Registry()


def register(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register("flash") class Flash(Mechanism): ...``."""

    def deco(cls: type) -> type:
        cls.registry_name = name
        registry.add(name, cls)
        return cls

    return deco


def list_mechanisms(family: str | None = None) -> list[str]:
    """Registered names, optionally only those of one ``family``."""
    return [n for n, info in registry.items() if family is None or info.family == family]


def make(name: str, **params):
    """A configured mechanism: ``make("multi_head", num_heads=8)``."""
    return registry[name].cls(**params)
