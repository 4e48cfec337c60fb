"""FlashAttention: exact attention by key blocks with an online softmax (Dao et al. 2022)."""
from __future__ import annotations

import param

import kernels
from kernels.flash import FLASH
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


@register("flash")
class Flash(Mechanism):
    """Exact attention computed by key blocks with an online softmax; O(L·d) extra memory.

    For each key block ``J``: ``m' = max(m, max_J s)``, ``ℓ' = e^{m−m'}ℓ + Σ_J e^{s−m'}``,
    ``O' = e^{m−m'}O + Σ_J e^{s−m'} v_j``; at the end ``O/ℓ`` and ``lse = m + ln ℓ``.
    Equal to scaled dot-product attention (same masks, same causal convention).
    Paper: Dao et al., *FlashAttention*, 2022.
    """

    family = "core"
    formula = "online softmax over key blocks: O = Σ_J e^{s_J − lse} V_J"
    time_complexity = "O(Lq·Lk·d)"
    memory_complexity = "O(Lq·dv + threads·block_size·query_block_size)"
    kernels_used = (FLASH,)
    not_shardable = None  # its own (out, lse) merge across key shards

    block_size = param.Integer(default=128, bounds=(1, 65_536), doc="Keys per block (the tile width).")
    query_block_size = param.Integer(
        default=512, bounds=(1, 65_536),
        doc="Queries per block (one parallel work item); the Numba kernel uses smaller blocks when "
            "there would be fewer than two per thread.")
    causal = P.causal()
    causal_offset = P.causal_offset()
    scale = P.scale()

    def _kernel_args(self, b):
        return dict(mask=b.mask, scale=self._scale(b.dim), causal=self.causal, causal_offset=self.causal_offset,
                    block_size=self.block_size, query_block_size=self.query_block_size, backend=self.backend)

    def __call__(self, q, k, v, *, mask=None, graph=None, return_lse: bool = False):
        """As every mechanism; with ``return_lse=True`` returns ``(out, lse (..., Lq))``."""
        if not return_lse:
            return super().__call__(q, k, v, mask=mask, graph=graph)
        self._check_numbers()
        self._check_graph_arg(graph)
        b = self._prepare(q, k, v, mask)
        out, lse = self._run(lambda b: kernels.flash_attention(b.q, b.k, b.v, **self._kernel_args(b)), b)
        return b.restore(self._finite(out, "output")), b.restore(lse, trailing=1)

    def _shard_partial(self, b, query_offset, key_offset):
        args = self._kernel_args(b)
        args["causal_offset"] = self._shard_causal_offset(query_offset, key_offset)
        return kernels.flash_attention(b.q, b.k, b.v, **args)

    def _forward(self, b):
        return kernels.flash_attention(b.q, b.k, b.v, **self._kernel_args(b))[0]

    def _weights(self, b):
        return kernels.flash_weights(b.q, b.k, **self._kernel_args(b))
