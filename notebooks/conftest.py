"""Run the tutorial notebooks under nbval when pytest collects this folder.

``make test`` (``python -m pytest``) collects ``tests/`` and ``notebooks/`` (``testpaths``). This
conftest is loaded only when ``notebooks/`` is collected, so the settings below never touch a run
of ``tests/`` alone. They turn on ``--nbval`` (stored outputs compared; never ``--nbval-lax``
unless asked for on the command line), the sanitiser ``nbval_sanitize.cfg`` (timings, memory
addresses and sizes, progress bars, random plot ids), the current environment's kernel (the
virtual environment running pytest, not whatever ``python3`` kernelspec Jupyter finds) and a
per-cell timeout. Cells whose output cannot be stable (HoloViews/Bokeh plots carry random ids,
timings vary) say ``# NBVAL_IGNORE_OUTPUT`` and are still executed.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Seconds one cell may run before nbval fails it (each notebook is meant to finish in < 20 s).
CELL_TIMEOUT_S = 300


def pytest_configure(config) -> None:
    opt = config.option
    if not hasattr(opt, "nbval"):  # nbval is not installed: notebooks are simply not collected
        return
    if not (opt.nbval or opt.nbval_lax):
        opt.nbval = True
    if not opt.nbval_sanitize_with:
        opt.nbval_sanitize_with = str(HERE / "nbval_sanitize.cfg")
    if not opt.nbval_kernel_name:
        opt.nbval_current_env = True
    if int(opt.nbval_cell_timeout) == 2000:  # nbval's default: far beyond our budget
        opt.nbval_cell_timeout = CELL_TIMEOUT_S
