"""``cupy.linalg`` of the stand-in: NumPy's linear algebra behind CuPy 14.2's signatures and rules."""
from __future__ import annotations

import numpy as np

from . import SIGNATURES, _function

for _key in SIGNATURES["funcs"]:
    if _key.startswith("linalg."):
        _made = _function(_key, getattr(np.linalg, _key.partition(".")[2], None))
        if _made is not None:
            globals()[_key.partition(".")[2]] = _made
