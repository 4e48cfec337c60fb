"""Calibration: fit a mechanism's temperature to the user's keys, so attention means something.

Real embeddings are unit-norm sentence or image vectors: their dot products lie in ``[−1, 1]``
and scaled dot-product attention at ``s = 1/√d`` is uniform to three decimals. Calibration
finds the temperature at which self-attention over the keys has a chosen sharpness.

**The temperature convention** (one for every family, :meth:`Mechanism.temperature_parameter`):
a mechanism's logits are its score divided by ``T`` — ``−d(q, k)/T`` for distances, ``s·q·k``
with ``s = s₀/T`` for dot products (``s₀ = 1/√d_h``, ``d_h`` the head width), the Sinkhorn/OT,
diffusion and graph-attention logits likewise. ``T = 1`` is every mechanism's default. The
fitted value is set on the parameter the mechanism declares (``temperature``, or ``scale``).

**What is fitted.** The mean normalised entropy of self-attention over the keys,
``mean_i H(w_i) / ln n_i`` (:mod:`workbench.entropy`; ``n_i`` the keys row ``i`` may attend:
all keys, or its graph neighbours or window), is brought to ``target_entropy`` (0.5 by default:
each query spreads over about ``n^0.5`` keys) by Brent's method on ``ln T``, bracketed by
decades from the current ``T``. It grows with ``T`` for every registered mechanism.

**The sample, and bounded time.** At most ``queries`` query rows (256) attend at most
``max_keys`` keys (4,096), drawn with ``seed``:

* mechanisms that attend every key: a uniform key sample, and the entropy over all ``n`` keys
  estimated from it by :func:`workbench.entropy.replicated_entropy` (exact when ``n ≤ max_keys``).
  The estimate holds for rows that are one softmax over per-key scores; for the others
  (``softmax_rows = False``: heads or experts averaged, random features) ``T`` is then refined on
  64 queries attending all keys;
* graph mechanisms: a node sample with its own kNN graph (``graph_k`` neighbours; HNSW for those
  that read HNSW levels), entropy normalised by each node's neighbour count (rows that attend
  most of the sampled graph, e.g. every reachable node, are scaled up to the whole graph as in
  the first case);
* position-dependent mechanisms (windows, ``causal=True``): a contiguous block of keys.

**Domains and structure.** Before the temperature, :meth:`Mechanism.calibration_params` sets
what the mechanism's own rule says the keys need: geometric mechanisms bring the keys into
their domain (for the Poincaré ball: the curvature ``c`` whose ball holds the largest key at 0.95
of its radius, :func:`workbench.geometry.poincare.fit_curvature`), so unit-norm inputs never land
on the boundary; centroid OT takes enough centroids for the target to be reachable. The rule
used is reported.

**Composite mechanisms** (``moe``): each expert is calibrated on the same keys and target, and
the fitted values go into ``expert_params``.

The returned mechanism carries ``.calibration`` (a :class:`Calibration`): the parameter and its
value, ``T``, the entropy reached, the sample sizes, the domain rule, the time taken, and
``params`` — the non-default parameters, so ``workbench.make(name, **cal.params)`` rebuilds it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from workbench import checks as C
from workbench.errors import ConfigurationError, NumericalError, WorkbenchError
from workbench.entropy import mean_ratio, replicated_entropy, row_entropy, support

__all__ = ["Calibration", "calibrate", "self_attention_entropy", "solve_temperature", "nondefault", "keys_digest",
           "DEFAULT_TARGET", "T_RANGE"]

DEFAULT_TARGET = 0.5
#: Temperatures searched, relative to nothing: ``T`` stays in ``[1e-6, 1e6]``.
T_RANGE = (1e-6, 1e6)
#: ``T`` at which attention is uniform over each row's support, to count the support.
_PROBE_T = 1e6
_XTOL = 1e-3  # in ln T: 0.1 % of T
#: Most keys of a graph or windowed mechanism's sample (its weights are computed densely).
DENSE_SAMPLE = 512
#: Queries of the exact refinement (mechanisms whose rows are not one softmax, past ``max_keys``).
EXACT_ROWS = 64
#: Most ``queries × keys`` weights one evaluation of the sample may hold (512 MiB in float64).
MAX_SAMPLE_WEIGHTS = 1 << 26


@dataclass(frozen=True)
class Calibration:
    """How a mechanism was calibrated (see the module docstring).

    ``mechanism`` registry name; ``parameter`` the fitted one (``"temperature"``, ``"scale"``,
    ``"expert_params"`` or None); ``value`` its fitted value; ``temperature`` ``T`` in the common
    convention; ``target`` and ``entropy`` (reached, mean ``H/ln n`` on the sample); ``queries``
    and ``keys`` sample sizes out of ``n_keys``; ``sampling`` "keys" | "nodes" | "block";
    ``domain`` the rule of :meth:`Mechanism.calibration_params` that was applied ("" if none);
    ``params`` the mechanism's non-default parameters; ``seconds``; ``notes``; ``keys_digest``
    :func:`keys_digest` of the keys it was fitted to (to tell whether a record fits other keys).
    """

    mechanism: str
    parameter: str | None
    value: float | None
    temperature: float | None
    target: float
    entropy: float
    queries: int
    keys: int
    n_keys: int
    sampling: str
    domain: str = ""
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: tuple = ()
    keys_digest: str = ""

    def describe(self) -> str:
        """One line for people: what was fitted to what."""
        if self.parameter in ("temperature", "scale"):
            head = f"{self.parameter} = {self.value:.4g} (T = {self.temperature:.4g})"
        elif self.parameter == "expert_params":
            head = "each expert calibrated"
        else:
            head = "nothing to fit"
        ent = "n/a" if math.isnan(self.entropy) else f"{self.entropy:.3f}"
        return (f"{head}: mean H/ln n = {ent} (target {self.target}) on {self.queries} queries × "
                f"{self.keys:,} of {self.n_keys:,} keys" + (f"; {self.domain}" if self.domain else ""))


def _int(name: str, v, lo: int, hi: int) -> int:
    return C.integer(name, v, minimum=lo, maximum=hi)


def _mechanism(name_or_mechanism, params: dict):
    import workbench
    from workbench.mechanisms.base import Mechanism

    if isinstance(name_or_mechanism, str):
        return workbench.make(name_or_mechanism, **params)
    if isinstance(name_or_mechanism, Mechanism):
        return name_or_mechanism.with_params(**params)
    raise ConfigurationError(f"name_or_mechanism: expected a registered name or a Mechanism, got "
                             f"{type(name_or_mechanism).__name__}")


def _rebuild(mech, changes: dict):
    return mech.with_params(**changes)


def keys_digest(keys) -> str:
    """:func:`~workbench.digest.array_digest` of ``keys (n, d)`` in float64 (same values, same digest, either dtype)."""
    from workbench.digest import array_digest

    return array_digest(np.asarray(keys, dtype=np.float64))


def nondefault(mech) -> dict:
    """:meth:`Mechanism.nondefault_params` without ``backend`` (a calibration holds on any backend)."""
    return {n: v for n, v in mech.nondefault_params().items() if n != "backend"}


class _Sample:
    """The rows calibration runs on: ``k (m, d)`` keys, ``rows`` (query rows into ``k``), the graph."""

    def __init__(self, mech, info, keys: np.ndarray, queries: int, max_keys: int, graph_k: int, seed: int):
        n = keys.shape[0]
        rng = np.random.default_rng(seed)
        self.n = n
        if info.needs_graph:
            self.mode = "nodes"
        elif mech.position_dependent or bool(getattr(mech, "causal", False)):
            self.mode = "block"
        else:
            self.mode = "keys"
        # graph and windowed mechanisms run densely on their sample (every sampled key a query)
        m = min(n, max_keys if self.mode == "keys" else min(max_keys, DENSE_SAMPLE))
        if self.mode == "block":
            start = int(rng.integers(0, n - m + 1))
            idx = np.arange(start, start + m)
        else:
            idx = np.arange(n) if m == n else np.sort(rng.choice(n, size=m, replace=False))
        self.k = np.ascontiguousarray(keys[idx])
        self.rows = np.sort(rng.choice(m, size=min(queries, m), replace=False))
        self.all_keys = keys
        self.query_index = idx[self.rows]  # the query rows as rows of all keys
        self.graph = None
        self.graph_k = graph_k
        self.seed = seed
        self.info = info

    def weights(self, mech) -> np.ndarray:
        """Weights of the sampled query rows over the sampled keys, ``(rows, m)`` float64."""
        from workbench.autograph import call_with_graph

        if self.mode == "keys":
            return np.asarray(mech.weights(self.k[self.rows], self.k), dtype=np.float64)
        # graph and windowed mechanisms see every sampled key as a query (positions, nodes)
        w, self.graph, _, _ = call_with_graph(lambda kw: mech.weights(self.k, self.k, **kw), self.info, self.k,
                                              self.graph, "auto", self.graph_k, self.seed)
        return np.asarray(w, dtype=np.float64)[self.rows]

    @property
    def sampled(self) -> bool:
        """True when the keys are a strict sample of all keys (the entropy is then estimated)."""
        return self.k.shape[0] < self.n

    def exact_ratio(self, mech, rows: int) -> float:
        """Mean ``H/ln n`` of ``rows`` sampled queries over *all* keys (keys mode)."""
        q = self.all_keys[self.query_index[:rows]]
        return mean_ratio(row_entropy(np.asarray(mech.weights(q, self.all_keys), dtype=np.float64)), self.n)

    def ratio(self, w: np.ndarray, supp: np.ndarray | None) -> float:
        if self.mode == "keys":
            return mean_ratio(replicated_entropy(w, self.n, own=self.rows), self.n)
        m = self.k.shape[0]
        if self.mode == "nodes" and m < self.n and supp is not None and np.mean(supp) > 0.5 * m:
            # rows that attend most of the sampled graph (e.g. every reachable node) attend most of
            # the whole graph too: each sampled node stands for n/m of them, as in "keys" mode
            total = supp * (self.n / m)
            return mean_ratio(replicated_entropy(w, total, own=self.rows, sampled=supp), total)
        return mean_ratio(row_entropy(w), supp)


def _entropy_at(mech, t: float, d: int, sample: _Sample, supp, lo_t: float) -> float:
    """Mean normalised entropy at temperature ``t`` (the one-hot / uniform limit where the
    mechanism overflows: below the current ``T`` it is 0, above it 1)."""
    try:
        w = sample.weights(_rebuild(mech, mech.temperature_params(t, d)))
    except (NumericalError, FloatingPointError, OverflowError):
        return 0.0 if t < lo_t else 1.0
    return sample.ratio(w, supp)


def solve_temperature(entropy_at, target: float, t0: float = 1.0, bounds: tuple = T_RANGE,
                      xtol: float = _XTOL) -> tuple[float, float, list]:
    """``(T, entropy reached, notes)`` with ``entropy_at(T) ≈ target``, for an entropy that grows with ``T``.

    Bracketed by decades from ``t0`` within ``bounds``, then Brent's method on ``ln T`` to
    ``xtol``. When no ``T`` in ``bounds`` reaches the target, the closest entropy found is
    returned (within 0.01 of it, the ``T`` nearest ``t0``) with a note; NaN entropies (nothing
    to measure) return ``t0``.
    """
    from scipy.optimize import brentq

    notes: list = []
    lo_b, hi_b = math.log(bounds[0]), math.log(bounds[1])
    cache: dict = {}

    def f(u: float) -> float:
        if u not in cache:
            cache[u] = entropy_at(math.exp(u)) - target
        return cache[u]

    u = min(max(math.log(t0), lo_b), hi_b)
    fu = f(u)
    if math.isnan(fu):
        return t0, math.nan, ["every sampled row has at most one key to attend: nothing to calibrate"]
    step = math.log(10.0) * (1 if fu < 0 else -1)  # entropy grows with T
    a, fa = u, fu
    while True:
        b = min(max(a + step, lo_b), hi_b)
        fb = f(b)
        if fa == 0 or fb == 0 or (fa < 0) != (fb < 0) or b in (lo_b, hi_b):
            break
        a, fa = b, fb
    if fa == 0:
        return math.exp(a), target, notes
    if fb == 0:
        return math.exp(b), target, notes
    if (fa < 0) == (fb < 0):  # the target lies outside what the temperature can reach
        # the closest entropy; within 0.01 of it, the temperature nearest the start (least extreme)
        closest = min(abs(v) for v in cache.values())
        best = min((x for x in cache if abs(cache[x]) <= closest + 0.01), key=lambda x: abs(x - u))
        reached = cache[best] + target
        notes.append(f"the target entropy {target} is out of reach: entropy {reached:.3f} at T = "
                     f"{math.exp(best):.3g}, the closest within T in [{bounds[0]:g}, {bounds[1]:g}]")
        return math.exp(best), reached, notes
    u_star = brentq(f, min(a, b), max(a, b), xtol=xtol, maxiter=60)
    return math.exp(u_star), f(u_star) + target, notes


def _fit_temperature(mech, d: int, sample: _Sample, target: float) -> tuple[float, float, list]:
    """``(T, entropy reached, notes)`` for ``mech`` on ``sample`` (see the module docstring)."""
    supp = None
    if sample.mode != "keys":  # the support of each row: its weights at a huge temperature
        supp = support(sample.weights(_rebuild(mech, mech.temperature_params(_PROBE_T, d))))
    t0 = float(mech.current_temperature(d))
    t, reached, notes = solve_temperature(lambda t: _entropy_at(mech, t, d, sample, supp, t0), target, t0)
    if sample.mode == "keys" and sample.sampled and not mech.softmax_rows and not math.isnan(reached):
        t, reached = _refine_exact(mech, d, sample, target, t, notes)
    return t, reached, notes


def _refine_exact(mech, d: int, sample: _Sample, target: float, t: float, notes: list) -> tuple[float, float]:
    """Refit ``T`` on a few queries attending *all* keys, for mechanisms whose rows are not one
    softmax (a mixture of heads or experts, random features): for them the sample's entropy
    estimate is biased. ``EXACT_ROWS`` queries (fewer past 2^24 weights), Brent on ``ln T`` near ``t``."""
    from scipy.optimize import brentq

    rows = int(max(8, min(EXACT_ROWS, sample.query_index.size, (1 << 24) // sample.n)))

    def g(u: float) -> float:
        try:
            return sample.exact_ratio(_rebuild(mech, mech.temperature_params(math.exp(u), d)), rows) - target
        except (NumericalError, FloatingPointError, OverflowError):
            return -target if u < math.log(t) else 1.0 - target

    u = math.log(t)
    gu = g(u)
    step = math.log(4.0) * (1 if gu < 0 else -1)
    a, ga = u, gu
    for _ in range(8):  # T within 4^8 of the sample's estimate
        b = a + step
        gb = g(b)
        if (ga < 0) != (gb < 0) or gb == 0:
            u_star = brentq(g, min(a, b), max(a, b), xtol=1e-2, maxiter=30)
            notes.append(f"T refined on {rows} queries attending all {sample.n:,} keys (this mechanism's rows "
                         "are not one softmax, so a key sample misjudges their entropy)")
            return math.exp(u_star), g(u_star) + target
        a, ga = b, gb
    notes.append(f"the exact refinement on {rows} queries found no temperature within 4^8 of the estimate")
    return t, gu + target


def calibrate(name_or_mechanism, keys, *, target_entropy: float = DEFAULT_TARGET, queries: int = 256,
              max_keys: int = 4096, graph_k: int = 8, sample_seed: int = 0, **params):
    """A mechanism configured for ``keys``: self-attention over them has mean ``H/ln n ≈ target_entropy``.

    ``name_or_mechanism`` a registered name (built with ``params``) or a
    :class:`~workbench.Mechanism` (its parameters, overridden by ``params``); ``keys (n, d)``,
    ``n ≥ 2``; ``target_entropy`` in ``[0.01, 0.99]``; ``queries`` (1–100,000) and ``max_keys``
    (2–1,000,000; at most 2^26 weights together) bound the sample (graph and windowed mechanisms, whose sample attends densely,
    use at most 512 keys); ``graph_k`` neighbours of a graph mechanism's sample graph;
    ``sample_seed`` draws the sample (``seed``, like every other keyword, is the mechanism's). Returns a new mechanism with ``.calibration``
    (:class:`Calibration`). See the module docstring for the convention, the sample and the
    domain rules.

    >>> import numpy as np, workbench
    >>> x = np.random.default_rng(0).standard_normal((500, 384)).astype(np.float32)
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)  # unit-norm, as sentence embeddings
    >>> m = workbench.calibrate("scaled_dot_product", x)
    >>> round(m.calibration.entropy, 2), m.scale > 1 / np.sqrt(384)
    (0.5, True)
    """
    from workbench.registry import registry
    from workbench.report.persistence import points

    t_start = time.perf_counter()
    if isinstance(target_entropy, (bool, np.bool_)) or not isinstance(target_entropy, (int, float, np.number)) \
            or not 0.01 <= float(target_entropy) <= 0.99:
        raise ConfigurationError(f"target_entropy: expected a number in [0.01, 0.99] (a fraction of ln n), got "
                                 f"{target_entropy!r}")
    target = float(target_entropy)
    queries = _int("queries", queries, 1, 100_000)
    max_keys = _int("max_keys", max_keys, 2, 1_000_000)
    graph_k = _int("graph_k", graph_k, 1, 1024)
    seed = _int("sample_seed", sample_seed, 0, 2**63 - 1)
    k = np.ascontiguousarray(points(keys, "keys"))  # finite real (n, d), float32 or float64 kept
    if k.shape[0] < 2:
        raise ConfigurationError(f"keys: calibration needs at least 2 keys, got shape {k.shape}")
    if queries * min(k.shape[0], max_keys) > MAX_SAMPLE_WEIGHTS:
        raise ConfigurationError(f"queries, max_keys: {queries} queries × {min(k.shape[0], max_keys):,} keys exceed "
                                 f"{MAX_SAMPLE_WEIGHTS:,} weights per evaluation; lower one of them")
    mech = _mechanism(name_or_mechanism, params)
    name = type(mech).registry_name
    info = registry[name]
    d = k.shape[1]
    notes: list = []

    from workbench.mechanisms.moe import MoE

    if isinstance(mech, MoE):
        return _calibrate_moe(mech, k, target, queries, max_keys, graph_k, seed, t_start)

    sample = _Sample(mech, info, k, queries, max_keys, graph_k, seed)
    changes, rule = mech.calibration_params(sample.k, target)
    if changes:
        mech = _rebuild(mech, changes)
    which = mech.temperature_parameter()
    if which is None:
        t, reached = None, sample.ratio(sample.weights(mech), support(sample.weights(mech)))
        notes.append(f"{name} has no temperature: nothing fitted")
    else:
        t, reached, more = _fit_temperature(mech, d, sample, target)
        notes.extend(more)
        mech = _rebuild(mech, mech.temperature_params(t, d))
    value = None if which is None else float(getattr(mech, which))
    mech.calibration = Calibration(
        mechanism=name, parameter=which, value=value, temperature=t, target=target, entropy=float(reached),
        queries=int(sample.rows.size), keys=int(sample.k.shape[0]), n_keys=int(k.shape[0]), sampling=sample.mode,
        domain=rule, params=nondefault(mech), seconds=time.perf_counter() - t_start, notes=tuple(notes),
        keys_digest=keys_digest(k))
    return mech


def self_attention_entropy(mech, keys, *, graph_k: int = 8, seed: int = 0) -> float:
    """The exact mean ``H/ln n_i`` of ``mech``'s self-attention over every row of ``keys (n, d)``.

    Dense (``n × n`` weights: for checking a calibration on up to a few thousand keys); ``n_i`` is
    every key, or for graph and windowed mechanisms the keys row ``i`` may attend (its weights at
    a huge temperature); graph mechanisms get the same graph as everywhere else
    (:func:`workbench.autograph.call_with_graph`).
    """
    from workbench.autograph import call_with_graph
    from workbench.entropy import normalised_entropy
    from workbench.registry import registry
    from workbench.report.persistence import points

    x = np.ascontiguousarray(points(keys, "keys"))
    info = registry[type(mech).registry_name]
    w, g, _, _ = call_with_graph(lambda kw: mech.weights(x, x, **kw), info, x, None, "auto", graph_k, seed)
    supp = None
    if info.needs_graph or mech.position_dependent or bool(getattr(mech, "causal", False)):
        hot = _rebuild(mech, mech.temperature_params(_PROBE_T, x.shape[1]))
        wp, _, _, _ = call_with_graph(lambda kw: hot.weights(x, x, **kw), info, x, g, "auto", graph_k, seed)
        supp = support(wp)
    return float(np.nanmean(normalised_entropy(w, supp)))


def _calibrate_moe(mech, k, target, queries, max_keys, graph_k, seed, t_start):
    from workbench.mechanisms.moe import DEFAULT_EXPERT_PARAMS
    from workbench.registry import registry

    fitted: dict = {}
    notes: list = []
    names = mech.expert_names()
    for i, n in enumerate(names):
        if n in fitted:
            continue  # a repeated expert keeps one set of parameters (expert_params is per name)
        cls = registry[n].cls
        base = {a: b for a, b in DEFAULT_EXPERT_PARAMS.get(n, {}).items() if a in cls.param}
        base.update(mech.expert_params.get(n, {}))
        if "seed" in cls.param:
            base.setdefault("seed", mech.seed + i)  # the seed the MoE gives this expert
        try:
            sub = calibrate(n, k, target_entropy=target, queries=queries, max_keys=max_keys, graph_k=graph_k,
                            sample_seed=seed, **base)
        except WorkbenchError as exc:
            notes.append(f"expert {n!r} not calibrated: {exc}")
            continue
        fitted[n] = {a: b for a, b in sub.calibration.params.items()
                     if a != "seed" or b != mech.seed + i}
        notes.append(f"{n}: {sub.calibration.describe()}")
    out = _rebuild(mech, {"expert_params": {**mech.expert_params, **fitted}})
    sample = _Sample(out, registry["moe"], k, queries, max_keys, graph_k, seed)
    reached = sample.ratio(sample.weights(out), None)
    out.calibration = Calibration(
        mechanism="moe", parameter="expert_params", value=None, temperature=None, target=target,
        entropy=float(reached), queries=int(sample.rows.size), keys=int(sample.k.shape[0]), n_keys=int(k.shape[0]),
        sampling=sample.mode, params=nondefault(out), seconds=time.perf_counter() - t_start, notes=tuple(notes),
        keys_digest=keys_digest(k))
    return out
