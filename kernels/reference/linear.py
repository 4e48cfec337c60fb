"""Linear attention: random-feature maps and the implied (definition) computation.

With features ``φ``, ``out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j)`` over allowed ``j``.
FAVOR+ (Choromanski et al. 2021): ``φ(x) = exp(w·x' − ‖x'‖²/2)/√m`` with ``w ~ N(0, I)`` and
``x' = √scale · x``, so that ``E[φ(q)·φ(k)] = exp(scale · q·k)``.
"""
from __future__ import annotations

import numpy as np

from kernels.dispatch import array_module

FEATURE_KERNELS = ("favor+", "relu", "elu+1")


def random_features(num_features: int, dim: int, seed, orthogonal: bool = True) -> np.ndarray:
    """``W (m, d)`` with Gaussian rows; orthogonal blocks (QR) with chi-distributed norms if asked.

    ``seed`` is anything ``numpy.random.default_rng`` accepts (an int or a sequence of ints).
    """
    rng = np.random.default_rng(seed)
    if not orthogonal:
        return rng.standard_normal((num_features, dim))
    blocks = []
    for _ in range(-(-num_features // dim)):
        qmat, rmat = np.linalg.qr(rng.standard_normal((dim, dim)))
        qmat = qmat * np.sign(np.diag(rmat))  # a Haar-distributed rotation
        blocks.append(qmat.T)
    w = np.concatenate(blocks, axis=0)[:num_features]
    norms = np.linalg.norm(rng.standard_normal((num_features, dim)), axis=1)
    return w * norms[:, None]


def feature_map(x, w, kind: str, scale: float, is_query: bool, valid=None, return_stabilizer: bool = False):
    """``φ(x)``: ``(B, L, d) → (B, L, m)``, non-negative for every kernel; keys outside ``valid`` get φ = 0.

    FAVOR+ subtracts a stabiliser that cancels in the ratio: the row maximum for queries and
    the per-batch maximum over the ``valid`` keys (``(B|1, L)`` bool, default all) for keys. With
    ``return_stabilizer`` also the keys' stabiliser ``(B, 1, 1)`` (``exp`` of it is the factor the
    features were divided by; 0 for the other kernels), for merging key shards.
    """
    xp = array_module(x)  # NumPy, or CuPy for CuPy arrays (the same expressions on the GPU)
    xs = x * xp.asarray(np.sqrt(scale), dtype=x.dtype)
    z = xp.matmul(xs, xp.asarray(w.T).astype(x.dtype, copy=False))  # (B, L, m); updated in place below
    if kind == "favor+":
        z -= 0.5 * xp.sum(xs * xs, axis=-1, keepdims=True)
        if is_query:
            z -= z.max(axis=-1, keepdims=True)
        else:
            if valid is not None:  # invalid keys get φ = 0 and no say in the stabiliser
                xp.copyto(z, -np.inf, where=~xp.asarray(valid, dtype=bool)[..., None])
            stab = z.max(axis=(-2, -1), keepdims=True)
            stab = xp.where(xp.isfinite(stab), stab, 0)
            z -= stab
        xp.exp(z, out=z)
        z *= xp.asarray(1.0 / np.sqrt(w.shape[0]), dtype=x.dtype)
        return (z, stab.astype(np.float64)) if return_stabilizer and not is_query else z
    if kind == "relu":
        out = xp.maximum(z, 0)
    elif kind == "elu+1":
        out = xp.where(z > 0, z + 1, xp.exp(xp.minimum(z, 0)))
    else:
        raise ValueError(f"kernel must be one of {FEATURE_KERNELS}, got {kind!r}")
    if valid is not None and not is_query:  # invalid keys get φ = 0: they add nothing to any sum
        out = xp.where(xp.asarray(valid, dtype=bool)[..., None], out, 0).astype(out.dtype, copy=False)
    return (out, xp.zeros((out.shape[0], 1, 1))) if return_stabilizer and not is_query else out


def implied_weights(q_feat, k_feat, allowed=None):
    """``W_ij = a_ij φ(q_i)·φ(k_j) / Σ_j a_ij φ(q_i)·φ(k_j)``; a zero row stays zero."""
    a = np.matmul(q_feat, np.swapaxes(k_feat, -1, -2))
    if allowed is not None:
        a = np.where(allowed, a, 0)
    total = a.sum(axis=-1, keepdims=True)
    return np.divide(a, total, out=np.zeros_like(a), where=total > 0)


def linear_attention(q_feat, k_feat, v, allowed=None):
    """The definition, ``O(Lq · Lk)``: ``implied_weights(...) @ v``."""
    return np.matmul(implied_weights(q_feat, k_feat, allowed), v)
