"""Diffusion attention over one key graph: logits diffused by the heat equation, then a softmax.

See :mod:`kernels.reference.diffusion` for the definition. The reference diffuses every query's
logit vector; the Numba path uses linearity, ``e^{−tL}(s·K qᵀ) = s·(e^{−tL}K) qᵀ``: the ``d`` key
features are diffused once (``scipy.sparse.linalg.expm_multiply`` or stable explicit Euler, float64) and
the attention with the diffused keys runs in the fused Numba kernel of ``scaled_dot_product``
(never forming ``Lq × Lk``). So the cost is that of exact attention plus ``O(d·nnz(L)·steps)``. On
CuPy arrays the same happens on the GPU (:mod:`kernels.gpu.diffusion`: CSR heat steps, flash body).

Arrays are 2-D (one key set, one graph): ``q (Lq, d)``, ``k (Lk, d)``, ``v (Lk, dv)``, ``L (Lk, Lk)``.
"""
from __future__ import annotations


import numpy as np

from kernels.capabilities import BackendError, declare
from kernels.checks import one_of, positive
from kernels.dense import attention as _dense_attention
from kernels.dense import attention_weights as _dense_weights
from kernels.dispatch import resolve_backend
from kernels.gpu.flash import WIDE_HEAD_DIM
from kernels.reference import diffusion as _ref
from kernels.reference.diffusion import INTEGRATORS, LAPLACIANS, MULTISCALE

#: What the kernel serves on each backend (:mod:`kernels.capabilities`): CuPy through the GPU heat step
#: (``kernels/gpu/csr_step.cu``) and the flash body (:mod:`kernels.gpu.diffusion`; float32, head
#: dimensions up to WIDE_HEAD_DIM; the Laplacian built on the host).
DIFFUSION = declare("diffusion", cupy=None, cupy_limits={"dtypes": ("float32",), "max_head_dim": WIDE_HEAD_DIM})

__all__ = ["DIFFUSION", "LAPLACIANS", "INTEGRATORS", "MULTISCALE", "diffused_keys",
           "diffusion_attention", "diffusion_weights"]


def _check(times, scale, temperature, integrator, num_steps, multiscale="mean"):
    t = np.asarray(times, np.float64).reshape(-1)
    if t.size == 0 or not np.isfinite(t).all() or (t < 0).any():
        raise BackendError(f"times: expected one or more finite times >= 0, got {times!r}")
    positive("scale", scale)
    positive("temperature", temperature)
    one_of("integrator", integrator, INTEGRATORS)
    if int(num_steps) < 1:
        raise BackendError(f"num_steps: expected an integer >= 1, got {num_steps!r}")
    one_of("multiscale", multiscale, MULTISCALE)
    return t


#: Below this many keys the diffusion's matrix products run on one BLAS thread (waking BLAS threads
#: costs more than a 256 × 256 product).
SMALL = 1024


def diffused_keys(k, L, times, integrator="expm", num_steps=5) -> np.ndarray:
    """``e^{−t_s L} K`` for each time: ``(Lk, d) → (S, Lk, d)`` float64."""
    if k.shape[0] > SMALL:
        return _ref.heat(L, np.asarray(k, np.float64), times, integrator, int(num_steps))
    from kernels.blas_threads import one_blas_thread

    with one_blas_thread("all"):
        return _ref.heat(L, np.asarray(k, np.float64), times, integrator, int(num_steps))


def diffusion_attention(q, k, v, L, *, times, scale, temperature=1.0, integrator="expm", num_steps=5,
                        multiscale="mean", backend="auto"):
    """``softmax_j((e^{−t_s L} s·K qᵀ)_j / T) V`` per time, averaged (``"mean"``) or concatenated
    (``"concat"``, ``(Lq, S·dv)``): ``q (Lq, d), k (Lk, d), v (Lk, dv) → (Lq, dv)``, dtype of ``v``."""
    be = resolve_backend(backend, (q, k, v), DIFFUSION)
    t = _check(times, scale, temperature, integrator, num_steps, multiscale)
    if be == "cupy":
        from kernels.gpu.diffusion import attention as _gpu

        return _gpu("cuda", q, k, v, L, t, float(scale), float(temperature), integrator, int(num_steps), multiscale)
    if be == "numpy":
        out = _ref.attention(q, k, v, L, t, float(scale), float(temperature), integrator, int(num_steps), multiscale)
        return out.astype(v.dtype)
    kt = diffused_keys(k, L, t, integrator, num_steps).astype(q.dtype)
    s = float(scale) / float(temperature)
    outs = [_dense_attention(q[None], kt[i][None], v[None], scale=s, backend="numba")[0] for i in range(t.size)]
    if len(outs) == 1:
        return outs[0]
    return _ref.combine(np.stack(outs).astype(np.float64), multiscale).astype(v.dtype)


def diffusion_weights(q, k, L, *, times, scale, temperature=1.0, integrator="expm", num_steps=5, backend="auto"):
    """The weights of each time, ``(S, Lq, Lk)`` in the dtype of ``q``."""
    be = resolve_backend(backend, (q, k), DIFFUSION)
    t = _check(times, scale, temperature, integrator, num_steps)
    if be == "numpy":
        return _ref.weights(q, k, L, t, float(scale), float(temperature), integrator, int(num_steps)).astype(q.dtype)
    s = float(scale) / float(temperature)
    if be == "cupy":  # for inspection: the GPU heat steps, then the weights from the flash body's LSE
        from kernels.gpu.diffusion import heat
        from kernels.gpu.flash import weights_cupy

        kt = heat("cuda", L, k, t, integrator, int(num_steps))
        w = np.stack([weights_cupy(q[None], kt[i][None], scale=s)[0] for i in range(t.size)])
    else:
        kt = diffused_keys(k, L, t, integrator, num_steps).astype(q.dtype)
        w = np.stack([_dense_weights(q[None], kt[i][None], scale=s, backend="numba")[0] for i in range(t.size)])
    # the fused kernels' weights are exp(s − lse) with a float32 lse: renormalise so rows sum to 1
    tot = w.sum(-1, keepdims=True, dtype=np.float64)
    return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0).astype(q.dtype)
