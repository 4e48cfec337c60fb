"""Built-in data sets: real embeddings shipped with the package, and generated demos; no download.

Real (read from ``workbench/data/real/``, built offline by :mod:`workbench.data.build_demos`,
whose ``PROVENANCE.json`` records the package versions and the command):

* ``"scipy_api"`` — all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm) of the docstrings of
  SciPy's public functions and classes: 1,294 rows, labels = subpackage (16: ``linalg``,
  ``stats``, ``signal``…), texts = ``"scipy.linalg.expm — Compute the matrix exponential…"``, and
  a real graph: ``edge_index`` = the docstrings' *See Also* links (2,558 directed edges). Rows
  are grouped by subpackage, as the documentation is. The dashboard opens on it.
* ``"python_stdlib"`` — the same model on the docstrings of the standard library's functions,
  classes and methods (Python 3.11): 2,122 rows, labels = the Library Reference chapter of the
  module (22: ``networking``, ``concurrency``, ``text``…), texts as above.

Generated (every one depends only on ``seed``; same seed, same data) or read from scikit-learn:

* ``"clusters"`` — Gaussian clusters: ``n = 1200`` points in ``d = 32``, 6 clusters, labels = cluster;
* ``"tree"`` — a hierarchy in the Poincaré ball: a complete tree (branching 4, depth 5, 1365
  nodes) in ``d = 10``, each child placed at hyperbolic distance ``1.2`` from its parent along
  a direction near the parent's own (``exp_p`` of :mod:`workbench.geometry.poincare`); labels =
  the root's subtree (0–3, the root itself −1), texts = the node's path (``"2.0.3"``);
* ``"sequence"`` — a long sequence with local structure: ``n = 2048`` steps of a slow AR(1)
  random walk in ``d = 32`` plus regime means that change every 128 steps; labels = segment;
  neighbours in time are near in space;
* ``"digits"`` — scikit-learn's bundled handwritten digits (``load_digits``: 1797 × 64 pixel
  intensities 0–16, labels 0–9); read from the installed package, never downloaded.

Every generated set depends only on ``seed`` (same seed, same data).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from workbench.data.dataset import Dataset
from workbench import checks as C
from workbench.errors import DataError

__all__ = ["DEMOS", "DEFAULT_DEMO", "REAL_SETS", "load_demo"]

#: Demo names; the first is the dashboard's default.
DEMOS = ("scipy_api", "python_stdlib", "digits", "clusters", "tree", "sequence")
DEFAULT_DEMO = DEMOS[0]
#: The data sets of real embeddings shipped as files (the rest are generated or from scikit-learn).
REAL_SETS = ("scipy_api", "python_stdlib")
#: Where they live (package data).
REAL_DIR = Path(__file__).resolve().parent / "real"


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    return C.integer(name, value, minimum=lo, maximum=hi, error=DataError)


def clusters(n: int = 1200, d: int = 32, k: int = 6, seed: int = 0) -> Dataset:
    """``k`` isotropic Gaussian clusters: centres ``~ N(0, 4²·I)``, points ``centre + N(0, I)``,
    ordered by cluster (so an attention map in data order shows the clusters as diagonal blocks)."""
    n, d, k = _check_int("n", n, 2), _check_int("d", d, 2), _check_int("k", k, 1)
    rng = np.random.default_rng([_check_int("seed", seed, 0), 0xC1])
    centres = rng.normal(0.0, 4.0, size=(k, d))
    labels = np.arange(n) % k
    x = centres[labels] + rng.standard_normal((n, d))
    order = np.argsort(labels, kind="stable")  # contiguous clusters, each in its drawing order
    x, labels = x[order], labels[order]
    return Dataset(x.astype(np.float32), labels=labels, name="clusters", source=f"demo:clusters?seed={seed}")


def tree(branching: int = 4, depth: int = 5, d: int = 10, step: float = 1.2, spread: float = 0.6,
         seed: int = 0) -> Dataset:
    """A complete tree embedded in the Poincaré ball (curvature −1).

    Root at the origin; a child of node ``p`` is ``exp_p(step/λ_p · u)`` (hyperbolic distance
    ``step`` from ``p``), ``u`` the unit vector of ``o_p + spread·ξ``, ``o_p`` the parent's outward
    direction (random for the root's children) and ``ξ ~ N(0, I/d)``. Depth grows outward, so
    subtrees fan out towards the boundary as trees do in hyperbolic space.
    """
    from workbench.geometry import poincare

    branching, depth, d = _check_int("branching", branching, 1), _check_int("depth", depth, 0), _check_int("d", d, 2)
    rng = np.random.default_rng([_check_int("seed", seed, 0), 0x7E])
    level = np.zeros((1, d))  # the points of the current depth
    outward = None  # their outward directions (None at the root: random children)
    parts, paths, subtree = [level], [""], [-1]
    level_paths, level_subtree = [""], [-1]
    for _ in range(depth):
        parent = np.repeat(level, branching, axis=0)
        u = rng.standard_normal(parent.shape)
        if outward is None:
            u /= np.linalg.norm(u, axis=1, keepdims=True)
        else:
            u = np.repeat(outward, branching, axis=0) + spread * u / np.sqrt(d)
            u /= np.linalg.norm(u, axis=1, keepdims=True)
        lam = poincare.conformal_factor(parent)  # (P, 1): a step of Euclidean length step/λ_p is `step` long
        level = poincare.exp_map((step / lam) * u, parent)
        outward = u
        level_paths = [f"{pp}.{c}" if pp else str(c) for pp in level_paths for c in range(branching)]
        level_subtree = [c if ps == -1 else ps for ps in level_subtree for c in range(branching)]
        parts.append(level)
        paths += level_paths
        subtree += level_subtree
    points = np.concatenate(parts)
    x = np.asarray(points, dtype=np.float64)
    return Dataset(x.astype(np.float32), labels=np.asarray(subtree), texts=["root"] + paths[1:], name="tree",
                   source=f"demo:tree?seed={seed}")


def sequence(n: int = 2048, d: int = 32, segment: int = 128, rho: float = 0.95, seed: int = 0) -> Dataset:
    """A long sequence with local structure: ``x_t = m_{⌊t/segment⌋} + z_t``, ``z_t = ρ z_{t−1} + √(1−ρ²) ε_t``.

    Regime means ``m ~ N(0, I)``, ``ε ~ N(0, I)``: consecutive steps are close (correlation ``ρ``),
    steps in one segment share a mean; labels = segment index.
    """
    n, d, segment = _check_int("n", n, 2), _check_int("d", d, 2), _check_int("segment", segment, 1)
    if not 0.0 <= rho < 1.0:
        raise DataError(f"rho: expected a correlation in [0, 1), got {rho!r}")
    rng = np.random.default_rng([_check_int("seed", seed, 0), 0x5E])
    labels = np.arange(n) // segment
    means = rng.standard_normal((int(labels[-1]) + 1, d))
    eps = rng.standard_normal((n, d))
    z = np.empty((n, d))
    z[0] = eps[0]  # stationary start
    b = np.sqrt(1.0 - rho * rho)
    for t in range(1, n):
        z[t] = rho * z[t - 1] + b * eps[t]
    x = means[labels] + z
    return Dataset(x.astype(np.float32), labels=labels, name="sequence", source=f"demo:sequence?seed={seed}")


@lru_cache(maxsize=1)
def _digits():
    """``(x, y)`` of scikit-learn's digits: the CSV that scikit-learn ships and ``load_digits`` reads
    (read directly: importing ``sklearn.datasets`` takes seconds), else ``load_digits`` itself."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("name: the 'digits' demo needs scikit-learn (pip install scikit-learn)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if os.path.isfile(path):
        raw = np.loadtxt(path, delimiter=",")
        return raw[:, :-1].astype(np.float32), raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # pragma: no cover - layout of another version

    d = load_digits()  # pragma: no cover
    return np.asarray(d.data, dtype=np.float32), np.asarray(d.target, dtype=np.int64)  # pragma: no cover


def digits(seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1797 × 64); ``seed`` is unused (real data)."""
    x, y = _digits()
    return Dataset(x.copy(), labels=y.copy(), name="digits", source="demo:digits (scikit-learn load_digits)")


@lru_cache(maxsize=len(REAL_SETS))
def _real(name: str) -> Dataset:
    from workbench.data.loaders import load_embeddings

    path = REAL_DIR / f"{name}.npz"
    if not path.is_file():
        raise DataError(f"name: the shipped data set {name!r} is missing ({path}); rebuild it with "
                        "python -m workbench.data.build_demos")
    ds = load_embeddings(path, max_bytes=64 << 20)  # the same validated path as a user's file
    return ds.replace(name=name, source=f"demo:{name}", notes=())


def _real_builder(name: str):
    def build(seed: int = 0) -> Dataset:
        """A shipped set of real embeddings; ``seed`` is unused (real data)."""
        ds = _real(name)
        return ds.replace(x=ds.x.copy())  # callers may write into x

    return build


_BUILDERS = {"clusters": clusters, "tree": tree, "sequence": sequence, "digits": digits,
             **{name: _real_builder(name) for name in REAL_SETS}}


def load_demo(name: str = DEFAULT_DEMO, *, seed: int = 0, n: int | None = None) -> Dataset:
    """The demo data set ``name`` (one of :data:`DEMOS`) for ``seed``.

    ``n`` sets the number of points of ``"clusters"`` and ``"sequence"`` (e.g. 100,000 for a
    large map); the tree's size follows its depth and the real sets are fixed, so ``n`` must be
    None for them.
    """
    if name not in _BUILDERS:
        raise DataError(f"name: no demo {name!r}; demos: {', '.join(DEMOS)}")
    if n is None:
        return _BUILDERS[name](seed=seed)
    if name not in ("clusters", "sequence"):
        raise DataError(f"n: the {name!r} demo has a fixed size; n applies to 'clusters' and 'sequence'")
    return _BUILDERS[name](n=n, seed=seed)
