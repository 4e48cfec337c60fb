"""Presets and selection rules yield the documented mechanism and values (table written out here),
and their output equals ``workbench.make(name, ...)`` called directly."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError
from workbench.sdk import AttentionPreset, for_generation, for_graphs, for_large_scale, for_moe, for_sequences
from workbench.sdk import for_vision, from_model_name

DIM = 48  # divisible by 12 heads

#: preset → (registry name, parameters, builder dropout), the documented table.
TABLE = {
    AttentionPreset.Bert: ("multi_head", {"num_heads": 12, "causal": False}, 0.1),
    AttentionPreset.Gpt: ("multi_head", {"num_heads": 12, "causal": True}, 0.1),
    AttentionPreset.Longformer: ("local_global", {"window": 512, "num_global_tokens": 1, "causal": False}, 0.0),
    AttentionPreset.Performer: ("linear", {"num_features": DIM // 4, "causal": False}, 0.0),
    AttentionPreset.FlashOptimized: ("flash", {"block_size": 128, "causal": False}, 0.0),
    AttentionPreset.SwitchTransformer: ("moe", {"experts": ["scaled_dot_product", "hyperbolic", "linear",
                                                            "edge_featured"] * 2,
                                                "top_k": 2, "capacity_factor": 1.25}, 0.0),
    AttentionPreset.HyperbolicTree: ("hyperbolic", {"c": 1.0}, 0.0),
    AttentionPreset.T5: ("multi_head", {"num_heads": 12, "causal": False}, 0.1),
    AttentionPreset.ViT: ("multi_head", {"num_heads": 12, "causal": False}, 0.0),
    AttentionPreset.SparseTransformer: ("local_global", {"window": 256, "num_global_tokens": 1, "causal": True}, 0.0),
}


@pytest.fixture
def qkv(rng):
    return tuple((rng.standard_normal((1, 6, DIM)) * 0.2).astype(np.float32) for _ in range(3))


def test_every_preset_is_tabled():
    assert set(TABLE) == set(AttentionPreset) and len(TABLE) == 10


@pytest.mark.parametrize("preset", list(AttentionPreset), ids=lambda p: p.name)
def test_preset_yields_documented_mechanism(preset, qkv):
    name, params, dropout = TABLE[preset]
    built = preset.builder(DIM).backend("numpy").build()
    assert type(built.mechanism) is workbench.registry[name].cls and built.name == name
    got = built.params()
    for key, value in params.items():
        assert got[key] == value, key
    assert built.dropout == dropout
    q, k, v = qkv
    direct = workbench.make(name, backend="numpy", **params)
    np.testing.assert_array_equal(built(q, k, v), direct(q, k, v))
    assert preset.name in preset.description and preset.values["mechanism"] == name


def test_multi_head_presets_need_divisible_dim():
    with pytest.raises(ConfigurationError, match="num_heads"):
        AttentionPreset.Bert.builder(512).build()
    assert AttentionPreset.Bert.builder(768).build().num_heads == 12


def test_performer_feature_rule():
    assert AttentionPreset.Performer.builder(768).build().params()["num_features"] == 192
    assert AttentionPreset.Performer.builder(3).build().params()["num_features"] == 1


# -- selection rules ---------------------------------------------------------------------------------------------------
def kind(builder):
    return builder.mechanism_name(), builder.mechanism_params()


@pytest.mark.parametrize("max_len, preset", [(1, AttentionPreset.Bert), (512, AttentionPreset.Bert),
                                             (513, AttentionPreset.Longformer), (4096, AttentionPreset.Longformer),
                                             (4097, AttentionPreset.Performer), (10**6, AttentionPreset.Performer)])
def test_for_sequences_thresholds(max_len, preset):
    assert kind(for_sequences(DIM, max_len)) == kind(preset.builder(DIM))


def test_for_graphs():
    assert kind(for_graphs(DIM, True)) == ("hyperbolic", {"backend": "auto", "c": 1.0})
    name, params = kind(for_graphs(DIM, False))
    assert name == "multi_head" and params["num_heads"] == 8 and not params["causal"]


def test_for_large_scale_vision_moe():
    assert kind(for_large_scale(DIM))[1]["block_size"] == 128
    assert kind(for_vision(DIM, 16)) == kind(AttentionPreset.ViT.builder(DIM))
    name, params = kind(for_moe(DIM, 6, 3))
    assert name == "moe" and len(params["experts"]) == 6 and params["top_k"] == 3


@pytest.mark.parametrize("n, expect", [(2048, ("multi_head", 12)), (2049, ("flash", 128))])
def test_for_generation_threshold(n, expect):
    name, params = kind(for_generation(DIM, n))
    assert name == expect[0] and params["causal"] is True
    assert params.get("num_heads", params.get("block_size")) == expect[1]


def test_from_model_name():
    assert kind(from_model_name("bert", DIM)) == kind(AttentionPreset.Bert.builder(DIM))
    assert kind(from_model_name("GPT2", DIM)) == kind(AttentionPreset.Gpt.builder(DIM))
    assert kind(from_model_name("gpt", DIM)) == kind(AttentionPreset.Gpt.builder(DIM))
    assert kind(from_model_name("Longformer", DIM))[0] == "local_global"
    assert kind(from_model_name("t5", DIM)) == kind(AttentionPreset.T5.builder(DIM))
    assert kind(from_model_name("ViT", DIM)) == kind(AttentionPreset.ViT.builder(DIM))
    assert kind(from_model_name("performer", DIM))[0] == "linear"
    assert from_model_name("llama-7b", DIM) is None
    with pytest.raises(ConfigurationError, match="name"):
        from_model_name(None, DIM)


def test_selection_rules_reject_bad_arguments():
    with pytest.raises(ConfigurationError, match="max_len"):
        for_sequences(DIM, 0)
    with pytest.raises(ConfigurationError, match="hierarchical"):
        for_graphs(DIM, "yes")
    with pytest.raises(ConfigurationError, match="patch_size"):
        for_vision(DIM, 0)
    with pytest.raises(ConfigurationError, match="context_len"):
        for_generation(DIM, -5)
