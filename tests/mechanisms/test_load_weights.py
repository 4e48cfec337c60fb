"""Trained weights in and out (``load_weights``/``state_dict``): multi_head against multi-head
attention written out here in each original's own convention (PyTorch ``nn.MultiheadAttention``,
Hugging Face BERT self-attention: ``y = x Wᵀ + b``), against PyTorch itself where it is installed,
the sources (dict, state_dict, .npz, .safetensors) and every refusal naming its key."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, DataError, ShapeError


def mha_definition(q, k, v, Wq, bq, Wk, bk, Wv, bv, Wo, bo, h):
    """Multi-head attention with ``y = x Wᵀ + b`` layers, head by head, float64 (one sequence)."""
    Q, K, V = q @ Wq.T + bq, k @ Wk.T + bk, v @ Wv.T + bv
    e, ev = Q.shape[1], V.shape[1]
    heads = []
    for i in range(h):
        qs, ks, vs = Q[:, i * e // h:(i + 1) * e // h], K[:, i * e // h:(i + 1) * e // h], V[:, i * ev // h:(i + 1) * ev // h]
        s = qs @ ks.T / math.sqrt(e // h)
        p = np.exp(s - s.max(1, keepdims=True))
        heads.append((p / p.sum(1, keepdims=True)) @ vs)
    return np.concatenate(heads, 1) @ Wo.T + bo


def torch_mha_state(rng, E, bias=True):
    sd = {"in_proj_weight": rng.standard_normal((3 * E, E)) / math.sqrt(E),
          "out_proj.weight": rng.standard_normal((E, E)) / math.sqrt(E)}
    if bias:
        sd["in_proj_bias"] = rng.standard_normal(3 * E)
        sd["out_proj.bias"] = rng.standard_normal(E)
    return sd


def test_torch_mha_map_equals_the_definition():
    rng = np.random.default_rng(0)
    E, h, B, lq, lk = 12, 3, 2, 5, 7
    sd = torch_mha_state(rng, E)
    q, k, v = rng.standard_normal((B, lq, E)), rng.standard_normal((B, lk, E)), rng.standard_normal((B, lk, E))
    m = workbench.make("multi_head", num_heads=h).load_weights(sd, key_map="torch_mha")
    assert m.projections and m.weights_loaded
    out = m(q, k, v)
    W, b = sd["in_proj_weight"], sd["in_proj_bias"]
    for i in range(B):
        want = mha_definition(q[i], k[i], v[i], W[:E], b[:E], W[E:2 * E], b[E:2 * E], W[2 * E:], b[2 * E:],
                              sd["out_proj.weight"], sd["out_proj.bias"], h)
        np.testing.assert_allclose(out[i], want, atol=1e-10)


def test_torch_mha_separate_projections_and_no_bias():
    """``vdim`` ≠ E: PyTorch stores q/k/v_proj_weight separately; without bias nothing is added. q and
    k share one width (SDPA shapes), so a ``kdim`` ≠ E is refused at the call, naming k."""
    rng = np.random.default_rng(1)
    E, vd, h = 8, 3, 2
    sd = {"q_proj_weight": rng.standard_normal((E, E)), "k_proj_weight": rng.standard_normal((E, E)),
          "v_proj_weight": rng.standard_normal((E, vd)), "out_proj.weight": rng.standard_normal((E, E))}
    m = workbench.make("multi_head", num_heads=h).load_weights(sd, key_map="torch_mha")
    q, k, v = rng.standard_normal((4, E)), rng.standard_normal((6, E)), rng.standard_normal((6, vd))
    z = np.zeros(E)
    want = mha_definition(q, k, v, sd["q_proj_weight"], z, sd["k_proj_weight"], z, sd["v_proj_weight"], z,
                          sd["out_proj.weight"], z, h)
    np.testing.assert_allclose(m(q, k, v), want, atol=1e-10)
    m.load_weights({**sd, "k_proj_weight": rng.standard_normal((E, 5))}, key_map="torch_mha")
    with pytest.raises(ShapeError, match="k: width 8"):
        m(q, k, v)


def test_equals_torch_multihead_attention():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    E, h = 32, 4
    ref = torch.nn.MultiheadAttention(E, h, batch_first=True)
    with torch.no_grad():
        ref.in_proj_bias.normal_()
        ref.out_proj.bias.normal_()
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, L, E)).astype(np.float32) for L in (9, 11, 11))
    with torch.no_grad():
        want, want_w = ref(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    m = workbench.make("multi_head", num_heads=h).load_weights(ref.state_dict(), key_map="torch_mha")
    out = m(q, k, v)
    assert out.dtype == np.float32
    assert np.abs(out - want.numpy()).max() <= 1e-5
    assert np.abs(m.weights(q, k) - want_w.numpy()).max() <= 1e-6  # averaged over heads, as PyTorch


def bert_attention_state(rng, E):
    sd = {}
    for name in ("self.query", "self.key", "self.value", "output.dense"):
        sd[f"{name}.weight"] = rng.standard_normal((E, E)) / math.sqrt(E)
        sd[f"{name}.bias"] = rng.standard_normal(E)
    sd["output.LayerNorm.weight"], sd["output.LayerNorm.bias"] = np.ones(E), np.zeros(E)
    return sd


def test_hf_bert_map_with_a_prefix_equals_the_definition():
    rng = np.random.default_rng(3)
    E, h = 16, 4
    sd = bert_attention_state(rng, E)
    full = {f"encoder.layer.0.attention.{k}": v for k, v in sd.items()}
    full["encoder.layer.0.intermediate.dense.weight"] = rng.standard_normal((4 * E, E))  # outside the prefix
    full["embeddings.word_embeddings.weight"] = rng.standard_normal((30, E))
    m = workbench.make("multi_head", num_heads=h).load_weights(full, key_map="hf_bert",
                                                               prefix="encoder.layer.0.attention.")
    x = rng.standard_normal((6, E))
    g = lambda n: sd[f"{n}.weight"]  # noqa: E731
    c = lambda n: sd[f"{n}.bias"]  # noqa: E731
    want = mha_definition(x, x, x, g("self.query"), c("self.query"), g("self.key"), c("self.key"), g("self.value"),
                          c("self.value"), g("output.dense"), c("output.dense"), h)
    np.testing.assert_allclose(m(x, x, x), want, atol=1e-10)


@pytest.mark.parametrize("fmt", ["dict", "npz", "safetensors"])
def test_state_dict_round_trip(tmp_path, fmt):
    rng = np.random.default_rng(4)
    m = workbench.make("multi_head", num_heads=2).load_weights(torch_mha_state(rng, 6), key_map="torch_mha")
    sd = m.state_dict()
    assert set(sd) == set(m.learned_weights)
    if fmt == "npz":
        src = tmp_path / "w.npz"
        np.savez(src, **sd)
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        src = tmp_path / "w.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(src))
    else:
        src = sd
    again = workbench.make("multi_head", num_heads=2).load_weights(src)
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(again(x, x, x), m(x, x, x))
    for key, value in again.state_dict().items():
        np.testing.assert_array_equal(value, sd[key])


def test_state_dict_without_loaded_weights():
    m = workbench.make("multi_head", num_heads=2)
    sd = m.state_dict(4, 6)
    np.testing.assert_array_equal(sd["W_q"], np.eye(4))
    np.testing.assert_array_equal(sd["W_v"], np.eye(6))
    seeded = workbench.make("multi_head", num_heads=2, projections=True, seed=5)
    x = np.random.default_rng(5).standard_normal((3, 4))
    again = workbench.make("multi_head", num_heads=2).load_weights(seeded.state_dict(4))
    np.testing.assert_allclose(again(x, x, x), seeded(x, x, x), atol=1e-6)
    with pytest.raises(ConfigurationError, match="d:"):
        m.state_dict()


def test_refusals_name_the_key(tmp_path):
    rng = np.random.default_rng(6)
    sd = torch_mha_state(rng, 6)
    m = workbench.make("multi_head", num_heads=2)
    cases = [
        ({k: v for k, v in sd.items() if k != "out_proj.weight"}, "torch_mha", ShapeError, "out_proj.weight"),
        ({**sd, "extra.weight": np.zeros(3)}, "torch_mha", ShapeError, "extra.weight"),
        ({**sd, "in_proj_bias": np.zeros(5)}, "torch_mha", ShapeError, "in_proj_bias"),
        ({**sd, "bias_k": np.zeros((1, 1, 6))}, "torch_mha", ConfigurationError, "bias_k"),
        (sd, "gpt2", ConfigurationError, "key_map"),
        ({"W_q": np.eye(6), "W_k": np.eye(6), "W_v": np.eye(6)}, None, ShapeError, "W_o"),
        ({"W_q": np.eye(6), "W_k": np.eye(6), "W_v": np.eye(6), "W_o": np.eye(6), "b_q": np.zeros(4)}, None,
         ShapeError, "b_q"),
        ({"W_q": np.eye(6), "W_k": np.eye(6), "W_v": np.eye(6), "W_o": np.eye(6), "W_x": np.eye(6)}, None,
         ShapeError, "W_x"),
        ({"W_q": np.eye(6), "W_k": np.zeros((6, 4)), "W_v": np.eye(6), "W_o": np.eye(6)}, None, ShapeError, "W_k"),
        ({"W_q": np.ones((6, 5)), "W_k": np.ones((6, 5)), "W_v": np.eye(6), "W_o": np.eye(6)}, None,
         ConfigurationError, "num_heads"),
        ({"W_q": np.full((2, 2), np.nan)}, None, DataError, "W_q"),
        ({"W_q": np.array(["a"])}, None, DataError, "W_q"),
        ({}, None, DataError, "no arrays"),
        ("nonexistent.npz", None, DataError, "no such file"),
        (42, None, DataError, "source"),
        (sd, "torch_mha", ShapeError, "prefix"),
    ]
    for i, (src, key_map, err, match) in enumerate(cases):
        kw = {"prefix": "encoder."} if i == len(cases) - 1 else {}
        with pytest.raises(err, match=match):
            m.load_weights(src, key_map=key_map, **kw)
        assert not m.weights_loaded and not m.projections  # a refused load changes nothing
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x04junk")
    with pytest.raises(DataError, match="pickles are never loaded"):
        m.load_weights(pt)
    with pytest.raises(ConfigurationError, match="no learned weights"):
        workbench.make("flash").load_weights(sd)


def test_inputs_must_match_the_loaded_widths():
    rng = np.random.default_rng(7)
    m = workbench.make("multi_head", num_heads=2).load_weights(torch_mha_state(rng, 6), key_map="torch_mha")
    x = rng.standard_normal((3, 8))
    with pytest.raises(ShapeError, match="q: width 8"):
        m(x, x, x)
    m.num_heads = 4  # 6 is not divisible by 4
    y = rng.standard_normal((3, 6))
    with pytest.raises(ConfigurationError, match="num_heads"):
        m(y, y, y)


def test_calibration_keeps_the_loaded_weights():
    """A calibrated copy uses the trained projections, not the seeded ones, and matches the
    original at the calibrated scale."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    m = workbench.make("multi_head", num_heads=2).load_weights(torch_mha_state(rng, 8), key_map="torch_mha")
    cal = workbench.calibrate(m, x)
    assert cal.weights_loaded
    for key, value in cal.state_dict().items():
        np.testing.assert_array_equal(value, m.state_dict()[key])
    same = m.with_params(scale=cal.scale)
    np.testing.assert_allclose(cal(x[:5], x, x), same(x[:5], x, x), atol=1e-6)
