"""The dashboard's view-model: run mechanisms side by side and turn the results into plain data.

Everything here is pure Python/NumPy and returns plain values (arrays, floats, dicts, dataclasses)
that any front end can draw; nothing imports Panel or HoloViews.

* :func:`run` — one mechanism on ``(q, k, v)``: output, weights, time, backend, or the error
  message of a bad configuration (user errors never raise);
* :func:`diagnostics` — entropy, sparsity, top-k overlap and output distance to a reference run;
* :func:`weights_tile` — the visible region of an attention map at screen resolution, computed
  lazily: for softmax dot-product attention exactly normalised over *all* keys with a per-row
  log-sum-exp, never materialising ``Lq × Lk``;
* :func:`report_for` — the unified report of a data set (:mod:`workbench.report`).

The dashboard's URL state lives with the dashboard (:mod:`apps.url_state`); the Bench tab's
measurements with the benchmarks' (:mod:`workbench.benchmarking`).

Apps build a mechanism's parameter widgets from :func:`mechanism_params` (the ``param``
objects of its class, as ``workbench.registry[name].parameters``).
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping

import numpy as np

import kernels.tiles as _tiles
from kernels import BackendError
from kernels.reference.select import top_k
from workbench.autograph import GRAPH_CHOICES  # re-exported: the dashboard's graph choices
from workbench.autograph import call_with_graph as _call_with_graph
from workbench.digest import array_digest
from workbench.errors import ConfigurationError, DataError, WorkbenchError

__all__ = [
    "REFERENCE", "RunResult", "run", "diagnostics", "attended_keys", "mechanism_params", "tile_indices",
    "tile_plan", "weights_tile", "pool_weights", "report_for", "GRAPH_CHOICES",
]

#: The mechanism every other is compared with.
REFERENCE = "scaled_dot_product"
#: Largest ``rows × keys`` weight matrix :func:`run` returns and :func:`weights_tile` builds
#: densely for mechanisms without the exact log-sum-exp path (16.8M entries, 64 MiB in float32).
MAX_DENSE = 4096 * 4096


def _registry():
    import workbench.mechanisms  # noqa: F401  (registers every mechanism)
    from workbench.registry import registry

    return registry


def mechanism_params(name: str) -> dict:
    """The ``param`` objects of mechanism ``name`` by parameter name (``name`` excluded), for widgets.

    Each carries its type, default, bounds or objects and ``doc``; the same as
    ``workbench.registry[name].parameters``.
    """
    return _registry()[name].parameters


# -- running one mechanism -----------------------------------------------------------------------------

@dataclass
class RunResult:
    """One mechanism's run, as plain data.

    ``weights (Lq, Lk)`` (None where the mechanism defines none, where ``Lq·Lk`` exceeds
    :data:`MAX_DENSE`, or on error), ``output (Lq, dv)``, ``seconds`` of the forward call,
    ``weights_seconds`` of the weights call, ``backend`` actually used, ``error`` (the message of
    a :class:`~workbench.errors.WorkbenchError`, else None) and ``notes`` (what was decided, e.g.
    the graph built). Rows follow ``query_index`` when one was given.
    """

    name: str
    params: dict
    weights: np.ndarray | None = None
    output: np.ndarray | None = None
    seconds: float = float("nan")
    weights_seconds: float = float("nan")
    backend: str = ""
    error: str | None = None
    notes: tuple = ()
    graph: object | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _as_2d(name: str, a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array (L, d), got shape {arr.shape}")
    return arr


_WARM: set = set()
_WARM_LOCK = threading.Lock()


def _warm_up(name: str, params: dict, info, mech, q, v) -> None:
    """Once per process and (mechanism, parameters, dtype, d, dv): a call on 8 random points, so
    that the timed call does not include Numba's compilation or cache loading. Errors are left
    to the real call."""
    key = (name, json.dumps(params, sort_keys=True, default=repr), q.dtype.str, q.shape[1], v.shape[1])
    with _WARM_LOCK:
        if key in _WARM:
            return
        _WARM.add(key)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, q.shape[1])).astype(q.dtype)
    y = rng.standard_normal((8, v.shape[1])).astype(v.dtype)
    try:
        _call_with_graph(lambda kw: mech(x, x, y, **kw), info, x, None, "auto", 3, 0)
    except WorkbenchError:
        pass


def run(name: str, params: Mapping | None, q, k, v, *, graph=None, query_index=None,
        graph_kind: str = "auto", graph_k: int = 8, graph_seed: int = 0, want_weights: bool = True,
        warm: bool = True, preferred_graph=None) -> RunResult:
    """Run mechanism ``name`` with ``params`` on ``q (Lq, d), k (Lk, d), v (Lk, dv)``.

    Mechanisms that need a graph get :func:`workbench.data.prepare.graph_for` of the keys
    (``graph_kind`` "auto" | "knn" | "hnsw", see :func:`_call_with_graph`; ``graph_k``; nodes are
    keys, so they need ``Lq == Lk``) unless ``graph`` is given; ``preferred_graph`` (e.g. the graph
    that came with the data) is tried first and replaced by a built one where the mechanism refuses
    it. ``query_index`` selects the rows
    reported (queries keep their positions ``0..Lq−1``, which matters for causal, windowed and
    graph mechanisms): the mechanism runs on every query when ``Lq·Lk ≤ MAX_DENSE`` (and always
    for graph mechanisms) and on the selected queries alone otherwise (noted). Weights are
    computed when ``want_weights`` and ``rows·Lk ≤ MAX_DENSE``. With ``warm`` the first run of a
    configuration in this process is preceded by a tiny untimed call (Numba compiles once), so
    ``seconds`` is the steady-state time of the forward call. A
    :class:`~workbench.errors.WorkbenchError` (bad parameter, shape, backend…) is returned as
    ``error``; it is never raised.
    """
    params = dict(params or {})
    res = RunResult(name=name, params=params)
    notes: list[str] = []
    try:
        info = _registry()[name]
        mech = info.cls(**params)
        q, k, v = _as_2d("q", q), _as_2d("k", k), _as_2d("v", v)
        rows = None
        if query_index is not None:
            rows = np.asarray(query_index, dtype=np.int64).reshape(-1)
            if rows.size == 0 or rows.min() < 0 or rows.max() >= q.shape[0]:
                raise DataError(f"query_index: expected indices in [0, {q.shape[0]}), got "
                                f"{rows.size} indices" + (f" in [{rows.min()}, {rows.max()}]" if rows.size else ""))
            if q.shape[0] * k.shape[0] > MAX_DENSE and not info.needs_graph:
                q = q[rows]
                rows = None
                notes.append("ran on the selected queries alone (positions renumbered 0..n-1)")
        res.backend = mech.backend_for(q, k, v)
        notes.extend(mech.input_notes(q, k))
        if warm:
            _warm_up(name, params, info, mech, q, v)
        out, graph, note, res.seconds = _call_with_graph(lambda kw: mech(q, k, v, **kw), info, k, graph, graph_kind,
                                                         graph_k, graph_seed, prefer=preferred_graph)
        if note:
            notes.append(note)
        kw = {} if graph is None else {"graph": graph}
        res.graph = graph
        res.output = out if rows is None else out[rows]
        n_rows = q.shape[0] if rows is None else rows.size
        if want_weights and n_rows * k.shape[0] <= MAX_DENSE and q.shape[0] * k.shape[0] <= MAX_DENSE:
            try:
                t0 = time.perf_counter()
                w = mech.weights(q, k, **kw)
                res.weights_seconds = time.perf_counter() - t0
                res.weights = w if rows is None else w[rows]
            except ConfigurationError as exc:
                if "not defined" not in str(exc):
                    raise
                notes.append("attention weights are not defined for this mechanism")
        elif want_weights:
            notes.append(f"weights not computed: {n_rows} × {k.shape[0]} exceeds {MAX_DENSE} entries; "
                         "use weights_tile")
    except WorkbenchError as exc:
        res.error = str(exc)
    except MemoryError:
        res.error = f"{name}: out of memory for q {np.shape(q)}, k {np.shape(k)}; choose fewer queries or keys"
    res.notes = tuple(notes)
    return res


# -- diagnostics -----------------------------------------------------------------------------------

def attended_keys(weights_row, top: int = 10) -> np.ndarray:
    """Indices of the ``top`` largest weights of one row, largest first (ties: smaller index)."""
    w = np.asarray(weights_row, dtype=np.float64).reshape(-1)
    top = max(0, min(int(top), w.size))
    return top_k(w, top)[0]


def _topk_sets(w: np.ndarray, k: int) -> np.ndarray:
    return top_k(np.asarray(w, dtype=np.float64), k)[0]


def diagnostics(result: RunResult, reference: RunResult | None, *, top_k: int = 8,
                threshold: float = 1e-3) -> dict:
    """Plain-number diagnostics of ``result`` against ``reference`` (usually scaled dot-product).

    * ``entropy`` ``(Lq,)`` per query, ``H_i = −Σ_j w_ij ln w_ij`` (nats, ``0 ln 0 = 0``),
      ``entropy_mean``, and ``entropy_max = ln Lk`` (uniform attention);
    * ``sparsity`` — the fraction of all weights below ``threshold`` (1e-3);
    * ``top_k_overlap`` — mean over queries of ``|top_k(W_i) ∩ top_k(R_i)| / k``,
      ``k = min(top_k, Lk)``;
    * ``output_distance`` — relative Frobenius distance ``‖O − O_ref‖_F / ‖O_ref‖_F``
      (absolute when ``‖O_ref‖ = 0``; None when shapes differ);
    * ``seconds``, ``backend``, ``error``, ``notes`` of the run.

    Values that cannot be computed (no weights, an error, different shapes) are None.
    """
    d: dict = {"name": result.name, "entropy": None, "entropy_mean": None, "entropy_max": None, "sparsity": None,
               "top_k_overlap": None, "top_k": None, "output_distance": None, "seconds": result.seconds,
               "weights_seconds": result.weights_seconds, "backend": result.backend, "error": result.error,
               "notes": result.notes}
    w = result.weights
    if w is not None:
        w = np.asarray(w)
        from workbench.entropy import row_entropy

        ent = row_entropy(w)
        d["entropy"] = ent
        d["entropy_mean"] = float(ent.mean())
        d["entropy_max"] = float(math.log(w.shape[1]))
        d["sparsity"] = float(np.mean(w < threshold))
        r = None if reference is None else reference.weights
        if r is not None and np.shape(r) == w.shape:
            k = max(1, min(int(top_k), w.shape[1]))
            a, b = _topk_sets(w, k), _topk_sets(r, k)
            hits = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
            d["top_k_overlap"] = float(np.mean(hits / k))
            d["top_k"] = k
    if reference is not None and result.output is not None and reference.output is not None:
        o, ro = np.asarray(result.output, np.float64), np.asarray(reference.output, np.float64)
        if o.shape == ro.shape:
            den = np.linalg.norm(ro)
            num = np.linalg.norm(o - ro)
            d["output_distance"] = float(num / den) if den > 0 else float(num)
    return d


# -- lazy tiles --------------------------------------------------------------------------------------

def _span(name: str, span, length: int) -> tuple[int, int]:
    if span is None:
        return 0, length
    try:
        a, b = (int(s) for s in span)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: expected a pair (start, stop), got {span!r}") from None
    if not 0 <= a < b <= length:
        raise ConfigurationError(f"{name}: expected 0 <= start < stop <= {length}, got ({a}, {b})")
    return a, b


def tile_indices(shape: tuple[int, int], rows=None, cols=None, out_shape=(800, 800)):
    """``(row_index (h,), col_edges (w + 1,))`` of a tile of a ``shape = (Lq, Lk)`` map.

    The region ``rows = (r0, r1)``, ``cols = (c0, c1)`` (None: everything) is shown on
    ``h = min(out_h, r1 − r0)`` rows and ``w = min(out_w, c1 − c0)`` columns (never upsampled):
    pixel row ``i`` is query ``r0 + ⌊i (r1 − r0) / h⌋`` (a sub-sample), pixel column ``b`` pools
    keys ``[edges[b], edges[b+1])`` with ``edges[b] = c0 + ⌊b (c1 − c0) / w⌋`` (never empty).
    """
    lq, lk = (int(s) for s in shape)
    r0, r1 = _span("rows", rows, lq)
    c0, c1 = _span("cols", cols, lk)
    try:
        oh, ow = (int(s) for s in out_shape)
    except (TypeError, ValueError):
        raise ConfigurationError(f"out_shape: expected a pair (h, w) of pixels, got {out_shape!r}") from None
    if oh < 1 or ow < 1:
        raise ConfigurationError(f"out_shape: expected positive sizes, got {out_shape!r}")
    h, w = min(oh, r1 - r0), min(ow, c1 - c0)
    ridx = r0 + (np.arange(h, dtype=np.int64) * (r1 - r0)) // h
    edges = c0 + (np.arange(w + 1, dtype=np.int64) * (c1 - c0)) // w
    return ridx, edges


_REDUCE = ("max", "sum", "mean")


def pool_weights(w: np.ndarray, rows=None, cols=None, out_shape=(800, 800)) -> np.ndarray:
    """Max-pool the region ``rows × cols`` of a dense ``(Lq, Lk)`` map to at most ``out_shape`` pixels.

    Pixel ``(a, b)`` is ``max w[i, j]`` over query rows ``[R_a, R_{a+1})`` and key columns
    ``[C_b, C_{b+1})``, with ``R_a = r0 + ⌊a (r1 − r0) / h⌋`` and ``C_b = c0 + ⌊b (c1 − c0) / w⌋``
    (``h = min(out_h, r1 − r0)``, ``w = min(out_w, c1 − c0)``: never upsampled, no bin empty).
    Unlike :func:`weights_tile`, rows are pooled too: a sharp weight of any query stays visible.
    Returns float32 ``(h, w)``.
    """
    w = np.asarray(w)
    if w.ndim != 2 or w.size == 0:
        raise DataError(f"w: expected a non-empty (Lq, Lk) matrix, got shape {w.shape}")
    row_starts, col_edges = tile_indices(w.shape, rows, cols, out_shape)
    r0, r1 = _span("rows", rows, w.shape[0])
    return _tiles.max_pool(w, row_starts, r1, col_edges)


def _is_softmax_dot(mech) -> bool:
    from workbench.mechanisms.flash import Flash
    from workbench.mechanisms.scaled_dot_product import ScaledDotProduct

    return type(mech) in (ScaledDotProduct, Flash)


def tile_plan(name: str, params: Mapping | None, lq: int, lk: int) -> dict:
    """How :func:`weights_tile` would compute a tile of an ``lq × lk`` map for this mechanism.

    ``{"method": "lse" | "dense" | "sampled" | "refused", "note": str}``: ``"lse"`` — exact
    per-row log-sum-exp over all keys (softmax dot-product mechanisms, any size); ``"dense"`` —
    the mechanism's full weights (``lq·lk ≤ MAX_DENSE``), cached; ``"sampled"`` — the
    mechanism's weights of the sampled queries against all keys (exact for mechanisms whose row
    depends only on its query: not causal, windowed or graph-based), computed in chunks of at
    most ``MAX_DENSE`` weights; ``"refused"`` — a graph mechanism past ``MAX_DENSE`` (its graph
    spans all nodes).
    """
    try:
        info = _registry()[name]
        mech = info.cls(**dict(params or {}))
    except WorkbenchError as exc:
        return {"method": "refused", "note": str(exc)}
    if _is_softmax_dot(mech):
        return {"method": "lse", "note": "exact: per-row log-sum-exp over all keys"}
    if lq * lk <= MAX_DENSE:
        return {"method": "dense", "note": f"the mechanism's full {lq} × {lk} weights (cached)"}
    if info.needs_graph:
        return {"method": "refused", "note": f"{name} needs its graph over all {lk} nodes; a {lq} × {lk} map "
                                             f"exceeds {MAX_DENSE} entries — select fewer points"}
    return {"method": "sampled", "note": "the sampled queries' rows against all keys (positions renumbered: "
                                         "approximate for causal or windowed mechanisms)"}


_DENSE_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_DENSE_LOCK = threading.Lock()


def _dense_weights(name, params, mech, q, k, graph):
    key = (name, json.dumps(params, sort_keys=True, default=repr), array_digest(q), array_digest(k), id(graph))
    with _DENSE_LOCK:
        if key in _DENSE_CACHE:
            _DENSE_CACHE.move_to_end(key)
            return _DENSE_CACHE[key]
    w = mech.weights(q, k, **({} if graph is None else {"graph": graph}))
    with _DENSE_LOCK:
        _DENSE_CACHE[key] = w
        while len(_DENSE_CACHE) > 2:
            _DENSE_CACHE.popitem(last=False)
    return w


def weights_tile(name: str, params: Mapping | None, q, k, *, rows=None, cols=None, out_shape=(800, 800),
                 reduce: str = "max", graph=None, graph_kind: str = "auto", graph_k: int = 8) -> np.ndarray:
    """The attention weights of the region ``rows × cols`` at screen resolution, ``(h, w)`` float64.

    ``q (Lq, d)``, ``k (Lk, d)``; the region and the sampling are those of :func:`tile_indices`
    (rows sub-sampled, columns pooled by ``reduce``: ``"max"`` — the largest weight in each
    column bin, so sharp attention stays visible; ``"sum"`` — the weight mass of the bin, so a
    full-width tile's rows sum to 1; ``"mean"``). For scaled dot-product and flash attention the
    tile is exact at any size: ``w_ij = exp(s·q_i·k_j − lse_i)`` with ``lse_i`` the log-sum-exp of
    row ``i`` over *all* allowed keys (the flash kernel, honouring ``causal`` and
    ``causal_offset`` at the query's true position), and scores computed only for the visible
    columns, block by block — a 100,000 × 100,000 map is never materialised. Other mechanisms
    follow :func:`tile_plan`. Raises :class:`~workbench.errors.WorkbenchError` with a clear
    message when a tile cannot be computed.
    """
    if reduce not in _REDUCE:
        raise ConfigurationError(f"reduce: expected one of {_REDUCE}, got {reduce!r}")
    params = dict(params or {})
    info = _registry()[name]
    mech = info.cls(**params)
    q, k = _as_2d("q", q), _as_2d("k", k)
    if q.shape[1] != k.shape[1]:
        raise DataError(f"k: mismatched query/key dimensions: q has d={q.shape[1]}, k has d={k.shape[1]}")
    from workbench.inputs import prepare

    prepare(q, k, None, need_v=False)  # validation: numeric, finite, non-empty (raises naming q or k)
    lq, lk = q.shape[0], k.shape[0]
    ridx, edges = tile_indices((lq, lk), rows, cols, out_shape)
    if _is_softmax_dot(mech):
        try:
            return _tiles.softmax_tile(q, k, ridx, edges, scale=mech.logit_scale(q.shape[1]), causal=bool(mech.causal),
                                       causal_offset=int(mech.causal_offset), reduce=reduce, backend=mech.backend)
        except BackendError as exc:
            raise ConfigurationError(f"backend: {exc}") from None
    plan = tile_plan(name, params, lq, lk)
    if plan["method"] == "refused":
        raise ConfigurationError(f"{name}: cannot draw this map: {plan['note']}")
    if plan["method"] == "dense":
        w, _, _, _ = _call_with_graph(lambda kw: _dense_weights(name, params, mech, q, k, kw.get("graph")), info, k,
                                   graph, graph_kind, graph_k, 0)
        w = w[ridx]
        return _tiles.pool_columns(np.asarray(w, dtype=np.float64), edges, reduce)
    chunk = max(1, MAX_DENSE // lk)  # sampled rows per call: at most MAX_DENSE weights at a time
    return np.concatenate([_tiles.pool_columns(np.asarray(mech.weights(q[ridx[i:i + chunk]], k), dtype=np.float64),
                                               edges, reduce)
                           for i in range(0, len(ridx), chunk)])


# -- report ------------------------------------------------------------------------------------------

def report_for(ds, *, profile: str = "default", k: int = 8, seed: int = 1):
    """The unified report of the keys of ``ds`` (a :class:`~workbench.data.Dataset` or an array):
    ``workbench.report.analyze_keys(ds.x, profile=…, k=…, seed=…)``.

    Returns the report, or a message string when the report module is not available or refuses
    the data (the message says why).
    """
    try:
        from workbench.report import analyze_keys
    except ImportError as exc:
        return f"the unified report is not available ({exc})"
    x = getattr(ds, "x", ds)
    try:
        return analyze_keys(x, profile=profile, k=k, seed=seed)
    except WorkbenchError as exc:
        return f"report: {exc}"
