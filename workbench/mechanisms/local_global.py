"""Local–global attention: a sliding window plus global tokens (Longformer pattern)."""
from __future__ import annotations

import numpy as np
import param

import kernels
from kernels.flash import FLASH
from kernels.local_global import LOCAL_GLOBAL
from kernels.reference.dense import attention_weights
from workbench.errors import ShapeError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register


@register("local_global")
class LocalGlobal(Mechanism):
    """Local–global attention: query ``i`` sees keys within ``⌊w/2⌋`` of ``i`` and ``g`` globals.

    Allowed ``(i, j)``: ``|i − j| ≤ ⌊w/2⌋`` or ``j < g`` or ``i < g`` (global tokens see and
    are seen by all); softmax of ``s q_i·k_j`` over the allowed keys. Batched inputs need
    ``Lq == Lk``; a single 1-D query sits at position ``⌊n/2⌋`` (the seed system's form).
    Paper: Beltagy et al., *Longformer*, 2020.
    """

    family = "core"
    position_dependent = True
    formula = "softmax over {|i−j| ≤ w/2} ∪ {j < g} ∪ {i < g} of s·q_i·k_j"
    time_complexity = "O(L·(w+g)·d + g·L·d)"
    memory_complexity = "O(L·dv)"
    kernels_used = (LOCAL_GLOBAL, FLASH)  # FLASH: the (out, lse) of a key shard
    not_shardable = None  # one softmax over the allowed keys; a shard reads only its window's halo

    window = param.Integer(default=32, bounds=(1, None),
                           doc="Window width w: query i attends keys |i - j| <= w // 2.")
    num_global_tokens = param.Integer(default=2, bounds=(0, None),
                                      doc="Number g of leading global tokens that attend and are attended by all.")
    causal = P.causal()
    scale = P.scale()

    def _positions(self, b):
        if b.single_query:
            return np.array([b.k.shape[1] // 2])
        return np.arange(b.q.shape[1])

    def _check(self, b):
        if not b.single_query and b.q.shape[1] != b.k.shape[1]:
            raise ShapeError(
                f"q, k: local-global attention places query i at key position i and needs Lq == Lk, "
                f"got Lq={b.q.shape[1]}, Lk={b.k.shape[1]}"
            )

    def check_sharded(self, lq: int, lk: int) -> None:
        if lq != lk:
            raise ShapeError(f"q, k: local-global attention places query i at key position i and needs Lq == Lk, "
                             f"got Lq={lq}, Lk={lk}")

    def _check_shard(self, b) -> None:
        if b.single_query:
            raise ShapeError("q: key shards need queries of shape (..., Lq, d) at positions 0..Lq-1, got one query")

    def _allowed(self, qi: np.ndarray, kj: np.ndarray) -> np.ndarray:
        """The pattern ``|i − j| ≤ ⌊w/2⌋ or j < g or i < g`` (and ``j ≤ i`` if causal) at global positions."""
        g = self.num_global_tokens
        ok = (np.abs(qi[:, None] - kj[None, :]) <= self.window // 2) | (kj[None, :] < g) | (qi[:, None] < g)
        return ok & (kj[None, :] <= qi[:, None]) if self.causal else ok

    def _shard_partial(self, b, query_offset, key_offset):
        """One key shard for a block of queries. A non-global query sees only the keys of its window
        and the global tokens, so the shard's keys outside the block's window span (its halo:
        ``⌊w/2⌋`` keys either side) are never read; the few global queries read the whole shard."""
        lq, lk = b.q.shape[1], b.k.shape[1]
        qi = query_offset + np.arange(lq)
        kj = key_offset + np.arange(lk)
        h, g = self.window // 2, self.num_global_tokens
        out = np.zeros(b.q.shape[:2] + (b.v.shape[-1],), np.float64)
        lse = np.full(b.q.shape[:2], -np.inf)
        for rows in (np.flatnonzero(qi < g), np.flatnonzero(qi >= g)):
            if rows.size == 0:
                continue
            if qi[rows[0]] < g:
                cols = np.arange(lk)
            else:  # the halo of the block's windows, and the global tokens in this shard
                lo, hi = qi[rows[0]] - h, qi[rows[-1]] + h
                cols = np.flatnonzero(((kj >= lo) & (kj <= hi)) | (kj < g))
            if cols.size == 0:
                continue
            allowed = self._allowed(qi[rows], kj[cols])[None]
            if b.mask is not None:
                m = b.mask[:, rows] if b.mask.shape[1] > 1 else b.mask
                allowed = allowed & m[:, :, cols]
            o, s = kernels.flash_attention(b.q[:, rows], b.k[:, cols], b.v[:, cols], mask=allowed,
                                           scale=self._scale(b.dim), backend=self.backend)
            out[:, rows], lse[:, rows] = o, s
        return out, lse

    def _forward(self, b):
        return kernels.local_global_attention(
            b.q, b.k, b.v, window=self.window, num_global=self.num_global_tokens, positions=self._positions(b),
            mask=b.mask, scale=self._scale(b.dim), causal=self.causal, backend=self.backend)

    def _weights(self, b):
        allowed = kernels.local_global_mask(self._positions(b), b.k.shape[1], self.window,
                                            self.num_global_tokens, self.causal)
        if b.mask is not None:
            allowed = allowed & b.mask
        return attention_weights(b.q, b.k, allowed, self._scale(b.dim))
