"""Attention Workbench dashboard — ``panel serve apps/dashboard.py`` (or ``make serve``).

Opens on a built-in data set (the URL's ``data=``, default the real text set ``scipy_api``); see
:mod:`apps.app`. ``make serve`` also passes ``--setup apps/preload.py`` (kernels loaded before the
first page).
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `panel serve` runs this file as a script; `apps` lives next to `workbench`
    sys.path.insert(0, _ROOT)

from apps.app import create_app  # noqa: E402

create_app().servable(title="Attention Workbench")
