"""Scaled dot-product attention (Vaswani et al. 2017)."""
from __future__ import annotations

import kernels
from kernels.dense import DENSE
from kernels.flash import FLASH
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


@register("scaled_dot_product")
class ScaledDotProduct(Mechanism):
    """Scaled dot-product attention, ``softmax(s·QKᵀ) V`` with boolean and causal masks.

    ``W_ij = exp(s q_i·k_j) / Σ_{j' allowed} exp(s q_i·k_j')`` for allowed ``j`` (else 0),
    ``s = 1/√d``; ``out = W V``. Shapes ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) →
    (..., Lq, dv)``. The Numba backend tiles the computation and never holds ``Lq × Lk``.
    Paper: Vaswani et al., *Attention Is All You Need*, 2017.
    """

    family = "core"
    formula = "softmax(s·QKᵀ + M) V,  s = 1/√d"
    time_complexity = "O(Lq·Lk·d)"
    memory_complexity = "O(Lq·Lk) weights; O(Lq·d) output (Numba kernel: tiled)"
    kernels_used = (DENSE, FLASH)  # FLASH: the (out, lse) of a key shard
    not_shardable = None  # one softmax over keys: shards merge by log-sum-exp

    causal = P.causal()
    causal_offset = P.causal_offset()
    scale = P.scale()

    def _forward(self, b):
        return kernels.attention(b.q, b.k, b.v, mask=b.mask, scale=self._scale(b.dim), causal=self.causal,
                                 causal_offset=self.causal_offset, backend=self.backend)

    def _shard_partial(self, b, query_offset, key_offset):
        return kernels.flash_attention(b.q, b.k, b.v, mask=b.mask, scale=self._scale(b.dim), causal=self.causal,
                                       causal_offset=self._shard_causal_offset(query_offset, key_offset),
                                       backend=self.backend)

    def _weights(self, b):
        return kernels.attention_weights(b.q, b.k, mask=b.mask, scale=self._scale(b.dim), causal=self.causal,
                                         causal_offset=self.causal_offset, backend=self.backend)
