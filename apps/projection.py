"""The 2-D projection of the keys, coloured by label, with the selected query's attended keys.

Points come from ``workbench.data.project_2d`` (PCA, or UMAP when installed), computed in the
background. Up to ``RASTER_ABOVE`` points are drawn as glyphs (with hover: index, label, text);
past it Datashader rasterises them (the issue's "past 50k points"). The selected query's top
attended keys are overlaid as rings sized by weight, its own point (when queries and keys are the
same set) as a star.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from holoviews import streams

from workbench import compare
from workbench import data as wdata

#: Above this many points the projection is rasterised by Datashader.
RASTER_ABOVE = 50_000
#: How many attended keys are highlighted.
TOP_KEYS = 10


def points_frame(xy: np.ndarray, labels, texts) -> pd.DataFrame:
    """The plotted table: ``x, y, index, label, text`` (label and text as strings)."""
    n = xy.shape[0]
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1], "index": np.arange(n),
        "label": np.asarray(labels).astype(str) if labels is not None else np.full(n, "—"),
        "text": list(texts) if texts is not None else [""] * n,
    })


def highlight_frame(xy: np.ndarray, row: np.ndarray | None, top: int = TOP_KEYS) -> pd.DataFrame:
    """The ``top`` attended keys of a weights row with their weight and ring size."""
    if row is None or xy is None or len(row) != xy.shape[0]:
        return pd.DataFrame({"x": [], "y": [], "index": [], "weight": [], "size": []})
    idx = compare.attended_keys(row, top=top)
    w = np.asarray(row, dtype=np.float64)[idx]
    wmax = float(w.max()) if w.size and w.max() > 0 else 1.0
    return pd.DataFrame({"x": xy[idx, 0], "y": xy[idx, 1], "index": idx, "weight": w,
                         "size": 8 + 22 * np.sqrt(w / wmax)})


class ProjectionView:
    """The projection plot; ``set_data(prep)`` recomputes it, ``highlight(query, row)`` marks keys."""

    def __init__(self, app, height: int = 420):
        self.app = app
        self.height = height
        self.xy: np.ndarray | None = None
        self.frame = points_frame(np.zeros((0, 2)), None, None)
        self._marks = streams.Pipe(data=(highlight_frame(None, None), None))
        self.method = None
        self.element = None
        # linked_axes=False: a new data set brings its own ranges (panes would otherwise share x/y)
        self.pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=height, linked_axes=False,
                                      css_classes=["wb-projection"])
        self.data_pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=height, linked_axes=False,
                                           css_classes=["wb-projection-data"])
        self.caption = pn.pane.Str("", css_classes=["wb-projection-caption"], margin=(0, 10))

    def _build(self) -> None:
        """A new plot for new points (axes follow the data); highlights stream into it."""
        base = self._base(self.frame)
        marks = hv.DynamicMap(self._highlights, streams=[self._marks])
        self.element = (base * marks).opts(hv.opts.Overlay(legend_position="right"))
        self.pane.object = self.element
        self.data_pane.object = self._base(self.frame)

    def _base(self, data: pd.DataFrame):
        n = len(data)
        title = f"keys in 2-D ({self.method or 'pca'}), coloured by label"
        if n > RASTER_ABOVE:
            from holoviews.operation.datashader import dynspread, rasterize  # imported when first needed

            pts = hv.Points(data, ["x", "y"], ["label"])
            return dynspread(rasterize(pts, aggregator="count")
                             ).opts(cmap="Blues", cnorm="eq_hist", responsive=True, height=self.height, title=title,
                                    tools=["hover"])
        pts = hv.Points(data, ["x", "y"], ["index", "label", "text"])
        # unlabelled data: one colour, no legend (a lone "—" entry says nothing), no "coloured by label"
        labelled = n > 0 and not bool((data["label"] == "—").all())
        return pts.opts(color="label" if labelled else "#1f77b4", cmap="Category10", size=4, alpha=0.7,
                        responsive=True, height=self.height, tools=["hover"],
                        title=title if labelled else f"keys in 2-D ({self.method or 'pca'})",
                        show_legend=labelled and data["label"].nunique() <= 12,
                        xlabel="component 1", ylabel="component 2")

    @staticmethod
    def _highlights(data):
        frame, query_xy = data
        rings = hv.Points(frame, ["x", "y"], ["index", "weight", "size"]).opts(
            size="size", fill_alpha=0, line_color="#ff3d00", line_width=2, tools=["hover"])
        star = hv.Points([] if query_xy is None else [tuple(query_xy)]).opts(
            marker="star", size=18, color="#ff3d00", line_color="black")
        return rings * star

    def set_data(self, prep) -> None:
        """Project the key set of ``prep`` (in the background) and redraw."""
        method = self.app.session.projection
        k, labels, texts = prep.k, prep.key_labels, prep.key_texts

        def work(job):
            return wdata.project_2d(k, method=method, seed=self.app.session.seed)

        def done(xy):
            self.xy, self.method = xy, method
            self.frame = points_frame(xy, labels, texts)
            self.clear_highlight()
            self._build()
            mode = "rasterised by Datashader" if len(self.frame) > RASTER_ABOVE else "one glyph per key"
            self.caption.object = f"{len(self.frame):,} keys projected with {method} ({mode})"

        self.app.runner.submit("projection", work, done, lambda exc: self.app.messages.error(exc, "projection"))

    def clear_highlight(self) -> None:
        self._marks.send((highlight_frame(None, None), None))

    def highlight(self, query_point: int | None, row: np.ndarray | None) -> None:
        """Mark the keys ``row`` attends to most; ``query_point`` is the query's own key index."""
        if self.xy is None:
            return
        qxy = self.xy[query_point] if query_point is not None and 0 <= query_point < len(self.xy) else None
        self._marks.send((highlight_frame(self.xy, row), qxy))

    def static(self) -> hv.Element:
        """Static element for export."""
        return self._base(self.frame) * self._highlights(self._marks.data)
