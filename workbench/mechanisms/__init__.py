"""Every mechanism module in this package; importing it registers them all.

Modules are discovered, not listed: a new mechanism is one new file here, registered once with
``@register`` and found everywhere (API, CLI, README matrix, benchmarks, tests).
"""
import importlib
import pkgutil

from workbench.mechanisms.base import Mechanism

_NOT_MECHANISMS = {"base", "params", "graph_base"}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in _NOT_MECHANISMS and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Mechanism"]
