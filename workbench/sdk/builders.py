"""Fluent builders that configure real registered mechanisms: ``multi_head(768, 12).causal().build()``.

A builder records a choice of attention and its options; ``build()`` validates them and returns an
:class:`Attention`, a thin callable around the mechanism ``workbench.make(name, **params)`` made
with exactly those values (``Attention.mechanism``). The seed system's builder ignored every option
and always built scaled dot-product attention (docs/upstream.md#sdk); here each option either reaches
the mechanism or is refused with a :class:`~workbench.errors.ConfigurationError`.

| builder                        | mechanism            | parameters                                     |
|--------------------------------|----------------------|------------------------------------------------|
| ``scaled_dot(dim)``            | ``scaled_dot_product`` | ``causal``                                   |
| ``multi_head(dim, h)``         | ``multi_head``       | ``num_heads=h`` (``dim % h == 0``), ``causal``, ``seed`` |
| ``flash(dim, block)``          | ``flash``            | ``block_size=block``, ``causal``               |
| ``linear(dim, m)``             | ``linear``           | ``num_features=m``, ``causal``, ``seed``       |
| ``local_global(dim, w)``       | ``local_global``     | ``window=w``, ``num_global_tokens`` (default 1), ``causal`` |
| ``hyperbolic(dim, κ)``         | ``hyperbolic``       | ``c=−κ`` (κ < 0; causal through a mask)        |
| ``moe(dim, E, k)``             | ``moe``              | ``experts`` (E, cycling the default roster), ``top_k=k``, ``capacity_factor``, ``jitter_noise``, ``seed`` (causal through a mask) |

Options: ``.dropout(p)`` is attention-weight dropout (inverted, in training mode only: see
:class:`Attention`); ``.causal(flag)`` uses the mechanism's own causal parameter where it has one
and an explicit lower-triangular mask otherwise (SDPA's top-left alignment); ``.expert_capacity(f)``
and ``.jitter_noise(f)`` configure MoE and are refused for other attentions.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError
from workbench.sdk.attention import NATIVE_CAUSAL_KINDS, WEIGHT_DROPOUT_KINDS, Attention

#: Builder choice → registry name.
MECHANISMS = {
    "scaled_dot": "scaled_dot_product",
    "multi_head": "multi_head",
    "flash": "flash",
    "linear": "linear",
    "local_global": "local_global",
    "hyperbolic": "hyperbolic",
    "moe": "moe",
}

#: Global tokens of ``local_global`` when not set: 1, the [CLS] token of Longformer's
#: classification setting (the seed documentation gives no number).
DEFAULT_GLOBAL_TOKENS = 1

#: Values that belong to one choice of attention (dropped when another is chosen).
_CHOICE_KEYS = {"num_heads", "block_size", "num_features", "window_size", "curvature", "num_experts", "top_k"}

#: MoE capacity factor when not set (the seed system's and Switch Transformer's 1.25).
DEFAULT_CAPACITY = 1.25


def _int(name: str, value, minimum: int) -> int:
    return C.integer(name, value, minimum=minimum)


def _real(name: str, value, low: float, high: float, *, low_open=False, high_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ConfigurationError(f"{name}: expected a finite number, got {value!r}")
    v = float(value)
    if (v < low or (low_open and v == low)) or (v > high or (high_open and v == high)):
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigurationError(f"{name}: expected a value in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


def moe_roster(num_experts: int) -> list[str]:
    """``E`` expert names cycling the ``moe`` mechanism's default roster (registered names only):
    local (scaled dot-product), hierarchical (hyperbolic), global (linear), structural (edge-featured)."""
    from workbench.registry import registry

    default = registry["moe"].cls.param["experts"].default
    roster = [n for n in default if n in registry]
    return [roster[i % len(roster)] for i in range(num_experts)]


class AttentionBuilder:
    """Records a choice of attention and its options; :meth:`build` makes the mechanism.

    ``AttentionBuilder(dim)`` starts as scaled dot-product attention; ``.multi_head(h)``,
    ``.flash(block)``, ``.linear(m)``, ``.local_global(w)``, ``.hyperbolic(κ)``, ``.moe(E, k)``
    choose another (the last choice wins); ``.dropout(p)``, ``.causal(flag)``,
    ``.expert_capacity(f)``, ``.jitter_noise(f)``, ``.global_tokens(g)``, ``.seed(s)``,
    ``.backend(name)`` set options. Every method returns a new builder (builders are immutable,
    so a preset's builder can be refined without changing it). Validation happens in
    :meth:`build`, which raises :class:`~workbench.errors.ConfigurationError` naming the option.
    """

    __slots__ = ("_cfg",)

    def __init__(self, dim: int) -> None:
        self._cfg = {"dim": dim, "kind": "scaled_dot", "dropout": 0.0, "causal": False, "seed": 0,
                     "backend": "auto", "num_global_tokens": None,
                     "expert_capacity": None, "jitter_noise": None}

    def _with(self, **changes) -> "AttentionBuilder":
        b = AttentionBuilder.__new__(AttentionBuilder)
        b._cfg = {**self._cfg, **changes}
        return b

    def _choose(self, kind: str, **choice) -> "AttentionBuilder":
        """A new choice of attention: the previous choice's own values are dropped."""
        b = self._with(kind=kind, **choice)
        for key in _CHOICE_KEYS - set(choice):
            b._cfg.pop(key, None)
        return b

    # -- choices ---------------------------------------------------------------------------------------------------
    def scaled_dot(self) -> "AttentionBuilder":
        return self._choose("scaled_dot")

    def multi_head(self, num_heads: int) -> "AttentionBuilder":
        return self._choose("multi_head", num_heads=num_heads)

    def flash(self, block_size: int) -> "AttentionBuilder":
        return self._choose("flash", block_size=block_size)

    def linear(self, num_features: int) -> "AttentionBuilder":
        return self._choose("linear", num_features=num_features)

    def local_global(self, window_size: int) -> "AttentionBuilder":
        return self._choose("local_global", window_size=window_size)

    def hyperbolic(self, curvature: float) -> "AttentionBuilder":
        return self._choose("hyperbolic", curvature=curvature)

    def moe(self, num_experts: int, top_k: int) -> "AttentionBuilder":
        return self._choose("moe", num_experts=num_experts, top_k=top_k)

    # -- options ---------------------------------------------------------------------------------------------------
    def dropout(self, p: float) -> "AttentionBuilder":
        """Attention-weight dropout probability ``p ∈ [0, 1]`` (applied in training mode only)."""
        return self._with(dropout=p)

    def causal(self, causal: bool = True) -> "AttentionBuilder":
        """Causal masking: query ``i`` attends keys ``j ≤ i`` (SDPA's top-left alignment)."""
        return self._with(causal=causal)

    def expert_capacity(self, factor: float) -> "AttentionBuilder":
        """MoE capacity factor ``C = ⌈f·k·Lq/E⌉`` queries per expert (MoE only)."""
        return self._with(expert_capacity=factor)

    def jitter_noise(self, eps: float) -> "AttentionBuilder":
        """MoE router input noise ``U(1−ε, 1+ε)`` in training mode (MoE only)."""
        return self._with(jitter_noise=eps)

    def global_tokens(self, count: int) -> "AttentionBuilder":
        """Leading global tokens of local–global attention (default 1)."""
        return self._with(num_global_tokens=count)

    def seed(self, seed: int) -> "AttentionBuilder":
        """Seed of the mechanism's random draws and of the dropout masks."""
        return self._with(seed=seed)

    def backend(self, name: str) -> "AttentionBuilder":
        """Kernel backend of the mechanism (``"auto"``, ``"numpy"``, ``"numba"``, ``"cupy"``)."""
        return self._with(backend=name)

    # -- inspection ------------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The recorded choice and options (a copy)."""
        return dict(self._cfg)

    @property
    def kind(self) -> str:
        return self._cfg["kind"]

    @property
    def dim(self):
        return self._cfg["dim"]

    def mechanism_name(self) -> str:
        """The registry name :meth:`build` makes."""
        return MECHANISMS[self._cfg["kind"]]

    def __repr__(self) -> str:
        keys = {"multi_head": ("num_heads",), "flash": ("block_size",), "linear": ("num_features",),
                "local_global": ("window_size", "num_global_tokens"), "hyperbolic": ("curvature",),
                "moe": ("num_experts", "top_k", "expert_capacity", "jitter_noise")}.get(self.kind, ())
        parts = [f"dim={self.dim!r}"] + [f"{k}={self._cfg.get(k)!r}" for k in keys]
        parts += [f"{k}={self._cfg[k]!r}" for k in ("dropout", "causal") if self._cfg[k]]
        return f"{self.kind}({', '.join(parts)})"

    def description(self) -> str:
        """One line: the builder and the mechanism it makes."""
        return f"{self!r} -> workbench.make({self.mechanism_name()!r}, ...)"

    # -- build -----------------------------------------------------------------------------------------------------
    def mechanism_params(self) -> dict:
        """Validated parameters for ``workbench.make(self.mechanism_name(), **params)``."""
        c, kind = self._cfg, self._cfg["kind"]
        dim = _int("dim", c["dim"], 1)
        if not isinstance(c["causal"], (bool, np.bool_)):
            raise ConfigurationError(f"causal: expected True or False, got {c['causal']!r}")
        causal = bool(c["causal"])
        p = _real("dropout", c["dropout"], 0.0, 1.0)
        seed = _int("seed", c["seed"], 0)
        if p > 0 and kind not in WEIGHT_DROPOUT_KINDS:
            raise ConfigurationError(
                f"dropout: attention-weight dropout needs an attention whose output is W·V "
                f"({', '.join(WEIGHT_DROPOUT_KINDS)}); {kind!r} has no such weights, got dropout={p:g}. "
                f"Use AttentionPipeline.add_dropout(p) to drop the attention output instead")
        if kind != "moe":
            for opt in ("expert_capacity", "jitter_noise"):
                if c[opt] is not None:
                    raise ConfigurationError(f"{opt}: an option of MoE attention, not of {kind!r} (got {c[opt]!r})")
        if kind != "local_global" and c["num_global_tokens"] is not None:
            raise ConfigurationError(f"num_global_tokens: an option of local_global attention, not of {kind!r} "
                                     f"(got {c['num_global_tokens']!r})")
        params: dict = {"backend": c["backend"]}
        if kind in NATIVE_CAUSAL_KINDS:
            params["causal"] = causal
        if kind == "multi_head":
            h = _int("num_heads", c["num_heads"], 1)
            if dim % h:
                raise ConfigurationError(f"num_heads: dim={dim} is not divisible by num_heads={h}")
            params.update(num_heads=h, seed=seed)
        elif kind == "flash":
            params["block_size"] = _int("block_size", c["block_size"], 1)
        elif kind == "linear":
            params.update(num_features=_int("num_features", c["num_features"], 1), seed=seed)
        elif kind == "local_global":
            params.update(window=_int("window_size", c["window_size"], 1),
                          num_global_tokens=_int("num_global_tokens", DEFAULT_GLOBAL_TOKENS if c["num_global_tokens"]
                                                 is None else c["num_global_tokens"], 0))
        elif kind == "hyperbolic":
            k = c["curvature"]
            if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k) or k >= 0:
                raise ConfigurationError(
                    f"curvature: hyperbolic space has negative curvature; expected a finite value < 0 "
                    f"(e.g. -1.0), got {k!r} (the mechanism's c is its magnitude: c = -curvature)")
            params["c"] = -float(k)
        elif kind == "moe":
            E = _int("num_experts", c["num_experts"], 1)
            top_k = _int("top_k", c["top_k"], 1)
            if top_k > E:
                raise ConfigurationError(f"top_k: expected at most num_experts={E}, got {top_k}")
            cap = DEFAULT_CAPACITY if c["expert_capacity"] is None else c["expert_capacity"]
            cap = _real("expert_capacity", cap, 0.0, math.inf, low_open=True)
            jit = 0.0 if c["jitter_noise"] is None else _real("jitter_noise", c["jitter_noise"], 0.0, 1.0,
                                                                   high_open=True)
            params.update(experts=moe_roster(E), top_k=top_k, capacity_factor=cap, jitter_noise=jit, seed=seed)
        return params

    def build(self) -> Attention:
        """Validate the options and make the mechanism; see :class:`Attention`."""
        import workbench

        params = self.mechanism_params()
        mech = workbench.make(self.mechanism_name(), **params)
        return Attention(mech, kind=self.kind, dim=int(self._cfg["dim"]), dropout=float(self._cfg["dropout"]),
                         causal=bool(self._cfg["causal"]), seed=int(self._cfg["seed"]), builder=self)


# -- builder functions (the documented SDK entry points) ----------------------------------------------------------
def scaled_dot(dim: int) -> AttentionBuilder:
    """Scaled dot-product attention of width ``dim``."""
    return AttentionBuilder(dim)


def multi_head(dim: int, num_heads: int) -> AttentionBuilder:
    """Multi-head attention, ``num_heads`` heads of width ``dim/num_heads``."""
    return AttentionBuilder(dim).multi_head(num_heads)


def flash(dim: int, block_size: int) -> AttentionBuilder:
    """FlashAttention with key blocks of ``block_size``."""
    return AttentionBuilder(dim).flash(block_size)


def linear(dim: int, num_features: int) -> AttentionBuilder:
    """Linear (FAVOR+) attention with ``num_features`` random features."""
    return AttentionBuilder(dim).linear(num_features)


def local_global(dim: int, window_size: int) -> AttentionBuilder:
    """Local–global (Longformer) attention: window ``window_size`` plus 1 global token."""
    return AttentionBuilder(dim).local_global(window_size)


def hyperbolic(dim: int, curvature: float) -> AttentionBuilder:
    """Poincaré-ball attention of curvature ``curvature < 0`` (mechanism ``c = −curvature``)."""
    return AttentionBuilder(dim).hyperbolic(curvature)


def moe(dim: int, num_experts: int, top_k: int) -> AttentionBuilder:
    """Mixture-of-experts attention: ``num_experts`` experts, ``top_k`` per query."""
    return AttentionBuilder(dim).moe(num_experts, top_k)


__all__ = ["AttentionBuilder", "Attention", "scaled_dot", "multi_head", "flash", "linear", "local_global",
           "hyperbolic", "moe", "moe_roster", "MECHANISMS"]
