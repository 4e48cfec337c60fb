"""Compare tab: 2–4 mechanism panels side by side, linked query selection, the keys' projection.

Each panel (:class:`~apps.mechanism_panel.MechanismPanel`) runs its mechanism on the prepared
data; scaled dot-product is run once per data version as the reference of the diagnostics.
Clicking a cell of any map selects that query everywhere and rings the keys it attends to in
the projection. The diagnostics of every panel download as CSV.
"""
from __future__ import annotations

import html
import threading

import numpy as np
import panel as pn

from workbench import compare

from apps import export
from apps.mechanism_panel import MechanismPanel, diagnostics_rows, mechanism_names, nondefault_params, run_rows
from apps.projection import ProjectionView

MIN_PANELS, MAX_PANELS = 2, 4
#: Keys listed for the selected query.
TOP_LISTED = 8


def selection_markdown(prep, q: int, row_index, label: str, mechanism: str, row: np.ndarray) -> str:
    """The selected query (its text) and the keys it attends to most, each with its weight and text."""
    head = f"**Selected query {q}**{label} — data row {row_index}"
    qt = prep.query_text(q)
    if qt:
        head += f": {html.escape(qt[:160])}"
    top = compare.attended_keys(row, top=TOP_LISTED)
    items = []
    for rank, j in enumerate(top, 1):
        kt = prep.key_text(int(j))
        items.append(f"{rank}. key {int(j)} · **{row[j]:.3f}**" + (f" — {html.escape(kt[:140])}" if kt else ""))
    return head + f"  \n{html.escape(mechanism)} attends most to:\n\n" + "\n".join(items)


class CompareView:
    """The Compare tab; ``app`` is the :class:`~apps.app.Dashboard`."""

    def __init__(self, app, mechanisms: list[str], params: list[dict], calibrate: list | None = None):
        self.app = app
        self.session = app.session
        self._ref_lock = threading.Lock()
        self._reference: tuple[int, object] | None = None
        self.panels: list[MechanismPanel] = []
        self.paused = False  # True while the tab is hidden: the maps draw no tiles
        self.grid = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        self.projection = ProjectionView(app)
        self.add_choice = pn.widgets.Select(label="add a panel", options=mechanism_names(), value=compare.REFERENCE,
                                            width=220)
        self.add = pn.widgets.Button(label="+ add", color="primary", width=80, margin=(23, 5, 5, 5),
                                     css_classes=["wb-add-panel"])
        self.add.on_click(lambda *_: self.add_panel(self.add_choice.value, {}))
        self.selection = pn.pane.Markdown("Click a cell of any map to select its query in every view.",
                                          css_classes=["wb-selection"], sizing_mode="stretch_width")
        self.csv = export.csv_button(self.diagnostics_table, "diagnostics.csv", "diagnostics CSV",
                                     app.messages)
        self.search = pn.widgets.TextInput(label="find a query", placeholder="find a query by its text…", width=260,
                                           css_classes=["wb-search"])
        self.search.param.watch(lambda e: self.find(e.new), "value")
        flags = list(calibrate) if calibrate is not None else [None] * len(mechanisms)
        for name, p, c in zip(mechanisms, params, flags + [None] * (len(mechanisms) - len(flags))):
            self.add_panel(name, p, announce=False, calibrate=c)
        panel_tools = pn.Row(self.add_choice, self.add, self.csv, self.search, sizing_mode="stretch_width")
        proj_tools = export.plot_buttons(self.projection.static, "projection", app.messages)
        self.view = pn.Column(
            panel_tools, self.selection,
            pn.Row(self.grid, pn.Column(self.projection.pane, self.projection.caption, proj_tools, width=460),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        self.session.on_prepared(self.set_data)
        self.session.param.watch(self._selected, "selected")
        self.session.param.watch(lambda *_: self._rerun_all(), ["graph_k", "graph_kind"])
        self.session.param.watch(lambda *_: self.session.prepared and self.projection.set_data(self.session.prepared),
                                 "projection")

    def pause(self, paused: bool) -> None:
        """Hidden tab: the panels' maps compute no tiles until it is shown again (see
        :meth:`apps.maps.TileView.pause`); runs and diagnostics go on."""
        self.paused = bool(paused)
        for panel in self.panels:
            panel.pause(self.paused)

    # -- panels ------------------------------------------------------------------------------------
    def add_panel(self, name: str, params: dict, announce: bool = True,
                  calibrate: bool | None = None) -> MechanismPanel | None:
        if len(self.panels) >= MAX_PANELS:
            self.app.messages.error(f"panels: at most {MAX_PANELS} mechanisms side by side; remove one first")
            return None
        panel = MechanismPanel(self.app, len(self.panels), name, params, calibrate)
        panel.pause(self.paused)
        self.panels.append(panel)
        self._layout()
        if self.session.prepared is not None:
            panel.set_data(self.session.prepared)
        if announce:
            self.app.state_changed()
        return panel

    def remove_panel(self, panel: MechanismPanel) -> None:
        if len(self.panels) <= MIN_PANELS:
            self.app.messages.error(f"panels: compare at least {MIN_PANELS} mechanisms; add one before removing")
            return
        self.panels.remove(panel)
        for i, p in enumerate(self.panels):
            p.index = i
            p.view.css_classes = ["wb-panel", f"wb-panel-{i}"]
        self._layout()
        self.app.state_changed()

    def set_mechanisms(self, pairs: list[tuple]) -> None:
        """Replace the panels by ``[(name, params), …]`` or ``[(name, params, calibrate), …]`` (2–4 of
        them); ``calibrate`` None fits the temperature unless ``params`` set it."""
        self.panels = []
        for entry in pairs[:MAX_PANELS]:
            name, p, c = (*entry, None)[:3]
            self.add_panel(name, p, announce=False, calibrate=c)
        self.app.state_changed()

    def _layout(self) -> None:
        self.grid.objects = [p.view for p in self.panels]

    def mechanisms(self) -> tuple[list[str], list[dict]]:
        return [p.name for p in self.panels], [nondefault_params(p.instance) for p in self.panels]

    def calibrated(self) -> list[bool]:
        """Whether each panel fits its temperature to the loaded keys."""
        return [bool(p.auto_calibrate) for p in self.panels]

    def find(self, text: str) -> None:
        """Select the first query whose text contains ``text`` (the search box)."""
        prep = self.session.prepared
        if not text or prep is None:
            return
        if prep.query_texts is None:
            self.app.messages.error("find a query: this data set has no texts to search (load one with a text "
                                    "column, e.g. texts in an .npz or a string column in a CSV)")
            return
        row = prep.find_query(text)
        if row is None:
            self.selection.object = f"No query text contains “{html.escape(text)}”."
            return
        self.app.select_query(row)

    # -- data -------------------------------------------------------------------------------------------
    def set_data(self, prep) -> None:
        self.projection.set_data(prep)
        for p in self.panels:
            p.set_data(prep)

    def _rerun_all(self) -> None:
        for p in self.panels:
            p.recompute()

    def reference(self, prep):
        """Scaled dot-product on ``prep`` (computed once per data version; called in workers)."""
        with self._ref_lock:
            if self._reference is not None and self._reference[0] == prep.version:
                return self._reference[1]
            qi = run_rows(prep)
            ref = compare.run(compare.REFERENCE, {}, prep.q, prep.k, prep.v, query_index=qi)
            self._reference = (prep.version, ref)
            return ref

    # -- selection -----------------------------------------------------------------------------------
    def _selected(self, event) -> None:
        q = event.new
        for p in self.panels:
            p.select(q)
        self._highlight(q)

    def panel_updated(self, panel: MechanismPanel) -> None:
        if panel is (self.panels[0] if self.panels else None) and self.session.selected is not None:
            self._highlight(self.session.selected)

    def _highlight(self, q: int | None) -> None:
        prep = self.session.prepared
        if q is None or prep is None or not self.panels:
            self.projection.clear_highlight()
            self.selection.object = "Click a cell of any map to select its query in every view."
            return
        lead = self.panels[0]
        row_index = int(prep.query_index[q]) if q < prep.query_index.size else None
        label = "" if prep.query_labels is None else f" (label {prep.query_labels[q]})"
        own = row_index if prep.same_set else None

        def work(job):
            return lead.weights_row(q)

        def done(row):
            self.projection.highlight(own, row)
            if row is not None:
                self.selection.object = selection_markdown(prep, q, row_index, label, lead.name, row)

        self.app.runner.submit("highlight", work, done, lambda exc: self.app.messages.error(exc, "selection"))

    # -- export -------------------------------------------------------------------------------------------
    def diagnostics_table(self) -> list[dict]:
        """One row per panel: mechanism, non-default parameters and every diagnostic."""
        rows = []
        for p in self.panels:
            d = p.diagnostics or {}
            row = {"panel": p.index + 1, "mechanism": p.name, "params": repr(nondefault_params(p.instance))}
            for key in ("entropy_mean", "entropy_max", "sparsity", "top_k_overlap", "top_k", "output_distance",
                        "seconds", "weights_seconds", "backend", "error"):
                v = d.get(key)
                row[key] = float(v) if isinstance(v, (np.floating,)) else v
            rows.append(row)
        return rows

    def diagnostics_text(self) -> list[list[tuple[str, str]]]:
        return [diagnostics_rows(p.diagnostics or {}) for p in self.panels]
