"""Each core mechanism against its mathematical definition, written out here in float64 loops."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench


def softmax_attention_row(qi, K, V, scale, allowed):
    """The definition for one query: explicit loops, float64, exact zeros when nothing is allowed."""
    logits = [scale * float(np.dot(qi, K[j])) for j in range(len(K)) if allowed[j]]
    if not logits:
        return np.zeros(V.shape[1]), np.zeros(len(K))
    m = max(logits)
    w = np.zeros(len(K))
    idx = [j for j in range(len(K)) if allowed[j]]
    total = sum(math.exp(s - m) for s in logits)
    for j, s in zip(idx, logits):
        w[j] = math.exp(s - m) / total
    return w @ V, w


def definition(q, k, v, scale, allowed):
    """``(Lq, d), (Lk, d), (Lk, dv), (Lq, Lk) → (Lq, dv), (Lq, Lk)``."""
    rows = [softmax_attention_row(q[i].astype(np.float64), k.astype(np.float64), v.astype(np.float64), scale, allowed[i])
            for i in range(len(q))]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


@pytest.fixture
def data(rng):
    q = rng.standard_normal((3, 37, 16))
    k = rng.standard_normal((3, 45, 16))
    v = rng.standard_normal((3, 45, 6))
    return q, k, v


@pytest.mark.parametrize("causal,offset", [(False, 0), (True, 0), (True, 8), (True, -3)])
@pytest.mark.parametrize("name", ["scaled_dot_product", "flash"])
def test_exact_attention_matches_definition(name, causal, offset, data, rng, backend):
    q, k, v = data
    mask = rng.random((3, 37, 45)) > 0.25
    mask[1, 4] = False  # a fully masked row
    mech = workbench.make(name, causal=causal, causal_offset=offset, backend=backend)
    out, w = mech(q, k, v, mask=mask), mech.weights(q, k, mask=mask)
    for b in range(3):
        allowed = mask[b] & ((np.arange(45)[None] <= np.arange(37)[:, None] + offset) if causal else True)
        ref_out, ref_w = definition(q[b], k[b], v[b], 1 / 4, allowed)
        np.testing.assert_allclose(out[b], ref_out, atol=1e-12)
        np.testing.assert_allclose(w[b], ref_w, atol=1e-12)
    assert np.all(out[1, 4] == 0) and np.all(w[1, 4] == 0)


def test_scale_parameter_and_shift_invariance(data):
    q, k, v = data
    mech = workbench.make("scaled_dot_product", scale=0.7)
    ref, _ = definition(q[0], k[0], v[0], 0.7, np.ones((37, 45), bool))
    np.testing.assert_allclose(mech(q[0], k[0], v[0]), ref, atol=1e-12)
    # adding the same vector c to every key adds s·q·c to every logit of a row: no change
    shifted = k[0] + np.linspace(-2, 2, 16)
    np.testing.assert_allclose(mech(q[0], shifted, v[0]), mech(q[0], k[0], v[0]), atol=1e-12)


def test_flash_float32_error_at_most_twice_a_plain_float32_implementation(rng):
    """The flash-attention rule: the fast kernel's error vs float64 ≤ ~2× a plain same-precision one."""
    q, k, v = (rng.standard_normal((2, 1000, 64)).astype(np.float32) * s for s in (2.0, 2.0, 1.0))
    exact = workbench.make("scaled_dot_product", backend="numpy")(q.astype(np.float64), k.astype(np.float64),
                                                                     v.astype(np.float64))
    s = (q @ k.transpose(0, 2, 1)) * np.float32(1 / 8)  # plain float32: scores, softmax, product
    p = np.exp(s - s.max(-1, keepdims=True))
    plain = (p / p.sum(-1, keepdims=True)) @ v
    plain_err = np.abs(plain - exact).max()
    for backend in ("numpy", "numba"):
        for block in (64, 512):
            out = workbench.make("flash", block_size=block, backend=backend)(q, k, v)
            assert out.dtype == np.float32
            assert np.abs(out - exact).max() <= 2 * plain_err + 1e-7, (backend, block)


def test_flash_lse_is_the_log_partition(data, backend):
    q, k, v = data
    out, lse = workbench.make("flash", block_size=7, backend=backend)(q, k, v, return_lse=True)
    s = q @ k.transpose(0, 2, 1) / 4
    ref = np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1)) + s.max(-1)
    np.testing.assert_allclose(lse, ref, atol=1e-12)
    assert lse.shape == (3, 37)


def test_flash_single_query_with_position_is_causal(rng, backend):
    # the seed's single-query flash with the query at position p sees keys 0..p only
    k, v = rng.standard_normal((20, 8)), rng.standard_normal((20, 3))
    q = rng.standard_normal(8)
    out = workbench.make("flash", causal=True, causal_offset=11, block_size=4, backend=backend)(q, k, v)
    allowed = np.arange(20) <= 11
    ref, _ = softmax_attention_row(q, k, v, 1 / math.sqrt(8), allowed)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def _multi_head_definition(q, k, v, h, mask=None, W=None):
    if W is not None:
        q, k, v = q @ W["W_q"], k @ W["W_k"], v @ W["W_v"]
    d, dv = q.shape[-1], v.shape[-1]
    heads = []
    for i in range(h):
        qs, ks = q[:, i * d // h:(i + 1) * d // h], k[:, i * d // h:(i + 1) * d // h]
        vs = v[:, i * dv // h:(i + 1) * dv // h]
        allowed = np.ones((len(q), len(k)), bool) if mask is None else mask
        heads.append(definition(qs, ks, vs, 1 / math.sqrt(d // h), allowed)[0])
    out = np.concatenate(heads, axis=-1)
    return out @ W["W_o"] if W is not None else out


@pytest.mark.parametrize("projections", [False, True])
def test_multi_head_matches_definition(data, rng, backend, projections):
    q, k, v = data
    mask = rng.random((37, 45)) > 0.3
    mech = workbench.make("multi_head", num_heads=2, projections=projections, seed=3, backend=backend)
    out = mech(q, k, v, mask=mask)
    W = mech.projection_weights(16, 6, np.float64) if projections else None
    for b in range(3):
        np.testing.assert_allclose(out[b], _multi_head_definition(q[b], k[b], v[b], 2, mask, W), atol=1e-12)


def test_multi_head_with_one_head_is_scaled_dot_product(data):
    q, k, v = data
    np.testing.assert_allclose(workbench.make("multi_head", num_heads=1)(q, k, v),
                               workbench.make("scaled_dot_product")(q, k, v), atol=1e-12)


def test_multi_head_weights_average_the_heads(data):
    q, k, _ = data
    mech = workbench.make("multi_head", num_heads=4)
    per_head = mech.head_weights(q, k)
    assert per_head.shape == (3, 4, 37, 45)
    np.testing.assert_allclose(mech.weights(q, k), per_head.mean(axis=1), atol=1e-12)
    q4 = q[0].reshape(37, 4, 4)[:, 1]
    k4 = k[0].reshape(45, 4, 4)[:, 1]
    _, w1 = definition(q4, k4, np.zeros((45, 1)), 0.5, np.ones((37, 45), bool))
    np.testing.assert_allclose(per_head[0, 1], w1, atol=1e-12)


def test_projections_are_seeded(data):
    q, k, v = data
    a = workbench.make("multi_head", num_heads=2, projections=True, seed=1)(q, k, v)
    b = workbench.make("multi_head", num_heads=2, projections=True, seed=1)(q, k, v)
    c = workbench.make("multi_head", num_heads=2, projections=True, seed=2)(q, k, v)
    assert np.array_equal(a, b) and not np.allclose(a, c)


# -- linear attention ------------------------------------------------------------------------

def test_favor_features_estimate_the_softmax_kernel(rng):
    """E[φ(q)·φ(k)] = exp(s q·k): Monte-Carlo check of the FAVOR+ feature map itself."""
    from kernels.reference.linear import feature_map, random_features

    d, s = 8, 1 / math.sqrt(8)
    q, k = rng.standard_normal((1, 5, d)) * 0.7, rng.standard_normal((1, 5, d)) * 0.7
    W = random_features(200_000, d, seed=5, orthogonal=False)
    # undo the stabilisers, which cancel in attention but not in the raw kernel
    xs_q, xs_k = q * math.sqrt(s), k * math.sqrt(s)
    phi_q = np.exp(xs_q @ W.T - 0.5 * (xs_q ** 2).sum(-1, keepdims=True)) / math.sqrt(len(W))
    phi_k = np.exp(xs_k @ W.T - 0.5 * (xs_k ** 2).sum(-1, keepdims=True)) / math.sqrt(len(W))
    est = phi_q[0] @ phi_k[0].T
    exact = np.exp(s * q[0] @ k[0].T)
    np.testing.assert_allclose(est, exact, rtol=0.05)
    # and the library's map equals this one up to the per-row / per-batch stabiliser
    lib_q = feature_map(q, W, "favor+", s, True)
    ratio = lib_q / phi_q
    np.testing.assert_allclose(ratio, ratio[..., :1] * np.ones_like(ratio), rtol=1e-9)


def test_favor_plus_converges_to_softmax_attention(rng):
    q, k, v = (rng.standard_normal((1, 64, 16)) * 0.6 for _ in range(3))
    exact = workbench.make("scaled_dot_product")(q, k, v)
    errors = []
    for m in (16, 256, 4096):
        trials = [np.abs(workbench.make("linear", num_features=m, seed=s)(q, k, v) - exact).mean() for s in range(4)]
        errors.append(np.mean(trials))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < errors[0] / 6  # ~1/sqrt(m): 16x more features, ~4x less error expected, at least


def test_orthogonal_features_reduce_error(rng):
    q, k, v = (rng.standard_normal((1, 64, 16)) * 0.6 for _ in range(3))
    exact = workbench.make("scaled_dot_product")(q, k, v)
    err = {o: np.mean([np.abs(workbench.make("linear", num_features=64, orthogonal=o, seed=s)(q, k, v) - exact).mean()
                       for s in range(12)]) for o in (False, True)}
    assert err[True] < err[False]


@pytest.mark.parametrize("kernel", ["favor+", "relu", "elu+1"])
@pytest.mark.parametrize("causal", [False, True])
def test_linear_matches_its_definition(rng, kernel, causal, backend):
    q, k, v = (rng.standard_normal((2, 30, 8)) for _ in range(3))
    mech = workbench.make("linear", kernel=kernel, num_features=24, causal=causal, seed=9, backend=backend)
    W = mech.features(8)
    xs_q, xs_k = q / 8 ** 0.25, k / 8 ** 0.25
    zq, zk = xs_q @ W.T, xs_k @ W.T
    if kernel == "favor+":
        fq = np.exp(zq - 0.5 * (xs_q ** 2).sum(-1, keepdims=True))
        fk = np.exp(zk - 0.5 * (xs_k ** 2).sum(-1, keepdims=True))
    elif kernel == "relu":
        fq, fk = np.maximum(zq, 0), np.maximum(zk, 0)
    else:
        fq, fk = np.where(zq > 0, zq + 1, np.exp(zq)), np.where(zk > 0, zk + 1, np.exp(zk))
    out = mech(q, k, v)
    for b in range(2):
        for i in range(30):
            js = range(i + 1) if causal else range(30)
            num = sum(float(fq[b, i] @ fk[b, j]) * v[b, j] for j in js)
            den = sum(float(fq[b, i] @ fk[b, j]) for j in js)
            ref = num / den if den > 0 else np.zeros(8)
            np.testing.assert_allclose(out[b, i], ref, atol=1e-10)
    assert np.all(mech.weights(q, k) >= 0)


def test_linear_redraw_changes_features_reproducibly(rng):
    q, k, v = (rng.standard_normal((1, 10, 8)) for _ in range(3))
    a, b = workbench.make("linear", redraw=True, seed=1), workbench.make("linear", redraw=True, seed=1)
    first, second = a(q, k, v), a(q, k, v)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, b(q, k, v))
    fixed = workbench.make("linear", seed=1)
    np.testing.assert_array_equal(fixed(q, k, v), fixed(q, k, v))


def test_linear_time_is_linear_in_memory_shape(rng):
    # no L×L intermediate: a 20k-long sequence with 32 features stays small
    q = rng.standard_normal((1, 20_000, 16)).astype(np.float32)
    out = workbench.make("linear", num_features=32, causal=True)(q, q, q[..., :4])
    assert out.shape == (1, 20_000, 4) and np.isfinite(out).all()


# -- local-global ------------------------------------------------------------------------------

def _longformer_allowed(n, w, g, causal=False):
    allowed = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            allowed[i, j] = abs(i - j) <= w // 2 or j < g or i < g
            if causal and j > i:
                allowed[i, j] = False
    return allowed


@pytest.mark.parametrize("w,g,causal", [(1, 0, False), (5, 2, False), (8, 1, True), (100, 3, False)])
def test_local_global_matches_longformer_pattern(rng, w, g, causal, backend):
    q, k, v = (rng.standard_normal((2, 40, 8)) for _ in range(3))
    mech = workbench.make("local_global", window=w, num_global_tokens=g, causal=causal, backend=backend)
    out, weights = mech(q, k, v), mech.weights(q, k)
    allowed = _longformer_allowed(40, w, g, causal)
    for b in range(2):
        ref_out, ref_w = definition(q[b], k[b], v[b], 1 / math.sqrt(8), allowed)
        np.testing.assert_allclose(out[b], ref_out, atol=1e-12)
        np.testing.assert_allclose(weights[b], ref_w, atol=1e-12)


def test_local_global_single_query_is_the_seed_form(rng, backend):
    # seed: query at p = n // 2 attends the first g keys then the window around p
    n, w, g = 100, 8, 2
    k, v, q = rng.standard_normal((n, 16)), rng.standard_normal((n, 5)), rng.standard_normal(16)
    out = workbench.make("local_global", window=w, num_global_tokens=g, backend=backend)(q, k, v)
    p = n // 2
    allowed = np.zeros(n, bool)
    allowed[:g] = True
    allowed[max(0, p - w // 2):min(n, p + w // 2 + 1)] = True
    ref, _ = softmax_attention_row(q, k, v, 1 / 4, allowed)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    assert out.shape == (5,)
