"""Diffusion attention kernels: the Numba path (diffused keys + the fused attention kernel) against
the NumPy reference (every query's logits diffused) on random (hypothesis) and adversarial graphs;
the stable Euler step; the reference heat flow against scipy.linalg.expm."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.diffusion import diffusion_attention, diffusion_weights
from kernels.reference import diffusion as ref
from workbench.diffusion import gaussian_affinity, knn_affinity, laplacian

SETTINGS = settings(max_examples=20, deadline=None)
KINDS = ("unnormalized", "symmetric", "random_walk")


def check(q, k, v, L, times, scale, T, integrator, num_steps=5, multiscale="mean"):
    kw = dict(times=times, scale=scale, temperature=T, integrator=integrator, num_steps=num_steps)
    fast = diffusion_attention(q, k, v, L, multiscale=multiscale, backend="numba", **kw)
    slow = diffusion_attention(q, k, v, L, multiscale=multiscale, backend="numpy", **kw)
    fw = diffusion_weights(q, k, L, backend="numba", **kw)
    sw = diffusion_weights(q, k, L, backend="numpy", **kw)
    assert fast.dtype == slow.dtype == v.dtype and fw.dtype == q.dtype
    assert np.isfinite(fast).all() and np.isfinite(fw).all()
    if q.dtype == np.float64:
        atol = 1e-10
    else:  # float32 logits from float32 diffused keys: a few ulps of max |s·q·k̃|/T
        atol = 16 * float(np.finfo(np.float32).eps) * max(1.0, scale * float(np.abs(q).sum(-1).max())
                                                            * float(np.abs(k).max()) / T)
    vmax = max(1.0, float(np.abs(v).max()))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=atol * vmax)
    np.testing.assert_allclose(fw, sw, rtol=0, atol=atol)
    np.testing.assert_allclose(fw.sum(-1), 1.0, atol=1e-5 if q.dtype == np.float32 else 1e-12)


@st.composite
def problems(draw):
    lq, lk, d, dv = draw(st.tuples(st.integers(1, 10), st.integers(2, 40), st.integers(1, 8), st.integers(1, 4)))
    dtype, amp = draw(st.sampled_from([np.float32, np.float64])), draw(st.sampled_from([1.0, 10.0]))
    clustered = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if clustered:
        centres = 3 * rng.standard_normal((3, d))
        k = centres[rng.integers(3, size=lk)] + 0.05 * rng.standard_normal((lk, d))
    else:
        k = rng.standard_normal((lk, d))
    q = (amp * rng.standard_normal((lq, d))).astype(dtype)
    return q, (amp * k).astype(dtype), rng.standard_normal((lk, dv)).astype(dtype)


@SETTINGS
@given(prob=problems(), kind=st.sampled_from(KINDS), graph=st.sampled_from(["dense", "knn"]),
       integrator=st.sampled_from(["expm", "euler"]), t=st.sampled_from([0.0, 0.3, 1.0, 4.0]),
       scales=st.integers(1, 3), multiscale=st.sampled_from(["mean", "concat"]))
def test_numba_equals_reference_random(prob, kind, graph, integrator, t, scales, multiscale):
    q, k, v = prob
    n = k.shape[0]
    w = gaussian_affinity(k) if graph == "dense" else knn_affinity(k, min(4, n - 1))
    L = laplacian(w, kind)
    times = t * np.arange(1, scales + 1) / scales
    check(q, k, v, L, times, 1 / np.sqrt(k.shape[1]), 0.7, integrator, multiscale=multiscale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_adversarial_graphs(rng, dtype, kind):
    d = 4
    cases = []
    # duplicate keys (zero distances), an isolated key far away, two disconnected components
    k = np.concatenate([np.repeat(rng.standard_normal((1, d)), 6, 0), 100 + rng.standard_normal((1, d)),
                        rng.standard_normal((5, d)) + 20])
    cases.append(k)
    cases.append(np.zeros((3, d)))  # every key identical
    cases.append(rng.standard_normal((2, d)))  # two keys
    for k in cases:
        k = k.astype(dtype)
        q = (30 * rng.standard_normal((5, d))).astype(dtype)
        v = rng.standard_normal((len(k), 3)).astype(dtype)
        for w in (gaussian_affinity(k, sigma=1.0), knn_affinity(k, min(3, len(k) - 1), sigma=1.0)):
            L = laplacian(w, kind)
            for integrator in ("expm", "euler"):
                check(q, k, v, L, [0.0, 2.0], 0.5, 1.0, integrator, multiscale="concat")


def test_graph_without_edges_is_plain_attention(rng):
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    L = laplacian(sp.csr_array((6, 6)), "random_walk")
    out = diffusion_attention(q, k, v, L, times=[5.0], scale=0.5, integrator="euler", backend="numba")
    s = 0.5 * q @ k.T
    w = np.exp(s - s.max(1, keepdims=True))
    np.testing.assert_allclose(out, (w / w.sum(1, keepdims=True)) @ v, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_stable_euler_step_is_a_non_negative_matrix(rng, kind):
    k = 0.01 * rng.standard_normal((30, 3))  # tight cluster: large unnormalised degrees
    L = laplacian(gaussian_affinity(k, sigma=1.0), kind)
    h = ref.stable_step(L)
    step = np.eye(30) - h * L
    assert step.min() >= -1e-12
    if kind != "symmetric":
        np.testing.assert_allclose(step.sum(1), 1.0, atol=1e-12)
    assert np.abs(np.linalg.eigvals(step)).max() <= 1 + 1e-9
    assert ref.euler_steps(1.0, 5, h) >= int(np.ceil(1.0 / h - 1e-9))


def test_reference_heat_matches_expm_for_several_times(rng):
    L = laplacian(gaussian_affinity(rng.standard_normal((8, 2))), "symmetric")
    x = rng.standard_normal((8, 3))
    times = np.array([0.5, 0.0, 2.0])
    got = ref.heat(L, x, times, "expm")
    for t, g in zip(times, got):
        np.testing.assert_allclose(g, scipy.linalg.expm(-t * L) @ x, atol=1e-12)
