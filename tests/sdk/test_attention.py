"""The built attention: causality through a mask where the mechanism has no causal parameter,
inverted attention-weight dropout in training mode only, training mode reaching MoE's jitter,
and the declared width."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ShapeError
from workbench.sdk import flash, hyperbolic, local_global, moe, multi_head, scaled_dot

DIM = 24


@pytest.fixture
def qkv(rng):
    return tuple((rng.standard_normal((2, 6, DIM)) * 0.3).astype(np.float32) for _ in range(3))


# -- causal for mechanisms without a causal parameter -------------------------------------------------------------
@pytest.mark.parametrize("builder", [hyperbolic(DIM, -1.0), moe(DIM, 2, 1).expert_capacity(100.0)],
                         ids=["hyperbolic", "moe"])
def test_causal_through_a_mask(builder, qkv):
    q, k, v = qkv
    built = builder.causal(True).backend("numpy").build()
    tril = np.tril(np.ones((6, 6), dtype=bool))
    direct = workbench.make(built.name, **built.params())
    np.testing.assert_array_equal(built(q, k, v), direct(q, k, v, mask=tril))
    w = built.weights(q, k)
    assert np.all(w[..., ~tril] == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    # combined with a user mask
    user = np.ones((6, 6), dtype=bool)
    user[:, 0] = False
    user[0, 0] = True
    np.testing.assert_array_equal(built(q, k, v, mask=user), direct(q, k, v, mask=tril & user))
    # one query sits at position 0 (the mechanisms' causal_offset = 0): it sees key 0 only
    w1 = built.weights(q[0, 3], k[0])
    assert w1[0] == pytest.approx(1.0) and not w1[1:].any()


# -- dropout ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", [scaled_dot(DIM), flash(DIM, 4), local_global(DIM, 4), multi_head(DIM, 3)],
                         ids=["scaled_dot", "flash", "local_global", "multi_head"])
def test_dropout_is_inverted_weight_dropout_in_training_only(builder, qkv):
    q, k, _ = qkv
    p = 0.25
    attn = builder.dropout(p).backend("numpy").build()
    eye = np.eye(6, dtype=np.float32)  # V = I exposes the dropped weights: out = (W ⊙ D/(1−p)) I
    assert not attn.training
    np.testing.assert_array_equal(attn(q, k, eye), attn.mechanism(q, k, eye))  # eval: no dropout
    attn.train()
    if attn.kind == "multi_head":
        hw = attn.mechanism.head_weights(q, k)  # (2, h, 6, 6); V = I: output column j comes from head j // 2
        w = np.stack([hw[:, j // 2, :, j] for j in range(6)], axis=-1)
    else:
        w = attn.weights(q, k)
    outs = [attn(q, k, eye) for _ in range(300)]
    for out in outs[:20]:
        dropped = out == 0
        np.testing.assert_allclose(out[~dropped], w[~dropped] / (1 - p), rtol=1e-5)
    frac = np.mean([o[w > 0] == 0 for o in outs])  # local_global: zero weights outside the window
    assert abs(frac - p) < 0.03
    np.testing.assert_allclose(np.mean(outs, axis=0), w, atol=0.06)  # unbiased
    assert not np.array_equal(outs[0], outs[1])


def test_dropout_is_seeded_and_single_query_works(qkv):
    q, k, v = qkv
    a1 = multi_head(DIM, 4).dropout(0.5).seed(9).backend("numpy").build().train()
    a2 = multi_head(DIM, 4).dropout(0.5).seed(9).backend("numpy").build().train()
    for _ in range(3):
        np.testing.assert_array_equal(a1(q, k, v), a2(q, k, v))
    one = a1(q[0, 2], k[0], v[0])
    assert one.shape == (DIM,) and np.isfinite(one).all()
    full = multi_head(DIM, 4).dropout(1.0).backend("numpy").build().train()
    assert not full(q, k, v).any()


def test_moe_training_mode_turns_on_jitter(qkv):
    q, k, v = qkv
    attn = moe(DIM, 4, 2).jitter_noise(0.9).backend("numpy").build()
    ev = attn(q, k, v)
    assert attn.train().mechanism.training is True
    assert not np.allclose(attn(q, k, v), ev)
    assert attn.eval().mechanism.training is False
    np.testing.assert_array_equal(attn(q, k, v), ev)



def test_width_must_match_dim(qkv):
    q, k, v = qkv
    attn = scaled_dot(DIM + 1).build()
    with pytest.raises(ShapeError, match="q"):
        attn(q, k, v)
    with pytest.raises(ShapeError, match="k"):
        scaled_dot(DIM).build()(q, k[..., :4], v)
