"""Attention maps as HoloViews data: a weight matrix (or a tile of one) is an ``hv.Image``.

Coordinates are indices: ``key`` on x, ``query`` on y (query 0 at the top, as in a matrix), pixel
centres on integers. Every map sends the browser a screen-sized image only, computed off the
event loop: :class:`TileView` shows a map that is never materialised — every pan/zoom
(``RangeXY`` + ``PlotSize`` streams) asks a background job for the visible region at screen
resolution (``workbench.compare.weights_tile``); :class:`MapView` shows a dense matrix the same
way, each view max-pooled from the matrix in memory (``workbench.compare.pool_weights``), so a
2,000 × 2,000 map costs the event loop one small image. Both mark the selected query with a
line and report taps (linked query selection).
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import holoviews as hv
import numpy as np
import panel as pn
from holoviews import streams

from workbench import compare

# The placeholder of a lazy map is all-NaN (drawn transparent); HoloViews' range code warns about it.
warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)

#: Bokeh reports a zoom or pan to the server when its level-of-detail timeout ends (500 ms by default);
#: a short timeout lets a lazy map ask for its new tile sooner.
LOD = {"factor": 10, "interval": 100, "threshold": 2000, "timeout": 60}

KDIMS = ["key", "query"]
VDIM = "weight"
CMAP = "viridis"
#: Colours on a log scale from this weight up: over thousands of keys a query's weights span
#: orders of magnitude (its own key 0.3, its neighbours 0.01, the rest 1e-5), and a linear scale
#: shows the largest alone; weights below (and exact zeros) take the lowest colour.
LOG_FLOOR = 1e-4


def region_image(tile: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], *, label: str = "") -> hv.Image:
    """``hv.Image`` of a ``(h, w)`` tile covering query rows ``[r0, r1)`` and key columns ``[c0, c1)``.

    Bin ``i`` of ``h`` spans rows ``r0 + i·(r1−r0)/h`` … ``r0 + (i+1)·(r1−r0)/h``; centres are
    shifted by −½ so that an unpooled tile has its pixel centres on integer indices.
    """
    tile = np.asarray(tile)
    h, w = tile.shape
    (r0, r1), (c0, c1) = rows, cols
    ys = r0 + (np.arange(h) + 0.5) * ((r1 - r0) / h) - 0.5
    xs = c0 + (np.arange(w) + 0.5) * ((c1 - c0) / w) - 0.5
    return hv.Image((xs, ys, tile), kdims=KDIMS, vdims=[VDIM], label=label)


def empty_image(label: str = "") -> hv.Image:
    return region_image(np.zeros((1, 1), np.float32), (0, 1), (0, 1), label=label)


#: Most rows/columns that get one tick label each (tokens of a short text); longer maps keep indices.
MAX_TICK_LABELS = 64


def _style(el, *, height: int, width: int | None, title: str, responsive: bool, labels=None):
    opts = dict(cmap=CMAP, colorbar=True, invert_yaxis=True, tools=["hover", "tap"],
                active_tools=["wheel_zoom"], default_tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
                height=height, title=title, cnorm="log", clim=(LOG_FLOOR, None), nodata=None, lod=LOD,
                clipping_colors={"min": "#440154", "NaN": (0, 0, 0, 0)}, clabel="weight (log)",
                hover_tooltips=[("query", "$y{0}"), ("key", "$x{0}"), ("weight", "@image{0.0000}")])
    if labels is not None and len(labels) <= MAX_TICK_LABELS:
        ticks = [(i, str(t)) for i, t in enumerate(labels)]
        opts.update(xticks=ticks, yticks=ticks, xrotation=90)
    if responsive:
        opts["responsive"] = True
        opts["min_width"] = 250
    else:
        opts["width"] = width or height
    return el.opts(**{k: v for k, v in opts.items() if v is not None})


def selection_marker(query: int | None, n_keys: int) -> hv.HLine:
    """The selected query's row, as a horizontal line (nothing when no query is selected)."""
    y = -10.0 ** 9 if query is None else float(query)
    return hv.HLine(y).opts(color="#ff3d00", line_width=2, alpha=0.8)


class TileView:
    """A lazily computed map of ``n_queries × n_keys``: only the visible region, at screen size.

    ``tile(rows, cols, out_shape) -> array (h, w)`` computes a region (it runs in a background
    job through ``submit(work, done)``, the app's :class:`~apps.background.Runner`); the newest
    view wins, older requests are cancelled. ``status`` says what the last tile covered and how
    long it took (the browser tests read it to time tile updates).
    """

    def __init__(self, *, submit: Callable, title: str = "", height: int = 600,
                 on_tap: Callable[[int, int], None] | None = None, max_pixels: int = 900,
                 on_hover: Callable[[int, int], None] | None = None, css_class: str = "wb-tile-map"):
        self._submit = submit
        self.title, self.height, self.max_pixels = title, height, max_pixels
        self._on_tap = on_tap
        self._on_hover = on_hover
        self.tile_fn: Callable | None = None
        self.shape = (1, 1)
        self.labels: list | None = None
        self.pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", linked_axes=False,
                                      min_height=height, css_classes=[css_class])
        # wrapped: side-by-side maps are narrow, and a long status would run into the next one
        self.status = pn.pane.Str("", css_classes=[f"{css_class}-status"], margin=(0, 10),
                                  stylesheets=["pre {white-space: pre-wrap; margin: 2px 0;}"])
        self.last: dict = {}
        self._query = streams.Stream.define("Query", query=-1)()
        self._generation = 0
        self._label = title
        self._pipe = self._range = self._size = None
        self.paused = False
        self._pending = False

    def set_source(self, tile_fn: Callable, shape: tuple[int, int], title: str = "",
                   first: tuple | None = None, labels=None) -> None:
        """A new map: ``tile_fn(rows, cols, out_shape)`` over ``shape = (n_queries, n_keys)``.

        The plot is rebuilt with axes spanning the whole map, so zooming out never goes past the
        map's edges. ``first = (tile, rows, cols)``, a tile already computed (see :meth:`plan`),
        is drawn at once; otherwise an empty placeholder is shown until the first tile arrives.
        ``labels`` (one per row and column, e.g. tokens) label the axes of a small square map.
        """
        self.labels = None if labels is None else list(labels)
        self.tile_fn, self.shape = tile_fn, (int(shape[0]), int(shape[1]))
        self._generation += 1
        nq, nk = self.shape
        if first is not None:
            initial = self._image(first, title)
        else:  # an empty (transparent) placeholder spanning the whole map until the first tile arrives
            initial = region_image(np.full((1, 1), np.nan, np.float32), (0, nq), (0, nk), label=title)
        self._pipe = streams.Pipe(data=initial)
        image = hv.DynamicMap(lambda data: data, streams=[self._pipe])
        self._range = streams.RangeXY(source=image)
        self._size = streams.PlotSize(source=image)
        self._range.add_subscriber(self._view_changed)
        self._size.add_subscriber(self._view_changed)
        tap = streams.Tap(source=image, x=None, y=None)
        tap.add_subscriber(self._tapped)
        if self._on_hover is not None:
            pointer = streams.PointerXY(source=image, x=None, y=None)
            pointer.add_subscriber(self._hovered)
        marker = hv.DynamicMap(lambda query: selection_marker(None if query < 0 else query, nk),
                               streams=[self._query])
        el = _style(image, height=self.height, width=None, title=title or self.title, responsive=True,
                    labels=self.labels)
        self.element = (el * marker).opts(xlim=(-0.5, nk - 0.5), ylim=(-0.5, nq - 0.5))
        self.pane.object = self.element
        self._label = title or self.title
        if first is None:
            self._request(None, None, reset=True)

    def update_source(self, tile_fn: Callable, first: tuple | None = None) -> None:
        """Same shape, new values (a parameter change): keep the plot and its view, redraw the
        visible region — from ``first = (tile, rows, cols)`` when given, else in the background."""
        self.tile_fn = tile_fn
        self._generation += 1
        if first is not None:
            self._pipe.send(self._image(first, self._label))
            self._request(*self._view())  # a no-op unless the view moved since ``first`` was planned
        else:
            self._request(*self._view(), reset=True)

    def plan(self, shape: tuple[int, int]) -> tuple[tuple, tuple, tuple]:
        """``(rows, cols, out_shape)`` the next tile of a ``shape`` map should cover: the current
        view when the shape is unchanged, else the whole map at the plot's size."""
        shape = (int(shape[0]), int(shape[1]))
        size = (self._size.width, self._size.height) if self._size is not None else (None, self.height)
        view = self._view() if self._pipe is not None and shape == self.shape else (None, None)
        return self.region(*view, *size, shape=shape)

    def _view(self):
        if self._range is None:
            return None, None
        return self._range.x_range, self._range.y_range

    def _image(self, first: tuple, label: str) -> hv.Image:
        tile, rows, cols = first
        tile = np.asarray(tile, dtype=np.float32)
        rows, cols = tuple(rows), tuple(cols)
        self._record((self._generation, rows, cols, tuple(tile.shape)), tile.shape)
        return region_image(tile, rows, cols, label=label)

    def _record(self, key: tuple, shape: tuple, compute_s: float = 0.0, total_s: float = 0.0) -> None:
        """What the drawn tile covers (``key = (generation, rows, cols, requested shape)``)."""
        self.last = {"key": key, "rows": key[1], "cols": key[2], "out_shape": tuple(shape),
                     "compute_s": compute_s, "total_s": total_s}

    def select(self, query: int | None) -> None:
        """Move the selection line (no redraw when it is already there)."""
        value = -1 if query is None else int(query)
        if value != self._query.query:
            self._query.event(query=value)

    def region(self, x_range, y_range, width=None, height=None, shape=None) -> tuple[tuple, tuple, tuple]:
        """Visible index region and the tile's pixel shape for a view range and plot size."""
        nq, nk = shape or self.shape
        c0, c1 = _clamp_range(x_range, nk)
        r0, r1 = _clamp_range(y_range, nq)
        w = min(c1 - c0, int(width or self.max_pixels), self.max_pixels)
        h = min(r1 - r0, int(height or self.max_pixels), self.max_pixels)
        return (r0, r1), (c0, c1), (max(h, 1), max(w, 1))

    def pause(self, paused: bool) -> None:
        """While paused (its tab hidden) the map computes nothing; the view it missed is drawn on
        resuming. Hidden plots still report size changes when the page's layout moves, and a
        sampled tile of an expensive mechanism costs seconds of CPU that the shown tab needs."""
        self.paused = bool(paused)
        if not self.paused and self._pending:
            self._pending = False
            self._request(*self._view(), reset=True)

    def _view_changed(self, **_):
        self._request(*self._view())

    def _request(self, x_range, y_range, reset: bool = False) -> None:
        if self.tile_fn is None:
            return
        if self.paused:
            self._pending = True
            return
        rows, cols, out_shape = self.region(x_range, y_range, self._size.width, self._size.height)
        key = (self._generation, rows, cols, out_shape)
        last = self.last.get("key")
        if not reset and last is not None and last[:3] == key[:3] and all(
                have >= want for have, want in zip(last[3], out_shape)):
            return  # the same region already drawn at this resolution or finer (e.g. the plot shrank)
        fn, pipe, requested = self.tile_fn, self._pipe, time.perf_counter()
        label = self._label

        def work(job):
            t = time.perf_counter()
            tile = np.asarray(fn(rows, cols, out_shape), dtype=np.float32)  # half the bytes to the browser
            return tile, time.perf_counter() - t

        def done(result):
            if key[0] != self._generation:  # the map changed meanwhile: a stale tile is never drawn
                return
            tile, seconds = result
            self._record(key, np.shape(tile), seconds, time.perf_counter() - requested)
            pipe.send(region_image(tile, rows, cols, label=label))
            self.status.object = (f"rows {rows[0]}–{rows[1]} × keys {cols[0]}–{cols[1]} of "
                                  f"{self.shape[0]:,} × {self.shape[1]:,}; tile {tile.shape[0]}×{tile.shape[1]} "
                                  f"in {seconds:.3f} s")

        self._submit(work, done)

    def _tapped(self, x=None, y=None) -> None:
        if x is None or y is None or self._on_tap is None:
            return
        q, k = int(round(y)), int(round(x))
        if 0 <= q < self.shape[0] and 0 <= k < self.shape[1]:
            self._on_tap(q, k)

    def _hovered(self, x=None, y=None) -> None:
        if x is None or y is None:
            return
        q, k = int(round(y)), int(round(x))
        if 0 <= q < self.shape[0] and 0 <= k < self.shape[1]:
            self._on_hover(q, k)

    def value_at(self, query: int, key: int) -> float | None:
        """The shown (possibly pooled) weight at ``(query, key)`` of the last tile, if covered."""
        data = self._pipe.data if self._pipe is not None else None
        last = self.last
        if not last or data is None:
            return None
        (r0, r1), (c0, c1) = last["rows"], last["cols"]
        if not (r0 <= query < r1 and c0 <= key < c1):
            return None
        arr = data.dimension_values(2, flat=False)
        h, w = arr.shape
        i = min(h - 1, (query - r0) * h // (r1 - r0))
        j = min(w - 1, (key - c0) * w // (c1 - c0))
        return float(arr[i, j])


def _clamp_range(rng, n: int) -> tuple[int, int]:
    """Integer index range ``[a, b)`` covering the float view range ``rng`` within ``[0, n)``."""
    if rng is None or rng[0] is None or rng[1] is None or not all(map(math.isfinite, rng)):
        return 0, n
    lo, hi = sorted(rng)
    a = max(0, int(math.floor(lo + 0.5)))
    b = min(n, int(math.ceil(hi + 0.5)))
    if b <= a:
        a = min(max(0, a), n - 1)
        b = a + 1
    return a, b


class MapView(TileView):
    """A dense attention map, drawn like a lazy one: every view is max-pooled from the matrix.

    ``show(weights, first)`` replaces the matrix (call on the event loop; ``first = (tile, rows,
    cols)`` is the pooled tile of :meth:`plan`, computed with the weights off the loop, so the
    map appears without a second round trip). A new shape rebuilds the plot (axes follow the
    data); the same shape keeps the plot and its zoom and only streams the new image (the fast
    path of a parameter change). Zooming pools the visible region again, in the background.
    """

    def __init__(self, *, submit: Callable, title: str = "", height: int = 320,
                 on_tap: Callable[[int, int], None] | None = None, max_pixels: int = 600,
                 css_class: str = "wb-dense-map", on_hover: Callable[[int, int], None] | None = None):
        super().__init__(submit=submit, title=title, height=height, on_tap=on_tap, max_pixels=max_pixels,
                         css_class=css_class, on_hover=on_hover)
        self.weights: np.ndarray | None = None

    @staticmethod
    def pooled(weights: np.ndarray, plan: tuple) -> tuple:
        """``first`` for :meth:`show`: the tile of ``plan = (rows, cols, out_shape)`` (thread-safe)."""
        rows, cols, out_shape = plan
        return compare.pool_weights(weights, rows, cols, out_shape), rows, cols

    def show(self, weights: np.ndarray, first: tuple | None = None, labels=None) -> None:
        """Display a dense ``(Lq, Lk)`` matrix; see the class docstring. ``labels`` as
        :meth:`set_source` (new labels rebuild the plot)."""
        w = np.asarray(weights)
        if first is not None and not (first[1][1] <= w.shape[0] and first[2][1] <= w.shape[1]):
            first = None  # planned for another shape
        fn = lambda rows, cols, out_shape: compare.pool_weights(w, rows, cols, out_shape)  # noqa: E731
        labels = None if labels is None else list(labels)
        same = self._pipe is not None and self.shape == w.shape and labels == self.labels
        self.weights = w
        if same:
            self.update_source(fn, first)
        else:
            self.set_source(fn, w.shape, self.title, first=first, labels=labels)
