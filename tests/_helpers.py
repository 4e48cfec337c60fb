"""Helpers shared by several test directories: definitions written out in float64, independent of
the library (nothing here imports ``workbench`` or ``kernels``), and the seeds × dtypes × curvatures
grid of the geometry tests. Import as ``from tests._helpers import ...`` (the repository root is on
``sys.path``, see ``[tool.pytest.ini_options] pythonpath``)."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

SEEDS = (0, 1, 2)
DTYPES = (np.float32, np.float64)
CURVATURES = (0.1, 1.0, 5.0)
TOL = {np.float32: 2e-4, np.float64: 1e-9}


params = pytest.mark.parametrize("seed", SEEDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES)
curvs = pytest.mark.parametrize("c", CURVATURES)


def grid(test):
    """Parametrize ``test(seed, dtype, c, ...)`` over :data:`SEEDS` × :data:`DTYPES` × :data:`CURVATURES`."""
    return params(dtypes(curvs(test)))


def ball(rng, shape, c, dtype=np.float64, rmax=0.8):
    """Random points of the Poincaré ball of curvature −c with √c‖x‖ uniform in [0, rmax]."""
    x = rng.standard_normal(shape)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    r = rng.uniform(0, rmax, shape[:-1] + (1,))
    return (x * r / np.sqrt(c)).astype(dtype)


def mobius_add(x, y, c):
    """Möbius addition ``x ⊕_c y`` (Ganea et al. 2018) in float64, vectorised over leading axes."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xy = np.sum(x * y, -1, keepdims=True)
    x2 = np.sum(x * x, -1, keepdims=True)
    y2 = np.sum(y * y, -1, keepdims=True)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c * c * x2 * y2)


def softmax_allowed(logits, allowed):
    """Softmax of one row over its allowed entries, scalar loops; exact zeros elsewhere (all zeros
    when nothing is allowed)."""
    idx = [j for j in range(len(logits)) if allowed[j]]
    w = np.zeros(len(logits))
    if not idx:
        return w
    m = max(logits[j] for j in idx)
    tot = sum(math.exp(logits[j] - m) for j in idx)
    for j in idx:
        w[j] = math.exp(logits[j] - m) / tot
    return w


def hyperboloid_exp0(u, c):
    """exp_0 of the tangent vector ``u (d,)`` onto the hyperboloid of curvature −c (time coordinate
    first): ``(cosh(√c‖u‖)/√c, sinh(√c‖u‖)·u/(√c‖u‖))``."""
    n = float(np.linalg.norm(u))
    if n == 0:
        return np.concatenate([[1 / math.sqrt(c)], np.zeros(len(u))])
    a = math.sqrt(c) * n
    return np.concatenate([[math.cosh(a) / math.sqrt(c)], math.sinh(a) / (math.sqrt(c) * n) * np.asarray(u)])


def bfs_hops(n, edges):
    """Hop counts along "attends": i → j for every edge (j, i); −1 where unreachable. ``(n, n)`` ints."""
    nbr = [[] for _ in range(n)]
    for j, i in edges:
        nbr[i].append(j)
    out = -np.ones((n, n), int)
    for s in range(n):
        out[s, s] = 0
        dq = deque([s])
        while dq:
            u = dq.popleft()
            for w in nbr[u]:
                if out[s, w] < 0:
                    out[s, w] = out[s, u] + 1
                    dq.append(w)
    return out


def assert_matches_per_batch(out, w, refs, mask, atol=1e-10, atol_out=None):
    """``refs[b] = (out_b, w_b)`` of the definition for each batch; masked entries exactly zero,
    allowed rows summing to one."""
    for b, (ref_out, ref_w) in enumerate(refs):
        np.testing.assert_allclose(w[b], ref_w, atol=atol)
        np.testing.assert_allclose(out[b], ref_out, atol=atol if atol_out is None else atol_out)
    assert (w[~mask] == 0).all()
    np.testing.assert_allclose(w.sum(-1)[mask.any(-1)], 1.0, atol=1e-12)
