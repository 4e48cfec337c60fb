"""Multi-head attention: scaled dot-product attention on ``h`` slices of the features."""
from __future__ import annotations

import numpy as np
import param

import kernels
from kernels.dense import DENSE
from workbench.errors import ConfigurationError, ShapeError
from workbench.mechanisms import params as P
from workbench.mechanisms.base import Mechanism
from workbench.registry import register
from workbench.weights import check_names, check_shape


def _affine(x, w: dict, name: str):
    """``x W_name + b_name`` (no bias: ``x W_name``)."""
    y = x @ w[f"W_{name}"]
    b = w.get(f"b_{name}")
    return y if b is None else y + b


@register("multi_head")
class MultiHead(Mechanism):
    """Multi-head attention: ``h`` heads of width ``d/h``, concatenated, optional projections.

    ``head_i = softmax(s·(QW_q + b_q)_i (KW_k + b_k)_iᵀ) (VW_v + b_v)_i`` with ``s = 1/√(e/h)``
    (``e`` the projected width); ``out = concat(head_1..head_h) W_o + b_o``. Without projections
    (the default, as the seed system) every ``W`` is the identity and every ``b`` zero; with
    ``projections`` seeded random ``W`` and no biases; trained ones through :meth:`load_weights`
    (key maps ``"torch_mha"``, ``"hf_bert"``: :mod:`workbench.weights`). Shapes as SDPA; the
    projected widths must divide by ``h``. Paper: Vaswani et al., *Attention Is All You Need*, 2017.
    """

    family = "core"
    softmax_rows = False
    formula = "concat_i softmax(s·Q_i K_iᵀ) V_i · W_o,  s = 1/√(d/h)"
    time_complexity = "O(Lq·Lk·d)"
    memory_complexity = "O(h·Lq·Lk) weights; O(Lq·dv) output (Numba kernel: tiled)"
    kernels_used = (DENSE,)
    learned_weights = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")
    #: Shardable per head: partials ``(..., Lq, h, dh)`` with one log-sum-exp per head, ``W_o`` after the merge.
    not_shardable = None

    num_heads = param.Integer(default=8, bounds=(1, 4096), doc="Number of heads h; d and dv must be divisible by h.")
    projections = param.Boolean(
        default=False,
        doc="Apply W_q, W_k, W_v, W_o: seeded random ones (entries N(0, 1/d)), or trained ones after "
            "load_weights (which turns this on); off reproduces the seed system.",
    )
    causal = P.causal()
    causal_offset = P.causal_offset()
    scale = P.scale()
    seed = P.seed()

    def default_scale(self, d: int) -> float:
        """``1/√(d/h)``: the scale of one head of width ``d/h``."""
        return 1.0 / np.sqrt(max(d // self.num_heads, 1))

    def _check(self, b):
        h = self.num_heads
        dims = (("d", b.q.shape[-1]), ("dv", None if b.v is None else b.v.shape[-1]))
        if self.projections and self._loaded_weights is not None:
            w = self._loaded_weights
            for arg, x, key in (("q", b.q, "W_q"), ("k", b.k, "W_k"), ("v", b.v, "W_v")):
                if x is not None and x.shape[-1] != w[key].shape[0]:
                    raise ShapeError(f"{arg}: width {x.shape[-1]} does not match the loaded {key} "
                                     f"{w[key].shape} (it takes inputs of width {w[key].shape[0]})")
            dims = (("the projected width of W_q", w["W_q"].shape[1]), ("the projected width of W_v", w["W_v"].shape[1]))
        for name, dim in dims:
            if dim is not None and dim % h:
                raise ConfigurationError(
                    f"num_heads: {name}={dim} is not divisible by num_heads={h}; choose a divisor of {dim}"
                )

    def projection_weights(self, d: int, dv: int, dtype=np.float32) -> dict:
        """The ``W`` (and ``b``) in use when ``projections`` is on: the loaded ones, else seeded
        ``W_q, W_k (d×d)``, ``W_v, W_o (dv×dv)`` without biases."""
        if self._loaded_weights is not None:
            return {k: v.astype(dtype, copy=False) for k, v in self._loaded_weights.items()}
        rng = np.random.default_rng(self.seed)
        return {
            "W_q": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype),
            "W_k": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype),
            "W_v": (rng.standard_normal((dv, dv)) / np.sqrt(dv)).astype(dtype),
            "W_o": (rng.standard_normal((dv, dv)) / np.sqrt(dv)).astype(dtype),
        }

    def _initial_weights(self, d: int, dv: int) -> dict:
        if self.projections:
            return self.projection_weights(d, dv, np.float64)
        return {"W_q": np.eye(d), "W_k": np.eye(d), "W_v": np.eye(dv), "W_o": np.eye(dv)}

    def _accept_weights(self, w: dict) -> dict:
        check_names(w, self.learned_weights[:4], self.learned_weights[4:], "multi_head")
        e, ev = w["W_q"].shape[1], w["W_v"].shape[1]
        check_shape(w, "W_q", (None, e))
        check_shape(w, "W_k", (None, e))
        check_shape(w, "W_v", (None, ev))
        check_shape(w, "W_o", (ev, None))
        for name, n in (("b_q", e), ("b_k", e), ("b_v", ev), ("b_o", w["W_o"].shape[1])):
            if name in w:
                check_shape(w, name, (n,))
        for what, n in (("W_q", e), ("W_v", ev)):
            if n % self.num_heads:
                raise ConfigurationError(f"num_heads: {what} projects to width {n}, not divisible by "
                                         f"num_heads={self.num_heads}; set num_heads to the model's own")
        self.projections = True
        return {k: np.array(v, dtype=np.float64) for k, v in w.items()}

    def _split(self, x):
        B, L, d = x.shape
        h = self.num_heads
        return np.ascontiguousarray(x.reshape(B, L, h, d // h).transpose(0, 2, 1, 3).reshape(B * h, L, d // h))

    def _heads(self, b, with_values: bool):
        h = self.num_heads
        q, k, v = b.q, b.k, b.v
        w = None
        if self.projections:
            w = self.projection_weights(q.shape[-1], v.shape[-1] if v is not None else q.shape[-1], q.dtype)
            q, k = _affine(q, w, "q"), _affine(k, w, "k")
            if with_values:
                v = _affine(v, w, "v")
        mask = None
        if b.mask is not None:  # (Bm, Lq, Lk) -> one copy per head
            m = b.mask
            mask = np.repeat(m, h, axis=0) if m.shape[0] > 1 else m
        scale = self._scale(q.shape[-1])
        args = dict(mask=mask, scale=scale, causal=self.causal, causal_offset=self.causal_offset, backend=self.backend)
        return self._split(q), self._split(k), (self._split(v) if with_values else None), args, w

    def _shard_partial(self, b, query_offset, key_offset):
        """Per head: ``(out (B, Lq, h, dh), lse (B, Lq, h))`` (projections applied, not ``W_o``)."""
        qh, kh, vh, args, _ = self._heads(b, True)
        B, lq, h = b.q.shape[0], b.q.shape[1], self.num_heads
        args["causal_offset"] = self._shard_causal_offset(query_offset, key_offset)
        out, lse = kernels.flash_attention(qh, kh, vh, **args)
        dh = out.shape[-1]
        return (out.reshape(B, h, lq, dh).transpose(0, 2, 1, 3), lse.reshape(B, h, lq).transpose(0, 2, 1))

    def shard_finish(self, out, d: int, dv: int, dtype=None):
        """Merged heads ``(..., Lq, h, dh)`` → ``(..., Lq, dv')``: concatenated, then ``W_o`` (and ``b_o``)."""
        x = np.asarray(out).reshape(np.shape(out)[:-2] + (-1,))
        if not self.projections:
            return x
        return _affine(x, self.projection_weights(d, dv, x.dtype), "o")

    def _forward(self, b):
        qh, kh, vh, args, w = self._heads(b, True)
        B, lq, dh, h = b.q.shape[0], b.q.shape[1], vh.shape[-1], self.num_heads  # dh: projected width per head
        out = kernels.attention(qh, kh, vh, **args)
        out = out.reshape(B, h, lq, dh).transpose(0, 2, 1, 3).reshape(B, lq, h * dh)
        return _affine(out, w, "o") if w is not None else out

    def _weights(self, b):
        """Per-head weights averaged over heads (as PyTorch's ``average_attn_weights``)."""
        qh, kh, _, args, _ = self._heads(b, False)
        w = kernels.attention_weights(qh, kh, **args)
        return w.reshape(b.q.shape[0], self.num_heads, *w.shape[1:]).mean(axis=1)

    def head_weights(self, q, k, *, mask=None):
        """Weights of every head, ``(..., h, Lq, Lk)``."""
        self._check_numbers()
        b = self._prepare(q, k, None, mask, need_v=False)
        self._check(b)
        qh, kh, _, args, _ = self._heads(b, False)
        w = self._run(lambda _: kernels.attention_weights(qh, kh, **args), b)
        w = w.reshape(b.q.shape[0], self.num_heads, *w.shape[1:])
        out = w.reshape(b.batch_shape + w.shape[1:])
        return out[..., 0, :] if b.single_query else out
