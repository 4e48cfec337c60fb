"""Inspect tab: one attention map, large and lazy, with hover labels, zoom and a per-query bar chart.

The map is a :class:`~apps.maps.TileView`: only the visible region is computed, at screen
resolution, by ``workbench.compare.weights_tile`` (exact per-row normalisation for dot-product
attention), so a 100,000 × 100,000 map stays explorable without materialising it. Rows and
columns can be sorted by label or by a cluster order (:mod:`apps.ordering`). Clicking a row
selects that query everywhere; the bar chart shows its weights over the keys it attends to most.
"""
from __future__ import annotations

import html

import holoviews as hv
import numpy as np
import panel as pn

from workbench import compare

from apps import export
from apps.maps import TileView
from apps.ordering import ORDERS, order_for

#: Keys shown in the bar chart (all of them when there are at most this many).
BAR_KEYS = 40


class InspectView:
    """The Inspect tab; ``app`` is the :class:`~apps.app.Dashboard`."""

    def __init__(self, app):
        self.app = app
        self.session = app.session
        self.panel_select = pn.widgets.Select(label="map of panel", options={}, width=260,
                                              css_classes=["wb-inspect-panel"])
        self.order = pn.widgets.Select(label="sort rows and columns by", options=list(ORDERS), value=ORDERS[0],
                                       width=200, css_classes=["wb-inspect-order"])
        self.refresh = pn.widgets.Button(label="Show", color="primary", width=80, margin=(23, 5, 5, 5),
                                         css_classes=["wb-inspect-show"])
        self.tiles = TileView(submit=self._submit_tile, height=620, on_tap=self._tapped, on_hover=self._hovered,
                              css_class="wb-inspect-map")
        self.hover = pn.pane.Str("hover over the map: query, key, their labels and the weight",
                                 css_classes=["wb-inspect-hover"], margin=(0, 10))
        self.bars = pn.pane.HoloViews(None, height=280, sizing_mode="stretch_width", css_classes=["wb-bars"],
                                      linked_axes=False)
        self.plan = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#555"})
        self.perm_q = self.perm_k = self.inv_q = None
        self.active = False  # tiles are computed only while the tab is shown
        self._stale = True
        self._bar_element = None
        self.panel_select.param.watch(lambda *_: self.show(), "value")
        self.order.param.watch(lambda *_: self.show(), "value")
        self.refresh.on_click(lambda *_: self.show())
        self.view = pn.Column(
            pn.Row(self.panel_select, self.order, self.refresh,
                   export.plot_buttons(self.static_map, "inspect-map", app.messages)),
            self.plan, self.tiles.pane, self.tiles.status, self.hover,
            pn.Row(pn.pane.Markdown("**Weights of the selected query**"),
                   export.plot_buttons(lambda: self._bar_element, "query-weights", app.messages)),
            self.bars, sizing_mode="stretch_width",
        )
        self.session.param.watch(self._selected, "selected")
        self.session.on_prepared(self._prepared)

    def _prepared(self, prep) -> None:
        self.bars.object = None  # the selection was cleared with the old data
        self._bar_element = None
        self.hover.object = "hover over the map: query, key, their labels and the weight"
        self.show()

    # -- which map --------------------------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Offer the Compare panels (called when panels or their mechanisms change)."""
        panels = self.app.compare.panels
        options = {f"{p.index + 1} · {p.name}": p.index for p in panels}
        current = self.panel_select.value
        self.panel_select.options = options
        self.panel_select.value = current if current in options.values() else (0 if options else None)

    def _panel(self):
        panels = self.app.compare.panels
        i = self.panel_select.value
        return panels[i] if i is not None and 0 <= i < len(panels) else (panels[0] if panels else None)

    def show_if_stale(self) -> None:
        if self._stale:
            self.show()

    def show(self) -> None:
        """Draw the chosen panel's map (now if the tab is shown, else when it is opened)."""
        prep, panel = self.session.prepared, self._panel()
        if prep is None or panel is None:
            return
        if not self.active:
            self._stale = True
            return
        self._stale = False
        name, params = panel.name, panel.params()
        gkind, gk = self.session.graph_kind, self.session.graph_k
        how, seed = self.order.value, self.session.seed
        q, k = prep.q_shown, prep.k

        def work(job):
            pq = order_for(how, q, prep.query_labels, seed)
            same = prep.same_set and prep.query_index.size == k.shape[0]
            pk = pq if same else order_for(how, k, prep.key_labels, seed)
            return pq, pk

        def done(perms):
            pq, pk = perms
            self.perm_q, self.perm_k = pq, pk
            self.inv_q = np.empty_like(pq)
            self.inv_q[pq] = np.arange(pq.size)
            qs = q if how == "data order" else np.ascontiguousarray(q[pq])
            ks = k if how == "data order" else np.ascontiguousarray(k[pk])
            plan = compare.tile_plan(name, params, qs.shape[0], ks.shape[0])
            self.plan.object = (f"**{html.escape(name)}** on {prep.shape[0]:,} × {prep.shape[1]:,} "
                                f"({html.escape(how)}): {html.escape(plan['note'])}")
            self.tiles.set_source(
                lambda rows, cols, out: compare.weights_tile(name, params, qs, ks, rows=rows, cols=cols, out_shape=out,
                                                             graph_kind=gkind, graph_k=gk),
                prep.shape, f"{name} · {how}")
            self.tiles.select(None if self.session.selected is None else int(self.inv_q[self.session.selected]))

        self.app.runner.submit("inspect-order", work, done, lambda exc: self.app.messages.error(exc, "inspect"))

    def _submit_tile(self, work, done) -> None:
        self.app.runner.submit("inspect-tile", work, done, lambda exc: self.app.messages.error(exc, "inspect tile"))

    # -- interaction --------------------------------------------------------------------------------
    def _tapped(self, row: int, col: int) -> None:
        if self.perm_q is not None and row < self.perm_q.size:
            self.app.select_query(int(self.perm_q[row]))

    def _hovered(self, row: int, col: int) -> None:
        prep = self.session.prepared
        if prep is None or self.perm_q is None or row >= self.perm_q.size or col >= self.perm_k.size:
            return
        qi, kj = int(self.perm_q[row]), int(self.perm_k[col])
        ql = "" if prep.query_labels is None else f" label {prep.query_labels[qi]}"
        kl = "" if prep.key_labels is None else f" label {prep.key_labels[kj]}"
        kt = "" if prep.key_texts is None else f" “{prep.key_texts[kj]}”"
        w = self.tiles.value_at(row, col)
        wt = "" if w is None else f": weight {w:.4g}" + (" (max of the pixel)" if self._pooled() else "")
        self.hover.object = f"query {qi}{ql} → key {kj}{kl}{kt}{wt}"

    def _pooled(self) -> bool:
        last = self.tiles.last
        if not last:
            return False
        (r0, r1), (c0, c1) = last["rows"], last["cols"]
        return last["out_shape"] != (r1 - r0, c1 - c0)

    def _selected(self, event) -> None:
        q = event.new
        if self.inv_q is not None and q is not None and q < self.inv_q.size:
            self.tiles.select(int(self.inv_q[q]))
        else:
            self.tiles.select(None)
        if q is not None:
            self._bar_chart(q)

    def _bar_chart(self, q: int) -> None:
        prep, panel = self.session.prepared, self._panel()
        if prep is None or panel is None:
            return

        def work(job):
            return panel.weights_row(q)

        def done(row):
            if row is None:
                return
            lk = row.shape[0]
            keys = np.arange(lk) if lk <= BAR_KEYS else np.sort(compare.attended_keys(row, top=BAR_KEYS))
            labels = (np.asarray(prep.key_labels).astype(str)[keys] if prep.key_labels is not None
                      else np.full(keys.size, "—"))
            texts = [prep.key_texts[j] for j in keys] if prep.key_texts is not None else [""] * keys.size
            table = {"key": [str(j) for j in keys], "weight": row[keys], "label": labels, "text": texts}
            what = "every key" if lk <= BAR_KEYS else f"the {BAR_KEYS} keys it attends to most (key order)"
            self._bar_element = hv.Bars(table, "key", ["weight", "label", "text"]).opts(
                color="label", cmap="Category10", responsive=True, height=260, tools=["hover"], xrotation=60,
                title=f"query {q} of {panel.name}: {what}", show_legend=False)
            self.bars.object = self._bar_element

        self.app.runner.submit("inspect-bars", work, done, lambda exc: self.app.messages.error(exc, "bar chart"))

    def static_map(self):
        data = self.tiles._pipe.data if self.tiles._pipe is not None else None
        return data
