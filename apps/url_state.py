"""App state in the URL: :class:`AppState` ⇄ the page's query string.

On load the query string is parsed (``AppState.from_query`` ignores anything malformed); after a
change the URL is replaced (no reload, no history entry per click) so that copying the link
reproduces the view: data set, key set, mechanisms, their non-default parameters, data options
and the selected query.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qs, urlencode

import numpy as np
import panel as pn

from workbench.autograph import GRAPH_CHOICES
from workbench.data import DEFAULT_DEMO

__all__ = ["AppState", "state_from_location", "query_string", "write_location"]


def _registry():
    import workbench

    return workbench.registry



# -- the state -------------------------------------------------------------------------------------

_DEFAULT_MECHANISMS = ("scaled_dot_product", "hyperbolic", "flash", "linear")


def _default_mechanisms() -> list:
    return list(_DEFAULT_MECHANISMS[:2])


def _default_params() -> list:
    return [{}, {}]


@dataclass
class AppState:
    """What a dashboard link reproduces: data, mechanisms and their parameters, data options.

    ``dataset`` a demo name (uploads cannot travel in a link: an unknown name falls back to the
    default demo); ``keys`` ``"same"`` or a demo name for keys/values from another set;
    ``mechanisms`` 2–4 registered names (repeats allowed, e.g. two temperatures) with
    ``params`` aligned (one dict per panel; invalid entries and default values are dropped); ``queries``
    ``"all" | "subset" | "label"`` with ``n_queries`` / ``label``; ``normalisation``; ``pca_dim``
    (None: no PCA); ``projection``; ``graph_kind`` and ``graph_k`` for graph mechanisms;
    ``seed``; ``selected`` the query selected in the maps (None: none); ``source`` where loaded
    data came from when not a demo: ``"path:/data/x.npy"`` (reopened from the server's disk) or
    ``"upload:x.npy"`` (uploads cannot travel: the link reopens on the demo, with a note);
    ``demo_size`` the number of rows of a demo that takes one (None: its default).
    """

    dataset: str = DEFAULT_DEMO
    keys: str = "same"
    mechanisms: list = field(default_factory=_default_mechanisms)
    params: list = field(default_factory=_default_params)
    queries: str = "all"
    n_queries: int = 200
    label: str | None = None
    normalisation: str = "none"
    pca_dim: int | None = None
    projection: str = "pca"
    graph_kind: str = "auto"
    graph_k: int = 8
    seed: int = 0
    selected: int | None = None
    calibrate: list = field(default_factory=list)
    source: str | None = None
    demo_size: int | None = None

    def __post_init__(self):
        self.mechanisms, self.params = _clean_mechanisms(self.mechanisms, self.params)
        flags = [bool(c) for c in (self.calibrate if isinstance(self.calibrate, (list, tuple)) else [])]
        self.calibrate = (flags + [True] * len(self.mechanisms))[:len(self.mechanisms)]

    # URL keys, one per field
    _KEYS = {"dataset": "data", "keys": "keys", "queries": "q", "n_queries": "nq", "label": "label",
             "normalisation": "norm", "pca_dim": "pca", "projection": "proj", "graph_kind": "graph",
             "graph_k": "k", "seed": "seed", "selected": "sel", "source": "src", "demo_size": "size"}

    def to_query(self) -> dict[str, str]:
        """URL query parameters (all strings): ``data``, ``m`` (comma-separated mechanisms),
        ``p0``…``p3`` (JSON of the non-default parameters of each panel), and the options."""
        out: dict[str, str] = {}
        for f, key in self._KEYS.items():
            val = getattr(self, f)
            if val is not None:
                out[key] = str(val)
        out["m"] = ",".join(self.mechanisms)
        if not all(self.calibrate):
            out["cal"] = "".join("1" if c else "0" for c in self.calibrate)
        reg = _registry()
        for i, (name, p) in enumerate(zip(self.mechanisms, self.params)):
            objs = reg[name].parameters
            nondefault = {k: _jsonable(v) for k, v in p.items() if k in objs}
            if nondefault:
                out[f"p{i}"] = json.dumps(nondefault, sort_keys=True, separators=(",", ":"))
        return out

    @classmethod
    def from_query(cls, query: Mapping | None) -> "AppState":
        """The state of a URL query (values as ``str``, ``bytes`` or lists of them, as web servers
        give them); anything missing, malformed or invalid falls back to its default. Never raises."""
        from workbench.data.demos import DEMOS
        from workbench.data.prepare import NORMALISATIONS, QUERY_SELECTIONS

        q = {}
        try:
            for k, v in dict(query or {}).items():
                q[str(k)] = _text(v)
        except Exception:
            q = {}
        d = cls()
        kw: dict = {}

        def pick(f, conv, ok=lambda v: True):
            raw = q.get(cls._KEYS[f])
            if raw is None:
                return
            try:
                val = conv(raw)
            except Exception:
                return
            if ok(val):
                kw[f] = val

        pick("dataset", str, lambda v: v in DEMOS)
        pick("source", lambda s: s[:2000], lambda v: v.startswith(("path:", "upload:")) and len(v) > 6)
        pick("demo_size", int, lambda v: 2 <= v <= 1_000_000)
        pick("keys", str, lambda v: v == "same" or v in DEMOS)
        pick("queries", str, lambda v: v in QUERY_SELECTIONS)
        pick("n_queries", int, lambda v: 1 <= v <= 10_000_000)
        pick("label", lambda s: s[:200])
        pick("normalisation", str, lambda v: v in NORMALISATIONS)
        pick("pca_dim", lambda s: None if s in ("", "None", "none") else int(s),
             lambda v: v is None or 2 <= v <= 100_000)
        pick("projection", str, lambda v: v in ("pca", "umap"))
        pick("graph_kind", str, lambda v: v in GRAPH_CHOICES)
        pick("graph_k", int, lambda v: 1 <= v <= 1024)
        pick("seed", int, lambda v: 0 <= v < 2**63)
        pick("selected", lambda s: None if s in ("", "None", "none") else int(s), lambda v: v is None or v >= 0)
        names = d.mechanisms
        params: list = []
        raw_m = q.get("m")
        if raw_m:
            names = [s.strip() for s in raw_m.split(",") if s.strip()][:4]
            for i in range(len(names)):
                try:
                    p = json.loads(q.get(f"p{i}", "{}"))
                except (ValueError, TypeError, RecursionError):
                    p = {}
                params.append(p if isinstance(p, dict) else {})
        kw["mechanisms"], kw["params"] = names, params
        raw_cal = q.get("cal")
        if raw_cal:
            kw["calibrate"] = [ch != "0" for ch in raw_cal[:4]]
        try:
            return cls(**kw)
        except Exception:  # pragma: no cover - every field was checked; belt and braces
            return cls()

    def mechanism_pairs(self) -> list[tuple[str, dict]]:
        """``[(name, params), …]`` one per panel."""
        return list(zip(self.mechanisms, self.params))


def _text(v) -> str:
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else ""
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8", "replace")
    return str(v)


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _clean_params(cls, p) -> dict:
    """The valid entries of ``p`` for mechanism class ``cls`` (each checked by constructing it)."""
    if not isinstance(p, Mapping):
        return {}
    objs = {n: o for n, o in cls.param.objects("existing").items() if n != "name"}
    good: dict = {}
    for key, val in p.items():
        if key not in objs:
            continue
        for cand in (val, tuple(val) if isinstance(val, list) else None):
            if cand is None:
                continue
            try:
                cls(**{key: cand})
            except Exception:
                continue
            good[key] = cand
            break
    try:
        cls(**good)
    except Exception:
        return {}
    return {k: v for k, v in good.items() if not _same(v, objs[k].default)}  # canonical: defaults left out


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b) or (a is None and b is None)
    except Exception:
        return False


def _clean_mechanisms(names, params) -> tuple[list, list]:
    reg = _registry()
    known = set(reg)  # (``in reg`` raises ConfigurationError for an unknown name)
    names = list(names) if isinstance(names, (list, tuple)) else []
    params = list(params) if isinstance(params, (list, tuple)) else []
    out_n, out_p = [], []
    for i, name in enumerate(names):
        if isinstance(name, str) and name in known and len(out_n) < 4:
            out_n.append(name)
            out_p.append(_clean_params(reg[name].cls, params[i] if i < len(params) else {}))
    for name in _DEFAULT_MECHANISMS:
        if len(out_n) >= 2:
            break
        if name not in out_n and name in known:
            out_n.append(name)
            out_p.append({})
    return out_n, out_p


# -- the page URL --------------------------------------------------------------------------------

def state_from_location(location=None) -> AppState:
    """The :class:`AppState` encoded in the page URL (defaults where absent or invalid)."""
    location = location if location is not None else pn.state.location
    search = (getattr(location, "search", "") or "").lstrip("?")
    return AppState.from_query({k: v[-1] for k, v in parse_qs(search, keep_blank_values=True).items()})


def query_string(state: AppState) -> str:
    """``?data=…&m=…`` for ``state`` (stable order, percent-encoded)."""
    return "?" + urlencode(sorted(state.to_query().items()))


def write_location(state: AppState, location=None) -> str:
    """Put ``state`` into the page URL; returns the query string written."""
    location = location if location is not None else pn.state.location
    search = query_string(state)
    if location is not None and getattr(location, "search", None) != search:
        location.search = search
    return search
