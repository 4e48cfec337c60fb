"""Local–global (Longformer-pattern) attention."""
from __future__ import annotations

import math

import numpy as np

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.reference import dense as _dense
from kernels.reference.local_global import local_global_mask

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
LOCAL_GLOBAL = declare("local_global", masks=True, causal=True)


def local_global_attention(q, k, v, *, window, num_global, positions=None, mask=None, scale=None,
                           causal=False, backend="auto"):
    """Attention restricted to :func:`local_global_mask`, ``→ (B, Lq, dv)``.

    ``positions (Lq,)`` gives each query's key position (default ``arange(Lq)``, so
    ``Lq == Lk`` is the usual case). ``mask`` (broadcastable to ``(B, Lq, Lk)``) further
    restricts it. The NumPy reference builds the dense pattern; the Numba kernel never does.
    """
    lq, lk = q.shape[-2], k.shape[-2]
    positions = np.arange(lq) if positions is None else np.asarray(positions)
    if positions.shape != (lq,):
        raise ValueError(f"positions must have shape ({lq},), got {positions.shape}")
    if lq and (positions.min() < 0 or positions.max() >= lk):
        raise ValueError(f"positions must lie in [0, {lk}), got [{positions.min()}, {positions.max()}]")
    be = resolve_backend(backend, (q, k, v), LOCAL_GLOBAL, mask=mask, causal=causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if be == "numpy":
        allowed = local_global_mask(positions, lk, window, num_global, causal)
        if mask is not None:
            allowed = allowed & np.asarray(mask, dtype=bool)
        return _dense.attention(q, k, v, allowed, scale)
    from kernels.numba import local_global as _nb

    return _nb.local_global_attention(q, k, v, positions, mask, scale, window, num_global, causal)
