"""Negative mining for contrastive training: random, hard, semi-hard, distance-weighted, in-batch.

``NegativeMiner(strategy).mine(anchor (d,), positive (d,), candidates (n, d), k) -> indices (k,)``
returns indices into ``candidates``, without repeats, in the order the strategy ranks or draws
them. Random strategies draw from ``numpy.random.default_rng(seed)`` kept by the miner: the n-th
call of a miner made with a given seed always returns the same indices (``reset()`` restarts).
"""
from __future__ import annotations

import numpy as np

from workbench.errors import ConfigurationError, ShapeError
from workbench import checks as C

STRATEGIES = ("random", "hard", "semi_hard", "distance_weighted", "similarity_weighted")


def cosine_similarities(anchor: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``cos(a, n_j) = ⟨a, n_j⟩/(max(‖a‖, 1e-8)·max(‖n_j‖, 1e-8))`` for every candidate, float64."""
    a = np.asarray(anchor, np.float64)
    c = np.asarray(candidates, np.float64)
    na = max(float(np.linalg.norm(a)), 1e-8)
    nc = np.maximum(np.linalg.norm(c, axis=1), 1e-8)
    return (c @ a) / (na * nc)


def wu_log_density(distance: np.ndarray, dim: int) -> np.ndarray:
    """``log q(d) = (n − 2)·log d + ((n − 3)/2)·log(1 − d²/4)`` (up to a constant): the density of
    the distance between two points drawn uniformly on the unit sphere of ``R^n`` (Wu et al. 2017).
    ``1 − d²/4`` is floored at 1e-8 (``d → 2``) as in the paper's code."""
    d = np.asarray(distance, np.float64)
    return (dim - 2.0) * np.log(d) + 0.5 * (dim - 3.0) * np.log(np.maximum(1.0 - 0.25 * d * d, 1e-8))


class NegativeMiner:
    """Pick ``k`` negatives for an anchor among candidates, by one of five strategies.

    * ``"random"``: ``k`` candidates uniformly at random without replacement (seeded).
    * ``"hard"``: the ``k`` candidates most cosine-similar to the anchor (ties: lower index first).
    * ``"semi_hard"``: candidates with ``‖a−p‖ < ‖a−n‖ < ‖a−p‖ + margin``, nearest first; if fewer
      than ``k``, completed by the hard ranking (skipping those already chosen), so the result
      always has ``k`` entries (the seed system can return fewer).
    * ``"distance_weighted"``: Wu et al.'s sampling on the unit sphere: anchor and candidates are
      L2-normalised, ``d_j = max(‖â − n̂_j‖, cutoff)``, weights ``∝ 1/q(d_j)`` (see
      :func:`wu_log_density`, ``n = d``), 0 where ``d_j ≥ nonzero_loss_cutoff``; ``k`` draws
      without replacement; if fewer than ``k`` candidates have a weight, the rest are drawn
      uniformly from the others. (The seed system's "distance-weighted" is similarity-weighted:
      that is ``"similarity_weighted"`` here.)
    * ``"similarity_weighted"``: draws without replacement with probabilities
      ``softmax(cos(a, n_j)/T)`` (the seed system's behaviour).

    ``k`` must be between 0 and the number of candidates. Shapes: ``anchor (d,)``,
    ``positive (d,)``, ``candidates (n, d)`` → ``int64 (k,)``.
    Papers: Schroff et al., *FaceNet*, 2015 (semi-hard); Wu et al., *Sampling Matters in Deep
    Embedding Learning*, 2017 (distance-weighted).
    """

    def __init__(self, strategy: str = "hard", *, margin: float = 0.1, temperature: float = 1.0, seed: int = 0,
                 cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4) -> None:
        self.strategy = C.choice("strategy", strategy.replace("-", "_") if isinstance(strategy, str) else strategy,
                                 STRATEGIES)
        self.margin = C.non_negative("margin", margin)
        self.temperature = C.positive("temperature", temperature)
        self.seed = C.seed(seed)
        self.cutoff = C.real("cutoff", cutoff, low=0.0, high=2.0, low_open=True, high_open=True)
        self.nonzero_loss_cutoff = C.real("nonzero_loss_cutoff", nonzero_loss_cutoff, low=self.cutoff,
                                          low_open=True)
        self.reset()

    def reset(self) -> None:
        """Restart the random stream: the next call draws as the first call did."""
        self._rng = np.random.default_rng(self.seed)

    # -- inputs ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _inputs(anchor, positive, candidates, k):
        a = C.float_array("anchor", anchor)
        p = C.float_array("positive", positive)
        c = C.float_array("candidates", candidates, min_ndim=2)
        if a.ndim != 1 or a.size == 0:
            raise ShapeError(f"anchor: expected one vector of shape (d,), got shape {a.shape}")
        if p.shape != a.shape:
            raise ShapeError(f"positive: expected shape {a.shape} (from anchor), got shape {p.shape}")
        if c.ndim != 2 or c.shape[1] != a.shape[0]:
            raise ShapeError(f"candidates: expected shape (n, {a.shape[0]}), got shape {c.shape}")
        if c.shape[0] == 0:
            raise ShapeError("candidates: expected at least one candidate, got shape (0, d)")
        k = C.integer("k", k, minimum=0)
        if k > c.shape[0]:
            raise ConfigurationError(f"k: expected at most the number of candidates ({c.shape[0]}), got {k}")
        return a.astype(np.float64), p.astype(np.float64), c.astype(np.float64), k

    # -- strategies ------------------------------------------------------------------------------------------------
    def mine(self, anchor, positive, candidates, k: int) -> np.ndarray:
        """Indices of ``k`` negatives among ``candidates`` (see the class docstring)."""
        a, p, c, k = self._inputs(anchor, positive, candidates, k)
        out = getattr(self, "_" + self.strategy)(a, p, c, k)
        return np.asarray(out, dtype=np.int64)

    def _random(self, a, p, c, k):
        return self._rng.permutation(c.shape[0])[:k]

    @staticmethod
    def _hard_order(a, c):
        return np.argsort(-cosine_similarities(a, c), kind="stable")

    def _hard(self, a, p, c, k):
        return self._hard_order(a, c)[:k]

    def _semi_hard(self, a, p, c, k):
        d_ap = float(np.linalg.norm(a - p))
        d_an = np.linalg.norm(c - a, axis=1)
        semi = np.nonzero((d_an > d_ap) & (d_an < d_ap + self.margin))[0]
        chosen = list(semi[np.argsort(d_an[semi], kind="stable")][:k])
        if len(chosen) < k:
            taken = set(chosen)
            chosen += [int(j) for j in self._hard_order(a, c) if j not in taken][:k - len(chosen)]
        return chosen

    def _weighted_draw(self, w: np.ndarray, k: int) -> np.ndarray:
        """``k`` draws without replacement ∝ ``w``; zero-weight items uniformly once the rest is used."""
        nz = np.nonzero(w > 0)[0]
        first = self._rng.choice(nz, size=min(k, nz.size), replace=False, p=w[nz] / w[nz].sum()) if nz.size else []
        rest = np.nonzero(~(w > 0))[0]
        extra = self._rng.permutation(rest)[:k - len(first)] if k > len(first) else []
        return np.concatenate([np.asarray(first, np.int64), np.asarray(extra, np.int64)])

    def _distance_weighted(self, a, p, c, k):
        dim = a.shape[0]
        an = a / max(np.linalg.norm(a), 1e-8)
        cn = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-8)
        d = np.maximum(np.linalg.norm(cn - an, axis=1), self.cutoff)
        log_w = -wu_log_density(d, dim)
        w = np.exp(log_w - log_w.max())
        w[d >= self.nonzero_loss_cutoff] = 0.0
        return self._weighted_draw(w, k)

    def _similarity_weighted(self, a, p, c, k):
        s = cosine_similarities(a, c) / self.temperature
        w = np.exp(s - s.max())
        return self._weighted_draw(w, k)


#: The seed system's name (``HardNegativeMiner(strategy)``), for porting.
HardNegativeMiner = NegativeMiner


class InBatchMiner:
    """In-batch negatives: every other example of the batch is a negative for the anchor.

    ``get_negatives(anchor_idx, positive_idx, batch_size)`` returns ``0..batch_size−1`` without the
    anchor and, unless ``include_positive``, without the positive (ascending).
    Paper: Chen et al., *SimCLR*, 2020 (in-batch negatives).
    """

    def __init__(self, include_positive: bool = False) -> None:
        if not isinstance(include_positive, bool):
            raise ConfigurationError(f"include_positive: expected True or False, got {include_positive!r}")
        self.include_positive = include_positive

    def get_negatives(self, anchor_idx: int, positive_idx: int, batch_size: int) -> np.ndarray:
        n = C.integer("batch_size", batch_size, minimum=1)
        a = C.integer("anchor_idx", anchor_idx, minimum=0)
        p = C.integer("positive_idx", positive_idx, minimum=0)
        for name, i in (("anchor_idx", a), ("positive_idx", p)):
            if i >= n:
                raise ConfigurationError(f"{name}: expected an index below batch_size={n}, got {i}")
        keep = np.ones(n, dtype=bool)
        keep[a] = False
        if not self.include_positive:
            keep[p] = False
        return np.nonzero(keep)[0].astype(np.int64)


__all__ = ["NegativeMiner", "HardNegativeMiner", "InBatchMiner", "STRATEGIES", "cosine_similarities", "wu_log_density"]
