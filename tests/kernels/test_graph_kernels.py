"""Edge-list attention kernels: the NumPy reference against loops written out here, and the Numba
kernel against the reference on random and adversarial edge lists."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.graph as kg

SETTINGS = settings(max_examples=25, deadline=None)
TOL = {np.float32: 2e-5, np.float64: 1e-11}


def random_edges(rng, ns, nd, E):
    src = rng.integers(0, ns, E)
    dst = rng.integers(0, nd, E)
    perm, indptr = kg.csr_by_destination(dst, nd)
    return src[perm], dst[perm], indptr


def leaky(x, s):
    return x if x >= 0 else s * x


def loop_gat(zq, zk, zv, src, dst, ea, we, att, variant, slope):
    """Per destination and head, the softmax over its incoming edges, in float64 loops."""
    nd, H, C = zq.shape
    E = len(src)
    out = np.zeros((nd, H, zv.shape[2]))
    w = np.zeros((E, H))
    for i in range(nd):
        es = [e for e in range(E) if dst[e] == i]
        for h in range(H):
            s = []
            for e in es:
                j = src[e]
                ze = [sum(we[h, c, t] * ea[e, t] for t in range(ea.shape[1])) for c in range(C)]
                if variant == "gatv1":
                    a_q, a_k, a_e = att
                    lin = sum(a_q[h, c] * zq[i, h, c] + a_k[h, c] * zk[j, h, c] + a_e[h, c] * ze[c] for c in range(C))
                    s.append(leaky(lin, slope))
                else:
                    s.append(sum(att[h, c] * leaky(zq[i, h, c] + zk[j, h, c] + ze[c], slope) for c in range(C)))
            if not es:
                continue
            m = max(s)
            ex = [np.exp(x - m) for x in s]
            tot = sum(ex)
            for e, x in zip(es, ex):
                w[e, h] = x / tot
                out[i, h] += x / tot * zv[src[e], h]
    return out, w


def gat_inputs(rng, ns=7, nd=5, E=20, H=2, C=3, F=4, De=2, dtype=np.float64):
    src, dst, indptr = random_edges(rng, ns, nd, E)
    f = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return dict(zq=f(nd, H, C), zk=f(ns, H, C), zv=f(ns, H, F), src=src, dst=dst, indptr=indptr,
                ea=f(E, De), we=f(H, C, De), a1=(f(H, C), f(H, C), f(H, C)), a2=f(H, C))


@pytest.mark.parametrize("variant", ["gatv1", "gatv2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_equals_loops(variant, seed):
    rng = np.random.default_rng(seed)
    x = gat_inputs(rng)
    att = x["a1"] if variant == "gatv1" else x["a2"]
    out, w = kg.gat_attention(x["zq"], x["zk"], x["zv"], x["src"], x["indptr"], edge_attr=x["ea"], w_edge=x["we"],
                              att=att, variant=variant, negative_slope=0.2, backend="numpy")
    eo, ew = loop_gat(x["zq"], x["zk"], x["zv"], x["src"], x["dst"], x["ea"], x["we"], att, variant, 0.2)
    np.testing.assert_allclose(out, eo, atol=1e-12)
    np.testing.assert_allclose(w, ew, atol=1e-12)


@pytest.mark.parametrize("variant", ["gatv1", "gatv2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edge_features", [True, False])
def test_numba_equals_reference(variant, dtype, edge_features):
    rng = np.random.default_rng(5)
    x = gat_inputs(rng, ns=40, nd=30, E=200, H=3, C=4, F=5, De=3, dtype=dtype)
    att = x["a1"] if variant == "gatv1" else x["a2"]
    kw = dict(edge_attr=x["ea"], w_edge=x["we"]) if edge_features else {}
    res = {be: kg.gat_attention(x["zq"], x["zk"], x["zv"], x["src"], x["indptr"], att=att, variant=variant,
                                negative_slope=0.1, backend=be, **kw) for be in ("numpy", "numba")}
    for a, b in zip(res["numpy"], res["numba"]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(b, a, atol=TOL[dtype] * 10, rtol=TOL[dtype] * 10)


def test_isolated_destinations_get_zero_and_no_nan(backend):
    rng = np.random.default_rng(1)
    src = np.array([0, 1, 1])
    dst = np.array([2, 2, 4])  # destinations 0, 1, 3 have no incoming edge
    perm, indptr = kg.csr_by_destination(dst, 5)
    vals = rng.standard_normal((3, 2, 4))
    out, w = kg.edge_softmax_aggregate(rng.standard_normal((3, 2)), src[perm], indptr, vals, backend=backend)
    assert np.isfinite(out).all() and np.isfinite(w).all()
    np.testing.assert_array_equal(out[[0, 1, 3]], 0.0)
    np.testing.assert_allclose(out[4], vals[1])  # a single incoming edge has weight 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adversarial_scores(backend, dtype):
    """Huge, equal and wildly spread scores: weights stay finite, normalised, no underflow to NaN."""
    n = 6
    src = np.array([0, 1, 2, 3, 4, 5, 0, 0, 1, 2])
    dst = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # 0 and 0 twice into 3: a multi-edge
    perm, indptr = kg.csr_by_destination(dst, n)
    s = np.array([[1e4], [1e4 - 1], [-1e4], [30.0], [30.0], [0.0], [88.0], [88.0], [-88.0], [0.0]], dtype)[perm]
    vals = np.arange(n * 2, dtype=dtype).reshape(n, 1, 2)
    out, w = kg.edge_softmax_aggregate(s, src[perm], indptr, vals, backend=backend)
    assert np.isfinite(w).all() and np.isfinite(out).all()
    sums = np.add.reduceat(w[:, 0], indptr[:-1][np.diff(indptr) > 0])
    np.testing.assert_allclose(sums, 1.0, rtol=1e-6)
    e = 1.0 / (1.0 + np.exp(-1.0))
    np.testing.assert_allclose(w[:3, 0], [e, 1 - e, 0.0], atol=1e-6)
    np.testing.assert_allclose(w[3:5, 0], [0.5, 0.5], atol=1e-6)


@st.composite
def edge_problems(draw):
    ns = draw(st.integers(1, 12))
    nd = draw(st.integers(1, 12))
    E = draw(st.integers(0, 40))
    H = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    return ns, nd, E, H, seed, scale


@SETTINGS
@given(edge_problems(), st.sampled_from([np.float32, np.float64]))
def test_softmax_aggregate_numba_equals_reference(problem, dtype):
    ns, nd, E, H, seed, scale = problem
    rng = np.random.default_rng(seed)
    src, dst, indptr = random_edges(rng, ns, nd, E)
    s = (rng.standard_normal((E, H)) * scale).astype(dtype)
    vals = rng.standard_normal((ns, H, 3)).astype(dtype)
    o1, w1 = kg.edge_softmax_aggregate(s, src, indptr, vals, backend="numpy")
    o2, w2 = kg.edge_softmax_aggregate(s, src, indptr, vals, backend="numba")
    np.testing.assert_allclose(w2, w1, atol=TOL[dtype] * 5)
    np.testing.assert_allclose(o2, o1, atol=TOL[dtype] * 20)
    # definition: per destination the weights sum to 1 (0 without edges), out = Σ w v_src
    for i in range(nd):
        es = np.flatnonzero(dst == i)
        if len(es):
            np.testing.assert_allclose(w1[es].sum(0), 1.0, rtol=1e-5)
            want = np.einsum("eh,ehf->hf", w1[es].astype(np.float64), vals[src[es]].astype(np.float64))
            np.testing.assert_allclose(o1[i], want, atol=TOL[dtype] * 20)
        else:
            assert (o1[i] == 0).all()


def test_csr_by_destination_is_stable():
    dst = np.array([2, 0, 2, 1, 0])
    perm, indptr = kg.csr_by_destination(dst, 4)
    np.testing.assert_array_equal(perm, [1, 4, 3, 0, 2])
    np.testing.assert_array_equal(indptr, [0, 2, 3, 5, 5])


def test_unknown_variant_and_cupy_reason():
    z = np.zeros((1, 1, 1))
    with pytest.raises(ValueError, match="variant"):
        kg.gat_attention(z, z, z, np.zeros(0, int), np.zeros(2, int), att=z[0], variant="gat3")
    assert kg.GRAPH.backends["cupy"] == "no CuPy kernel for graph yet"


def rot_half_split(x, p, freqs):
    """Half-split rotation written out coordinate by coordinate (odd tail unrotated)."""
    D = len(freqs)
    y = np.array(x, np.float64)
    for c in range(D):
        th = p * freqs[c]
        y[c] = x[c] * np.cos(th) - x[c + D] * np.sin(th)
        y[c + D] = x[c] * np.sin(th) + x[c + D] * np.cos(th)
    return y


@pytest.mark.parametrize("d", [1, 6, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rope_edge_scores(backend, d, dtype):
    rng = np.random.default_rng(d)
    src, dst, indptr = random_edges(rng, 8, 6, 30)
    q = rng.standard_normal((6, d)).astype(dtype)
    k = rng.standard_normal((8, d)).astype(dtype)
    pos = rng.uniform(-20, 600, 30)
    freqs = 100.0 ** (-2.0 * np.arange(d // 2) / max(2 * (d // 2), 1))
    s = kg.rope_edge_scores(q, k, src, indptr, pos, freqs, backend=backend)
    want = [q[dst[e]].astype(np.float64) @ rot_half_split(k[src[e]].astype(np.float64), pos[e], freqs) for e in range(30)]
    assert s.dtype == dtype
    np.testing.assert_allclose(s, want, atol=1e-4 if dtype == np.float32 else 1e-11)
