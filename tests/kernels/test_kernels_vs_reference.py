"""Every Numba kernel against its NumPy reference, on random and adversarial inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels.reference import linear as lin

TOL = {np.float32: 3e-6, np.float64: 1e-12}


def _inputs(rng, B, lq, lk, d, dv, dtype, magnitude=1.0):
    q = (magnitude * rng.standard_normal((B, lq, d))).astype(dtype)
    k = (magnitude * rng.standard_normal((B, lk, d))).astype(dtype)
    v = rng.standard_normal((B, lk, dv)).astype(dtype)
    return q, k, v


def _close(a, b, dtype, ref_scale=1.0, logits=0.0):
    """Equal within ``10·TOL·scale`` plus the intrinsic error of rounding logits of size ``logits``:
    two correct kernels sum ``q·k`` in different orders, moving each logit (so each weight,
    relatively) by about ``eps·|logit|``."""
    slack = 4 * np.finfo(dtype).eps * logits
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype] * max(1.0, ref_scale) * 10 + slack)


def _logits(q, k):
    """Largest possible |scale·q·k| for these inputs."""
    return float(np.abs(q).sum(-1).max() * np.abs(k).max() / np.sqrt(q.shape[-1]))


cases = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "B": st.integers(1, 3),
    "lq": st.integers(1, 70),
    "lk": st.integers(1, 70),
    "d": st.integers(1, 20),
    "dv": st.integers(1, 9),
    "dtype": st.sampled_from([np.float32, np.float64]),
    "magnitude": st.sampled_from([0.1, 1.0, 6.0]),
    "masked": st.sampled_from(["none", "random", "batch", "rows_empty", "keys"]),
    "causal": st.booleans(),
    "offset": st.integers(-5, 5),
    "bq": st.integers(1, 40),
    "bk": st.integers(1, 40),
})


def _mask(rng, c):
    B, lq, lk = c["B"], c["lq"], c["lk"]
    kind = c["masked"]
    if kind == "none":
        return None
    if kind == "random":
        return rng.random((1, lq, lk)) > 0.4
    if kind == "batch":
        return rng.random((B, lq, lk)) > 0.4
    if kind == "keys":
        return rng.random((B, 1, lk)) > 0.4
    m = rng.random((B, lq, lk)) > 0.3
    m[:, ::3] = False  # every third query row sees nothing
    return m


def _case(c):
    """q, k, v and mask of a drawn case, from its seed."""
    rng = np.random.default_rng(c["seed"])
    q, k, v = _inputs(rng, c["B"], c["lq"], c["lk"], c["d"], c["dv"], c["dtype"], c["magnitude"])
    return q, k, v, _mask(rng, c)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_flash_numba_equals_reference(c):
    q, k, v, mask = _case(c)
    args = dict(mask=mask, causal=c["causal"], causal_offset=c["offset"], block_size=c["bk"], query_block_size=c["bq"])
    out_nb, lse_nb = kernels.flash_attention(q, k, v, backend="numba", **args)
    out_np, lse_np = kernels.flash_attention(q, k, v, backend="numpy", **args)
    dense = kernels.attention(q, k, v, mask=mask, causal=c["causal"], causal_offset=c["offset"], backend="numpy")
    assert out_nb.dtype == c["dtype"] and not np.isnan(out_nb).any()
    big = _logits(q, k) * float(np.abs(v).max())
    _close(out_nb, out_np, c["dtype"], logits=big)
    _close(out_np, dense, c["dtype"], logits=big)
    assert np.array_equal(np.isinf(lse_nb), np.isinf(lse_np))
    fin = np.isfinite(lse_np)
    _close(lse_nb[fin], lse_np[fin], c["dtype"], np.abs(lse_np[fin]).max(initial=1))
    assert np.all(out_nb[~fin] == 0)
    w_nb = kernels.flash_weights(q, k, backend="numba", **args)
    w_np = kernels.attention_weights(q, k, mask=mask, causal=c["causal"], causal_offset=c["offset"], backend="numpy")
    _close(w_nb, w_np, c["dtype"], logits=_logits(q, k))
    allowed = np.ones((c["B"], c["lq"], c["lk"]), bool) if mask is None else np.broadcast_to(mask, w_nb.shape)
    if c["causal"]:
        allowed = allowed & (np.arange(c["lk"])[None, :] <= np.arange(c["lq"])[:, None] + c["offset"])
    assert np.all(w_nb[~allowed] == 0)  # exactly zero, not tiny


@settings(max_examples=40, deadline=None)
@given(cases)
def test_dense_numba_equals_reference(c):
    q, k, v, mask = _case(c)
    args = dict(mask=mask, causal=c["causal"], causal_offset=c["offset"])
    big = _logits(q, k)
    _close(kernels.attention(q, k, v, backend="numba", **args), kernels.attention(q, k, v, backend="numpy", **args),
           c["dtype"], logits=big * float(np.abs(v).max()))
    _close(kernels.attention_weights(q, k, backend="numba", **args),
           kernels.attention_weights(q, k, backend="numpy", **args), c["dtype"], logits=big)


@settings(max_examples=40, deadline=None)
@given(cases, st.sampled_from(lin.FEATURE_KERNELS), st.integers(1, 40))
def test_linear_numba_equals_reference(c, kind, m):
    rng = np.random.default_rng(c["seed"])
    lk = c["lq"] if c["causal"] else c["lk"]
    q, k, v = _inputs(rng, c["B"], c["lq"], lk, c["d"], c["dv"], c["dtype"], min(c["magnitude"], 1.0))
    w = lin.random_features(m, c["d"], c["seed"], orthogonal=c["seed"] % 2 == 0)
    qf = lin.feature_map(q, w, kind, 1 / np.sqrt(c["d"]), True)
    kf = lin.feature_map(k, w, kind, 1 / np.sqrt(c["d"]), False)
    mask = None if c["masked"] in ("none", "rows_empty") else (rng.random((c["B"], 1, lk)) > 0.4)
    if c["masked"] == "random":
        mask = rng.random((1, c["lq"], lk)) > 0.4
    a = kernels.linear_attention(qf, kf, v, mask=mask, causal=c["causal"], backend="numba")
    b = kernels.linear_attention(qf, kf, v, mask=mask, causal=c["causal"], backend="numpy")
    assert not np.isnan(a).any()
    _close(a, b, c["dtype"], np.abs(b).max(initial=1))


def test_linear_causal_chunks_cross_boundaries(rng):
    # L spans several 256-row chunks, so the running prefix sums are exercised
    q, k, v = _inputs(rng, 2, 700, 700, 8, 3, np.float64)
    w = lin.random_features(32, 8, 0)
    qf, kf = lin.feature_map(q, w, "favor+", 0.3, True), lin.feature_map(k, w, "favor+", 0.3, False)
    a = kernels.linear_attention(qf, kf, v, causal=True, backend="numba")
    b = kernels.linear_attention(qf, kf, v, causal=True, backend="numpy")
    np.testing.assert_allclose(a, b, atol=1e-11)


@settings(max_examples=40, deadline=None)
@given(cases, st.integers(1, 20), st.integers(0, 6))
def test_local_global_numba_equals_reference(c, window, num_global):
    rng = np.random.default_rng(c["seed"])
    q, k, v = _inputs(rng, c["B"], c["lk"], c["lk"], c["d"], c["dv"], c["dtype"], c["magnitude"])
    mask = None if c["masked"] in ("none", "keys") else _mask(rng, {**c, "lq": c["lk"]})
    args = dict(window=window, num_global=num_global, mask=mask, causal=c["causal"])
    a = kernels.local_global_attention(q, k, v, backend="numba", **args)
    b = kernels.local_global_attention(q, k, v, backend="numpy", **args)
    _close(a, b, c["dtype"], logits=_logits(q, k) * float(np.abs(v).max()))


def test_local_global_positions_validated(rng):
    q, k, v = _inputs(rng, 1, 2, 5, 3, 2, np.float32)
    with pytest.raises(ValueError, match="positions"):
        kernels.local_global_attention(q, k, v, window=3, num_global=1, positions=[0, 5])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 1, 7, 1), (2, 1, 1, 5), (1, 300, 513, 4)])
def test_flash_adversarial_shapes(rng, shape, backend):
    B, lq, lk, d = shape
    q, k, v = _inputs(rng, B, lq, lk, d, 3, np.float32, magnitude=30.0)  # huge logits
    out, lse = kernels.flash_attention(q, k, v, backend=backend, block_size=128, query_block_size=64)
    ref = kernels.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), backend="numpy")
    assert np.isfinite(out).all() and np.isfinite(lse).all()
    np.testing.assert_allclose(out, ref, atol=1e-4)
