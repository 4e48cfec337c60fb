"""Lorentz cascade kernels: the Numba kernels against the NumPy reference and the top-k rule written out."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels import lorentz as kl

SETTINGS = settings(max_examples=25, deadline=None)


def cases(max_len=40):
    return st.fixed_dictionaries({
        "seed": st.integers(0, 2**31 - 1),
        "B": st.integers(1, 2), "lq": st.integers(1, max_len), "lk": st.integers(1, max_len),
        "d": st.integers(1, 6), "dv": st.integers(1, 4), "heads": st.integers(1, 4),
        "score": st.sampled_from(["distance", "busemann"]),
        "top_k": st.sampled_from([0, 1, 3, 100]),
        "mask": st.sampled_from(["none", "shared", "rows"]),
        "amp": st.sampled_from([0.3, 1.0, 30.0, 300.0]),  # 300: far points, the log-domain path
        "adversarial": st.booleans(),
        "blocks": st.sampled_from([(64, 256), (1, 1), (4, 3), (7, 16)]),  # several key tiles and query blocks
    })


def problem(case):
    rng = np.random.default_rng(case["seed"])
    B, lq, lk, d, dv, amp = case["B"], case["lq"], case["lk"], case["d"], case["dv"], case["amp"]
    q, k = amp * rng.standard_normal((B, lq, d)), amp * rng.standard_normal((B, lk, d))
    v = rng.standard_normal((B, lk, dv))
    if case["adversarial"]:
        n = min(lq, lk)
        k[:, :n:2] = q[:, :n:2]  # keys equal to queries: distance 0
        q[:, 1::4] = 0.0  # zero queries (the origin)
        k[:, 1::5] = 0.0
        if lk > 3:
            k[:, 3] = k[:, 2]  # duplicate keys: tied scores, top-k must break ties by key order
            v[:, 3] = -v[:, 2]
    mask = None
    if case["mask"] != "none":
        mask = rng.random((B if case["mask"] == "rows" else 1, lq, lk)) < 0.7
        if case["mask"] == "rows":
            mask[:, ::3] = False
    cs = np.exp(rng.uniform(np.log(0.05), np.log(4.0), case["heads"]))
    return q, k, v, mask, np.sort(cs)


@SETTINGS
@given(case=cases())
def test_numba_equals_numpy(case):
    q, k, v, mask, cs = problem(case)
    kw = dict(curvatures=cs, temperature=0.7, score=case["score"], top_k=case["top_k"], mask=mask)
    ref = kl.cascade_attention(q, k, v, backend="numpy", **kw)
    bq, bk = case["blocks"]
    fast = kl.cascade_attention(q, k, v, backend="numba", block_q=bq, block_k=bk, **kw)
    assert fast.shape == ref.shape == (len(cs),) + q.shape[:2] + (v.shape[-1] + 1,)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, ref, rtol=1e-11, atol=1e-11 * max(1.0, float(np.abs(ref).max())))
    betas = np.linspace(1.0, 2.0, len(cs))
    wr = kl.cascade_weights(q, k, betas=betas, backend="numpy", **kw)
    wf = kl.cascade_weights(q, k, betas=betas, backend="numba", **kw)
    np.testing.assert_allclose(wf, wr, rtol=0, atol=1e-11)
    if mask is not None:
        empty = ~np.broadcast_to(mask, wf.shape).any(-1)
        assert (fast[:, empty] == 0).all() and (wf[empty] == 0).all()


def stable_top_k(scores, allowed, k):
    """The top-k rule written out: sort allowed keys by (−score, index), keep the first k."""
    ranked = sorted((j for j in range(len(scores)) if allowed[j]), key=lambda j: (-scores[j], j))
    return set(ranked[:k])


@pytest.mark.parametrize("score", ["distance", "busemann"])
@pytest.mark.parametrize("top_k", [1, 2, 3, 4, 6])
def test_top_k_breaks_ties_by_key_order(score, top_k, backend):
    """Groups of identical keys straddle the top-k threshold: the lower key indices are kept."""
    rng = np.random.default_rng(top_k)
    base = rng.standard_normal((4, 3))
    k = base[[0, 1, 1, 2, 1, 3, 2, 1]][None]  # key 1 four times, key 2 twice
    q = (base[1] + 0.05 * rng.standard_normal(3))[None, None]
    mask = np.ones((1, 1, 8), bool)
    mask[0, 0, 2] = False  # one copy masked: ties are counted among allowed keys only
    w = kl.cascade_weights(q, k, curvatures=[0.5, 2.0], betas=[1.0, 1.0], score=score, top_k=top_k, mask=mask,
                           backend=backend)
    s0 = kl._ref.head_scores(q, k, 0.5, 1.0, score)[0, 0]
    assert len(set(np.round(s0, 12))) < 8  # there are ties
    kept = set(np.flatnonzero(w[0, 0] > 0))
    assert kept == stable_top_k(s0, mask[0, 0], top_k)


@pytest.mark.parametrize("c", [0.1, 1.0, 3.0])
def test_sums_are_convex_combinations_on_the_hyperboloid(c, backend):
    """One head: ``S = Σ_j W_ij x_j`` with ``x_j = exp_0(v_j)`` written out; ``W`` rows sum to 1."""
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((1, 4, 3)), rng.standard_normal((1, 6, 3)), rng.standard_normal((1, 6, 2))
    S = kl.cascade_attention(q, k, v, curvatures=[c], backend=backend)[0, 0]
    W = kl.cascade_weights(q, k, curvatures=[c], betas=[1.0], backend=backend)[0]
    np.testing.assert_allclose(W.sum(-1), 1.0, rtol=0, atol=1e-12)
    for i in range(4):
        expected = np.zeros(3)
        for j in range(6):
            n = np.linalg.norm(v[0, j])
            a = math.sqrt(c) * n
            expected += W[i, j] * np.concatenate([[math.cosh(a) / math.sqrt(c)], math.sinh(a) / a * v[0, j]])
        np.testing.assert_allclose(S[i], expected, rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    x = np.zeros((1, 2, 3))
    with pytest.raises(kernels.BackendError, match="curvatures"):
        kl.cascade_attention(x, x, x, curvatures=[0.0])
    with pytest.raises(kernels.BackendError, match="score"):
        kl.cascade_attention(x, x, x, curvatures=[1.0], score="horosphere")
    with pytest.raises(kernels.BackendError, match="betas"):
        kl.cascade_weights(x, x, curvatures=[1.0, 2.0], betas=[1.0])
    with pytest.raises(kernels.BackendError):
        kl.cascade_attention(x, x, x, curvatures=[1.0], backend="cupy")
    for name, bad in (("block_k", 0), ("block_q", True), ("block_k", 2.5)):
        with pytest.raises(kernels.BackendError, match=name):
            kl.cascade_attention(x, x, x, curvatures=[1.0], backend="numba", **{name: bad})


@pytest.mark.parametrize("a", [150.0, 299.0, 301.0, 700.0])
def test_far_points_just_below_and_above_the_log_domain_switch(a, backend):
    """``a = √c‖x‖`` near :data:`kernels.numba.lorentz.FAR`: ``X ~ sinh a·sinh b`` reaches 1e260 on the
    direct side (where ``√(X(X+2))`` would overflow: ``√X·√(X+2)`` does not); beyond, the log domain."""
    rng = np.random.default_rng(int(a))
    dirs = rng.standard_normal((1, 7, 5))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    q = a * dirs[:, :3] * rng.uniform(0.98, 1.0, (1, 3, 1))
    k = a * dirs[:, 3:] * rng.uniform(0.98, 1.0, (1, 4, 1))
    v = rng.standard_normal((1, 4, 2))
    ref = kl.cascade_attention(q, k, v, curvatures=[1.0], backend="numpy")
    out = kl.cascade_attention(q, k, v, curvatures=[1.0], backend=backend)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11)
    w = kl.cascade_weights(q, k, curvatures=[1.0], betas=[1.0], backend=backend)
    np.testing.assert_allclose(w, kl.cascade_weights(q, k, curvatures=[1.0], betas=[1.0], backend="numpy"),
                               rtol=0, atol=1e-11)
