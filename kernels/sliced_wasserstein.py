"""Sliced-Wasserstein attention: ``softmax(−SW_p / T)`` on quantile features, full or two-stage.

See :mod:`kernels.reference.sliced_wasserstein` for the definition (directions, quantile grid,
features) and :mod:`kernels.numba.sliced_wasserstein` for the fused kernels.
"""
from __future__ import annotations

import math

from kernels.capabilities import BackendError, declare
from kernels.checks import positive
from kernels.dispatch import resolve_backend
from kernels.gpu.flash import WIDE_HEAD_DIM
from kernels.reference import sliced_wasserstein as _ref
from kernels.reference.sliced_wasserstein import directions, features, quantile_grid, sorted_projections

#: What the kernel serves on each backend (:mod:`kernels.capabilities`).
SLICED_WASSERSTEIN = declare("sliced_wasserstein", masks=True, cupy=None,
                             cupy_limits={"dtypes": ("float32",), "max_head_dim": WIDE_HEAD_DIM})

#: Query / key tiles of the Numba kernel.
BLOCK_Q = 256
BLOCK_K = 256

__all__ = ["SLICED_WASSERSTEIN", "directions", "features", "quantile_grid", "sorted_projections", "sw_attention", "sw_weights",
           "sw_partial"]


def _check(p, temperature, num_candidates):
    if not math.isfinite(float(p)) or float(p) < 1:
        raise BackendError(f"p: expected a Wasserstein power >= 1, got {p!r}")
    positive("temperature", temperature)
    if num_candidates is not None and int(num_candidates) < 1:
        raise BackendError(f"num_candidates: expected None or an integer >= 1, got {num_candidates!r}")


def _checked(p, temperature, num_candidates, b, q, k):
    """Checked ``(p, temperature, two_stage)``; the two-stage form (fewer candidates than keys) needs ``q, k``."""
    _check(p, temperature, num_candidates)
    two_stage = num_candidates is not None and int(num_candidates) < b.shape[1]
    if two_stage and (q is None or k is None):
        raise BackendError("num_candidates: the two-stage form needs the raw q and k")
    return float(p), float(temperature), two_stage


def sw_attention(a, b, v, *, p=2.0, temperature=1.0, mask=None, num_candidates=None, q=None, k=None,
                 backend="auto"):
    """``softmax_j(−‖a_i − b_j‖_p / T) V`` over allowed keys: ``a (B, Lq, F), b (B, Lk, F),
    v (B, Lk, dv) → (B, Lq, dv)``; a row with no allowed key gives 0.

    With ``num_candidates = C`` (and the raw ``q (B, Lq, d)``, ``k (B, Lk, d)``), only the ``C``
    allowed keys of largest ``⟨q_i, k_j⟩`` take part (two-stage form).
    """
    be = resolve_backend(backend, (a, b, v), SLICED_WASSERSTEIN, mask=mask)
    p, temperature, two_stage = _checked(p, temperature, num_candidates, b, q, k)
    if be == "cupy":
        return _cupy_attention(a, b, v, p, temperature, mask, num_candidates if two_stage else None, q, k)
    if be == "numpy":
        if two_stage:
            return _ref.two_stage_attention(q, k, a, b, v, p, temperature, int(num_candidates), mask)
        return _ref.attention(a, b, v, p, temperature, mask)
    from kernels.numba import sliced_wasserstein as _nb

    if two_stage:
        return _nb.two_stage_attention(q, k, a, b, v, p, temperature, int(num_candidates), mask)
    return _nb.attention(a, b, v, p, temperature, mask, BLOCK_Q, BLOCK_K)


def sw_weights(a, b, *, p=2.0, temperature=1.0, mask=None, num_candidates=None, q=None, k=None,
               backend="auto"):
    """The weights of :func:`sw_attention`, ``(B, Lq, Lk)``."""
    be = resolve_backend(backend, (a, b), SLICED_WASSERSTEIN, mask=mask)
    p, temperature, two_stage = _checked(p, temperature, num_candidates, b, q, k)
    if be == "cupy":  # for inspection: the reference on the host, CuPy in and out
        from kernels.gpu.host import via_host

        if two_stage:
            return via_host(_ref.two_stage_weights, q, k, a, b, p, temperature, int(num_candidates), mask)
        return via_host(_ref.weights, a, b, p, temperature, mask)
    if be == "numpy":
        if two_stage:
            return _ref.two_stage_weights(q, k, a, b, p, temperature, int(num_candidates), mask)
        return _ref.weights(a, b, p, temperature, mask)
    from kernels.numba import sliced_wasserstein as _nb

    if two_stage:
        return _nb.two_stage_weights(q, k, a, b, p, temperature, int(num_candidates), mask)
    return _nb.weights(a, b, p, temperature, mask)


def sw_partial(a, b, v, *, p=2.0, temperature=1.0, mask=None):
    """``(out (B, Lq, dv), lse (B, Lq))`` of the full path over one key shard (float64; the NumPy
    reference, blocked over keys, on every backend; CuPy arrays on host copies, CuPy in and out): see
    :func:`kernels.reference.sliced_wasserstein.partial`."""
    from kernels.gpu.host import via_host

    p, temperature, _ = _checked(p, temperature, None, b, None, None)
    return via_host(_ref.partial, a, b, v, p, temperature, mask)


def _cupy_attention(a, b, v, p, temperature, mask, num_candidates, q, k):
    """The full path on the GPU tile body (its sliced-Wasserstein score, ``kernels/gpu/flash_fwd.cu``);
    the two-stage form (top-C candidates per query) on the host, CuPy in and out."""
    if num_candidates is None:
        from kernels.gpu.flash import sw_partial as _gpu

        return _gpu("cuda", a, b, v, p, temperature, mask)[0].astype(v.dtype)
    from kernels.gpu.host import via_host

    return via_host(_ref.two_stage_attention, q, k, a, b, v, p, temperature, int(num_candidates), mask)
