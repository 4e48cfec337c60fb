"""Attention pipelines: attention, normalisation, dropout, residual and custom stages run in order.

``AttentionPipeline().add_norm("layer").add_attention(attn).add_dropout(0.1).add_residual()``
records the stages; ``run(q, K, V)`` executes them on a running array ``x`` that starts as the
query (the seed system's ``run`` returned the query unchanged, docs/upstream.md#sdk):

* attention: ``x ← attn(x, K, V, mask)`` (an :class:`~workbench.sdk.builders.Attention`, any
  registered mechanism, or any callable ``(q, k, v, mask=...)``);
* norm: LayerNorm ``(x − mean)/√(var + ε)`` over the features; RMSNorm ``x/√(mean(x²) + ε)``;
  BatchNorm: each feature normalised over every row of the batch (all leading axes), which needs
  at least two rows; no learned scale or shift (identity affine), batch statistics always;
* dropout: inverted dropout ``x ⊙ D/(1 − p)``, ``D ~ Bernoulli(1 − p)``, in training mode only;
* residual: ``x ← x + x_in`` where ``x_in`` is the input of the block of the most recent attention
  stage: the value of ``x`` before the norm stages that immediately precede that attention stage
  (pre-norm: ``x + Attn(LN(x))``), or the attention's own input if no norm precedes it (post-norm:
  ``LN(x + Attn(x))``). Stack several blocks with :meth:`AttentionPipeline.add_block`, whose
  residuals refer to the block's own input;
* custom: ``x ← f(x)``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from workbench.errors import ConfigurationError, NumericalError, ShapeError


class NormType(str, enum.Enum):
    """Normalisation of a norm stage (the README's ``NormType::LayerNorm`` etc. are aliases)."""

    LAYER = "layer"
    RMS = "rms"
    BATCH = "batch"
    LayerNorm = "layer"
    RMSNorm = "rms"
    BatchNorm = "batch"


#: ε of each normalisation unless given: PyTorch's LayerNorm/BatchNorm 1e-5, T5/LLaMA RMSNorm 1e-6.
DEFAULT_EPS = {NormType.LAYER: 1e-5, NormType.RMS: 1e-6, NormType.BATCH: 1e-5}

_NORM_NAMES = {"layer": NormType.LAYER, "layernorm": NormType.LAYER, "layer_norm": NormType.LAYER,
               "rms": NormType.RMS, "rmsnorm": NormType.RMS, "rms_norm": NormType.RMS,
               "batch": NormType.BATCH, "batchnorm": NormType.BATCH, "batch_norm": NormType.BATCH}


def layer_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """``(x − mean)/√(var + ε)`` over the last axis (population variance)."""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def rms_norm(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``x/√(mean(x²) + ε)`` over the last axis."""
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)


def batch_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Each feature normalised over all rows (every leading axis is the batch): ``(x − μ_f)/√(σ²_f + ε)``."""
    if x.ndim < 2 or int(np.prod(x.shape[:-1])) < 2:
        raise ShapeError(f"x: BatchNorm normalises each feature over the batch and needs at least 2 rows, "
                         f"got shape {x.shape}")
    rows = x.reshape(-1, x.shape[-1])
    mu = rows.mean(axis=0)
    var = ((rows - mu) ** 2).mean(axis=0)
    return (x - mu) / np.sqrt(var + eps)


_NORMS = {NormType.LAYER: layer_norm, NormType.RMS: rms_norm, NormType.BATCH: batch_norm}


# -- stages -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionStage:
    attention: Any


@dataclass(frozen=True)
class NormStage:
    kind: NormType
    eps: float


@dataclass(frozen=True)
class DropoutStage:
    p: float


@dataclass(frozen=True)
class ResidualStage:
    pass


@dataclass(frozen=True)
class CustomStage:
    fn: Callable


@dataclass(frozen=True)
class BlockStage:
    pipeline: "AttentionPipeline"


def _as_norm(kind) -> NormType:
    if isinstance(kind, NormType):
        return kind
    if isinstance(kind, str) and kind.lower() in _NORM_NAMES:
        return _NORM_NAMES[kind.lower()]
    raise ConfigurationError(f"norm: expected 'layer', 'rms' or 'batch' (or a NormType), got {kind!r}")


def _probability(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not (0.0 <= float(p) <= 1.0):
        raise ConfigurationError(f"p: expected a dropout probability in [0, 1], got {p!r}")
    return float(p)


class AttentionPipeline:
    """Stages run in order on ``x`` (initially the query); see the module docstring for each stage.

    Every ``add_*`` method appends a stage and returns the pipeline, so calls chain.
    ``run(q, K, V, mask=None)`` (also ``pipeline(q, K, V)``) returns the final ``x`` in the query's
    dtype (float32 unless float64). ``train()`` / ``eval()`` switch the dropout stages and the
    attentions' own training mode (eval is the default). ``seed`` fixes the dropout masks: the
    n-th run of a pipeline is reproducible.
    """

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigurationError(f"seed: expected an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self.stages: list = []
        self.training = False
        self._runs = 0

    # -- building --------------------------------------------------------------------------------------------------
    def add_attention(self, attention) -> "AttentionPipeline":
        from workbench.sdk.builders import AttentionBuilder

        if isinstance(attention, AttentionBuilder):
            raise ConfigurationError(f"attention: got the builder {attention!r}; call .build() on it first")
        if not callable(attention):
            raise ConfigurationError(
                f"attention: expected a built Attention, a mechanism or a callable (q, k, v), "
                f"got {type(attention).__name__}")
        self.stages.append(AttentionStage(attention))
        return self

    def add_norm(self, kind="layer", eps: float | None = None) -> "AttentionPipeline":
        k = _as_norm(kind)
        e = DEFAULT_EPS[k] if eps is None else eps
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not (0 < float(e) < np.inf):
            raise ConfigurationError(f"eps: expected a finite number > 0, got {eps!r}")
        self.stages.append(NormStage(k, float(e)))
        return self

    def add_dropout(self, p: float) -> "AttentionPipeline":
        self.stages.append(DropoutStage(_probability(p)))
        return self

    def add_residual(self) -> "AttentionPipeline":
        if not any(isinstance(s, AttentionStage) for s in self.stages):
            raise ConfigurationError("residual: a residual stage adds the input of the preceding attention "
                                     "stage; add an attention stage first")
        self.stages.append(ResidualStage())
        return self

    def add_custom(self, fn: Callable) -> "AttentionPipeline":
        if not callable(fn):
            raise ConfigurationError(f"fn: expected a callable x -> x, got {type(fn).__name__}")
        self.stages.append(CustomStage(fn))
        return self

    def add_block(self, pipeline: "AttentionPipeline") -> "AttentionPipeline":
        """A nested pipeline run as one stage (its residuals refer to its own stages)."""
        if not isinstance(pipeline, AttentionPipeline) or pipeline is self:
            raise ConfigurationError(f"pipeline: expected another AttentionPipeline, got {pipeline!r}")
        self.stages.append(BlockStage(pipeline))
        return self

    def __len__(self) -> int:
        return len(self.stages)

    def describe(self) -> list[str]:
        """One line per stage."""
        out = []
        for s in self.stages:
            if isinstance(s, AttentionStage):
                d = getattr(s.attention, "description", None)
                out.append(f"attention: {d() if callable(d) else repr(s.attention)}")
            elif isinstance(s, NormStage):
                out.append(f"norm: {s.kind.value} (eps={s.eps:g})")
            elif isinstance(s, DropoutStage):
                out.append(f"dropout: p={s.p:g}")
            elif isinstance(s, ResidualStage):
                out.append("residual")
            elif isinstance(s, CustomStage):
                out.append(f"custom: {getattr(s.fn, '__name__', repr(s.fn))}")
            else:
                out.append(f"block: [{'; '.join(s.pipeline.describe())}]")
        return out

    def __repr__(self) -> str:
        return f"AttentionPipeline([{'; '.join(self.describe())}])"

    # -- modes -----------------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "AttentionPipeline":
        self.training = bool(mode)
        for s in self.stages:
            if isinstance(s, BlockStage):
                s.pipeline.train(mode)
            elif isinstance(s, AttentionStage):
                a = s.attention
                if callable(getattr(a, "train", None)):
                    a.train(mode)
                elif "training" in getattr(a, "param", ()):
                    a.training = bool(mode)
        return self

    def eval(self) -> "AttentionPipeline":
        return self.train(False)

    # -- running ---------------------------------------------------------------------------------------------------
    def run(self, q, k, v, *, mask=None) -> np.ndarray:
        """Run every stage on ``x = q``; ``K (..., Lk, d)``, ``V (..., Lk, dv)`` feed the attentions."""
        try:
            x = np.asarray(q)
        except ValueError as exc:
            raise ShapeError(f"q: expected a rectangular array, got a ragged sequence ({exc})") from None
        if x.dtype == object or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or x.ndim < 1:
            raise ShapeError(f"q: expected a real array of shape (..., d), got dtype {x.dtype}, shape {x.shape}")
        x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
        if not np.isfinite(x).all():
            raise NumericalError("q: expected finite values")
        rng = np.random.default_rng([self.seed, 0x706970, self._runs])
        self._runs += 1
        return self._run(x, k, v, mask, rng)

    __call__ = run

    def _run(self, x, k, v, mask, rng):
        dtype = x.dtype
        norm_run_start = None  # x before the current run of consecutive norm stages
        block_input = None  # x_in of the most recent attention stage
        for i, s in enumerate(self.stages):
            if isinstance(s, NormStage):
                if norm_run_start is None:
                    norm_run_start = x
                x = _NORMS[s.kind](x, s.eps).astype(dtype, copy=False)
                continue
            if isinstance(s, AttentionStage):
                block_input = x if norm_run_start is None else norm_run_start
                x = np.asarray(s.attention(x, k, v) if mask is None else s.attention(x, k, v, mask=mask))
            elif isinstance(s, DropoutStage):
                if self.training and s.p > 0:
                    keep = np.zeros(x.shape, dtype) if s.p >= 1 else ((rng.random(x.shape) >= s.p) / (1 - s.p))
                    x = x * keep.astype(dtype)
            elif isinstance(s, ResidualStage):
                if x.shape != block_input.shape:
                    raise ShapeError(f"residual (stage {i}): the attention output has shape {x.shape} but its "
                                     f"block input has shape {block_input.shape}; a residual needs dv = d")
                x = x + block_input
            elif isinstance(s, CustomStage):
                y = s.fn(x)
                try:
                    y = np.asarray(y)
                except ValueError:
                    y = np.asarray(y, dtype=object)
                if y.dtype == object or not np.issubdtype(y.dtype, np.number):
                    raise ConfigurationError(f"fn (stage {i}): a custom stage must return a numeric array, got {y!r}")
                if not np.isfinite(y).all():
                    raise NumericalError(f"fn (stage {i}): the custom stage returned non-finite values")
                x = y
            else:  # BlockStage
                x = s.pipeline._run(x, k, v, mask, rng)
            norm_run_start = None
            x = x.astype(dtype, copy=False)
        return x


def transformer_block(attention, dropout: float = 0.1) -> AttentionPipeline:
    """Post-norm block (Vaswani et al. 2017): attention → dropout(p) → residual → LayerNorm,
    i.e. ``LN(x + Dropout(Attn(x)))``."""
    return AttentionPipeline().add_attention(attention).add_dropout(dropout).add_residual().add_norm("layer")


def prenorm_transformer_block(attention, dropout: float = 0.1) -> AttentionPipeline:
    """Pre-norm block (Xiong et al. 2020): LayerNorm → attention → dropout(p) → residual,
    i.e. ``x + Dropout(Attn(LN(x)))``."""
    return AttentionPipeline().add_norm("layer").add_attention(attention).add_dropout(dropout).add_residual()


__all__ = ["AttentionPipeline", "NormType", "transformer_block", "prenorm_transformer_block",
           "layer_norm", "rms_norm", "batch_norm", "DEFAULT_EPS"]
