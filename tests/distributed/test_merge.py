"""The log-sum-exp merge against attention over all keys, written out here: any split of the keys,
any tree, fully masked shards and rows; and shard_partial of every shardable mechanism."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench
from workbench.distributed import merge_all, merge_partials, shardable
from workbench.errors import ConfigurationError


def softmax_attention(q, k, v, allowed, scale):
    """Dense definition in float64: rows with no allowed key give 0 and lse −∞."""
    s = np.where(allowed, scale * q @ k.T, -np.inf)
    m = s.max(1, keepdims=True)
    e = np.where(allowed, np.exp(s - np.where(np.isfinite(m), m, 0)), 0.0)
    tot = e.sum(1, keepdims=True)
    out = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0) @ v
    lse = np.where(tot[:, 0] > 0, np.log(np.where(tot[:, 0] > 0, tot[:, 0], 1)) + np.where(np.isfinite(m[:, 0]), m[:, 0], 0), -np.inf)
    return out, lse


def partial(q, k, v, allowed, scale):
    return softmax_attention(q, k, v, allowed, scale)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(2, 40), st.integers(1, 6), st.integers(0, 2**31 - 1), st.floats(0.0, 0.6))
def test_merging_any_split_equals_all_keys(lq, lk, n_shards, seed, p_masked):
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((lq, 5)), rng.standard_normal((lk, 5)), rng.standard_normal((lk, 3))
    allowed = rng.random((lq, lk)) >= p_masked
    allowed[0] = False  # a query that sees nothing
    want_out, want_lse = softmax_attention(q, k, v, allowed, 0.7)
    cuts = np.sort(rng.choice(np.arange(1, lk), size=min(n_shards - 1, lk - 1), replace=False))
    bounds = np.concatenate([[0], cuts, [lk]]).astype(int)
    parts = [partial(q, k[a:b], v[a:b], allowed[:, a:b], 0.7) for a, b in zip(bounds[:-1], bounds[1:])]
    out, lse = merge_all(parts)
    np.testing.assert_allclose(out, want_out, atol=1e-12)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want_lse))
    np.testing.assert_allclose(lse[np.isfinite(lse)], want_lse[np.isfinite(want_lse)], atol=1e-12)
    # a left-to-right chain gives the same as the tree
    chain = parts[0]
    for p in parts[1:]:
        chain = merge_partials(chain, p)
    np.testing.assert_allclose(chain[0], out, atol=1e-12)


def test_large_logits_do_not_overflow():
    q = np.array([[30.0, 0.0]])
    k = np.array([[30.0, 0.0], [-30.0, 0.0], [29.0, 0.0]])
    v = np.eye(3)
    want, _ = softmax_attention(q, k, v, np.ones((1, 3), bool), 1.0)
    out, _ = merge_all([partial(q, k[i:i + 1], v[i:i + 1], np.ones((1, 1), bool), 1.0) for i in range(3)])
    np.testing.assert_allclose(out, want, atol=1e-12)


#: Every shardable mechanism, plain and causal (linear shards only without causal masking).
SHARD_CASES = [(n, c) for n, why in shardable().items() if why is None for c in (False, True)
               if not c or (n != "linear" and "causal" in workbench.registry[n].parameters)]


@pytest.mark.parametrize("name,causal", SHARD_CASES)
def test_shard_partials_of_every_shardable_mechanism_merge_to_its_call(name, causal):
    rng = np.random.default_rng(1)
    positional = name == "local_global"  # query i sits at key position i: Lq == Lk
    lq, lk = (37, 37) if positional else (23, 37)
    q, k, v = (rng.standard_normal((2, L, 8)).astype(np.float32) for L in (lq, lk, lk))
    mask = rng.random((2, lq, lk)) > 0.3
    extra = {"num_heads": 2, "projections": True} if name == "multi_head" else {}
    if positional:  # a window narrower than the shards, so most shards are outside a block's halo
        extra = {"window": 7, "num_global_tokens": 2}
    if name == "linear":  # by key shards without causal masking or masks (tested below)
        mech = workbench.make(name)
        want = mech(q, k, v)
    elif not causal and "causal" not in workbench.registry[name].parameters:
        mech = workbench.make(name, **extra)
        want = mech(q, k, v, mask=mask)
    else:
        offset = {} if positional else {"causal_offset": lk - lq}
        mech = workbench.make(name, causal=causal, **offset, **extra)
        want = mech(q, k, v, mask=mask)
    for qa, qb in ((0, 10), (10, lq)):
        parts = [mech.shard_partial(q[:, qa:qb], k[:, a:b], v[:, a:b], query_offset=qa, key_offset=a,
                                    mask=None if name == "linear" else mask[:, qa:qb, a:b])
                 for a, b in ((0, 5), (5, 20), (20, 37))]
        out, _ = merge_all(parts)
        np.testing.assert_allclose(mech.shard_finish(out, 8, 8), want[:, qa:qb], atol=2e-6)


def test_the_others_refuse_with_a_reason():
    reasons = shardable()
    assert {n for n, why in reasons.items() if why is None} >= {"scaled_dot_product", "flash", "multi_head", "linear",
                                                                 "hyperbolic", "sliced_wasserstein", "local_global"}
    assert reasons["lorentz_cascade"] and "log-sum-exp" in reasons["lorentz_cascade"]
    x = np.ones((4, 8), np.float32)
    with pytest.raises(ConfigurationError, match="lorentz_cascade: cannot run by key shards"):
        workbench.make("lorentz_cascade").shard_partial(x, x, x)
    with pytest.raises(ConfigurationError, match="hyperbolic: by key shards only with aggregation"):
        workbench.make("hyperbolic", aggregation="frechet").shard_partial(x, x, x)
    with pytest.raises(ConfigurationError, match="sliced_wasserstein: by key shards only on the full path"):
        workbench.make("sliced_wasserstein", num_candidates=4).shard_partial(x, x, x)
    with pytest.raises(ConfigurationError, match="key_offset"):
        workbench.make("flash").shard_partial(x, x, x, key_offset=-1)


@pytest.mark.parametrize("kernel", ["favor+", "relu", "elu+1"])
def test_linear_key_statistics_merge_exactly(kernel):
    """FAVOR+ stabilises each shard's key features by its own maximum: the shard's lse carries it."""
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, L, 16)).astype(np.float32) for L in (50, 97, 97))
    k[:, 40:] *= 3  # shards with very different feature scales
    m = workbench.make("linear", kernel=kernel)
    out, _ = merge_all([m.shard_partial(q, k[:, a:b], v[:, a:b], key_offset=a) for a, b in ((0, 30), (30, 31), (31, 97))])
    np.testing.assert_allclose(out, m(q, k, v), atol=2e-6)
    with pytest.raises(ConfigurationError, match="linear: by key shards only without causal"):
        workbench.make("linear", causal=True).shard_partial(q, q, q)
    with pytest.raises(ConfigurationError, match="linear: by key shards only"):
        m.shard_partial(q, k, v, mask=np.ones((50, 97), bool))


@pytest.mark.parametrize("aggregation", ["einstein", "tangent"])
def test_hyperbolic_means_merge_exactly_near_the_boundary(aggregation):
    """Einstein midpoint and tangent mean are ratios of weighted sums: shards merge by their lse,
    also with points near the ball's boundary and masks, in key chunks smaller than a shard."""
    from kernels.reference.hyperbolic import partial

    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, L, 6)).astype(np.float32) for L in (20, 45, 45))
    v /= np.linalg.norm(v, axis=-1, keepdims=True) * 1.001  # values just inside the unit ball
    mask = rng.random((2, 20, 45)) > 0.4
    m = workbench.make("hyperbolic", aggregation=aggregation, c=1.0, temperature=0.7)
    parts = [m.shard_partial(q, k[:, a:b], v[:, a:b], mask=mask[:, :, a:b], key_offset=a) for a, b in ((0, 7), (7, 45))]
    out = m.shard_finish(merge_all(parts)[0], 6, 6)
    np.testing.assert_allclose(out, m(q, k, v, mask=mask), atol=3e-5)
    whole = partial(q, k, v, 1.0, 0.7, aggregation, mask, block=4)  # chunked inside one shard
    np.testing.assert_allclose(whole[0], merge_all(parts)[0], atol=1e-9)
