"""A built attention: a registered mechanism plus the builder's width, causality and dropout.

:class:`Attention` is what :meth:`workbench.sdk.AttentionBuilder.build` returns. It holds the
mechanism made by ``workbench.make`` (``attention.mechanism``) and adds what mechanisms do not
have: a declared width, causality through a mask for mechanisms without a ``causal`` parameter,
and attention-weight dropout in training mode.
"""
from __future__ import annotations

import numpy as np

from workbench.errors import ConfigurationError, ShapeError

#: Attentions whose output is ``W·V`` with explicit weights, so weight dropout is well defined.
WEIGHT_DROPOUT_KINDS = ("scaled_dot", "multi_head", "flash", "local_global")

#: Attentions with a ``causal`` parameter of their own; the others get a lower-triangular mask.
NATIVE_CAUSAL_KINDS = ("scaled_dot", "multi_head", "flash", "linear", "local_global")


class Attention:
    """A built attention: a registered mechanism plus the builder's width, causality and dropout.

    ``attn(q, k, v, mask=None)`` checks that ``q`` and ``k`` have width ``dim`` and calls
    ``attn.mechanism`` (shapes as SDPA: ``q (..., Lq, d)`` or ``(d,)``, ``k (..., Lk, d)``,
    ``v (..., Lk, dv)``). Causality: the mechanism's ``causal`` parameter, or, for ``hyperbolic``
    and ``moe`` which have none, the mask ``j ≤ i`` (``j ≤ 0`` for a single query, as the
    mechanisms' ``causal_offset = 0``) combined with ``mask``.
    Dropout (``p > 0``, training mode only — ``attn.train()``; ``attn.eval()`` is the default):
    inverted dropout on the attention weights, ``out = (W ⊙ D/(1 − p)) V`` with ``D_ij ~
    Bernoulli(1 − p)`` (per head for multi-head), as PyTorch's ``MultiheadAttention(dropout=p)``;
    it forms the ``Lq × Lk`` weights, so training with dropout costs ``O(Lq·Lk)`` memory even for
    flash. The n-th dropout draw of an instance is reproducible from ``seed``. In eval mode the
    result equals ``attn.mechanism(q, k, v)``. ``train()`` also switches MoE's router jitter on.
    """

    def __init__(self, mechanism, *, kind: str, dim: int, dropout: float = 0.0, causal: bool = False,
                 seed: int = 0, builder=None) -> None:
        self.mechanism = mechanism
        self.kind = kind
        self.dim = dim
        self.dropout = dropout
        self.causal = causal
        self.seed = seed
        self.builder = builder
        self.training = False
        self._draws = 0

    # -- metadata --------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Registry name of the mechanism."""
        return self.mechanism.registry_name

    @property
    def num_heads(self) -> int:
        return int(getattr(self.mechanism, "num_heads", 1) if self.kind == "multi_head" else 1)

    def params(self) -> dict:
        """The mechanism's parameters."""
        return self.mechanism.params()

    def description(self) -> str:
        extra = [f"dim={self.dim}"]
        if self.dropout:
            extra.append(f"dropout={self.dropout:g}")
        if self.causal and self.kind not in NATIVE_CAUSAL_KINDS:
            extra.append("causal (mask)")
        return f"{self.mechanism!r} [{', '.join(extra)}]"

    def __repr__(self) -> str:
        return f"Attention({self.description()})"

    # -- modes -----------------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Attention":
        """Training mode (dropout on, MoE jitter on) or, with ``mode=False``, eval mode."""
        self.training = bool(mode)
        if "training" in self.mechanism.param:
            self.mechanism.training = self.training
        return self

    def eval(self) -> "Attention":
        return self.train(False)

    # -- calls -----------------------------------------------------------------------------------------------------
    def _check_width(self, name: str, x) -> None:
        try:
            shape = np.shape(x)
        except ValueError:  # ragged: the mechanism reports it
            return
        if len(shape) >= 1 and shape[-1] != self.dim:
            raise ShapeError(f"{name}: this attention was built for dim={self.dim}, got shape {tuple(shape)}")

    def _mask(self, q, k, mask):
        if not (self.causal and self.kind not in NATIVE_CAUSAL_KINDS):
            return mask
        lq = 1 if np.ndim(q) == 1 else np.shape(q)[-2]
        lk = np.shape(k)[-2]
        causal = np.arange(lk)[None, :] <= np.arange(lq)[:, None]
        if np.ndim(q) == 1:
            causal = causal[0]
        if mask is None:
            return causal
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise ShapeError(f"mask: expected a boolean array (True = may attend), got dtype {m.dtype}")
        try:
            return np.logical_and(causal, m)
        except ValueError:
            raise ShapeError(f"mask: expected a shape broadcastable to {causal.shape}, got {m.shape}") from None

    def __call__(self, q, k, v, *, mask=None):
        """Attend: ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) → (..., Lq, dv)``."""
        self._check_width("q", q)
        self._check_width("k", k)
        mask = self._mask(q, k, mask)
        if self.training and self.dropout > 0:
            return self._dropout_forward(q, k, v, mask)
        return self.mechanism(q, k, v, mask=mask)

    def weights(self, q, k, *, mask=None):
        """The mechanism's attention weights (before dropout), with the causal mask applied."""
        self._check_width("q", q)
        self._check_width("k", k)
        return self.mechanism.weights(q, k, mask=self._mask(q, k, mask))

    def _keep(self, shape, dtype) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0x64726F70, self._draws])
        self._draws += 1
        if self.dropout >= 1.0:
            return np.zeros(shape, dtype)
        return ((rng.random(shape) >= self.dropout) / (1.0 - self.dropout)).astype(dtype)

    def _dropout_forward(self, q, k, v, mask):
        from workbench.inputs import prepare

        prepare(q, k, v, mask)  # validation (shapes, finiteness) with the usual messages
        single = np.ndim(q) == 1
        if self.kind == "multi_head":
            w = self.mechanism.head_weights(q, k, mask=mask)  # (..., h, Lq, Lk) or (..., h, Lk)
            h = self.num_heads
            vv = np.asarray(v, dtype=w.dtype)
            dv = vv.shape[-1]
            if dv % h:
                raise ConfigurationError(f"num_heads: dv={dv} is not divisible by num_heads={h}")
            vh = np.swapaxes(vv.reshape(vv.shape[:-1] + (h, dv // h)), -2, -3)  # (..., h, Lk, dv/h)
            wd = w * self._keep(w.shape, w.dtype)
            if single:
                out = np.einsum("...hk,...hkd->...hd", wd, vh)
                return out.reshape(out.shape[:-2] + (dv,))
            out = np.swapaxes(wd @ vh, -2, -3)  # (..., Lq, h, dv/h)
            return np.ascontiguousarray(out.reshape(out.shape[:-2] + (dv,)))
        w = self.mechanism.weights(q, k, mask=mask)  # (..., Lq, Lk) or (..., Lk)
        vv = np.asarray(v, dtype=w.dtype)
        wd = w * self._keep(w.shape, w.dtype)
        if single:
            return np.einsum("...k,...kd->...d", wd, vv)
        return wd @ vv


__all__ = ["Attention", "WEIGHT_DROPOUT_KINDS", "NATIVE_CAUSAL_KINDS"]
