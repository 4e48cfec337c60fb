"""Lorentz cascade attention against its definition written out on the hyperboloid (float64 loops)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from tests._helpers import assert_matches_per_batch, softmax_allowed
from tests._helpers import hyperboloid_exp0 as exp0
from workbench.errors import ConfigurationError


def log0(x, c):
    xs = x[1:]
    n = float(np.linalg.norm(xs))
    if n == 0:
        return np.zeros(len(xs))
    return math.acosh(max(1.0, math.sqrt(c) * x[0])) / math.sqrt(c) * xs / n


def mdot(x, y):
    return -x[0] * y[0] + float(np.dot(x[1:], y[1:]))


def head_curvatures(h, c0, c1):
    return [math.exp(math.log(c0) + (i / (h - 1) if h > 1 else 0.5) * (math.log(c1) - math.log(c0))) for i in range(h)]


def score(qi, kj, c, kind, t):
    x, y = exp0(qi, c), exp0(kj, c)
    if kind == "distance":
        return -math.acosh(max(1.0, -c * mdot(x, y))) / math.sqrt(c) / t
    return -abs(math.log(y[0] - y[1]) - math.log(x[0] - x[1])) / t


def definition(q, k, v, heads, crange, t, kind, allowed, betas=None):
    """``(Lq, d), (Lk, d), (Lk, dv)`` → ``(Lq, dv), (Lq, Lk)``: the cascade written out."""
    cs = head_curvatures(heads, *crange)
    betas = [1 / heads] * heads if betas is None else list(np.asarray(betas) / np.sum(betas))
    outs, ws = [], []
    for i in range(len(q)):
        out, wsum = np.zeros(v.shape[1]), np.zeros(len(k))
        for beta, c in zip(betas, cs):
            w = softmax_allowed([score(q[i], k[j], c, kind, t) for j in range(len(k))], allowed[i])
            wsum += beta * w
            if w.sum() == 0:
                continue
            s = sum(w[j] * exp0(v[j], c) for j in range(len(k)))
            mu = s / (math.sqrt(c) * math.sqrt(abs(mdot(s, s))))
            out += beta * log0(mu, c)
        outs.append(out)
        ws.append(wsum)
    return np.array(outs), np.array(ws)


@pytest.fixture
def qkv(rng):
    return (0.6 * rng.standard_normal((2, 5, 4)), 0.6 * rng.standard_normal((2, 6, 4)),
            0.6 * rng.standard_normal((2, 6, 3)))


@pytest.mark.parametrize("kind", ["distance", "busemann"])
@pytest.mark.parametrize("heads, crange, t", [(3, (0.5, 2.0), 1.0), (1, (0.3, 0.3), 0.5), (4, (0.1, 2.0), 2.0)])
def test_matches_definition(kind, heads, crange, t, qkv, rng, backend):
    q, k, v = qkv
    mask = rng.random((2, 5, 6)) < 0.7
    mask[0, 3] = False
    mech = workbench.make("lorentz_cascade", num_heads=heads, curvature_range=crange, temperature=t, score=kind,
                          backend=backend)
    out, w = mech(q, k, v, mask=mask), mech.weights(q, k, mask=mask)
    refs = [definition(q[b], k[b], v[b], heads, crange, t, kind, mask[b]) for b in range(2)]
    assert_matches_per_batch(out, w, refs, mask, atol=1e-10, atol_out=1e-9)
    assert (out[0, 3] == 0).all() and (w[0, 3] == 0).all()


def test_head_weights(qkv, backend):
    q, k, v = qkv
    mech = workbench.make("lorentz_cascade", num_heads=2, head_weights=[3.0, 1.0], backend=backend)
    ref_out, ref_w = definition(q[0], k[0], v[0], 2, (0.1, 2.0), 1.0, "distance", np.ones((5, 6), bool), [3, 1])
    np.testing.assert_allclose(mech(q[0], k[0], v[0]), ref_out, atol=1e-9)
    np.testing.assert_allclose(mech.weights(q[0], k[0]), ref_w, atol=1e-10)


@pytest.mark.parametrize("kind", ["distance", "busemann"])
def test_weights_depend_on_the_query(kind, rng, backend):
    """Regression of upstream's horosphere score, whose query term cancels in the softmax."""
    k = rng.standard_normal((8, 4))
    mech = workbench.make("lorentz_cascade", score=kind, backend=backend)
    q1, q2 = rng.standard_normal(4), rng.standard_normal(4)
    w1, w2 = mech.weights(q1, k), mech.weights(q2, k)
    assert np.abs(w1 - w2).max() > 1e-3
    # a query equal to a key gives that key the largest weight (distance 0 / equal Busemann value)
    assert np.argmax(mech.weights(k[5], k)) == 5


def test_single_key_returns_its_value(rng, backend):
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((1, 3)), rng.standard_normal((1, 5))
    out = workbench.make("lorentz_cascade", num_heads=3, backend=backend)(q, k, v)
    np.testing.assert_allclose(out, np.broadcast_to(v, (4, 5)), atol=1e-12)


@pytest.mark.parametrize("kind", ["distance", "busemann"])
@pytest.mark.parametrize("top_k", [1, 3, 5])
def test_top_k_equals_dense_attention_on_the_selected_keys(kind, top_k, rng, backend):
    q, k, v = (0.7 * rng.standard_normal(s) for s in ((2, 6, 4), (2, 9, 4), (2, 9, 3)))
    mask = rng.random((2, 6, 9)) < 0.8
    heads, crange = 3, (0.2, 1.5)
    sparse = workbench.make("lorentz_cascade", num_heads=heads, curvature_range=crange, score=kind, top_k=top_k,
                            backend=backend)
    dense = workbench.make("lorentz_cascade", num_heads=heads, curvature_range=crange, score=kind, backend=backend)
    c0 = head_curvatures(heads, *crange)[0]
    keep = np.zeros_like(mask)
    for b in range(2):
        for i in range(6):
            s = np.array([score(q[b, i], k[b, j], c0, kind, 1.0) if mask[b, i, j] else -np.inf for j in range(9)])
            chosen = [j for j in np.argsort(-s, kind="stable")[:top_k] if mask[b, i, j]]
            keep[b, i, chosen] = True
    np.testing.assert_allclose(sparse(q, k, v, mask=mask), dense(q, k, v, mask=keep), atol=1e-12)
    np.testing.assert_allclose(sparse.weights(q, k, mask=mask), dense.weights(q, k, mask=keep), atol=1e-12)
    assert ((sparse.weights(q, k, mask=mask) > 0).sum(-1) <= top_k).all()


def test_top_k_at_least_n_equals_dense(rng, backend):
    q, k, v = (rng.standard_normal(s) for s in ((2, 4, 5), (2, 7, 5), (2, 7, 2)))
    dense = workbench.make("lorentz_cascade", backend=backend)
    for top_k in (7, 20):
        sparse = workbench.make("lorentz_cascade", top_k=top_k, backend=backend)
        np.testing.assert_array_equal(sparse(q, k, v), dense(q, k, v))


def test_backends_agree_on_far_points(rng):
    """Large inputs (cosh would overflow in float32): finite and equal on both backends."""
    q, k, v = (s * rng.standard_normal(sh) for s, sh in ((30, (2, 7, 8)), (30, (2, 9, 8)), (1, (2, 9, 4))))
    for dtype in (np.float32, np.float64):
        a = workbench.make("lorentz_cascade", backend="numpy")(q.astype(dtype), k.astype(dtype), v.astype(dtype))
        b = workbench.make("lorentz_cascade", backend="numba")(q.astype(dtype), k.astype(dtype), v.astype(dtype))
        assert a.dtype == dtype and np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("params, arg", [
    ({"curvature_range": (2.0, 1.0)}, "curvature_range"),
    ({"curvature_range": (0.0, 1.0)}, "curvature_range"),
    ({"num_heads": 2, "head_weights": [1.0]}, "head_weights"),
    ({"num_heads": 2, "head_weights": [1.0, -1.0]}, "head_weights"),
    ({"num_heads": 0}, "num_heads"),
    ({"top_k": -1}, "top_k"),
    ({"score": "horosphere"}, "score"),
    ({"temperature": 0.0}, "temperature"),
])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=arg):
        workbench.make("lorentz_cascade", **params)


@pytest.mark.parametrize("shared_mask", [False, True])
def test_batch_chunks_equal_one_call(monkeypatch, shared_mask, rng, backend):
    """The forward runs per chunk of batch items: chunks of one item give the same result."""
    import workbench.mechanisms.lorentz_cascade as mod

    q, k, v = rng.standard_normal((5, 6, 4)), rng.standard_normal((5, 7, 4)), rng.standard_normal((5, 7, 3))
    mask = rng.random((1 if shared_mask else 5, 6, 7)) < 0.7
    for top_k in (0, 3):
        mech = workbench.make("lorentz_cascade", num_heads=3, top_k=top_k, backend=backend)
        whole = mech(q, k, v, mask=mask)
        monkeypatch.setattr(mod, "BATCH_CHUNK", 1)
        np.testing.assert_array_equal(mech(q, k, v, mask=mask), whole)
        monkeypatch.undo()
