"""Model presets and selection rules: ``AttentionPreset.Bert.builder(768).build()``, ``for_sequences``.

Every preset gives an :class:`~workbench.sdk.builders.AttentionBuilder` with the values below (the
seed system's presets other than Bert and Gpt all built plain scaled dot-product attention,
docs/upstream.md#sdk). Values marked *chosen* exist nowhere upstream and are ours:

| preset              | mechanism      | values                                                              |
|---------------------|----------------|---------------------------------------------------------------------|
| ``Bert``            | multi_head     | 12 heads, dropout 0.1, bidirectional                                |
| ``Gpt``             | multi_head     | 12 heads, dropout 0.1, causal                                       |
| ``Longformer``      | local_global   | window 512, 1 global token (*chosen*: the [CLS] token)              |
| ``Performer``       | linear         | ``max(1, dim // 4)`` FAVOR+ features (the README's long-context recipe) |
| ``FlashOptimized``  | flash          | block 128                                                           |
| ``SwitchTransformer`` | moe          | 8 experts, top-2 (as documented; the Switch paper routes top-1), capacity 1.25 |
| ``HyperbolicTree``  | hyperbolic     | curvature −1.0                                                      |
| ``T5``              | multi_head     | 12 heads, dropout 0.1, bidirectional (*chosen*; no relative position bias) |
| ``ViT``             | multi_head     | 12 heads, dropout 0.0, bidirectional (*chosen*)                     |
| ``SparseTransformer`` | local_global | window 256, 1 global token, causal (*chosen*: a fixed sparse pattern of an autoregressive model, Child et al. 2019) |

Multi-head presets need ``dim`` divisible by 12 (``build()`` says so otherwise).
"""
from __future__ import annotations

import enum

from workbench import checks as C
from workbench.errors import ConfigurationError
from workbench.sdk.builders import AttentionBuilder


class AttentionPreset(enum.Enum):
    """Named configurations of popular models; ``preset.builder(dim)`` gives the builder."""

    Bert = "bert"
    Gpt = "gpt"
    Longformer = "longformer"
    Performer = "performer"
    FlashOptimized = "flash_optimized"
    SwitchTransformer = "switch_transformer"
    HyperbolicTree = "hyperbolic_tree"
    T5 = "t5"
    ViT = "vit"
    SparseTransformer = "sparse_transformer"

    @property
    def values(self) -> dict:
        """The documented values of the preset (``dim``-dependent ones as a rule string)."""
        return dict(PRESET_VALUES[self])

    @property
    def description(self) -> str:
        v = ", ".join(f"{k}={x!r}" for k, x in self.values.items())
        return f"{self.name}: {v}"

    def builder(self, dim: int) -> AttentionBuilder:
        """The builder of this preset at width ``dim``."""
        v = PRESET_VALUES[self]
        b = AttentionBuilder(dim)
        m = v["mechanism"]
        if m == "multi_head":
            b = b.multi_head(v["num_heads"])
        elif m == "local_global":
            b = b.local_global(v["window_size"]).global_tokens(v["num_global_tokens"])
        elif m == "linear":
            b = b.linear(max(1, dim // 4) if isinstance(dim, int) and not isinstance(dim, bool) else dim)
        elif m == "flash":
            b = b.flash(v["block_size"])
        elif m == "moe":
            b = b.moe(v["num_experts"], v["top_k"]).expert_capacity(v["expert_capacity"])
        elif m == "hyperbolic":
            b = b.hyperbolic(v["curvature"])
        if v.get("dropout"):
            b = b.dropout(v["dropout"])
        if v.get("causal"):
            b = b.causal(True)
        return b


PRESET_VALUES = {
    AttentionPreset.Bert: {"mechanism": "multi_head", "num_heads": 12, "dropout": 0.1, "causal": False},
    AttentionPreset.Gpt: {"mechanism": "multi_head", "num_heads": 12, "dropout": 0.1, "causal": True},
    AttentionPreset.Longformer: {"mechanism": "local_global", "window_size": 512, "num_global_tokens": 1},
    AttentionPreset.Performer: {"mechanism": "linear", "num_features": "max(1, dim // 4)"},
    AttentionPreset.FlashOptimized: {"mechanism": "flash", "block_size": 128},
    AttentionPreset.SwitchTransformer: {"mechanism": "moe", "num_experts": 8, "top_k": 2, "expert_capacity": 1.25},
    AttentionPreset.HyperbolicTree: {"mechanism": "hyperbolic", "curvature": -1.0},
    AttentionPreset.T5: {"mechanism": "multi_head", "num_heads": 12, "dropout": 0.1, "causal": False},
    AttentionPreset.ViT: {"mechanism": "multi_head", "num_heads": 12, "dropout": 0.0, "causal": False},
    AttentionPreset.SparseTransformer: {"mechanism": "local_global", "window_size": 256, "num_global_tokens": 1,
                                        "causal": True},
}


def _positive_int(name: str, value) -> int:
    return C.integer(name, value, minimum=1)


# -- selection rules (the SDK guide's) ----------------------------------------------------------------------------
def for_sequences(dim: int, max_len: int) -> AttentionBuilder:
    """``max_len ≤ 512`` → Bert; ``≤ 4096`` → Longformer; longer → Performer."""
    n = _positive_int("max_len", max_len)
    if n <= 512:
        return AttentionPreset.Bert.builder(dim)
    if n <= 4096:
        return AttentionPreset.Longformer.builder(dim)
    return AttentionPreset.Performer.builder(dim)


def for_graphs(dim: int, hierarchical: bool) -> AttentionBuilder:
    """Hierarchical (tree-like) graphs → HyperbolicTree (curvature −1); others → 8-head multi-head."""
    if not isinstance(hierarchical, bool):
        raise ConfigurationError(f"hierarchical: expected True or False, got {hierarchical!r}")
    return AttentionPreset.HyperbolicTree.builder(dim) if hierarchical else AttentionBuilder(dim).multi_head(8)


def for_large_scale(dim: int) -> AttentionBuilder:
    """FlashAttention with blocks of 128 keys."""
    return AttentionBuilder(dim).flash(128)


def for_vision(dim: int, patch_size: int) -> AttentionBuilder:
    """The ViT preset (the patch size is validated but does not change the attention)."""
    _positive_int("patch_size", patch_size)
    return AttentionPreset.ViT.builder(dim)


def for_generation(dim: int, context_len: int) -> AttentionBuilder:
    """``context_len ≤ 2048`` → Gpt; longer → causal FlashAttention (blocks of 128)."""
    n = _positive_int("context_len", context_len)
    return AttentionPreset.Gpt.builder(dim) if n <= 2048 else AttentionBuilder(dim).flash(128).causal(True)


def for_moe(dim: int, num_experts: int, top_k: int) -> AttentionBuilder:
    """Mixture-of-experts attention with those values."""
    return AttentionBuilder(dim).moe(num_experts, top_k)


#: Model names understood by :func:`from_model_name` (case-insensitive), besides the preset names.
MODEL_NAMES = {"bert": AttentionPreset.Bert, "gpt": AttentionPreset.Gpt, "gpt2": AttentionPreset.Gpt,
               "gpt-2": AttentionPreset.Gpt, "longformer": AttentionPreset.Longformer,
               "t5": AttentionPreset.T5, "vit": AttentionPreset.ViT}


def from_model_name(name: str, dim: int) -> AttentionBuilder | None:
    """The builder of a model by name ("bert", "gpt2", "gpt", "longformer", "t5", "vit", or any
    preset's value such as "performer"), case-insensitive; ``None`` for an unknown name."""
    if not isinstance(name, str):
        raise ConfigurationError(f"name: expected a model name string, got {name!r}")
    key = name.strip().lower()
    preset = MODEL_NAMES.get(key)
    if preset is None:
        preset = next((p for p in AttentionPreset if p.value == key.replace("-", "_")), None)
    return None if preset is None else preset.builder(dim)


__all__ = ["AttentionPreset", "PRESET_VALUES", "for_sequences", "for_graphs", "for_large_scale", "for_vision",
           "for_generation", "for_moe", "from_model_name", "MODEL_NAMES"]
