"""Building the report: :func:`build_report` (queries and keys) and :func:`analyze_keys` (keys only).

Raw values (upstream's report fields, docs/upstream.md#report), for queries ``Q (Lq, d)`` and keys
``K (n, d)``, logits ``X = K Qᵀ (n, Lq)`` (raw dot products, as upstream):

1. OT distance: ``SW_p(Q, K)``, the sliced Wasserstein distance between the query and key point
   clouds (:func:`workbench.transport.sliced_wasserstein_distance`; for one query it is the
   distance from the Dirac mass at ``q`` to the key distribution). Default profile: ``p = 2``,
   ``num_projections`` (64) directions, divided by ``mean_j ‖k_j‖``; compat: ``p = 1`` and 8
   directions, raw (= upstream's mean absolute projected distance for one query).
2. Topology coherence: :func:`workbench.topology.window_coherence` with ``k`` neighbours and
   upstream's metrics (boundary mass, similarity variance) — boundary mass reads the key order.
3. H0 persistence: the ``n − 1`` finite deaths (:func:`workbench.report.persistence.h0_persistence`).
   Default: ``mean/median`` of the positive deaths (1 for none); compat: their sum.
4. IB KL: ``KL(N(μ, e^{lv}) ‖ N(0, I))`` (:func:`workbench.bottleneck.kl_gaussian_unit`), averaged
   over leading (sample) axes; default per dimension, compat summed. Left out without ``ib_mean``.
5. Diffusion energy: ``½Σ_ij w_ij ‖x_i − x_j‖²`` (:func:`workbench.diffusion.diffusion_energy`)
   of the logit rows ``x_j = X[j]`` on the Gaussian kNN affinity of the keys
   (:func:`workbench.diffusion.knn_affinity`, ``k`` neighbours). Default: ``σ`` = the median
   positive kNN distance (so the value does not depend on the keys' scale) and divided by ``‖X − X̄‖²``
   (logits centred per query: softmax ignores a shift, the energy too); compat: ``σ = 1``, raw.
   (Upstream used the dense graph; the kNN graph keeps its largest weights.)
6. Attention entropy: ``−Σ w ln w`` (:func:`workbench.entropy.row_entropy`) of the given
   ``weights``, or of scaled dot-product weights ``softmax(Q Kᵀ/√d)`` at the default scale when
   none are given (upstream assumed the maximum ``ln n``), averaged over queries. For
   :func:`analyze_keys` the queries are up to 64 sampled keys (self-attention: how the keys
   attend each other, not how their centroid does). Default: divided by ``ln n`` (1 for
   ``n = 1``), two-sided (near one-hot and near uniform are both warnings); compat: nats.

**Sampling** (above ``sample`` keys, default :data:`SAMPLE_SIZE` = 20,000): every value above and
every feature is measured on ``replicates`` (3) uniform random samples of ``sample`` keys,
disjoint when they fit, rows in their order; the report gives their means, ``errors`` the
standard error of each metric over the samples (``std/√r``), and ``settings["sample"]`` the
sampling. The graph-based values then describe the sample's graph, whose neighbours lie farther
apart than the whole set's (e.g. roughness and the H0 ratio rise a little; the locality window is
rescaled to whole-set gaps); ``benchmarks/scale.py --report`` compares the recommendation with
the exact report's. A sample above :data:`workbench.autograph.AUTO_HNSW_ABOVE` keys gets an
approximate (HNSW) kNN graph, whose H0 components are bridged by the same exact shortest edges.

Recommendation features and rules: :mod:`workbench.report.features`,
:mod:`workbench.report.recommend`. One exact kNN graph (:func:`workbench.graph.knn_graph`, with
``max(k, 10)`` neighbours) serves coherence, persistence, the affinity's ``σ`` and locality.
"""
from __future__ import annotations

import math

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError
from workbench.report import features as F
from workbench.report.persistence import h0_persistence, points
from workbench.report.profiles import METRIC_NAMES, check_profile, profile_specs
from workbench.report.recommend import THRESHOLDS, _sparse_params, recommend
from workbench.report.records import Report

__all__ = ["build_report", "analyze_keys", "SAMPLE_SIZE", "REPLICATES"]

#: Neighbours of the shared kNN graph (persistence and locality want at least this many).
_GRAPH_K = 10


def _int(name: str, v, lo: int) -> int:
    return C.integer(name, v, minimum=lo)


def _seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigurationError(f"seed: expected an integer >= 1, got {seed!r}")
    if seed == 0:
        raise ConfigurationError("seed: 0 is forbidden (upstream's xorshift generator is stuck at 0 and makes "
                                 "every OT projection zero); use a seed >= 1")
    return int(seed)


def _queries(q, d: int) -> np.ndarray:
    a = np.asarray(q) if q is not None else None
    if a is None:
        raise ShapeError("q: expected a query (d,) or queries (Lq, d), got None")
    if a.ndim == 1:
        a = a[None, :]
    a = points(a, "q")
    if a.shape[1] != d:
        raise ShapeError(f"q: expected dimension d={d} (from K), got shape {np.shape(q)}")
    return a.astype(np.float64)


def _weights(w, lq: int, n: int) -> np.ndarray:
    try:
        a = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"weights: expected a real array, got {type(w).__name__} ({exc})") from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape != (lq, n):
        raise ShapeError(f"weights: expected shape ({n},) or ({lq}, {n}) (queries × keys), got {np.shape(w)}")
    if not np.isfinite(a).all():
        raise NumericalError("weights: expected finite values, got NaN or infinity")
    if (a < 0).any():
        raise DataError(f"weights: expected probabilities >= 0, got a minimum of {a.min():.3g}")
    sums = a.sum(axis=1)
    if np.abs(sums - 1).max() > 1e-3:
        raise DataError(f"weights: expected each row to sum to 1 (within 1e-3), got sums in "
                        f"[{sums.min():.6g}, {sums.max():.6g}]")
    return a


def _ib(mean, logvar):
    if mean is None and logvar is None:
        return None
    if mean is None or logvar is None:
        raise ConfigurationError("ib_mean, ib_logvar: expected both or neither, got only "
                                 + ("ib_mean" if logvar is None else "ib_logvar"))
    mu, lv = np.asarray(mean), np.asarray(logvar)
    if mu.ndim == 0 or mu.shape[-1] == 0:
        raise ShapeError(f"ib_mean: expected shape (..., z) with z >= 1, got {mu.shape}")
    if mu.shape != lv.shape:
        raise ShapeError(f"ib_logvar: expected the shape of ib_mean {mu.shape}, got {lv.shape}")
    for name, a in (("ib_mean", mu), ("ib_logvar", lv)):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise DataError(f"{name}: expected a real array, got dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise NumericalError(f"{name}: expected finite values, got NaN or infinity")
    return mu.astype(np.float64), lv.astype(np.float64)


def _sub_graph(g, n: int, kbig: int, k: int):
    """The first ``k`` (nearest) of the ``kbig`` neighbours per key: ``knn_graph``'s edge order."""
    from workbench.graph import Graph

    if k == kbig:
        return g
    ei = np.asarray(g.edge_index).reshape(2, n, kbig)[:, :, :k].reshape(2, -1)
    return Graph(n, ei, distance=np.asarray(g.distance).reshape(n, kbig)[:, :k].reshape(-1))


def _ib_kl(mu, lv) -> tuple[float, float]:
    """(mean KL over samples in nats, the same per dimension)."""
    from workbench.bottleneck import kl_gaussian_unit

    kl = np.asarray(kl_gaussian_unit(mu, lv), dtype=np.float64)
    total = float(np.mean(kl))
    return total, total / mu.shape[-1]


def _sdpa_weights(qs: np.ndarray, keys: np.ndarray) -> np.ndarray:
    import workbench

    return np.asarray(workbench.make("scaled_dot_product", backend="numpy").weights(qs, keys), dtype=np.float64)


def _shared_graph(k64: np.ndarray, k: int, hnsw_above: int, seed: int):
    """``(graph, first-k subgraph, neighbours, approximate)``: the kNN graph with ``max(k, 10)``
    neighbours, exact up to ``hnsw_above`` keys and from HNSW above (None for one key)."""
    n = k64.shape[0]
    if n < 2:
        return None, None, 0, False
    from workbench.graph import ann_knn_graph, knn_graph

    kbig = min(max(k, _GRAPH_K), n - 1)
    approximate = n > hnsw_above
    g = ann_knn_graph(k64, kbig, seed=seed) if approximate else knn_graph(k64, kbig)
    return g, _sub_graph(g, n, kbig, min(k, n - 1)), kbig, approximate


def _ot(qs, k64, compat: bool, num_projections: int, seed: int) -> tuple[float, float]:
    """(metric value, raw SW value) of the query–key OT distance."""
    from workbench.transport import sliced_wasserstein_distance

    if compat:
        raw = float(sliced_wasserstein_distance(qs, k64, num_projections=8, p=1, seed=seed))
        return raw, raw
    raw = float(sliced_wasserstein_distance(qs, k64, num_projections=num_projections, p=2, seed=seed))
    scale = float(np.linalg.norm(k64, axis=1).mean())
    return (raw / scale if scale > 0 else (0.0 if raw == 0 else raw)), raw


def _coherence(k64, k: int, gk) -> tuple[float, dict]:
    """Upstream's window coherence (boundary mass, similarity variance) on the shared graph; 1 for one key."""
    if gk is None:
        return 1.0, {}
    from workbench.topology import DEFAULT_METRICS, coherence_scores

    parts = coherence_scores(k64, min(k, k64.shape[0] - 1), DEFAULT_METRICS, graph=gk)
    return float(np.mean(list(parts.values()))), parts


def _persistence(k64, g, persistence: str, exact_max: int, exact_graph: bool = True):
    """H0 deaths and the default value ``mean/median`` of the positive deaths (1 for none)."""
    n = k64.shape[0]
    # the shared graph serves the kNN method unless there are duplicate keys (zero-length edges):
    # then h0_persistence merges the duplicates first and builds its own graph on the distinct keys
    share = g is not None and n > exact_max and persistence != "exact" and bool(np.all(np.asarray(g.distance) > 0))
    ph = h0_persistence(k64, method=persistence, exact_max=exact_max, k=_GRAPH_K, graph=g if share else None,
                        graph_exact=exact_graph)
    pos = ph.deaths[ph.deaths > 0]
    return ph, (float(pos.mean() / np.median(pos)) if pos.size else 1.0)


def _energy(qs, k64, k: int, gk, compat: bool):
    """(metric value, raw energy, default affinity W, its σ) of the logits ``X = K Qᵀ`` on the key graph."""
    if gk is None:
        return 0.0, 0.0, None, 1.0
    from workbench.diffusion import diffusion_energy, knn_affinity

    n = k64.shape[0]
    dist = np.asarray(gk.distance)
    pos = dist[dist > 0]
    sigma = float(np.median(pos)) if pos.size else 1.0  # knn_affinity's own default
    kk = min(k, n - 1)
    wmat = knn_affinity(k64, kk, sigma, graph=gk)
    logits = k64 @ qs.T  # (n, Lq) raw dot products
    xc = logits - logits.mean(axis=0)  # the energy ignores a shift (as softmax does): E(x) = E(x − x̄)
    if compat:
        raw = float(diffusion_energy(xc, knn_affinity(k64, kk, 1.0, graph=gk)))
        return raw, raw, wmat, sigma
    raw = float(diffusion_energy(xc, wmat))
    den = float(np.sum(xc * xc))
    return (raw / den if den > 0 else 0.0), raw, wmat, sigma


def _entropy(qs, k64, w, n: int) -> tuple[float, float]:
    """(mean entropy in nats, as a fraction of ln n) of the given or scaled dot-product weights over ``n`` keys."""
    from workbench.entropy import row_entropy

    wq = w if w is not None else _sdpa_weights(qs, k64)
    ent = float(np.mean(row_entropy(wq)))
    return ent, (ent / math.log(n) if n > 1 else 1.0)


#: Keys sampled as queries for the entropy of self-attention in :func:`analyze_keys`.
SELF_QUERIES = 64


def _self_queries(k64: np.ndarray, seed: int) -> np.ndarray:
    n = k64.shape[0]
    idx = np.random.default_rng(seed).choice(n, size=min(SELF_QUERIES, n), replace=False)
    return k64[np.sort(idx)]


def _features(k64, gk, wmat, seed: int, positions: np.ndarray, n_total: int) -> dict:
    """The structure features; ``positions`` are the rows' places in the whole key set of ``n_total``.

    In a sample of ``m`` keys a key's ``k``-th nearest sampled key is about its ``k·n/m``-th nearest
    key. The locality fraction compares the gaps with ``⌈n/32⌉`` as they are (a sampled neighbour
    within the window is still within it); the 90th-percentile gap that sizes the recommended
    window is rescaled by ``m/n``, to estimate the whole set's kNN gaps (exactly so for keys
    ordered along a sequence).
    """
    if gk is not None:
        loc, win, gap90 = F.sequence_locality(positions[np.asarray(gk.src)], positions[np.asarray(gk.dst)], n_total)
        if k64.shape[0] < n_total:
            gap90 = int(gap90 * k64.shape[0] / n_total)
        rough, pc_rough, contrast = F.key_structure(k64, wmat)
    else:
        loc, win, gap90, rough, pc_rough, contrast = 0.0, 1, 0, 0.0, 0.0, 1.0
    window = _sparse_params(gap90, n_total)["window"]
    return {"sequence_locality": loc, "locality_window": win, "index_gap_p90": gap90,
            "window_fraction": window / n_total if n_total else 1.0,
            "gromov_delta": F.gromov_delta(k64, seed=seed), "norm_share": F.norm_share(k64, seed=seed),
            "key_roughness": rough, "pc_roughness": pc_rough, "structure_contrast": contrast}


#: ``sample="auto"``: above this many keys the report is measured on samples of this size.
SAMPLE_SIZE = 20_000
#: Independent samples measured when sampling (their spread gives each metric's standard error).
REPLICATES = 3
def _measure(qs, k64, positions, n_total, w, ib, compat, k, seed, num_projections, persistence, exact_max,
             advice_from_keys):
    """Every raw value, metric input and feature of queries ``qs`` over the keys ``k64`` (all or a sample)."""
    from workbench.autograph import AUTO_HNSW_ABOVE

    m = k64.shape[0]
    g, gk, kbig, approximate = _shared_graph(k64, k, AUTO_HNSW_ABOVE, seed)
    ot, ot_raw = _ot(qs, k64, compat, num_projections, seed)
    coherence, parts = _coherence(k64, k, gk)
    ph, h0_ratio = _persistence(k64, g, persistence, exact_max, not approximate)
    ib_total, ib_per_dim = _ib_kl(*ib) if ib is not None else (None, None)
    energy, energy_raw, wmat, sigma = _energy(qs, k64, k, gk, compat)
    # entropy of given weights: over all n keys; of scaled dot-product: over the keys at hand
    ent, ratio = _entropy(_self_queries(k64, seed) if advice_from_keys else qs, k64, w,
                          n_total if w is not None else m)
    values = {"ot_mean_distance": ot_raw, "topology_coherence": coherence, "h0_death_sum": ph.total,
              **({"ib_kl": ib_total} if ib is not None else {}), "diffusion_energy": energy_raw,
              "attention_entropy": ent}
    raw = {"ot_distance": ot, "topology_coherence": coherence,
           "ib_kl": None if ib is None else (ib_total if compat else ib_per_dim), "diffusion_energy": energy,
           "attention_entropy": ent if compat else ratio, "h0_persistence": ph.total if compat else h0_ratio}
    feats = {"n_keys": n_total, **{f"coherence_{name}": v for name, v in parts.items()}, "h0_ratio": h0_ratio,
             "h0_bridges": ph.bridges, **_features(k64, gk, wmat, seed, positions, n_total),
             "entropy_ratio_for_advice": ratio}
    settings = {"graph_k": kbig, "graph": "hnsw" if approximate else "knn",
                "affinity_sigma": 1.0 if compat else sigma, "persistence_method": ph.method}
    return values, raw, feats, settings


def _samples(n: int, size: int, replicates: int, seed: int) -> list:
    """``replicates`` sorted index sets of ``size`` rows: disjoint when they fit, else independent."""
    rng = np.random.default_rng([seed, n, size])
    if size * replicates <= n:
        pick = rng.choice(n, size=size * replicates, replace=False)
        return [np.sort(pick[i * size:(i + 1) * size]) for i in range(replicates)]
    return [np.sort(rng.choice(n, size=size, replace=False)) for _ in range(replicates)]


def _mean(dicts: list) -> dict:
    """Entry-wise mean of numeric dicts (integers rounded back); others from the first."""
    out = {}
    for key, v in dicts[0].items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            out[key] = v
            continue
        mean = float(np.mean([d[key] for d in dicts]))
        out[key] = int(round(mean)) if isinstance(v, (int, np.integer)) else mean
    return out


def _is_lazy(x) -> bool:
    return hasattr(x, "compute") and hasattr(x, "chunks")  # a Dask array (e.g. data.open_lazy of a Parquet file)


def _keys(K):
    """``K`` validated; a Dask array is kept lazy (its shape checked, its rows validated when read)."""
    if not _is_lazy(K):
        return points(K, "K")
    if len(K.shape) != 2 or 0 in K.shape:
        raise ShapeError(f"K: expected shape (n, d) with n, d >= 1, got shape {K.shape}")
    if not np.issubdtype(K.dtype, np.number):
        raise DataError(f"K: expected a real numeric array, got dtype {K.dtype}")
    return K


def _rows(keys, r: np.ndarray) -> np.ndarray:
    """Rows ``r`` (sorted) of the keys as float64: read from a memory map or a Dask array only now
    (a Dask array's rows are validated here; other keys were validated whole by :func:`_keys`)."""
    if _is_lazy(keys):
        return points(keys[r].compute(), "K").astype(np.float64)
    return np.asarray(keys if r.size == keys.shape[0] else keys[r], dtype=np.float64)


def _sample_size(sample, n: int) -> int | None:
    if sample is None:
        return None
    if isinstance(sample, str):
        if sample != "auto":
            raise ConfigurationError(f"sample: expected 'auto', None or an integer >= 64, got {sample!r}")
        sample = SAMPLE_SIZE
    size = C.integer("sample", sample, minimum=64, maximum=10_000_000)
    return size if n > size else None


def _build(q, K, weights, ib_mean, ib_logvar, profile, k, seed, num_projections, persistence, exact_max,
           advice_from_keys: bool, sample="auto", replicates: int = REPLICATES) -> Report:
    profile = check_profile(profile)
    k = _int("k", k, 1)
    seed = _seed(seed)
    num_projections = _int("num_projections", num_projections, 1)
    replicates = C.integer("replicates", replicates, minimum=1, maximum=20)
    keys = _keys(K)
    n, d = keys.shape
    size = _sample_size(sample, n)
    if size is None and _is_lazy(keys):
        keys = points(keys.compute(), "K")  # every key is measured: read them all
    qs = _queries(q, d)
    w = _weights(weights, qs.shape[0], n) if weights is not None else None
    ib = _ib(ib_mean, ib_logvar)
    compat = profile == "compat"
    rows = [np.arange(n)] if size is None else _samples(n, size, replicates, seed)
    samples = [_rows(keys, r) for r in rows]  # read once: the first also serves the recommendation
    runs = [_measure(qs, x, r, n, w, ib, compat, k, seed, num_projections, persistence, exact_max,
                     advice_from_keys) for x, r in zip(samples, rows)]
    values = _mean([r[0] for r in runs])
    raw = _mean([{m: v for m, v in r[1].items() if v is not None} for r in runs])
    feats = _mean([r[2] for r in runs])
    errors = {}
    if len(runs) > 1:  # the standard error of each metric's mean over the independent samples
        for m in raw:
            errors[m] = float(np.std([r[1][m] for r in runs], ddof=1) / math.sqrt(len(runs)))
    settings = {"k": k, "seed": seed, "num_projections": num_projections, **runs[0][3],
                "entropy_from": "weights" if w is not None else (
                    "scaled_dot_product self-attention of sampled keys" if advice_from_keys else "scaled_dot_product"),
                "sample": None if size is None else {"size": size, "replicates": len(rows), "of": n,
                                                     "disjoint": size * len(rows) <= n}}

    specs = profile_specs(profile, n)
    metrics = [specs[m].evaluate(raw[m]) for m in METRIC_NAMES if m in raw]
    health = float(np.mean([m.score for m in metrics])) if metrics else 1.0

    ent_ratio = feats["entropy_ratio_for_advice"]
    if advice_from_keys:
        source = "self-attention over these keys (sampled keys as queries)"
    else:
        source = "the queries' attention" if w is None else "the given attention weights"
    k0 = samples[0]
    suggested = None
    if n >= 2 and not advice_from_keys and not (THRESHOLDS["entropy_low"] <= ent_ratio <= THRESHOLDS["entropy_high"]):
        suggested = F.temperature_for_logits(qs @ k0.T / math.sqrt(d), 0.5)
    rec = recommend(feats, k0, k=k, seed=seed, entropy_ratio=ent_ratio, suggested_temperature=suggested,
                    entropy_source=source, calibrate_from_keys=advice_from_keys)
    return Report(metrics, health, rec, profile, n, d, qs.shape[0], values, feats, settings, errors)


def build_report(q, K, weights=None, ib_mean=None, ib_logvar=None, profile: str = "default", *, k: int = 8,
                 seed: int = 1, num_projections: int = 64, persistence: str = "auto",
                 exact_max: int = 1024, sample="auto", replicates: int = REPLICATES) -> Report:
    """The unified report for queries ``q`` attending keys ``K``.

    ``q (d,)`` or ``(Lq, d)``; ``K (n, d)``; ``weights (n,)`` or ``(Lq, n)`` attention weights
    (rows on the simplex; default: scaled dot-product weights of ``q``); ``ib_mean, ib_logvar
    (..., z)`` bottleneck statistics (both or neither); ``profile`` "default" (scale-free, the
    README's thresholds) or "compat" (upstream's raw values and thresholds); ``k`` neighbours of
    the kNN graphs; ``seed`` (≥ 1; 0 is forbidden) for projections and samples;
    ``num_projections`` of the sliced Wasserstein distance (default profile); ``persistence``
    "auto"/"exact"/"knn" and ``exact_max`` choose the H0 method. See the module docstring for
    every value and :mod:`workbench.report.recommend` for the rules. Temperature advice comes
    from the queries' attention entropy.

    ``sample``: above ``sample`` keys ("auto": :data:`SAMPLE_SIZE`; None: never) every metric and
    feature is measured on ``replicates`` uniform random samples of that many keys (disjoint when
    they fit, rows kept in their order, positions in the whole set for the locality features),
    then averaged; ``report.errors`` holds each metric's standard error over the samples and
    ``settings["sample"]`` the sampling. Given ``weights`` still count over every key.
    """
    return _build(q, K, weights, ib_mean, ib_logvar, profile, k, seed, num_projections, persistence, exact_max,
                  advice_from_keys=False, sample=sample, replicates=replicates)


def analyze_keys(K, *, profile: str = "default", k: int = 8, seed: int = 1, num_projections: int = 64,
                 persistence: str = "auto", exact_max: int = 1024, sample="auto",
                 replicates: int = REPLICATES) -> Report:
    """The report of a key set alone: :func:`build_report` with the key centroid as the query.

    ``q = mean_j k_j``; attention entropy from its scaled dot-product weights; no IB KL
    (docs/upstream.md#report). Temperature advice comes from self-attention over the keys
    (up to 64 sampled keys as queries), since the centroid's weights say little about how
    the keys attend each other. ``K (n, d)``, ``n ≥ 1``. Above ``sample`` keys the report is
    measured on samples (see :func:`build_report`): a million 384-d keys take seconds, not hours;
    the centroid is still that of every key. A memory-mapped ``K`` is streamed, not copied; a
    Dask array (:func:`workbench.data.open_lazy` of a Parquet file) is read once for the
    centroid and then only at the sampled rows.
    """
    keys = _keys(K)
    centroid = keys.mean(axis=0, dtype=np.float64)  # float64 sums without a float64 copy of the keys
    if _is_lazy(keys):
        centroid = np.asarray(centroid.compute())  # one streaming pass over the row groups
        if not np.isfinite(centroid).all():
            raise NumericalError("K: expected finite values, got NaN or infinity (the keys' mean is not finite)")
    return _build(centroid, keys, None, None, None, profile, k, seed, num_projections, persistence, exact_max,
                  advice_from_keys=True, sample=sample, replicates=replicates)
