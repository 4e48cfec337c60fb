"""Attention maps as HoloViews data: a weight matrix (or a tile of one) is an ``hv.Image``.

Coordinates are indices: ``key`` on x, ``query`` on y (query 0 at the top, as in a matrix), pixel
centres on integers. :class:`MapView` shows a dense matrix through Datashader's ``rasterize``
(so a 2,000 × 2,000 map sends a screen-sized image); :class:`TileView` shows a map that is never
materialised: every pan/zoom (``RangeXY`` + ``PlotSize`` streams) asks a background job for the
visible region at screen resolution (``workbench.compare.weights_tile``) and draws only that.
Both mark the selected query with a line and report taps (linked query selection).
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
from holoviews.operation.datashader import rasterize

# The placeholder of a lazy map is all-NaN (drawn transparent); HoloViews' range code warns about it.
warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)

#: Bokeh reports a zoom or pan to the server when its level-of-detail timeout ends (500 ms by default);
#: a short timeout lets a lazy map ask for its new tile sooner.
LOD = {"factor": 10, "interval": 100, "threshold": 2000, "timeout": 60}

KDIMS = ["key", "query"]
VDIM = "weight"
CMAP = "viridis"


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


def _style(el, *, height: int, width: int | None, title: str, responsive: bool):
    opts = dict(cmap=CMAP, colorbar=True, invert_yaxis=True, tools=["hover", "tap"],
                active_tools=["wheel_zoom"], default_tools=["pan", "wheel_zoom", "box_zoom", "reset", "save"],
                height=height, title=title, cnorm="linear", clim=(0, None), nodata=None, lod=LOD,
                hover_tooltips=[("query", "$y{0}"), ("key", "$x{0}"), ("weight", "@image{0.0000}")])
    if responsive:
        opts["responsive"] = True
        opts["min_width"] = 250
    else:
        opts["width"] = width or height
    return el.opts(**{k: v for k, v in opts.items() if v is not None})


def warm_up() -> None:
    """Compile Datashader's Numba functions for image rasterisation (about 3 s, once per process).

    The app calls this on a background thread when the server starts, so that the compile
    overlaps the first page's loading instead of delaying its first map.
    """
    rasterize(region_image(np.zeros((4, 4), np.float32), (0, 4), (0, 4)), aggregator="max", width=2, height=2,
              dynamic=False)


def selection_marker(query: int | None, n_keys: int) -> hv.HLine:
    """The selected query's row, as a horizontal line (nothing when no query is selected)."""
    y = -10.0 ** 9 if query is None else float(query)
    return hv.HLine(y).opts(color="#ff3d00", line_width=2, alpha=0.8)


class MapView:
    """A dense attention map (Datashader-rasterised), its selected-query line and its taps.

    ``show(weights)`` replaces the matrix (call on the event loop): a new shape rebuilds the plot
    (axes follow the data), the same shape streams the new values into the existing plot (the
    fast path of a parameter change). ``on_tap(query, key)`` is called when the user clicks a
    cell; ``select(query)`` moves the selection line.
    """

    def __init__(self, *, title: str = "", height: int = 320, width: int | None = None,
                 responsive: bool = True, on_tap: Callable[[int, int], None] | None = None):
        self.title, self.height, self.width, self.responsive = title, height, width, responsive
        self.shape: tuple[int, int] | None = None
        self.weights: np.ndarray | None = None
        self.rows = (0, 1)
        self._on_tap = on_tap
        self._pipe: streams.Pipe | None = None
        self._query = streams.Stream.define("Query", query=-1)()
        self.element = None
        self.pane = pn.pane.HoloViews(None, sizing_mode="stretch_width" if responsive else "fixed",
                                      linked_axes=False, min_height=height)

    def _build(self, data) -> None:
        self._pipe = streams.Pipe(data=data)
        image = hv.DynamicMap(lambda data: region_image(*data), streams=[self._pipe])
        raster = rasterize(image, aggregator="max", precompute=True)
        tap = streams.Tap(source=raster, x=None, y=None)
        tap.add_subscriber(self._tapped)
        n_keys = data[0].shape[1]
        marker = hv.DynamicMap(lambda query: selection_marker(None if query < 0 else query, n_keys),
                               streams=[self._query])
        self.element = _style(raster, height=self.height, width=self.width, title=self.title,
                              responsive=self.responsive) * marker
        self.pane.object = self.element

    def show(self, weights: np.ndarray, rows: tuple[int, int] | None = None) -> None:
        """Display a dense ``(Lq, Lk)`` matrix (or rows ``[r0, r1)`` of a larger one)."""
        w = np.asarray(weights)
        rows = rows or (0, w.shape[0])
        data = (w, rows, (0, w.shape[1]))
        same = self._pipe is not None and self.shape == w.shape and self.rows == rows
        self.weights, self.rows, self.shape = w, rows, w.shape
        if same:
            self._pipe.send(data)
        else:
            self._build(data)

    def select(self, query: int | None) -> None:
        """Move the selection line (no redraw when it is already there)."""
        value = -1 if query is None else int(query)
        if value != self._query.query:
            self._query.event(query=value)

    def _tapped(self, x=None, y=None) -> None:
        if x is None or y is None or self._on_tap is None or self.weights is None:
            return
        q, k = int(round(y)), int(round(x))
        r0, r1 = self.rows
        if r0 <= q < r1 and 0 <= k < self.shape[1]:
            self._on_tap(q, k)


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
        self.pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", linked_axes=False,
                                      min_height=height, css_classes=[css_class])
        self.status = pn.pane.Str("", css_classes=[f"{css_class}-status"], margin=(0, 10))
        self.last: dict = {}
        self._query = streams.Stream.define("Query", query=-1)()
        self._generation = 0
        self._pipe = self._range = self._size = None

    def set_source(self, tile_fn: Callable, shape: tuple[int, int], title: str = "") -> None:
        """A new map: ``tile_fn(rows, cols, out_shape)`` over ``shape = (n_queries, n_keys)``.

        The plot is rebuilt with axes spanning the whole map (an empty placeholder until the
        first tile arrives), so zooming out never goes past the map's edges.
        """
        self.tile_fn, self.shape = tile_fn, (int(shape[0]), int(shape[1]))
        self._generation += 1
        nq, nk = self.shape
        # an empty (transparent) placeholder spanning the whole map until the first tile arrives
        placeholder = region_image(np.full((1, 1), np.nan, np.float32), (0, nq), (0, nk), label=title)
        self._pipe = streams.Pipe(data=placeholder)
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
        el = _style(image, height=self.height, width=None, title=title or self.title, responsive=True)
        self.element = (el * marker).opts(xlim=(-0.5, nk - 0.5), ylim=(-0.5, nq - 0.5))
        self.pane.object = self.element
        self._request(None, None, title=title, reset=True)

    def select(self, query: int | None) -> None:
        """Move the selection line (no redraw when it is already there)."""
        value = -1 if query is None else int(query)
        if value != self._query.query:
            self._query.event(query=value)

    def region(self, x_range, y_range, width=None, height=None) -> tuple[tuple, tuple, tuple]:
        """Visible index region and the tile's pixel shape for a view range and plot size."""
        nq, nk = self.shape
        c0, c1 = _clamp_range(x_range, nk)
        r0, r1 = _clamp_range(y_range, nq)
        w = min(c1 - c0, int(width or self.max_pixels), self.max_pixels)
        h = min(r1 - r0, int(height or self.max_pixels), self.max_pixels)
        return (r0, r1), (c0, c1), (max(h, 1), max(w, 1))

    def _view_changed(self, **_):
        self._request(self._range.x_range, self._range.y_range)

    def _request(self, x_range, y_range, title: str = "", reset: bool = False) -> None:
        if self.tile_fn is None:
            return
        rows, cols, out_shape = self.region(x_range, y_range, self._size.width, self._size.height)
        key = (self._generation, rows, cols, out_shape)
        if not reset and self.last.get("key") == key:
            return
        fn, pipe, requested = self.tile_fn, self._pipe, time.perf_counter()
        label = title or self.title

        def work(job):
            t = time.perf_counter()
            tile = np.asarray(fn(rows, cols, out_shape), dtype=np.float32)  # half the bytes to the browser
            return tile, time.perf_counter() - t

        def done(result):
            tile, seconds = result
            self.last = {"key": key, "rows": rows, "cols": cols, "out_shape": tuple(np.shape(tile)),
                         "compute_s": seconds, "total_s": time.perf_counter() - requested}
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
