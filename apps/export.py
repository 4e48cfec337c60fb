"""Export: every plot as PNG and standalone HTML, tables as CSV, the report as JSON.

* PNG is rendered on the server by HoloViews' Matplotlib backend (``hv.save(..., fmt="png")``),
  offline, with axes, title and colour bar; the Bokeh toolbar's save tool also gives a PNG of
  exactly what is on screen.
* HTML is a standalone Bokeh document with its JavaScript inlined (opens offline); attention
  maps larger than ``HTML_MAX_PIXELS`` per side are rasterised down first to keep the file small.
* CSV and JSON are written from plain rows / the report's own ``to_json()``.

Every button is a ``pn.widgets.FileDownload`` whose callback builds the file when clicked; a
failure shows a message and gives an empty download (never a traceback).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading
from typing import Callable

import holoviews as hv
import numpy as np
import panel as pn

log = logging.getLogger("workbench.apps")

HTML_MAX_PIXELS = 800
_MPL_LOCK = threading.Lock()  # Matplotlib's pyplot state is not thread-safe


def _mpl_ready() -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import holoviews.plotting.mpl  # noqa: F401  (registers the backend without switching the current one)


def _static(element):
    """A plain element for saving: DynamicMaps replaced by their current value."""
    if isinstance(element, hv.DynamicMap):
        return element[()] if element.data else element.clone()[()]
    return element


def png_bytes(element) -> bytes:
    """PNG of a HoloViews element, drawn by Matplotlib on the server."""
    _mpl_ready()
    el = _static(element)
    if isinstance(el, hv.Image):
        el = el.opts(cmap="viridis", colorbar=True, invert_yaxis=True, backend="matplotlib")
    buf = io.BytesIO()
    with _MPL_LOCK:
        hv.save(el, buf, fmt="png", backend="matplotlib", dpi=120)
    return buf.getvalue()


def _shrink(el):
    if isinstance(el, hv.Image):
        h, w = el.dimension_values(2, flat=False).shape
        if max(h, w) > HTML_MAX_PIXELS:
            from holoviews.operation.datashader import rasterize

            el = rasterize(el, width=min(w, HTML_MAX_PIXELS), height=min(h, HTML_MAX_PIXELS), dynamic=False,
                           aggregator="max")
    return el


def html_bytes(element, title: str = "Attention Workbench") -> bytes:
    """Standalone HTML (inline Bokeh JS) of a HoloViews element."""
    el = _static(element)
    el = _shrink(el) if not isinstance(el, hv.Overlay) else el.map(_shrink, [hv.Image])
    if isinstance(el, hv.Image) or (isinstance(el, hv.Overlay) and any(isinstance(e, hv.Image) for e in el)):
        el = el.opts(hv.opts.Image(cmap="viridis", colorbar=True, invert_yaxis=True, tools=["hover"],
                                   width=700, height=600))
    buf = io.StringIO()
    hv.save(el, buf, fmt="html", backend="bokeh", resources="inline", title=title)
    return buf.getvalue().encode("utf-8")


def csv_bytes(rows: list[dict]) -> bytes:
    """CSV of a list of dicts (the union of their keys as columns, in first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: _cell(r.get(c)) for c in cols})
    return buf.getvalue().encode("utf-8")


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        return json.dumps(np.asarray(v).tolist() if isinstance(v, np.ndarray) else list(v), default=str)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _download(make: Callable[[], bytes], filename: str, label: str, css: str, messages=None) -> pn.widgets.FileDownload:
    def callback():
        try:
            data = make()
            if not data:
                raise ValueError("nothing to export yet")
        except Exception as exc:
            log.exception("export %s failed", filename)
            if messages is not None:
                messages.error(exc, f"export {filename}")
            data = b""
        return io.BytesIO(data)

    # one class per file as well ("wb-file-report-json"): a page (and its tests) can name each button
    named = "wb-file-" + re.sub(r"[^a-z0-9]+", "-", filename.lower()).strip("-")
    return pn.widgets.FileDownload(callback=callback, filename=filename, label=label, color="light",
                                   embed=False, width=95, height=30, margin=(2, 3),
                                   css_classes=["wb-download", css, named])


def plot_buttons(element_fn: Callable[[], object], stem: str, messages=None) -> pn.Row:
    """PNG and HTML download buttons for the element ``element_fn()`` returns at click time."""
    return pn.Row(
        _download(lambda: png_bytes(element_fn()), f"{stem}.png", "PNG", "wb-download-png", messages),
        _download(lambda: html_bytes(element_fn(), stem), f"{stem}.html", "HTML", "wb-download-html", messages),
        margin=0, css_classes=[f"wb-export-{stem}"],
    )


def csv_button(rows_fn: Callable[[], list[dict]], filename: str, label: str = "CSV", messages=None):
    return _download(lambda: csv_bytes(rows_fn()), filename, label, "wb-download-csv", messages)


def json_button(text_fn: Callable[[], str], filename: str, label: str = "JSON", messages=None):
    return _download(lambda: text_fn().encode("utf-8"), filename, label, "wb-download-json", messages)
