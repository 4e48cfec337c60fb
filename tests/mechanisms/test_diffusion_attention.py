"""Diffusion attention against its definition (graph, Laplacian, e^{−tL} and softmax written out),
its reductions (t = 0 is scaled dot-product attention, upstream's 5 Euler steps where stable),
multiscale output, the energy report, and stability at L = 4096 on clustered keys."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

import workbench
from workbench.diffusion import diffusion_energy, heat_diffuse, knn_affinity, laplacian
from workbench.errors import ConfigurationError

KINDS = ("unnormalized", "symmetric", "random_walk")


def softmax_rows(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def dense_laplacian(k, sigma, kind):
    n = len(k)
    W = np.array([[0.0 if i == j else np.exp(-np.sum((k[i] - k[j]) ** 2) / (2 * sigma ** 2)) for j in range(n)]
                  for i in range(n)])
    d = W.sum(1)
    if kind == "unnormalized":
        return np.diag(d) - W
    if kind == "symmetric":
        return np.eye(n) - W / np.sqrt(np.outer(d, d))
    return np.eye(n) - W / d[:, None]


@pytest.mark.parametrize("kind", KINDS)
def test_dense_expm_weights_match_definition(rng, backend, kind):
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    mech = workbench.make("diffusion", graph="dense", laplacian=kind, integrator="expm", sigma=1.3,
                          diffusion_time=0.8, temperature=0.9, backend=backend)
    L = dense_laplacian(k, 1.3, kind)
    x = scipy.linalg.expm(-0.8 * L) @ (k @ q.T / np.sqrt(3))  # (Lk, Lq): each query's logits diffused
    W = softmax_rows(x.T / 0.9)
    np.testing.assert_allclose(mech.weights(q, k), W, atol=1e-10)
    np.testing.assert_allclose(mech(q, k, v), W @ v, atol=1e-10)


def test_euler_is_upstreams_five_steps_where_those_are_stable(rng, backend):
    q, k = rng.standard_normal((3, 4)), rng.standard_normal((10, 4))
    mech = workbench.make("diffusion", graph="dense", sigma=1.0, scale=1.0, backend=backend)  # random walk
    L = dense_laplacian(k, 1.0, "random_walk")
    x = k @ q.T
    for _ in range(5):
        x = x - 0.2 * (L @ x)
    np.testing.assert_allclose(mech.weights(q, k), softmax_rows(x.T), atol=1e-10)


def test_time_zero_is_scaled_dot_product(rng, backend):
    """Appendix A: ``diffusion_time = 0`` and ``T = √d`` with upstream's unscaled logits is SDPA."""
    q, k, v = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 16)), rng.standard_normal((2, 7, 3))
    mask = rng.random((2, 5, 7)) < 0.7
    mech = workbench.make("diffusion", diffusion_time=0.0, scale=1.0, temperature=4.0, backend=backend)
    sdpa = workbench.make("scaled_dot_product", backend="numpy")
    np.testing.assert_allclose(mech(q, k, v, mask=mask), sdpa(q, k, v, mask=mask), atol=1e-12)


@pytest.mark.parametrize("n", [12, 300])  # small key sets keep the graph dense, large ones sparse
def test_knn_graph_is_the_symmetrised_knn_graph(rng, n):
    k = rng.standard_normal((n, 3))
    mech = workbench.make("diffusion", k=3, laplacian="symmetric")
    W, L = mech.key_graph(k)
    assert sp.issparse(W) == sp.issparse(L) == (n > 256)
    dense = lambda m: m.toarray() if sp.issparse(m) else m  # noqa: E731
    np.testing.assert_allclose(dense(W), knn_affinity(k, 3).toarray(), atol=0)
    np.testing.assert_allclose(dense(L), laplacian(dense(W), "symmetric"), atol=1e-14)
    q = rng.standard_normal((2, 3))
    x = heat_diffuse(dense(L), k @ q.T / np.sqrt(3), 1.0, integrator="euler", num_steps=5)
    np.testing.assert_allclose(mech.weights(q, k), softmax_rows(x.T), atol=1e-12)


def test_multiscale_mean_and_concat(rng, backend):
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((9, 4)), rng.standard_normal((9, 2))
    common = dict(k=4, diffusion_time=1.5, integrator="expm", backend=backend)
    single = [workbench.make("diffusion", **{**common, "diffusion_time": t}) for t in (0.5, 1.0, 1.5)]
    mean = workbench.make("diffusion", scales=3, **common)
    np.testing.assert_allclose(mean.times, [0.5, 1.0, 1.5])  # the last scale reaches diffusion_time
    np.testing.assert_allclose(mean(q, k, v), np.mean([m(q, k, v) for m in single], axis=0), atol=1e-12)
    np.testing.assert_allclose(mean.weights(q, k), np.mean([m.weights(q, k) for m in single], axis=0), atol=1e-12)
    cat = workbench.make("diffusion", scales=3, multiscale="concat", **common)
    out = cat(q, k, v)
    assert out.shape == (3, 6)
    for s, m in enumerate(single):
        np.testing.assert_allclose(out[:, 2 * s:2 * s + 2], m(q, k, v), atol=1e-12)
    ws = cat.multiscale_weights(q, k)
    assert ws.shape == (3, 3, 9)
    for s, m in enumerate(single):
        np.testing.assert_allclose(ws[s], m.weights(q, k), atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_energies_match_the_dirichlet_energy_of_the_diffused_logits(rng, kind):
    q, k = rng.standard_normal((3, 4)), rng.standard_normal((10, 4))
    mech = workbench.make("diffusion", k=4, laplacian=kind, scales=2, diffusion_time=2.0, integrator="expm")
    W, L = mech.key_graph(k)
    e = mech.energies(q, k)
    assert e.shape == (3, 3)
    x = k @ q.T / 2.0
    for t_i, t in enumerate([0.0, 1.0, 2.0]):
        xt = heat_diffuse(L, x, t)
        for i in range(3):
            assert e[i, t_i] == pytest.approx(diffusion_energy(xt[:, i], W, kind), rel=1e-9, abs=1e-12)
    assert (np.diff(e, axis=1) <= 1e-12).all()


def test_masked_keys_take_no_part_in_the_graph(rng, backend):
    q, k, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 15, 3)), rng.standard_normal((2, 15, 2))
    keep = rng.random((2, 15)) < 0.6
    mech = workbench.make("diffusion", k=3, backend=backend)
    out = mech(q, k, v, mask=keep[:, None, :])
    for b in range(2):
        np.testing.assert_allclose(out[b], mech(q[b], k[b, keep[b]], v[b, keep[b]]), atol=1e-6)


def clustered_keys(rng, n, d, clusters=8, spread=0.02):
    centres = 3.0 * rng.standard_normal((clusters, d))
    return (centres[rng.integers(clusters, size=n)] + spread * rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("integrator", ["euler", "expm"])
def test_never_diverges_on_clustered_keys_at_4096(rng, kind, integrator):
    """Tight clusters make the unnormalised degrees large (upstream's Δt = 0.2 diverges there)."""
    k = clustered_keys(rng, 4096, 16)
    q = rng.standard_normal((64, 16)).astype(np.float32)
    v = rng.standard_normal((4096, 4)).astype(np.float32)
    mech = workbench.make("diffusion", laplacian=kind, integrator=integrator, sigma=1.0, scale=1.0)
    W, L = mech.key_graph(k)
    x0 = (k @ q.T).astype(np.float64)
    xt = heat_diffuse(L, x0, 1.0, integrator=integrator, num_steps=5)
    assert np.isfinite(xt).all()
    if kind == "symmetric":
        assert (np.linalg.norm(xt, axis=0) <= np.linalg.norm(x0, axis=0) * (1 + 1e-9)).all()
    else:
        assert np.abs(xt).max() <= np.abs(x0).max() * (1 + 1e-9)
    out = mech(q, k, v)
    assert np.isfinite(out).all()
    w = mech.weights(q[:4], k)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    if kind == "unnormalized":  # the case upstream gets wrong
        naive = x0[:, :4]
        for _ in range(5):
            naive = naive - 0.2 * (L @ naive)
        assert not np.isfinite(naive).all() or np.abs(naive).max() > 100 * np.abs(x0[:, :4]).max()


@pytest.mark.parametrize("params, arg", [
    ({"diffusion_time": -1.0}, "diffusion_time"),
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -2.0}, "temperature"),
    ({"k": 0}, "k"),
    ({"sigma": 0.0}, "sigma"),
    ({"laplacian": "normalized"}, "laplacian"),
    ({"graph": "hnsw"}, "graph"),
    ({"integrator": "rk4"}, "integrator"),
    ({"scales": 0}, "scales"),
    ({"num_steps": 0}, "num_steps"),
])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError, match=rf"\b{arg}\b"):
        workbench.make("diffusion", **params)
