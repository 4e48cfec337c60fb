"""The dashboard's per-browser state: the loaded data, the data options and the selected query.

:class:`Session` is a ``param.Parameterized`` (its options become widgets and URL entries) that
loads data through :mod:`workbench.data` only. A load or an option change builds a new
:class:`Prepared` (queries, keys, values, labels) in the background; **on any error the previous
data stay loaded** and a message names the problem. Views subscribe with ``on_prepared`` and
watch ``selected`` (the query selected in any map: linked selection).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import param

from workbench import data as wdata
from workbench import compare
from apps.url_state import AppState

from apps.alerts import Messages
from apps.background import Job, Runner


#: Environment variable: when set, server paths are confined to this directory.
DATA_DIR_ENV = "WORKBENCH_DATA_DIR"


#: Fewest rows a loaded file may have: the projection, the maps and the report need a few points.
MIN_ROWS = 3
#: The demo sets that take a size (rows): the Data tab's "demo size" and a link's ``size``.
SIZED_DEMOS = ("clusters", "sequence")


@dataclass(frozen=True)
class Prepared:
    """Arrays ready for the mechanisms, after normalisation, PCA and query selection.

    ``q (Lq, d)`` every row of the query set (positions matter for causal mechanisms), ``k (Lk, d)``
    and ``v (Lk, dv)`` the key/value set, ``query_index (m,)`` the rows shown in the maps (map row
    ``i`` is query ``query_index[i]``), labels and texts per map row and per key; ``graph`` the
    graph that came with the data (a :class:`workbench.graph.Graph` over the keys, when queries and
    keys are one set), else None. ``version`` increases with every new preparation so views can
    drop stale results.
    """

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    query_index: np.ndarray
    query_labels: np.ndarray | None
    key_labels: np.ndarray | None
    key_texts: list | None
    same_set: bool
    name: str
    notes: tuple = ()
    version: int = 0
    keys_dataset: object = field(default=None, repr=False)
    query_texts: list | None = None
    graph: object = field(default=None, repr=False)

    def query_text(self, row: int) -> str:
        """The text of map row ``row`` ("" without texts)."""
        return "" if self.query_texts is None or not 0 <= row < len(self.query_texts) else self.query_texts[row]

    def key_text(self, key: int) -> str:
        """The text of key ``key`` ("" without texts)."""
        return "" if self.key_texts is None or not 0 <= key < len(self.key_texts) else self.key_texts[key]

    def find_query(self, text: str) -> int | None:
        """The first map row whose text starts with ``text``, else the first that contains it
        (case-insensitive, spaces collapsed), or None."""
        needle = " ".join(str(text).split()).lower()
        if not needle or self.query_texts is None:
            return None
        lowered = [t.lower() for t in self.query_texts]
        first = next((i for i, t in enumerate(lowered) if t.startswith(needle)), None)
        return first if first is not None else next((i for i, t in enumerate(lowered) if needle in t), None)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows shown, keys)`` of the attention maps."""
        return int(self.query_index.size), int(self.k.shape[0])

    @property
    def q_shown(self) -> np.ndarray:
        """The queries of the map rows, ``q[query_index]`` (positions renumbered 0..m-1)."""
        return self.q if self.query_index.size == self.q.shape[0] else self.q[self.query_index]

    def describe(self) -> str:
        m, lk = self.shape
        return f"{self.name}: {m:,} queries × {lk:,} keys, d = {self.k.shape[1]}"


def prepare(dataset, keys_dataset, *, queries: str = "all", n_queries: int = 200, label: str | None = None,
            normalisation: str = "none", pca_dim: int | None = None, seed: int = 0, version: int = 0) -> Prepared:
    """Build :class:`Prepared` from a query data set and an optional separate key/value set.

    Both sets get the same normalisation and PCA; keys double as values (``v = k``). Raises the
    library's errors (``DataError``/``ConfigurationError``) naming the problem.
    """
    ds = wdata.transform(dataset, normalisation, pca_dim)
    kds = ds if keys_dataset is None else wdata.transform(keys_dataset, normalisation, pca_dim)
    wdata.check_pair(kds, kds, queries=ds)
    qi = wdata.select_queries(ds, queries, n=n_queries, label=label, seed=seed)
    notes = tuple(ds.notes) + (() if keys_dataset is None else tuple(f"keys: {n}" for n in kds.notes))
    name = ds.name if keys_dataset is None else f"{ds.name} → keys {kds.name}"
    graph = None
    if keys_dataset is None and ds.edge_index is not None:
        from workbench.graph import Graph

        graph = Graph(ds.n, ds.edge_index)
        notes += (f"graph: {ds.edge_index.shape[1]:,} edges came with the data (used by graph mechanisms)",)
    return Prepared(q=ds.x, k=kds.x, v=kds.x, query_index=qi,
                    query_labels=None if ds.labels is None else ds.labels[qi],
                    key_labels=kds.labels, key_texts=kds.texts, same_set=keys_dataset is None,
                    name=name, notes=notes, version=version, keys_dataset=kds,
                    query_texts=None if ds.texts is None else [ds.texts[i] for i in qi], graph=graph)


class Session(param.Parameterized):
    """One browser session's data and options (each parameter is a widget and a URL entry)."""

    demo = param.Selector(default=wdata.DEFAULT_DEMO, objects=list(wdata.DEMOS),
                          doc="Built-in demo data set (generated or shipped with a package; no download).")
    demo_size = param.Integer(default=None, allow_None=True, bounds=(2, 1_000_000),
                              doc="Number of points of the 'clusters' and 'sequence' demos (empty: the demo's "
                                  "default size); e.g. 100000 for a large map.")
    keys = param.Selector(default="same", objects=["same", *wdata.DEMOS, "uploaded keys"],
                          doc="Where keys and values come from: 'same' (the loaded set attends to itself), a "
                              "demo set, or a file uploaded as keys.")
    queries = param.Selector(default="all", objects=list(wdata.QUERY_SELECTIONS),
                             doc="Queries shown in the maps: 'all' rows, a random 'subset' of n rows, or the "
                                 "rows of one 'label'.")
    n_queries = param.Integer(default=200, bounds=(1, 10_000_000),
                              doc="Number of queries of a random subset (queries='subset').")
    label = param.String(default="", doc="The label whose rows are the queries (queries='label').")
    normalisation = param.Selector(default="none", objects=list(wdata.NORMALISATIONS),
                                   doc="Normalisation before attention: 'none', 'l2' (unit rows) or 'standard' "
                                       "(per-column z-scores).")
    pca_dim = param.Integer(default=None, allow_None=True, bounds=(2, 100_000),
                            doc="Reduce the embeddings by PCA to this dimension (empty: keep every dimension).")
    projection = param.Selector(default="pca", objects=list(wdata.available_projections()),
                                doc="2-D projection of the keys: PCA, or UMAP when umap-learn is installed.")
    graph_kind = param.Selector(default="auto", objects=list(compare.GRAPH_CHOICES),
                                doc="Graph given to graph mechanisms: exact k-nearest neighbours ('knn'), HNSW layer 0 "
                                    "('hnsw'), or 'auto' (the library's choice for the data).")
    graph_k = param.Integer(default=8, bounds=(1, 1024),
                            doc="Neighbours per node of the graph given to graph mechanisms (and the report's k).")
    seed = param.Integer(default=0, bounds=(0, None),
                         doc="Seed of the demo data and of the random query subset (same seed, same data).")
    selected = param.Integer(default=None, allow_None=True, bounds=(0, None),
                             doc="The query (map row) selected in any map; linked across every view.")

    #: Options that change the prepared arrays (a change re-prepares in the background).
    PREP_OPTIONS = ("queries", "n_queries", "label", "normalisation", "pca_dim", "seed")

    def __init__(self, runner: Runner | None = None, messages: Messages | None = None,
                 max_bytes: int | None = None, max_path_bytes: int | None = None, **params):
        super().__init__(**params)
        self.runner = runner or Runner()
        self.messages = messages or Messages()
        self.max_bytes = wdata.max_upload_bytes() if max_bytes is None else int(max_bytes)
        # files on the server's own disk are not uploads: their cap follows the machine's memory
        self.max_path_bytes = wdata.max_path_bytes() if max_path_bytes is None else int(max_path_bytes)
        self.dataset = None
        self.keys_dataset = None
        self.uploaded_keys = None
        self.prepared: Prepared | None = None
        self._version = 0
        self._subscribers: list[Callable[[Prepared], None]] = []
        self.param.watch(self._options_changed, list(self.PREP_OPTIONS))
        self.param.watch(self._keys_changed, ["keys"])

    # -- subscriptions -------------------------------------------------------------------------
    def on_prepared(self, callback: Callable[[Prepared], None]) -> None:
        """Call ``callback(prepared)`` (on the event loop) after every successful preparation."""
        self._subscribers.append(callback)
        if self.prepared is not None:
            callback(self.prepared)

    # -- loading -------------------------------------------------------------------------------
    def load_demo(self, name: str | None = None, size: int | None = None) -> None:
        """Load a demo set (``name`` and ``size`` default to the ``demo`` / ``demo_size`` options)."""
        name = self.demo if name is None else name
        size = self.demo_size if size is None else size
        seed = self.seed
        self._load(lambda job: wdata.load_demo(name, seed=seed, n=size if name in SIZED_DEMOS else None),
                   where=f"demo {name!r}")

    def load_bytes(self, content: bytes, filename: str, *, as_keys: bool = False, slot: str = "data") -> None:
        """Load an uploaded file (its bytes and name); refused beyond ``max_bytes``.

        ``slot``: uploads in different slots run side by side (each gets its own message);
        a new load in the same slot supersedes the older one.
        """
        limit = self.max_bytes
        # the drop zone hands text files (csv, tsv, txt) over as str, binary ones as bytes
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        self._load(lambda job: wdata.load_embeddings(data, filename=filename, max_bytes=limit),
                   where=f"upload {filename!r}", as_keys=as_keys, slot=slot)

    def refuse_upload(self, filename: str, exc: Exception) -> None:
        """An upload refused before its bytes were kept (too large): the same alert as a failed load."""
        self.messages.error(exc, f"upload {filename!r}")

    def load_path(self, path: str, *, as_keys: bool = False) -> None:
        """Load a file on the server (a path typed by the user).

        With ``WORKBENCH_DATA_DIR`` set (advised when the server is reachable from other
        machines), only files inside that directory are read.
        """
        text = str(path or "").strip()
        if not text:
            self.messages.error("path: expected the path of a file on the server, got an empty string")
            return
        target = Path(text).expanduser()
        root = os.environ.get(DATA_DIR_ENV)
        if root:
            base = Path(root).expanduser().resolve()
            target = (base / target).resolve()
            if not target.is_relative_to(base):
                self.messages.error(f"path: {text!r} is outside the data directory {str(base)!r} "
                                    f"(server setting {DATA_DIR_ENV})")
                return
        limit = self.max_path_bytes
        self._load(lambda job: wdata.load_embeddings(target, max_bytes=limit),
                   where=f"path {text!r}", as_keys=as_keys)

    def _load(self, read: Callable[[Job], object], *, where: str, as_keys: bool = False, slot: str = "data") -> None:
        opts = self._options()
        current_q = self.dataset
        current_k = self.keys_dataset
        keys_demo = self.keys if self.keys in wdata.DEMOS and current_k is None else None
        seed = self.seed

        def work(job: Job):
            ds = read(job)
            job.check()
            if ds.n < MIN_ROWS:  # refused here, before any view tries (and fails) to project or attend
                from workbench.errors import DataError
                raise DataError(f"{ds.name}: {ds.n} row{'s' if ds.n != 1 else ''}: the dashboard needs at least "
                                f"{MIN_ROWS} (keys to attend over and a 2-D projection); the data shown are kept")
            if as_keys:
                if current_q is None:
                    from workbench.errors import DataError
                    raise DataError("keys: load a query data set before a separate key/value set")
                return ds, None, prepare(current_q, ds, **opts, version=self._next_version())
            kds = current_k if keys_demo is None else wdata.load_demo(keys_demo, seed=seed)  # e.g. from a link
            return ds, kds, prepare(ds, kds, **opts, version=self._next_version())

        def done(result):
            ds, kds, prep = result
            if as_keys:
                self.uploaded_keys = self.keys_dataset = ds
                with param.parameterized.discard_events(self):
                    self.keys = "uploaded keys"
            else:
                self.dataset, self.keys_dataset = ds, kds
            self.selected = None
            self._publish(prep)
            notes = "; ".join(ds.notes) if getattr(ds, "notes", ()) else ""
            self.messages.success(f"loaded {where}: {ds.n:,} × {ds.dim}" + (f" ({notes})" if notes else ""),
                                  topic="data")

        self.runner.submit(slot, work, done, lambda exc: self.messages.error(exc, where))

    # -- options ---------------------------------------------------------------------------------
    def choose_label(self, label: str) -> None:
        """One control decides the queries: choosing a label makes its rows the queries (``queries =
        "label"``), clearing it goes back to every row — in one update, so the data are prepared once."""
        label = label or ""
        if label:
            self.param.update(label=label, queries="label")
        elif self.queries == "label":
            self.param.update(label="", queries="all")
        else:
            self.label = ""

    def _options(self) -> dict:
        return dict(queries=self.queries, n_queries=self.n_queries, label=self.label or None,
                    normalisation=self.normalisation, pca_dim=self.pca_dim, seed=self.seed)

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def reprepare(self) -> None:
        """Prepare the loaded data again with the current options (in the background)."""
        if self.dataset is None:
            return
        ds, kds, opts = self.dataset, self.keys_dataset, self._options()
        self.runner.submit("data", lambda job: prepare(ds, kds, **opts, version=self._next_version()),
                           self._publish_fresh, lambda exc: self.messages.error(exc, "data options"))

    def _publish_fresh(self, prep: Prepared) -> None:
        self.selected = None
        self._publish(prep)

    def _options_changed(self, *_):
        self.reprepare()

    def _keys_changed(self, event):
        choice = event.new
        if choice == "same":
            self.keys_dataset = None
            self.reprepare()
        elif choice == "uploaded keys":
            if self.uploaded_keys is None:
                self.messages.error("keys: no key file uploaded yet; drop a file on 'keys/values file' first")
                with param.parameterized.discard_events(self):
                    self.keys = event.old
                return
            self.keys_dataset = self.uploaded_keys
            self.reprepare()
        else:
            seed = self.seed
            ds, opts = self.dataset, self._options()

            def work(job):
                kds = wdata.load_demo(choice, seed=seed)
                return kds, prepare(ds, kds, **opts, version=self._next_version())

            def done(result):
                self.keys_dataset = result[0]
                self._publish_fresh(result[1])

            def failed(exc):
                self.messages.error(exc, f"keys {choice!r}")
                with param.parameterized.discard_events(self):
                    self.keys = event.old

            if ds is not None:
                self.runner.submit("data", work, done, failed)

    def _publish(self, prep: Prepared) -> None:
        self.prepared = prep
        for cb in list(self._subscribers):
            try:
                cb(prep)
            except Exception as exc:  # a view's bug is reported, the other views still update
                self.messages.error(exc, "view update")

    # -- URL state ----------------------------------------------------------------------------------
    def to_state(self, mechanisms: list, params: list, calibrate: list | None = None) -> AppState:
        """The :class:`AppState` of this session and the compare panels' mechanisms/parameters."""
        dataset = self.dataset.source.removeprefix("demo:").split("?")[0].split(" ")[0] if self.dataset else self.demo
        keys = self.keys if self.keys in wdata.DEMOS else "same"
        source = None
        if self.dataset is not None and not self.dataset.source.startswith("demo:"):
            source = (f"upload:{self.dataset.name}" if self.dataset.source == "upload"
                      else f"path:{self.dataset.source}")
        sized = source is None and self.dataset is not None and dataset in SIZED_DEMOS
        return AppState(dataset=dataset if dataset in wdata.DEMOS else self.demo, keys=keys, source=source,
                        demo_size=self.dataset.n if sized else None,
                        mechanisms=list(mechanisms), params=[dict(p) for p in params], queries=self.queries,
                        n_queries=self.n_queries, label=self.label or None, normalisation=self.normalisation,
                        pca_dim=self.pca_dim, projection=self.projection, graph_kind=self.graph_kind,
                        graph_k=self.graph_k, seed=self.seed, selected=self.selected,
                        calibrate=list(calibrate) if calibrate is not None else [])

    def apply_state(self, state: AppState) -> None:
        """Set the options from a (validated) :class:`AppState` without re-preparing per field."""
        projection = state.projection if state.projection in self.param.projection.objects else "pca"
        with param.parameterized.discard_events(self):
            self.param.update(demo=state.dataset, keys=state.keys, queries=state.queries, n_queries=state.n_queries,
                              label=state.label or "", normalisation=state.normalisation, pca_dim=state.pca_dim,
                              projection=projection, graph_kind=state.graph_kind, graph_k=state.graph_k,
                              seed=state.seed, **({} if state.demo_size is None else {"demo_size": state.demo_size}))
