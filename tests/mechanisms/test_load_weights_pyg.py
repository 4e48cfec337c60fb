"""PyG weights in edge_featured (key map ``"pyg"``): GATConv and GATv2Conv written out here in PyG's
own convention (``y = x Wᵀ + b``, ``att (1, H, C)``, self-loops with the mean incoming edge
feature, output bias), against PyG itself where it is installed (≤ 1e-5 in float32), the round trip
and the refusals."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, ShapeError

N, F, H, C, DE = 9, 6, 3, 4, 2


def leaky(x, s=0.2):
    return np.where(x >= 0, x, s * x)


def graph(rng):
    """A small directed graph with an existing self-loop, a node without incoming edges (8) and edge features."""
    src = np.array([0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 0, 4, 5, 8, 2])
    dst = np.array([1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 1, 5, 6, 3, 3, 2])
    return np.stack([src, dst]), rng.standard_normal((len(src), DE))


def with_loops(ei, ea):
    """PyG's ``remove_self_loops`` then ``add_self_loops(fill_value="mean")`` (mean over a node's incoming edges)."""
    keep = ei[0] != ei[1]
    src, dst, ea = ei[0][keep], ei[1][keep], ea[keep]
    fill = np.zeros((N, ea.shape[1]))
    for i in range(N):
        if (dst == i).any():
            fill[i] = ea[dst == i].mean(0)
    return np.concatenate([src, np.arange(N)]), np.concatenate([dst, np.arange(N)]), np.concatenate([ea, fill])


def pyg_state(rng, v2: bool, edge: bool, concat: bool) -> dict:
    w = lambda *s: rng.standard_normal(s) / np.sqrt(s[-1])  # noqa: E731
    sd = {}
    if v2:
        sd.update({"lin_l.weight": w(H * C, F), "lin_l.bias": rng.standard_normal(H * C),
                   "lin_r.weight": w(H * C, F), "lin_r.bias": rng.standard_normal(H * C),
                   "att": rng.standard_normal((1, H, C))})
    else:
        sd.update({"lin.weight": w(H * C, F), "att_src": rng.standard_normal((1, H, C)),
                   "att_dst": rng.standard_normal((1, H, C))})
        if edge:
            sd["att_edge"] = rng.standard_normal((1, H, C))
    if edge:
        sd["lin_edge.weight"] = w(H * C, DE)
    sd["bias"] = rng.standard_normal(H * C if concat else C)
    return sd


def gat_definition(x, ei, ea, sd, v2: bool, concat: bool):
    """PyG's GATConv / GATv2Conv forward, edge by edge, float64."""
    src, dst, ea = with_loops(ei, ea)
    if v2:
        xs = (x @ sd["lin_l.weight"].T + sd["lin_l.bias"]).reshape(N, H, C)
        xd = (x @ sd["lin_r.weight"].T + sd["lin_r.bias"]).reshape(N, H, C)
    else:
        xs = xd = (x @ sd["lin.weight"].T).reshape(N, H, C)
    e_proj = (ea @ sd["lin_edge.weight"].T).reshape(-1, H, C) if "lin_edge.weight" in sd else 0
    if v2:
        score = (leaky(xs[src] + xd[dst] + e_proj) * sd["att"]).sum(-1)
    else:
        score = (xs[src] * sd["att_src"]).sum(-1) + (xd[dst] * sd["att_dst"]).sum(-1)
        if "att_edge" in sd:
            score = score + (e_proj * sd["att_edge"]).sum(-1)
        score = leaky(score)
    out = np.zeros((N, H, C))
    for i in range(N):
        sel = dst == i
        s = score[sel]
        p = np.exp(s - s.max(0))
        p /= p.sum(0)
        out[i] = (p[:, :, None] * xs[src[sel]]).sum(0)
    out = out.reshape(N, H * C) if concat else out.mean(1)
    return out + sd["bias"]


CASES = [(v2, edge, concat) for v2 in (True, False) for edge in (True, False) for concat in (True, False)]


@pytest.mark.parametrize("v2,edge,concat", CASES)
def test_pyg_map_equals_the_definition(v2, edge, concat):
    rng = np.random.default_rng(10 + CASES.index((v2, edge, concat)))
    ei, ea = graph(rng)
    sd = pyg_state(rng, v2, edge, concat)
    x = rng.standard_normal((N, F))
    m = workbench.make("edge_featured", num_heads=H, concat=concat, variant="gatv2" if v2 else "gatv1")
    m.load_weights(sd, key_map="pyg")
    out = m.propagate(x, ei, ea if edge else None)
    np.testing.assert_allclose(out, gat_definition(x, ei, ea, sd, v2, concat), atol=1e-10)


def test_pyg_state_dict_round_trip():
    rng = np.random.default_rng(20)
    ei, ea = graph(rng)
    x = rng.standard_normal((N, F))
    m = workbench.make("edge_featured", num_heads=H).load_weights(pyg_state(rng, True, True, True), key_map="pyg")
    again = workbench.make("edge_featured", num_heads=H).load_weights(m.state_dict())
    np.testing.assert_array_equal(again.propagate(x, ei, ea), m.propagate(x, ei, ea))
    assert set(m.state_dict()) == {"W", "W_q", "W_v", "W_e", "a", "b", "b_q", "b_v", "b_o"}


def test_seeded_weights_round_trip():
    """``state_dict(d, dv)`` without loaded weights gives the seeded ones; loading them changes nothing."""
    rng = np.random.default_rng(21)
    ei, ea = graph(rng)
    x = rng.standard_normal((N, 8))
    for variant in ("gatv2", "gatv1"):
        m = workbench.make("edge_featured", num_heads=2, variant=variant, edge_dim=DE)
        again = workbench.make("edge_featured", num_heads=2, variant=variant).load_weights(m.state_dict(8, 8))
        np.testing.assert_allclose(again.propagate(x, ei, ea), m.propagate(x, ei, ea), atol=1e-12)


def test_pyg_refusals_name_the_key():
    rng = np.random.default_rng(22)
    sd = pyg_state(rng, True, True, True)
    m = workbench.make("edge_featured", num_heads=H)
    with pytest.raises(ShapeError, match="lin_r.weight: missing"):
        m.load_weights({k: v for k, v in sd.items() if k != "lin_r.weight"}, key_map="pyg")
    with pytest.raises(ShapeError, match="extra.weight"):
        m.load_weights({**sd, "extra.weight": np.ones((2, 2))}, key_map="pyg")
    with pytest.raises(ShapeError, match="att: expected shape"):
        m.load_weights({**sd, "att": np.ones((2, H, C))}, key_map="pyg")
    with pytest.raises(ConfigurationError, match="res.weight"):
        m.load_weights({**sd, "res.weight": np.ones((H * C, F))}, key_map="pyg")
    with pytest.raises(ConfigurationError, match="num_heads"):
        workbench.make("edge_featured", num_heads=2).load_weights(sd, key_map="pyg")
    with pytest.raises(ConfigurationError, match="variant"):
        workbench.make("edge_featured", num_heads=H, variant="gatv1").load_weights(sd, key_map="pyg")
    with pytest.raises(ShapeError, match="b_o: .*concat"):
        workbench.make("edge_featured", num_heads=H, concat=False).load_weights(sd, key_map="pyg")
    with pytest.raises(ShapeError, match="W_q: expected shape"):
        m.load_weights({**sd, "lin_r.weight": np.ones((H * C, F + 1))}, key_map="pyg")
    assert not m.weights_loaded  # nothing changed by the refused loads
    m.load_weights(sd, key_map="pyg")
    ei, ea = graph(rng)
    with pytest.raises(ShapeError, match="edge_attr: .*width 2"):
        m.propagate(rng.standard_normal((N, F)), ei, np.ones((ei.shape[1], 3)))
    with pytest.raises(ShapeError, match="q: width 5"):
        m.propagate(rng.standard_normal((N, 5)), ei, ea)
    no_edge = workbench.make("edge_featured", num_heads=H).load_weights(pyg_state(rng, True, False, True), key_map="pyg")
    with pytest.raises(ShapeError, match="edge_attr=None"):
        no_edge.propagate(rng.standard_normal((N, F)), ei, ea)


@pytest.mark.parametrize("v2,edge,concat", CASES)
def test_equals_pyg(v2, edge, concat):
    torch = pytest.importorskip("torch")
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(CASES.index((v2, edge, concat)))
    cls = pyg.GATv2Conv if v2 else pyg.GATConv
    ref = cls(F, C, heads=H, concat=concat, edge_dim=DE if edge else None).eval()
    with torch.no_grad():
        ref.bias.normal_()  # PyG starts it at zero: a wrong placement would go unseen
        for name, p in ref.named_parameters():
            if name.endswith("lin_l.bias") or name.endswith("lin_r.bias"):
                p.normal_()
    rng = np.random.default_rng(30)
    ei, ea = graph(rng)
    x = rng.standard_normal((N, F)).astype(np.float32)
    ea = ea.astype(np.float32)
    args = (torch.from_numpy(x), torch.from_numpy(ei))
    with torch.no_grad():
        want, (want_ei, want_a) = ref(*args, edge_attr=torch.from_numpy(ea) if edge else None,
                                      return_attention_weights=True)
    m = workbench.make("edge_featured", num_heads=H, concat=concat, variant="gatv2" if v2 else "gatv1")
    m.load_weights(ref.state_dict(), key_map="pyg")
    out, (got_ei, got_a) = m.propagate(x, ei, ea if edge else None, return_attention_weights=True)
    assert out.dtype == np.float32
    assert np.abs(out - want.numpy()).max() <= 1e-5
    # the same attention coefficient on every edge (the two lists order edges differently)
    theirs = {(int(s), int(d)): a for (s, d), a in zip(want_ei.numpy().T, want_a.numpy())}
    assert len(theirs) == got_ei.shape[1]
    for (s, d), a in zip(got_ei.T, got_a):
        assert np.abs(theirs[(int(s), int(d))] - a).max() <= 1e-5
