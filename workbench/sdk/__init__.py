"""The SDK: builders, pipelines and presets over the registered mechanisms.

>>> import numpy as np
>>> from workbench.sdk import multi_head, AttentionPipeline, AttentionPreset
>>> attn = multi_head(64, 8).causal(True).build()          # workbench.make("multi_head", num_heads=8, causal=True)
>>> q = np.random.default_rng(0).standard_normal((10, 64)).astype(np.float32)
>>> AttentionPipeline().add_norm("layer").add_attention(attn).add_residual().run(q, q, q).shape
(10, 64)
>>> AttentionPreset.Bert.builder(768).build().name
'multi_head'
"""
from workbench.sdk.builders import (
    Attention,
    AttentionBuilder,
    flash,
    hyperbolic,
    linear,
    local_global,
    moe,
    multi_head,
    scaled_dot,
)
from workbench.sdk.pipeline import AttentionPipeline, NormType, prenorm_transformer_block, transformer_block
from workbench.sdk.presets import (
    AttentionPreset,
    for_generation,
    for_graphs,
    for_large_scale,
    for_moe,
    for_sequences,
    for_vision,
    from_model_name,
)

__all__ = [
    "Attention", "AttentionBuilder", "scaled_dot", "multi_head", "flash", "linear", "local_global", "hyperbolic",
    "moe", "AttentionPipeline", "NormType", "transformer_block", "prenorm_transformer_block", "AttentionPreset",
    "for_sequences", "for_graphs", "for_large_scale", "for_vision", "for_generation", "for_moe", "from_model_name",
]
