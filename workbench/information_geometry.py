"""Information geometry of the categorical softmax: Fisher metric, natural gradient, Fisher–Rao distance.

For ``p = softmax(θ)`` over ``n`` classes the Fisher information with respect to the logits is
``F = diag(p) − p pᵀ``: the Hessian of the log-partition ``A(θ) = log Σ_i exp θ_i``, symmetric
positive semi-definite, with null space ``span(1)`` (adding a constant to every logit changes no
probability) when every ``p_i > 0``. Every function is batched over leading axes (``(..., n)``)
and computes in float64; results come back in the input dtype (float32 unless float64).
Papers: Amari, *Natural Gradient Works Efficiently in Learning*, 1998; Rao, *Information and the
accuracy attainable in the estimation of statistical parameters*, 1945; Martens, *New insights and
perspectives on the natural gradient method*, 2020.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.inputs import _as_float

__all__ = [
    "as_distribution", "softmax", "fisher_matrix", "fisher_vector_product", "conjugate_gradient", "CGResult",
    "natural_gradient", "natural_gradient_step", "fisher_rao_distance", "METHODS",
]

#: Natural-gradient solvers: closed form (exact), conjugate gradient, diagonal approximation.
METHODS = ("exact", "cg", "diagonal")


# -- inputs ------------------------------------------------------------------------------------------

def _vectors(name: str, x) -> tuple[np.ndarray, np.dtype]:
    a = _as_float(name, x)
    if a.ndim == 0:
        raise ShapeError(f"{name}: expected an array of shape (..., n), got a scalar")
    if a.shape[-1] == 0:
        raise ShapeError(f"{name}: expected at least one entry on the last axis, got shape {a.shape}")
    return a.astype(np.float64, copy=False), a.dtype


def _tolerance(dtype) -> float:
    """How far a probability vector's sum may be from 1: ``√eps`` of its dtype."""
    return float(np.sqrt(np.finfo(dtype).eps))


def as_distribution(p, name: str = "p", *, allow_zero_rows: bool = False) -> np.ndarray:
    """Validate categorical distributions ``(..., n)`` and return them renormalised, in float64.

    Entries must be finite (else :class:`NumericalError`) and ``≥ 0``, each row's sum within
    ``√eps`` of the input dtype of 1 (else :class:`DataError`, naming ``name``); the rows are then
    divided by their sums so that the formulas apply exactly. ``allow_zero_rows`` also accepts
    all-zero rows (a fully masked attention row) and leaves them at 0.
    """
    a, dtype = _vectors(name, p)
    if (a < 0).any():
        bad = tuple(int(i) for i in np.argwhere(a < 0)[0])
        raise DataError(f"{name}: expected a probability vector (entries >= 0, summing to 1), "
                        f"got {a[bad]} at index {bad}")
    tot = a.sum(axis=-1, keepdims=True)
    ok = np.abs(tot - 1.0) <= _tolerance(dtype)
    if allow_zero_rows:
        ok |= tot == 0
    if not ok.all():
        bad = tuple(int(i) for i in np.argwhere(~ok[..., 0])[0])
        raise DataError(f"{name}: expected probability vectors summing to 1 on the last axis, got a sum of "
                        f"{float(tot[bad + (0,)])!r} at row {bad}" + (" (or an all-zero row)" if allow_zero_rows else ""))
    return np.divide(a, tot, out=np.zeros_like(a), where=tot > 0)


def _broadcast(names, *arrays):
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError:
        raise ShapeError(f"{', '.join(names)}: shapes must broadcast, got "
                         f"{', '.join(str(a.shape) for a in arrays)}") from None


def _out_dtype(*dtypes) -> type:
    return np.float64 if all(d == np.float64 for d in dtypes) else np.float32


def softmax(logits) -> np.ndarray:
    """``p_i = exp(θ_i − max θ) / Σ_j exp(θ_j − max θ)`` over the last axis; ``(..., n) → (..., n)``."""
    th, dtype = _vectors("logits", logits)
    e = np.exp(th - th.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)


def _softmax64(th: np.ndarray) -> np.ndarray:
    e = np.exp(th - th.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- the Fisher metric -----------------------------------------------------------------------------------

def fisher_matrix(p) -> np.ndarray:
    """``F = diag(p) − p pᵀ``, the Fisher information of ``softmax`` at ``p``; ``(..., n) → (..., n, n)``.

    For small ``n`` (inspection, tests); use :func:`fisher_vector_product` otherwise.
    """
    pp = as_distribution(p)
    f = -pp[..., :, None] * pp[..., None, :]
    idx = np.arange(pp.shape[-1])
    f[..., idx, idx] += pp
    return f.astype(_out_dtype(np.asarray(p).dtype))


def _fv(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    return p * v - p * np.sum(p * v, axis=-1, keepdims=True)


def fisher_vector_product(p, v) -> np.ndarray:
    """``F v = p ⊙ v − p (pᵀ v)`` in O(n); ``p (..., n)``, ``v (..., n)`` broadcast → ``(..., n)``.

    ``F v`` always sums to 0 (the range of ``F`` is the sum-zero vectors) and ``F 1 = 0``.
    """
    pp = as_distribution(p)
    vv, vdt = _vectors("v", v)
    pp, vv = _broadcast(("p", "v"), pp, vv)
    return _fv(pp, vv).astype(_out_dtype(np.asarray(p).dtype, vdt))


# -- conjugate gradient -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CGResult:
    """Solution ``x (..., n)``, iterations per system ``(...)``, relative residual ``‖b − A x‖/‖b‖``
    per system ``(...)`` and whether it reached ``tol``."""

    x: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray


def conjugate_gradient(matvec: Callable[[np.ndarray], np.ndarray], b, *, tol: float = 1e-10,
                       max_iter: int | None = None) -> CGResult:
    """Solve a batch of symmetric positive (semi-)definite systems ``A x = b`` by conjugate gradient.

    ``matvec(X) = A X`` row by row for ``X (..., n)``; ``b (..., n)``. Starts at ``x = 0`` and stops
    each system when ``‖r‖ ≤ tol·‖b‖`` (relative residual, not upstream's squared one) or after
    ``max_iter`` (default ``2n``) iterations. For a singular ``A`` and ``b`` in its range, the
    iterates stay in the range and converge to the minimum-norm solution ``A⁺ b``. All systems
    advance together (vectorised), which is why this is not ``scipy.sparse.linalg.cg`` (one system
    per call). Hestenes & Stiefel, *Methods of conjugate gradients*, 1952.
    """
    bb = np.asarray(b, dtype=np.float64)
    n = bb.shape[-1]
    tol = float(tol)
    if not np.isfinite(tol) or tol <= 0:
        raise ConfigurationError(f"tol: expected a finite tolerance > 0, got {tol!r}")
    max_iter = 2 * n if max_iter is None else max_iter
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigurationError(f"max_iter: expected an integer >= 1, got {max_iter!r}")
    x = np.zeros_like(bb)
    r = bb.copy()
    d = r.copy()
    bnorm = np.linalg.norm(bb, axis=-1)
    rho = np.sum(r * r, axis=-1)
    goal = tol * bnorm
    done = np.sqrt(rho) <= goal
    active = ~done
    iters = np.zeros(bb.shape[:-1], np.int64)
    for _ in range(int(max_iter)):
        if not active.any():
            break
        u = np.asarray(matvec(d), dtype=np.float64)
        du = np.sum(d * u, axis=-1)
        step = active & (du > 0)  # du <= 0: breakdown (b outside the range of a singular A)
        alpha = np.where(step, rho / np.where(step, du, 1.0), 0.0)
        x += alpha[..., None] * d
        r -= alpha[..., None] * u
        rho_new = np.sum(r * r, axis=-1)
        iters += step
        done |= step & (np.sqrt(rho_new) <= goal)
        active = step & ~done
        beta = np.where(active, rho_new / np.where(rho > 0, rho, 1.0), 0.0)
        d = np.where(active[..., None], r + beta[..., None] * d, d)
        rho = rho_new
    resid = np.linalg.norm(bb - np.asarray(matvec(x), dtype=np.float64), axis=-1)
    rel = np.divide(resid, bnorm, out=np.zeros_like(resid), where=bnorm > 0)
    return CGResult(x, iters, rel, done)


# -- natural gradient -------------------------------------------------------------------------------------

def _project(g: np.ndarray) -> np.ndarray:
    """Remove the component along ``1`` (it changes no probability): ``g − mean(g)``."""
    return g - g.mean(axis=-1, keepdims=True)


def _range_part(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Projection of ``g`` onto the range of ``F``: sum-zero on the support ``p_i > 0``, 0 elsewhere
    (``Π g`` when every ``p_i > 0``)."""
    sup = p > 0
    cnt = sup.sum(axis=-1, keepdims=True)
    gs = np.where(sup, g, 0.0)
    return np.where(sup, gs - gs.sum(axis=-1, keepdims=True) / cnt, 0.0)


def _exact(p: np.ndarray, g: np.ndarray, damping: float) -> np.ndarray:
    if damping > 0:
        # (diag(p + λ) − p pᵀ)⁻¹ h by Sherman–Morrison; h = Π g is sum-zero, so is the result
        h = _project(g)
        dinv = 1.0 / (p + damping)
        a = dinv * h
        c = dinv * p
        denom = 1.0 - np.sum(p * c, axis=-1, keepdims=True)  # = Σ λ p/(p + λ) > 0
        return _project(a + c * np.sum(p * a, axis=-1, keepdims=True) / denom)
    # F⁺ g: x = h / p on the support S = {p_i > 0} for h the range part of g, minus its mean on S
    sup = p > 0
    cnt = sup.sum(axis=-1, keepdims=True)
    x = np.divide(_range_part(p, g), p, out=np.zeros_like(p), where=sup)
    return np.where(sup, x - x.sum(axis=-1, keepdims=True) / cnt, 0.0)


def _natural_gradient64(logits, grad, method, damping, eps, tol, max_iter):
    th, tdt = _vectors("logits", logits)
    g, gdt = _vectors("grad", grad)
    th, g = _broadcast(("logits", "grad"), th, g)
    if method not in METHODS:
        raise ConfigurationError(f"method: expected one of {METHODS}, got {method!r}")
    lam = float(damping) if not isinstance(damping, (bool, np.bool_)) else -1.0
    if not np.isfinite(lam) or lam < 0:
        raise ConfigurationError(f"damping: expected a finite number >= 0, got {damping!r}")
    e = float(eps)
    if not np.isfinite(e) or e <= 0:
        raise ConfigurationError(f"eps: expected a finite number > 0, got {eps!r}")
    p = _softmax64(th)
    if method == "exact":
        x = _exact(p, g, lam)
    elif method == "diagonal":
        x = _project(_project(g) / (np.maximum(p * (1.0 - p), e) + lam))
    else:
        b = _range_part(p, g) if lam == 0 else _project(g)
        res = conjugate_gradient(lambda d: _fv(p, d) + lam * d, b, tol=tol, max_iter=max_iter)
        if not res.converged.all():
            worst = float(res.residual.max())
            raise NumericalError(
                f"method='cg': conjugate gradient stopped at a relative residual of {worst:.3g} > tol={tol!r} "
                f"(max_iter={max_iter!r}); raise max_iter or tol, add damping, or use method='exact'")
        x = res.x
    if not np.isfinite(x).all():
        raise NumericalError("grad: the natural gradient left the finite range (a probability underflowed to "
                             "nearly 0); use damping > 0")
    return th, x, _out_dtype(tdt, gdt)


def natural_gradient(logits, grad, *, method: str = "exact", damping: float = 0.0, eps: float = 1e-8,
                     tol: float = 1e-10, max_iter: int | None = None) -> np.ndarray:
    """The natural-gradient direction on the logits, ``δ = (F + λI)⁺ Π g``, ``F`` at ``softmax(θ)``.

    ``Π g = g − mean(g)`` first drops the component of ``g`` along ``1`` (shifting every logit
    alike changes no probability; the gradient of any loss of ``softmax(θ)`` is already sum-zero),
    so the result is the minimum-norm solution and sums to 0. Methods:

    * ``"exact"``: closed form. ``λ = 0``: ``F⁺ g = Π(Π g / p)`` (docs/upstream.md#information-geometry: ``g/p`` solves
      ``F x = g`` for sum-zero ``g``; removing the mean gives the minimum-norm solution), restricted
      to the support where some ``p_i`` underflow to 0. ``λ > 0``: Sherman–Morrison on
      ``diag(p + λ) − p pᵀ``.
    * ``"cg"``: :func:`conjugate_gradient` on ``(F + λI) x = Π g`` with the relative tolerance
      ``tol`` and ``max_iter`` (default ``2n``); a system that does not converge raises
      :class:`NumericalError` (use ``damping > 0`` or ``"exact"`` for very peaked ``p``).
    * ``"diagonal"``: the diagonal approximation ``x_i = (Π g)_i / (max(p_i(1 − p_i), eps) + λ)``,
      projected onto the sum-zero vectors; ``eps`` keeps saturated classes finite. (Upstream's
      "diagonal" ``Π(g/p)`` is in fact the exact solution; this is the usual diagonal
      Fisher of the ML literature.)

    ``logits (..., n)``, ``grad (..., n)`` broadcast → ``(..., n)``. Note that ``F⁺`` is large
    where some ``p_i`` is tiny but positive: that is the geometry, damping is the remedy.
    """
    _, x, dtype = _natural_gradient64(logits, grad, method, damping, eps, tol, max_iter)
    return x.astype(dtype)


def natural_gradient_step(logits, grad, lr: float = 0.1, **options) -> np.ndarray:
    """One natural-gradient step on the logits: ``θ − lr · natural_gradient(θ, g, **options)``.

    ``logits (..., n)``, ``grad (..., n)`` → ``(..., n)``; ``options`` as :func:`natural_gradient`
    (``method``, ``damping``, ``eps``, ``tol``, ``max_iter``). For the cross-entropy gradient
    ``g = p − t`` the step moves ``p`` straight towards ``t``: ``p' = p + lr (t − p) + O(lr²)``.
    """
    lr_ = float(lr) if not isinstance(lr, (bool, np.bool_)) else -1.0
    if not np.isfinite(lr_) or lr_ < 0:
        raise ConfigurationError(f"lr: expected a finite learning rate >= 0, got {lr!r}")
    opts = dict(method="exact", damping=0.0, eps=1e-8, tol=1e-10, max_iter=None)
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise ConfigurationError(f"options: unknown option(s) {unknown}; known: {sorted(opts)}")
    opts.update(options)
    th, x, dtype = _natural_gradient64(logits, grad, **opts)
    return (th - lr_ * x).astype(dtype)


# -- Fisher–Rao distance ---------------------------------------------------------------------------------

def fisher_rao_distance(p, q) -> np.ndarray:
    """Fisher–Rao (geodesic) distance between categorical distributions, ``2·arccos(Σ_i √(p_i q_i))``.

    Computed as ``4·arcsin(‖√p − √q‖/2)`` (equal for normalised ``p, q`` since
    ``‖√p − √q‖² = 2 − 2Σ√(p q)``), which keeps full precision for nearby distributions where the
    arccos form loses half the digits; the Bhattacharyya coefficient is effectively clipped to
    ``[0, 1]``. A metric on the simplex with values in ``[0, π]``. ``p (..., n)``, ``q (..., n)``
    broadcast → ``(...)``. Rao 1945; Amari & Nagaoka, *Methods of Information Geometry*, 2000.
    """
    pp = as_distribution(p, "p")
    qq = as_distribution(q, "q")
    pp, qq = _broadcast(("p", "q"), pp, qq)
    h = np.linalg.norm(np.sqrt(pp) - np.sqrt(qq), axis=-1)
    d = 4.0 * np.arcsin(np.minimum(1.0, 0.5 * h))
    return d.astype(_out_dtype(np.asarray(p).dtype, np.asarray(q).dtype))
