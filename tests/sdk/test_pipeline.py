"""Pipeline stages against hand-written NumPy: LayerNorm, RMSNorm, BatchNorm, dropout, residual
order, custom functions, the two transformer blocks and nested blocks."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, NumericalError, ShapeError
from workbench.sdk import (
    AttentionPipeline,
    NormType,
    multi_head,
    prenorm_transformer_block,
    scaled_dot,
    transformer_block,
)

D = 8


# -- hand-written references (float64 loops over rows) ------------------------------------------------------------
def ln_ref(x, eps=1e-5):
    out = np.empty_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        row = [float(t) for t in x[idx]]
        mu = sum(row) / len(row)
        var = sum((t - mu) ** 2 for t in row) / len(row)
        out[idx] = [(t - mu) / math.sqrt(var + eps) for t in row]
    return out


def rms_ref(x, eps=1e-6):
    out = np.empty_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        row = [float(t) for t in x[idx]]
        r = math.sqrt(sum(t * t for t in row) / len(row) + eps)
        out[idx] = [t / r for t in row]
    return out


def bn_ref(x, eps=1e-5):
    rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
    out = np.empty_like(rows)
    for f in range(rows.shape[1]):
        col = [float(t) for t in rows[:, f]]
        mu = sum(col) / len(col)
        var = sum((t - mu) ** 2 for t in col) / len(col)
        out[:, f] = [(t - mu) / math.sqrt(var + eps) for t in col]
    return out.reshape(x.shape)


def sdpa_ref(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


@pytest.fixture
def qkv(rng):
    return rng.standard_normal((2, 5, D)), rng.standard_normal((2, 7, D)), rng.standard_normal((2, 7, D))


def sdp():
    return scaled_dot(D).backend("numpy").build()


# -- single stages ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, ref", [("layer", ln_ref), (NormType.RMSNorm, rms_ref), ("BatchNorm", bn_ref)])
def test_norm_stage_equals_reference(kind, ref, qkv):
    q, k, v = qkv
    x = q * 3 + 1
    np.testing.assert_allclose(AttentionPipeline().add_norm(kind).run(x, k, v), ref(x), rtol=1e-12, atol=1e-12)


def test_norm_eps_and_float32(qkv):
    q, k, v = qkv
    out = AttentionPipeline().add_norm("layer", eps=0.5).run(q.astype(np.float32), k, v)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ln_ref(q, eps=0.5), rtol=1e-5, atol=1e-6)


def test_batch_norm_needs_a_batch(qkv):
    _, k, v = qkv
    with pytest.raises(ShapeError, match="BatchNorm"):
        AttentionPipeline().add_norm("batch").run(np.ones(D), k[0], v[0])


def test_attention_stage_runs_the_mechanism(qkv):
    q, k, v = qkv
    np.testing.assert_allclose(AttentionPipeline().add_attention(sdp()).run(q, k, v), sdpa_ref(q, k, v), rtol=1e-10)
    mech = workbench.make("scaled_dot_product", backend="numpy")  # a bare mechanism works too
    np.testing.assert_allclose(AttentionPipeline().add_attention(mech).run(q, k, v), sdpa_ref(q, k, v), rtol=1e-10)


def test_mask_reaches_attention(qkv):
    q, k, v = qkv
    mask = np.zeros((5, 7), dtype=bool)
    mask[:, 2] = True  # every query sees key 2 only
    out = AttentionPipeline().add_attention(sdp()).run(q, k, v, mask=mask)
    np.testing.assert_allclose(out, np.broadcast_to(v[:, 2:3], out.shape), rtol=1e-12)


def test_custom_stage(qkv):
    q, k, v = qkv
    out = AttentionPipeline().add_custom(lambda x: 2 * x + 1).add_attention(sdp()).run(q, k, v)
    np.testing.assert_allclose(out, sdpa_ref(2 * q + 1, k, v), rtol=1e-10)


def test_dropout_stage_training_only_and_seeded(qkv):
    q, k, v = qkv
    p = AttentionPipeline(seed=4).add_dropout(0.5)
    np.testing.assert_array_equal(p.run(q, k, v), q)  # eval mode: identity
    p.train()
    out = p.run(q, k, v)
    kept = out != 0
    np.testing.assert_allclose(out[kept], q[kept] / 0.5)
    assert 0.2 < kept.mean() < 0.8
    again = AttentionPipeline(seed=4).add_dropout(0.5)
    again.run(q, k, v)
    np.testing.assert_array_equal(again.train().run(q, k, v), out)  # the n-th run of a seed is reproducible
    assert not np.array_equal(again.run(q, k, v), out)  # the next run draws a new mask
    assert not AttentionPipeline().add_dropout(1.0).train().run(q, k, v).any()


# -- residual order and blocks ------------------------------------------------------------------------------------
def test_post_norm_block(qkv):
    q, k, v = qkv
    out = transformer_block(sdp(), 0.1).run(q, k, v)
    np.testing.assert_allclose(out, ln_ref(q + sdpa_ref(q, k, v)), rtol=1e-9, atol=1e-10)


def test_pre_norm_block(qkv):
    q, k, v = qkv
    out = prenorm_transformer_block(sdp(), 0.1).run(q, k, v)
    np.testing.assert_allclose(out, q + sdpa_ref(ln_ref(q), k, v), rtol=1e-9, atol=1e-10)


def test_readme_pipeline_order(qkv):
    """LayerNorm → attention → dropout → residual → RMSNorm = RMS(x + Attn(LN(x))) in eval mode."""
    q, k, v = qkv
    p = (AttentionPipeline().add_norm(NormType.LayerNorm).add_attention(sdp()).add_dropout(0.1)
         .add_residual().add_norm(NormType.RMSNorm))
    np.testing.assert_allclose(p.run(q, k, v), rms_ref(q + sdpa_ref(ln_ref(q), k, v)), rtol=1e-9, atol=1e-10)


def test_residual_after_norm_following_attention(qkv):
    """attention → LayerNorm → residual = LN(Attn(x)) + x (the residual adds the block input)."""
    q, k, v = qkv
    p = AttentionPipeline().add_attention(sdp()).add_norm("layer").add_residual()
    np.testing.assert_allclose(p.run(q, k, v), ln_ref(sdpa_ref(q, k, v)) + q, rtol=1e-9, atol=1e-10)


def test_two_attention_stages_residual_refers_to_the_latest(qkv):
    q, k, v = qkv
    p = AttentionPipeline().add_attention(sdp()).add_custom(lambda x: x * 2).add_attention(sdp()).add_residual()
    h = 2 * sdpa_ref(q, k, v)
    np.testing.assert_allclose(p.run(q, k, v), h + sdpa_ref(h, k, v), rtol=1e-9, atol=1e-10)


def test_stacked_blocks(qkv):
    q, k, v = qkv
    a = sdp()
    pre = AttentionPipeline().add_block(prenorm_transformer_block(a)).add_block(prenorm_transformer_block(a))
    x1 = q + sdpa_ref(ln_ref(q), k, v)
    np.testing.assert_allclose(pre.run(q, k, v), x1 + sdpa_ref(ln_ref(x1), k, v), rtol=1e-9, atol=1e-10)
    post = AttentionPipeline().add_block(transformer_block(a)).add_block(transformer_block(a))
    y1 = ln_ref(q + sdpa_ref(q, k, v))
    np.testing.assert_allclose(post.run(q, k, v), ln_ref(y1 + sdpa_ref(y1, k, v)), rtol=1e-9, atol=1e-9)
    assert len(post) == 2 and "block" in repr(post)


def test_train_reaches_attention_stages(qkv):
    q, k, v = qkv
    attn = multi_head(D, 2).dropout(0.5).backend("numpy").build()
    p = AttentionPipeline().add_block(prenorm_transformer_block(attn, 0.0))
    eval_out = p.run(q, k, v)
    p.train()
    assert attn.training
    assert not np.allclose(p.run(q, k, v), eval_out)
    p.eval()
    assert not attn.training
    np.testing.assert_array_equal(p.run(q, k, v), eval_out)


def test_single_query_vector(qkv):
    _, k, v = qkv
    query = np.full(D, 0.5)
    out = transformer_block(sdp()).run(query, k[0], v[0])
    assert out.shape == (D,)
    np.testing.assert_allclose(out, ln_ref((query + sdpa_ref(query[None], k[0], v[0])[0])[None])[0], rtol=1e-9)


# -- refusals -----------------------------------------------------------------------------------------------------
def test_invalid_stages():
    with pytest.raises(ConfigurationError, match="residual"):
        AttentionPipeline().add_norm("layer").add_residual()
    with pytest.raises(ConfigurationError, match="norm"):
        AttentionPipeline().add_norm("group")
    with pytest.raises(ConfigurationError, match="eps"):
        AttentionPipeline().add_norm("rms", eps=0.0)
    with pytest.raises(ConfigurationError, match="p"):
        AttentionPipeline().add_dropout(1.5)
    with pytest.raises(ConfigurationError, match="attention"):
        AttentionPipeline().add_attention("scaled_dot_product")
    with pytest.raises(ConfigurationError, match="build"):
        AttentionPipeline().add_attention(scaled_dot(D))
    with pytest.raises(ConfigurationError, match="fn"):
        AttentionPipeline().add_custom(3)
    with pytest.raises(ConfigurationError, match="seed"):
        AttentionPipeline(seed=-2)


def test_invalid_runs(qkv):
    q, k, v = qkv
    narrow = AttentionPipeline().add_attention(sdp()).add_residual()
    with pytest.raises(ShapeError, match="residual"):
        narrow.run(q, k, v[..., :4])
    with pytest.raises(ConfigurationError, match="fn"):
        AttentionPipeline().add_custom(lambda x: "text").run(q, k, v)
    with pytest.raises(NumericalError, match="fn"):
        AttentionPipeline().add_custom(lambda x: np.full_like(x, np.inf)).run(q, k, v)
    bad = q.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(NumericalError, match="q"):
        AttentionPipeline().run(bad, k, v)
