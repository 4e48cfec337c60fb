"""The labelled suite: synthetic key sets whose right attention mechanism is known.

Each :class:`SuiteCase` holds keys ``(n, d)``, integer labels ``(n,)`` for a downstream
measure, the mechanism family that should be recommended and why. The four generators:

* :func:`tree_keys` → **Geometric**: a branching tree embedded in the Poincaré ball (children
  a fixed hyperbolic distance further from the origin than their parent, in directions that
  spread less at each level), with points scattered around every node by a small hyperbolic
  step. Labels: the depth-2 subtree. Euclidean distances shrink towards the boundary where the
  tree lives, hyperbolic distances do not.
* :func:`sequence_keys` → **Sparse**: a long sequence whose keys follow a slowly drifting
  trajectory (a Gaussian random walk) plus noise, in sequence order. Labels: the segment of
  ``segment`` consecutive positions. The neighbours of a key are its sequence neighbours, so a
  local window sees the right keys; global attention also sees far positions with similar
  scores.
* :func:`noisy_cluster_keys` → **Diffusion**: clusters whose centres lie on a closed curve
  (a low-dimensional manifold) in a random plane, drowned in isotropic noise in every
  dimension, in random order. Labels: the cluster. Neighbourhoods are mostly right, single
  keys are noisy, so smoothing scores over the key graph helps.
* :func:`isotropic_keys` → **Standard**: a plain isotropic Gaussian. Labels: the side of a
  random hyperplane (a linear concept, nothing for a structured mechanism to exploit).

Every generator takes a ``seed`` (NumPy ``default_rng``); same seed, same keys. ``suite(seed)``
returns all four. Shapes: keys ``(n, d)`` float32 (float64 with ``dtype=np.float64``), labels
``(n,)`` int64.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError

__all__ = ["SuiteCase", "tree_keys", "sequence_keys", "noisy_cluster_keys", "isotropic_keys", "suite"]


@dataclass(frozen=True)
class SuiteCase:
    """One labelled key set: ``keys (n, d)``, ``labels (n,)``, the expected recommendation."""

    name: str
    keys: np.ndarray
    labels: np.ndarray
    expected: str
    description: str
    info: dict = field(default_factory=dict)


def _int(name, v, lo):
    return C.integer(name, v, minimum=lo)


def _pos(name, v):
    return C.positive(name, v)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tree_keys(*, branching: int = 3, depth: int = 4, per_node: int = 8, dim: int = 8, step: float = 1.6,
              spread: float = 0.35, noise: float = 0.6, label_depth: int = 3, seed: int = 1,
              dtype=np.float32) -> SuiteCase:
    """A branching tree in the Poincaré ball (curvature −1) with ``per_node`` points per node.

    Node positions: the root at 0; a child of ``p`` at ``exp_p(u·step/λ_p)`` with ``u`` the unit
    direction ``normalise(dir(p) + spread^ℓ·g)`` (``g`` Gaussian, ``ℓ`` the child's depth;
    depth-1 children get independent random directions), i.e. hyperbolic distance ``step``
    from its parent, outwards. Points: ``exp_x(ε)``, ``ε`` a tangent Gaussian of hyperbolic
    length about ``noise``. ``n = per_node·(b^{depth+1} − 1)/(b − 1)`` keys of dimension ``dim``.
    Only nodes of depth ``≥ label_depth`` are sampled; labels: index of the node's
    depth-``label_depth`` ancestor (``b^label_depth`` classes). Keys in random order.
    """
    from workbench.geometry import poincare as P

    b, D = _int("branching", branching, 2), _int("depth", depth, 1)
    m, d = _int("per_node", per_node, 1), _int("dim", dim, 2)
    ld = _int("label_depth", label_depth, 1)
    if ld > D:
        raise ConfigurationError(f"label_depth: expected at most depth={D}, got {ld}")
    step, spread, noise = _pos("step", step), _pos("spread", spread), _pos("noise", noise)
    rng = np.random.default_rng(seed)
    nodes = [np.zeros(d)]
    dirs = [np.zeros(d)]
    level = [0]
    ancestor = [-1]
    frontier = [0]
    for ell in range(1, D + 1):
        nxt = []
        for p in frontier:
            for _ in range(b):
                g = rng.standard_normal(d)
                u = _unit(g) if ell == 1 else _unit(dirs[p] + spread ** (ell - 1) * _unit(g))
                lam = 2.0 / (1.0 - nodes[p] @ nodes[p])
                child = P.exp_map(u * step / lam, p=nodes[p])
                nodes.append(child)
                dirs.append(u)
                level.append(ell)
                ancestor.append(len(nodes) - 1 if ell == ld else (ancestor[p] if ell > ld else -1))
                nxt.append(len(nodes) - 1)
        frontier = nxt
    nodes_a = np.array(nodes)
    level_a, anc = np.array(level), np.array(ancestor)
    keep = np.flatnonzero(level_a >= ld)
    centres = np.repeat(nodes_a[keep], m, axis=0)
    lam = 2.0 / (1.0 - np.einsum("ij,ij->i", centres, centres))
    eps = rng.standard_normal(centres.shape) * (noise / np.sqrt(d)) / lam[:, None]
    keys = P.exp_map(eps, p=centres)
    raw = np.repeat(anc[keep], m)
    _, labels = np.unique(raw, return_inverse=True)
    perm = rng.permutation(keys.shape[0])
    return SuiteCase(
        "tree", keys[perm].astype(dtype), labels[perm].astype(np.int64), "Geometric",
        f"{b}-ary tree of depth {D} in the {d}-d Poincaré ball, {m} points per node of depth >= {ld}; "
        f"labels = depth-{ld} subtree",
        {"curvature": 1.0, "node_depth": np.repeat(level_a[keep], m)[perm]},
    )


def sequence_keys(*, length: int = 2048, dim: int = 32, segment: int = 128, drift: float = 0.25,
                  noise: float = 1.0, seed: int = 1, dtype=np.float32) -> SuiteCase:
    """A long sequence with local structure: ``k_t = z_t + noise·ε_t``, ``z_t = z_{t−1} + drift·η_t``.

    ``η, ε`` standard Gaussians in ``dim`` dimensions, ``z_0 = 0``; keys in sequence order
    (position ``t`` = row ``t``). Labels: ``t // segment``.
    """
    n, d, s = _int("length", length, 2), _int("dim", dim, 1), _int("segment", segment, 1)
    drift, noise = _pos("drift", drift), _pos("noise", noise)
    rng = np.random.default_rng(seed)
    z = np.cumsum(drift * rng.standard_normal((n, d)), axis=0)
    keys = z + noise * rng.standard_normal((n, d))
    labels = np.arange(n) // s
    return SuiteCase(
        "sequence", keys.astype(dtype), labels.astype(np.int64), "Sparse",
        f"length-{n} random-walk trajectory in {d}-d (drift {drift}, noise {noise}) in sequence order; "
        f"labels = segments of {s} positions",
        {"segment": s},
    )


def noisy_cluster_keys(*, clusters: int = 8, per_cluster: int = 150, dim: int = 64, radius: float = 4.0,
                       noise: float = 1.0, seed: int = 1, dtype=np.float32) -> SuiteCase:
    """Noisy clusters on a closed curve: ``k = R(cos θ_c a + sin θ_c b) + noise·ε``, random order.

    ``θ_c = 2πc/clusters`` (neighbouring clusters are neighbours on the curve), ``a, b`` an
    orthonormal pair in ``dim`` dimensions, ``ε`` standard Gaussian in all dimensions.
    Labels: the cluster ``c``.
    """
    m, per, d = _int("clusters", clusters, 2), _int("per_cluster", per_cluster, 1), _int("dim", dim, 2)
    radius, noise = _pos("radius", radius), _pos("noise", noise)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    theta = 2 * np.pi * np.arange(m) / m
    centres = radius * (np.cos(theta)[:, None] * basis[:, 0] + np.sin(theta)[:, None] * basis[:, 1])
    labels = np.repeat(np.arange(m), per)
    keys = centres[labels] + noise * rng.standard_normal((m * per, d))
    perm = rng.permutation(m * per)
    return SuiteCase(
        "noisy_clusters", keys[perm].astype(dtype), labels[perm].astype(np.int64), "Diffusion",
        f"{m} clusters of {per} keys on a circle of radius {radius} in a random plane of {d}-d space, "
        f"isotropic noise {noise}, random order; labels = cluster",
    )


def isotropic_keys(*, n: int = 1200, dim: int = 64, seed: int = 1, dtype=np.float32) -> SuiteCase:
    """A plain isotropic Gaussian ``N(0, I_dim)``; labels ``[k·u > 0]`` for a random unit ``u``."""
    n, d = _int("n", n, 2), _int("dim", dim, 1)
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((n, d))
    u = _unit(rng.standard_normal(d))
    return SuiteCase(
        "isotropic", keys.astype(dtype), (keys @ u > 0).astype(np.int64), "Standard",
        f"{n} keys from N(0, I_{d}); labels = side of a random hyperplane through 0",
    )


def suite(seed: int = 1, dtype=np.float32) -> list[SuiteCase]:
    """The four labelled cases with their default sizes (about 1,000–2,000 keys each)."""
    return [tree_keys(seed=seed, dtype=dtype), sequence_keys(seed=seed, dtype=dtype),
            noisy_cluster_keys(seed=seed, dtype=dtype), isotropic_keys(seed=seed, dtype=dtype)]
