"""Validation of ``(q, k, v, mask)`` and the flattening of leading batch dimensions.

Shapes follow SDPA: ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)``; leading
dimensions broadcast. A 1-D query ``(d,)`` with ``k (n, d)`` is one query (output ``(dv,)``).
Boolean masks (True = may attend) broadcast to ``(..., Lq, Lk)``. CuPy arrays stay CuPy arrays
(the CuPy backend serves them: CuPy in, CuPy out); everything else becomes NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import NumericalError, ShapeError


@dataclass(frozen=True)
class Batch:
    """Validated inputs flattened to ``(B, L, ·)``; ``restore`` maps results back."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray | None
    mask: np.ndarray | None  # (Bm, Lq, Lk) with Bm in {1, B}, or None
    batch_shape: tuple
    single_query: bool
    graph: object | None = None  # the call's ``graph=`` for mechanisms that accept one
    backend: str | None = None  # the backend resolved for the call (``Mechanism._prepare``), else None

    @property
    def dim(self) -> int:
        return self.q.shape[-1]

    def restore(self, x: np.ndarray, trailing: int = 2) -> np.ndarray:
        """``(B, *rest) → (*batch_shape, *rest)``; drops the query axis for a 1-D query."""
        out = x.reshape(self.batch_shape + x.shape[1:])
        if self.single_query:
            out = out[..., 0, :] if trailing == 2 else out[..., 0]
        return out


def _xp(x):
    """The array module of ``x`` (:func:`kernels.dispatch.array_module`)."""
    from kernels.dispatch import array_module

    return array_module(x)


def _asarray(name: str, x) -> np.ndarray:
    if _xp(x) is not np:
        return x
    try:
        return np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ShapeError(f"{name}: expected a rectangular array, got a ragged sequence ({exc})") from None


def all_finite(a: np.ndarray) -> bool:
    """True iff no NaN or ±inf: one BLAS pass (``Σ a²`` is finite unless something is not,
    or it overflows, in which case the element-wise check decides)."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return True
    xp = _xp(flat)
    if xp is not np:
        return bool(xp.isfinite(flat).all())
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.dot(flat, flat)):
            return True
    return bool(np.isfinite(flat).all())


def _as_float(name: str, x) -> np.ndarray:
    if x is None:
        raise ShapeError(f"{name}: expected an array, got None")
    a = _asarray(name, x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ShapeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ShapeError(f"{name}: expected a real array, got dtype {a.dtype}")
    dtype = np.float64 if a.dtype == np.float64 else np.float32
    a = a.astype(dtype, copy=False)
    if not all_finite(a):
        xp = _xp(a)
        bad = [int(i) for i in xp.argwhere(~xp.isfinite(a))[0]]
        raise NumericalError(
            f"{name}: expected finite values, got {a[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
        )
    return a


def _check_rank(name: str, a: np.ndarray, minimum: int, what: str) -> None:
    if a.ndim < minimum:
        raise ShapeError(f"{name}: expected shape {what} (at least {minimum}-D), got shape {a.shape}")


def prepare(q, k, v=None, mask=None, *, need_v: bool = True, graph=None) -> Batch:
    """Validate and flatten; raise :class:`ShapeError` / :class:`NumericalError` naming the input."""
    q, k = _as_float("q", q), _as_float("k", k)
    single = q.ndim == 1
    if single:
        if k.ndim != 2:
            raise ShapeError(f"k: a 1-D query (d,) needs keys of shape (n, d), got shape {k.shape}")
        q = q[None, :]
    _check_rank("q", q, 2, "(..., Lq, d)")
    _check_rank("k", k, 2, "(..., Lk, d)")
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"k: expected feature dimension d={q.shape[-1]} (from q), got shape {k.shape}")
    if q.shape[-1] == 0:
        raise ShapeError(f"q: expected a feature dimension d >= 1, got shape {q.shape}")
    if k.shape[-2] == 0:
        raise ShapeError(f"k: expected at least one key, got shape {k.shape}")
    if q.shape[-2] == 0:
        raise ShapeError(f"q: expected at least one query, got shape {q.shape}")
    lead = [q.shape[:-2], k.shape[:-2]]
    if need_v or v is not None:
        v = _as_float("v", v)
        _check_rank("v", v, 2, "(..., Lk, dv)")
        if v.shape[-2] != k.shape[-2]:
            raise ShapeError(f"v: expected Lk={k.shape[-2]} rows (from k), got shape {v.shape}")
        if v.shape[-1] == 0:
            raise ShapeError(f"v: expected a value dimension dv >= 1, got shape {v.shape}")
        lead.append(v.shape[:-2])
    try:
        batch_shape = tuple(np.broadcast_shapes(*lead))
    except ValueError:
        raise ShapeError(
            "q, k, v: leading (batch) dimensions must broadcast, got "
            + ", ".join(str(s) for s in lead)
        ) from None
    dtype = np.float64 if all(a.dtype == np.float64 for a in (q, k) + ((v,) if v is not None else ())) else np.float32
    lq, lk = q.shape[-2], k.shape[-2]
    B = int(np.prod(batch_shape, dtype=np.int64))

    def flat(a):
        xp = _xp(a)
        a = xp.broadcast_to(a.astype(dtype, copy=False), batch_shape + a.shape[-2:])
        return xp.ascontiguousarray(a.reshape((B,) + a.shape[-2:]))

    qf, kf = flat(q), flat(k)
    vf = flat(v) if v is not None else None
    return Batch(qf, kf, vf, _prepare_mask(mask, batch_shape, B, lq, lk, single), batch_shape, single, graph)


def _prepare_mask(mask, batch_shape, B, lq, lk, single):
    if mask is None:
        return None
    m = _asarray("mask", mask)
    if m.dtype != np.bool_:
        raise ShapeError(f"mask: expected a boolean array (True = may attend), got dtype {m.dtype}")
    if single and m.ndim == 1:
        m = m[None, :]
    expected = batch_shape + (lq, lk)
    try:
        full = np.broadcast_shapes(m.shape, expected)
    except ValueError:
        full = None
    if full != expected:
        raise ShapeError(f"mask: expected a shape broadcastable to {expected}, got {m.shape}")
    m = m.reshape((1,) * (len(expected) - m.ndim) + m.shape)
    lead = m.shape[:-2]
    if all(s == 1 for s in lead):
        return m.reshape((1,) + m.shape[-2:])
    return _xp(m).broadcast_to(m, batch_shape + m.shape[-2:]).reshape((B,) + m.shape[-2:])
