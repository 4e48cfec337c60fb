"""Linear attention from feature maps: ``O(L·m·dv)`` instead of ``O(L²·d)``."""
from __future__ import annotations

import numpy as np

from kernels.capabilities import declare
from kernels.dispatch import resolve_backend
from kernels.reference import linear as _ref
from kernels.reference.dense import allowed_pattern

#: What the kernel serves on each backend (:mod:`kernels.capabilities`); the CuPy kernel is
#: ``kernels/gpu/linear_fwd.cu`` (float32; no mask: zero a padded key's features instead).
LINEAR = declare("linear", masks=True, causal=True, cupy=None, cupy_limits={"dtypes": ("float32",), "masks": False})


def linear_attention(q_feat, k_feat, v, *, mask=None, causal=False, backend="auto"):
    """``out_i = Σ_j a_ij φ(q_i)·φ(k_j) v_j / Σ_j a_ij φ(q_i)·φ(k_j)``.

    ``q_feat (B, Lq, m)``, ``k_feat (B, Lk, m)``, ``v (B, Lk, dv)`` → ``(B, Lq, dv)``;
    ``a`` is the mask (broadcastable to ``(B, Lq, Lk)``) and, if ``causal``, ``j ≤ i``
    (then ``Lq == Lk``). A key-padding mask (``Lq`` axis of size 1) keeps the linear cost;
    a general ``Lq × Lk`` mask makes the computation quadratic (it is done densely).
    """
    if causal and q_feat.shape[-2] != k_feat.shape[-2]:
        raise ValueError(
            f"causal linear attention needs Lq == Lk, got Lq={q_feat.shape[-2]}, Lk={k_feat.shape[-2]}"
        )
    be = resolve_backend(backend, (q_feat, k_feat, v), LINEAR, mask=mask, causal=causal)
    if be == "numpy":
        allowed = allowed_pattern(mask, q_feat.shape[-2], k_feat.shape[-2], causal)
        return _ref.linear_attention(q_feat, k_feat, v, allowed)
    if be == "cupy":
        from kernels.gpu.linear import linear_cupy

        return linear_cupy(q_feat, k_feat, v, causal)
    from kernels.numba import linear as _nb

    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 3 and mask.shape[-2] == 1:
            k_feat = k_feat * np.swapaxes(mask, -1, -2)
        else:
            allowed = allowed_pattern(mask, q_feat.shape[-2], k_feat.shape[-2], causal)
            return _ref.linear_attention(q_feat, k_feat, v, allowed)
    return _nb.linear_attention(q_feat, k_feat, v, causal)
