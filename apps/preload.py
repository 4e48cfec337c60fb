"""Run once before ``panel serve`` accepts connections (``--setup apps/preload.py``, as ``make serve`` does).

Numba loads each cached kernel the first time a process calls it (0.3–0.4 s each, measured); the
first page would pay that for every kernel its panels, calibration and diagnostics use, on top of
its own work (1.0 s of the first calibration of scaled dot-product was cache loading). Running
the default view's work once here, on a slice of the default data set, loads them before anyone
is waiting.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # run as a script by `panel serve --setup`
    sys.path.insert(0, _ROOT)


def preload() -> None:
    import workbench
    from workbench import compare
    from apps.url_state import AppState
    from workbench.data import load_demo

    x = load_demo(AppState().dataset).x[:256]
    for name in AppState().mechanisms:
        mech = workbench.calibrate(name, x)
        compare.run(name, mech.calibration.params, x, x, x)
    compare.run(compare.REFERENCE, {}, x, x, x)


preload()
