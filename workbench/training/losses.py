"""Contrastive training losses with analytic gradients: InfoNCE, local contrastive, spectral regulariser.

Every loss has the seed system's interface ``compute(anchor, positive, negatives) -> loss`` and
``compute_with_gradients(...) -> (loss, ∂loss/∂anchor)``, plus :meth:`Loss.gradients` for the
gradients with respect to all three inputs. ``compute`` and ``compute_with_gradients`` run the
same code, so they always agree (docs/upstream.md#training).

Shapes: ``anchor (..., d)``, ``positive (..., d)`` (same shape), ``negatives (..., N, d)`` (same
leading shape). Leading dimensions are a batch of independent examples. Computation is in
float64; gradients come back in the input dtype (float64 iff every input is float64).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import NumericalError, ShapeError
from workbench import checks as C

#: Norms below this are floored in the cosine similarity (the seed system's guard).
NORM_FLOOR = 1e-8

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class LossGradients:
    """Gradients of a (reduced) loss with respect to each input, shapes as the inputs."""

    anchor: np.ndarray
    positive: np.ndarray
    negatives: np.ndarray


def _triple(anchor, positive, negatives):
    a = C.float_array("anchor", anchor)
    p = C.float_array("positive", positive)
    n = C.float_array("negatives", negatives, min_ndim=2)
    if a.shape[-1] == 0:
        raise ShapeError(f"anchor: expected a feature dimension d >= 1, got shape {a.shape}")
    if p.shape != a.shape:
        raise ShapeError(f"positive: expected shape {a.shape} (from anchor), got shape {p.shape}")
    if n.shape[:-2] != a.shape[:-1] or n.shape[-1] != a.shape[-1]:
        raise ShapeError(
            f"negatives: expected shape {a.shape[:-1] + ('N', a.shape[-1])} (anchor's batch, N negatives, d), "
            f"got shape {n.shape}")
    if 0 in a.shape[:-1]:
        raise ShapeError(f"anchor: expected at least one example, got shape {a.shape}")
    return a, p, n


def _norm(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(x * x, axis=-1, keepdims=True))


class Loss:
    """Base of the contrastive losses: ``compute``, ``compute_with_gradients`` and ``gradients``."""

    def _evaluate(self, a, p, n):
        """``(loss, ga, gp, gn)`` in float64, loss already reduced; subclasses implement it."""
        raise NotImplementedError

    def _run(self, anchor, positive, negatives):
        a, p, n = _triple(anchor, positive, negatives)
        dtype = C.result_dtype(a, p, n)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._evaluate(a.astype(np.float64), p.astype(np.float64), n.astype(np.float64))
        if not all(np.isfinite(x).all() for x in out):
            raise NumericalError(f"{type(self).__name__}: the loss or its gradient left the finite range "
                                 f"(inputs too large for float64); rescale the embeddings")
        return out, dtype

    @staticmethod
    def _loss_value(loss, dtype):
        return float(loss) if np.ndim(loss) == 0 else np.asarray(loss, dtype=dtype)

    def compute(self, anchor, positive, negatives):
        """The loss (a float, or an array for ``reduction="none"``)."""
        (loss, *_), dtype = self._run(anchor, positive, negatives)
        return self._loss_value(loss, dtype)

    __call__ = compute

    def compute_with_gradients(self, anchor, positive, negatives):
        """``(loss, ∂loss/∂anchor)``: the very same loss as :meth:`compute` and its exact gradient."""
        (loss, ga, _, _), dtype = self._run(anchor, positive, negatives)
        return self._loss_value(loss, dtype), ga.astype(dtype)

    def gradients(self, anchor, positive, negatives) -> LossGradients:
        """Gradients of the loss with respect to ``anchor``, ``positive`` and ``negatives``."""
        (_, ga, gp, gn), dtype = self._run(anchor, positive, negatives)
        return LossGradients(ga.astype(dtype), gp.astype(dtype), gn.astype(dtype))


def _cosine(a, b):
    """``cos(a, b) = ⟨a,b⟩/(max(‖a‖,ε) max(‖b‖,ε))`` and its partials; ``a (..., d)``, ``b (..., M, d)``
    or ``(..., d)`` broadcasting against ``a``. Returns ``cos``, ``∂cos/∂a``, ``∂cos/∂b``."""
    na_raw, nb_raw = _norm(a), _norm(b)
    na, nb = np.maximum(na_raw, NORM_FLOOR), np.maximum(nb_raw, NORM_FLOOR)
    cos = np.sum(a * b, axis=-1, keepdims=True) / (na * nb)
    # where a norm is floored it is a constant, so its derivative term vanishes
    da = b / (na * nb) - np.where(na_raw > NORM_FLOOR, cos * a / (na * na), 0.0)
    db = a / (na * nb) - np.where(nb_raw > NORM_FLOOR, cos * b / (nb * nb), 0.0)
    return cos[..., 0], da, db


def _reduce(per_example: np.ndarray, reduction: str):
    """Reduced loss and the factor each example's gradient is multiplied by."""
    if reduction == "mean":
        return per_example.mean(), 1.0 / per_example.size
    if reduction == "sum":
        return per_example.sum(), 1.0
    return per_example, 1.0


class InfoNCELoss(Loss):
    """InfoNCE with cosine similarities: ``ℓ = log Σ exp(s) − s⁺`` over ``s = [s⁺, s⁻_1..s⁻_N]``.

    ``s⁺ = cos(a, p)/τ``, ``s⁻_j = cos(a, n_j)/τ``, cosine with norms floored at 1e-8; the
    log-sum-exp is max-shifted. Gradient with ``π = softmax(s)``:
    ``∂ℓ/∂a = ((π⁺ − 1)·∂cos(a,p)/∂a + Σ_j π⁻_j·∂cos(a,n_j)/∂a)/τ``,
    ``∂cos(a,b)/∂a = b/(‖a‖‖b‖) − a⟨a,b⟩/(‖a‖³‖b‖)``.
    Reduction over the batch (leading dimensions): ``"mean"`` (default), ``"sum"`` or ``"none"``
    (per-example losses; the anchor gradient's row ``b`` is then ``∂ℓ_b/∂a_b``).
    Shapes: ``anchor (..., d)``, ``positive (..., d)``, ``negatives (..., N, d)``; ``N = 0`` gives 0.
    Do better than upstream: ``τ ≤ 0`` is an error instead of being silently raised to 0.01.
    Paper: van den Oord et al., *Representation Learning with Contrastive Predictive Coding*, 2018.
    """

    temperature = C.Checked(C.positive)  # τ > 0, checked on every assignment

    def __init__(self, temperature: float = 0.07, reduction: str = "mean") -> None:
        self.temperature = temperature
        self.reduction = C.choice("reduction", reduction, REDUCTIONS)

    def _evaluate(self, a, p, n):
        tau = self._temperature
        cp, dap, dpp = _cosine(a, p)  # (...,), (..., d)
        cn, dan, dnn = _cosine(a[..., None, :], n)  # (..., N), (..., N, d)
        s = np.concatenate([cp[..., None], cn], axis=-1) / tau  # (..., 1+N)
        m = s.max(axis=-1, keepdims=True)
        e = np.exp(s - m)
        z = e.sum(axis=-1, keepdims=True)
        per = (m + np.log(z))[..., 0] - s[..., 0]
        pi = e / z
        loss, f = _reduce(per, self.reduction)
        wp = (pi[..., :1] - 1.0) * (f / tau)  # (..., 1)
        wn = pi[..., 1:, None] * (f / tau)  # (..., N, 1)
        ga = wp * dap + (wn * dan).sum(axis=-2)
        gp = wp * dpp
        gn = wn * dnn
        return loss, ga, gp, gn


class LocalContrastiveLoss(Loss):
    """Local (triplet-margin) contrastive loss ``ℓ_j = max(0, ‖a − p‖ − ‖a − n_j‖ + margin)``.

    Reduction over the batch and the ``N`` negatives: ``"mean"`` (default; ``Σℓ/(batch·N)``),
    ``"sum"`` or ``"none"`` (the ``(..., N)`` array of ``ℓ_j``; the anchor gradient is then the
    ``(..., N, d)`` Jacobian, row ``j`` = ``∂ℓ_j/∂a``). Gradient of an active term (``ℓ_j > 0``):
    ``∂ℓ_j/∂a = (a − p)/‖a − p‖ − (a − n_j)/‖a − n_j‖`` (a term whose distance is exactly 0 has
    subgradient 0; so has an inactive term, including the kink ``ℓ_j = 0``).
    Do better than upstream (docs/upstream.md#training): ``"mean"`` divides loss *and* gradient by the same
    count (all negatives, as PyTorch's ``TripletMarginLoss``), so the gradient is the gradient of
    the loss; ``"none"`` returns every ``ℓ_j`` instead of ``ℓ_0``. ``N = 0`` gives 0.
    Paper: Schroff et al., *FaceNet*, 2015 (triplet loss); Hadsell et al., 2006.
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        self.margin = C.non_negative("margin", margin)
        self.reduction = C.choice("reduction", reduction, REDUCTIONS)

    def _evaluate(self, a, p, n):
        dp_vec = a - p  # (..., d)
        dn_vec = a[..., None, :] - n  # (..., N, d)
        dp = _norm(dp_vec)  # (..., 1)
        dn = _norm(dn_vec)  # (..., N, 1)
        terms = dp - dn[..., 0] + self.margin  # (..., N)
        per = np.maximum(terms, 0.0)
        active = (terms > 0)[..., None]  # (..., N, 1)
        up = np.divide(dp_vec, dp, out=np.zeros_like(dp_vec), where=dp > 0)[..., None, :]  # (..., 1, d)
        un = np.divide(dn_vec, dn, out=np.zeros_like(dn_vec), where=dn > 0)  # (..., N, d)
        if self.reduction == "mean":
            loss, f = per.mean() if per.size else 0.0, 1.0 / max(per.size, 1)
        elif self.reduction == "sum":
            loss, f = per.sum(), 1.0
        else:
            loss, f = per, 1.0
        jac_a = np.where(active, up - un, 0.0) * f  # (..., N, d): ∂ℓ_j/∂a
        jac_p = np.where(active, -up, 0.0) * f
        gn = np.where(active, un, 0.0) * f
        if self.reduction == "none":
            return loss, jac_a, jac_p, gn
        return loss, jac_a.sum(axis=-2), jac_p.sum(axis=-2), gn


class SpectralRegularization(Loss):
    """Spectral regulariser: the variance of the per-dimension variances of a batch of embeddings.

    For ``X (n, D)``: ``σ²_d = (1/n) Σ_i (X_id − μ_d)²`` (population variance),
    ``loss = w·(1/D) Σ_d (σ²_d − mean(σ²))²`` and, exactly,
    ``∂loss/∂X_id = (4w/(nD))·(σ²_d − mean(σ²))·(X_id − μ_d)``.
    As a :class:`Loss` the batch is every row of ``[anchor, positive, negatives]`` (each of the
    leading batch dimensions contributes its rows); :meth:`of_embeddings` takes ``X`` directly.
    Do better than upstream: the gradient is the real one (upstream returns zeros).
    """

    def __init__(self, weight: float = 0.01) -> None:
        self.weight = C.non_negative("weight", weight)

    def _loss_and_grad(self, x: np.ndarray):
        n, D = x.shape
        centred = x - x.mean(axis=0)
        var = (centred ** 2).mean(axis=0)
        dev = var - var.mean()
        loss = self.weight * float(np.mean(dev ** 2))
        grad = (4.0 * self.weight / (n * D)) * dev * centred
        return loss, grad

    def of_embeddings(self, x, *, with_gradient: bool = False):
        """The loss of an embedding batch ``x (n, D)`` (and ``∂loss/∂x`` if ``with_gradient``)."""
        a = C.float_array("x", x, min_ndim=2)
        if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ShapeError(f"x: expected a non-empty batch of embeddings of shape (n, D), got shape {a.shape}")
        loss, grad = self._loss_and_grad(a.astype(np.float64))
        return (loss, grad.astype(a.dtype)) if with_gradient else loss

    def _evaluate(self, a, p, n):
        d = a.shape[-1]
        na, nn = a.reshape(-1, d).shape[0], n.reshape(-1, d).shape[0]
        x = np.concatenate([a.reshape(-1, d), p.reshape(-1, d), n.reshape(-1, d)], axis=0)
        loss, grad = self._loss_and_grad(x)
        ga = grad[:na].reshape(a.shape)
        gp = grad[na:2 * na].reshape(p.shape)
        gn = grad[2 * na:2 * na + nn].reshape(n.shape)
        return loss, ga, gp, gn


__all__ = ["Loss", "LossGradients", "InfoNCELoss", "LocalContrastiveLoss", "SpectralRegularization"]
