"""Lorentz cascade heads (multi-curvature hyperboloid attention), dispatched by backend.

``cascade_attention`` returns, per head ``h`` at curvature ``−c_h``, the weighted sums
``S^h = W^h · exp_0^{c_h}(V)`` on the hyperboloid ``(H, B, Lq, dv + 1)`` (time first; the caller
normalises them to Lorentzian centroids); ``cascade_weights`` returns ``Σ_h β_h W^h``. Scores are
query dependent (``−d_{c_h}(q, k)/T`` or ``−|B(k) − B(q)|/T``), ``top_k > 0`` keeps the best keys of
head 0 for every head. See :mod:`kernels.reference.lorentz` for the definition,
:mod:`kernels.numba.lorentz` for the fused kernels (float64, never ``Lq × Lk`` in the forward) and
:mod:`kernels.gpu.lorentz` for the GPU heads (float32 CuPy arrays, one flash-body launch per head;
``top_k > 0`` and the weights run on the host, CuPy in and out).
"""
from __future__ import annotations


import numpy as np

from kernels.capabilities import BackendError, declare
from kernels.checks import one_of, positive, positive_int
from kernels.dispatch import resolve_backend
from kernels.gpu.flash import WIDE_HEAD_DIM
from kernels.reference import lorentz as _ref

#: What the kernel serves on each backend (:mod:`kernels.capabilities`): CuPy through the flash bodies'
#: Lorentz and Busemann scores (``kernels/gpu/scores.cuh``; float32, heads up to WIDE_HEAD_DIM).
LORENTZ = declare("lorentz", masks=True, cupy=None, cupy_limits={"dtypes": ("float32",), "max_head_dim": WIDE_HEAD_DIM})

SCORES = _ref.SCORES

#: Queries per parallel work item and keys per tile of the Numba dense form.
BLOCK_Q = 64
BLOCK_K = 256


def _check(curvatures, temperature, score, top_k):
    cs = np.asarray(curvatures, dtype=np.float64)
    if cs.ndim != 1 or cs.size == 0 or not np.isfinite(cs).all() or (cs <= 0).any():
        raise BackendError(f"curvatures: expected a non-empty 1-D array of curvatures > 0, got {curvatures!r}")
    positive("temperature", temperature)
    one_of("score", score, SCORES)
    if int(top_k) < 0:
        raise BackendError(f"top_k: expected an integer >= 0, got {top_k!r}")
    return cs


def _mask(mask):
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    return m[None] if m.ndim == 2 else m


def cascade_attention(q, k, v, *, curvatures, temperature=1.0, score="distance", top_k=0, mask=None,
                      backend="auto", block_q=BLOCK_Q, block_k=BLOCK_K):
    """``(B, Lq, d), (B, Lk, d), (B, Lk, dv) → S (H, B, Lq, dv + 1)`` float64 (rows with no allowed key: 0).

    ``block_q``/``block_k``: queries per work item and keys per tile of the Numba dense form."""
    be = resolve_backend(backend, (q, k, v), LORENTZ, mask=mask)
    cs = _check(curvatures, temperature, score, top_k)
    if be == "cupy":
        return _cupy_attention(q, k, v, cs, float(temperature), score, int(top_k), mask)
    if be == "numpy":
        return _ref.cascade_attention(q, k, v, cs, float(temperature), score, int(top_k), _mask(mask))
    from kernels.numba import lorentz as _nb

    return _nb.cascade_attention(q, k, v, cs, float(temperature), score, int(top_k), _mask(mask),
                                 positive_int("block_q", block_q), positive_int("block_k", block_k))


def cascade_weights(q, k, *, curvatures, betas, temperature=1.0, score="distance", top_k=0, mask=None,
                    backend="auto"):
    """``(B, Lq, d), (B, Lk, d) → Σ_h β_h W^h (B, Lq, Lk)`` float64."""
    be = resolve_backend(backend, (q, k), LORENTZ, mask=mask)
    cs = _check(curvatures, temperature, score, top_k)
    betas = np.asarray(betas, dtype=np.float64)
    if betas.shape != cs.shape:
        raise BackendError(f"betas: expected one weight per head, shape {cs.shape}, got {betas.shape}")
    if be == "cupy":  # for inspection: the Numba kernel on the host, CuPy in and out
        from kernels.gpu.host import via_host
        from kernels.numba import lorentz as _nb

        return via_host(lambda q, k, m: _nb.cascade_weights(q, k, cs, betas, float(temperature), score, int(top_k),
                                                            _mask(m)), q, k, mask)
    if be == "numpy":
        return _ref.cascade_weights(q, k, cs, betas, float(temperature), score, int(top_k), _mask(mask))
    from kernels.numba import lorentz as _nb

    return _nb.cascade_weights(q, k, cs, betas, float(temperature), score, int(top_k), _mask(mask))


def _cupy_attention(q, k, v, cs, temperature, score, top_k, mask):
    """The dense form on the GPU bodies; the top-k form (a per-query selection) by the Numba kernel on
    the host, CuPy in and out."""
    if top_k == 0 or top_k >= k.shape[-2]:
        from kernels.gpu.lorentz import cascade_cupy

        return cascade_cupy(q, k, v, cs, temperature, score, mask)  # the launcher broadcasts a 2-D mask
    from kernels.gpu.host import via_host
    from kernels.numba import lorentz as _nb

    return via_host(lambda q, k, v, m: _nb.cascade_attention(q, k, v, cs, temperature, score, top_k, _mask(m),
                                                             BLOCK_Q, BLOCK_K), q, k, v, mask)


__all__ = ["LORENTZ", "SCORES", "cascade_attention", "cascade_weights"]
