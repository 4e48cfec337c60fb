"""The dashboard: Data, Compare, Inspect, Report, Bench and Model tabs over one :class:`~apps.session.Session`.

``Dashboard()`` builds everything for one browser session (``panel serve`` runs
``apps/dashboard.py`` once per session); it opens on the data set named in the URL (default the
real sentence embeddings ``scipy_api``), its panels calibrated to them, so a new user sees
meaningful attention maps within seconds. ``Dashboard(sync=True)`` runs all work inline, for unit
tests.
"""
from __future__ import annotations

import holoviews as hv
import panel as pn

import workbench

from apps import url_state
from apps.alerts import Messages
from apps.background import Runner
from apps.bench_view import BenchView
from apps.compare_view import CompareView
from apps.data_view import DataView
from apps.inspect_view import InspectView
from apps.model_view import ModelView
from apps.report_view import ReportView
from apps.session import Session

TABS = ("Data", "Compare", "Inspect", "Report", "Bench", "Model")

_EXTENSIONS_LOADED = False


def load_extensions() -> None:
    """HoloViews' Bokeh backend and Panel's extensions (once per process)."""
    global _EXTENSIONS_LOADED
    if not _EXTENSIONS_LOADED:
        hv.extension("bokeh", logo=False)
        # Canvas, not WebGL: the maps are images (no gain from WebGL), and compositing WebGL
        # canvases without a GPU (headless chromium, remote desktops) cost ~0.3 s per repaint.
        hv.renderer("bokeh").webgl = False
        pn.extension("filedropper", notifications=False, sizing_mode="stretch_width")
        _EXTENSIONS_LOADED = True


def pin_local_resources() -> None:
    """Make components created later in this session load Panel's CSS from this server.

    Panel records where its CSS lives (``dist_url``) on the session's document when it renders
    the HTML page. When a browser's websocket arrives after Bokeh's unused-session lifetime (a
    loaded machine, many sessions at once), Bokeh builds a fresh session for it without that
    page, so components created afterwards point at cdn.holoviz.org, which an offline machine
    cannot reach. Panel's own ``Location`` fixes the same variable the same way.
    """
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    from panel.io.resources import LOCAL_DIST, use_cdn

    variables = doc._template_variables
    if "dist_url" not in variables and not use_cdn():
        rel = pn.state.rel_path
        variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST
    if not use_cdn():
        _patch_cdn_fallback()


def _patch_cdn_fallback() -> None:
    """Panel points a stylesheet at cdn.holoviz.org whenever the document it is rendered for has no
    ``dist_url`` (``panel.reactive``: ``dist_url = CDN_DIST`` as the fallback) — a document made
    outside the page's own rendering. A served dashboard must never do that (offline machines, users
    behind a firewall got ~60 failed requests for loading.css and listpanel.css per session): this
    wraps Panel's ``patch_stylesheet`` so that the CDN fallback becomes this server's copy of the same
    file. Installed once per process, only when this server serves Panel's files (not ``use_cdn()``)."""
    import panel.io.resources as res
    import panel.reactive as reactive

    if getattr(res.patch_stylesheet, "_wb_local", False):
        return
    original = res.patch_stylesheet

    def patch_stylesheet(stylesheet, dist_url):
        if dist_url == res.CDN_DIST:
            rel = pn.state.rel_path
            dist_url = f"{rel}/{res.LOCAL_DIST}" if rel else res.LOCAL_DIST
        return original(stylesheet, dist_url)

    patch_stylesheet._wb_local = True
    res.patch_stylesheet = reactive.patch_stylesheet = patch_stylesheet


class Dashboard:
    """One session's dashboard; ``view`` is the servable layout."""

    def __init__(self, *, sync: bool = False, state=None, max_bytes: int | None = None, location=None,
                 demo_size: int | None = None):
        load_extensions()
        pin_local_resources()
        self.runner = Runner(sync=sync)
        self.messages = Messages()
        self.session = Session(runner=self.runner, messages=self.messages, max_bytes=max_bytes)
        self.location = location if location is not None else (pn.state.location if pn.state.curdoc else None)
        self._ready = False
        if state is None:
            state = url_state.state_from_location(self.location) if self.location is not None else None
        if state is None:
            from apps.url_state import AppState

            state = AppState()
        self.initial_state = state
        self.session.apply_state(state)
        if demo_size is not None:
            self.session.demo_size = demo_size
        self.compare = CompareView(self, list(state.mechanisms), [dict(p) for p in state.params],
                                   list(state.calibrate))
        self.data = DataView(self)
        self.inspect = InspectView(self)
        self.report = ReportView(self)
        self.bench = BenchView(self)
        self.model = ModelView(self)
        # Only the Compare tab is drawn when the page opens; each other tab is put in place the
        # first time it is shown and stays (Panel's own dynamic tabs detach hidden tabs, whose
        # later updates then point their stylesheets at the CDN, unreachable offline).
        self._tab_contents = [v.view for v in (self.data, self.compare, self.inspect, self.report, self.bench,
                                               self.model)]
        self._drawn = {TABS.index("Compare")}
        self._tab_boxes = [pn.Column(*([content] if i in self._drawn else []), sizing_mode="stretch_width",
                                     margin=0) for i, content in enumerate(self._tab_contents)]
        self.tabs = pn.Tabs(*zip(TABS, self._tab_boxes), active=TABS.index("Compare"), dynamic=False,
                            sizing_mode="stretch_width", css_classes=["wb-tabs"])
        self.tabs.param.watch(self._tab_changed, "active")
        self.session.param.watch(lambda *_: self.state_changed(), list(Session.PREP_OPTIONS) + [
            "keys", "projection", "graph_kind", "graph_k", "selected"])
        header = pn.Row(
            pn.pane.Markdown(f"## Attention Workbench <small>{len(workbench.list_mechanisms())} mechanisms</small>",
                             margin=(0, 10)),
            self.runner.activity, sizing_mode="stretch_width",
        )
        self.view = pn.Column(header, self.messages.panel, self.tabs, sizing_mode="stretch_width",
                              css_classes=["wb-dashboard"])
        self._ready = True
        self.inspect.refresh_panels()
        self.bench.refresh_mechanisms()
        self.session.load_demo(state.dataset)  # and the key set of the link, if it names one
        if state.source and state.source.startswith("path:"):  # a file on the server: read it again
            self.session.load_path(state.source.removeprefix("path:"))
        elif state.source and state.source.startswith("upload:"):
            self.messages.warning(f"link: it was made after uploading {state.source.removeprefix('upload:')!r}; "
                                  f"uploads do not travel in links, so the demo {state.dataset!r} is shown "
                                  f"(upload the file again)", topic="link")
        if state.selected is not None:
            self.session.on_prepared(self._restore_selection)
        self.state_changed()  # the link is shareable from the start
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda context: self.runner.cancel_all())

    def page(self) -> pn.template.BootstrapTemplate:
        """The served page: data controls in the sidebar, the status area and the tabs in the main area
        (the Data tab keeps the summary and the projection). ``view`` is the same dashboard as one column
        (notebooks, tests). Bootstrap: its files are bundled with Panel and served from this server."""
        data = TABS.index("Data")
        self._tab_contents[data] = self.data.main
        if data in self._drawn:
            self._tab_boxes[data].objects = [self.data.main]
        template = pn.template.BootstrapTemplate(
            title="Attention Workbench", sidebar=[self.data.controls], sidebar_width=330,
            header=[pn.Row(pn.layout.HSpacer(), self.runner.activity)],
            main=[pn.Column(self.messages.panel, self.tabs, sizing_mode="stretch_width",
                            css_classes=["wb-dashboard"])])
        return template

    # -- services for the views --------------------------------------------------------------------------
    def select_query(self, q: int | None) -> None:
        """Linked selection: every view follows ``session.selected``."""
        self.session.selected = q

    def reference(self, prep):
        return self.compare.reference(prep)

    def remove_panel(self, panel) -> None:
        self.compare.remove_panel(panel)

    def panel_updated(self, panel) -> None:
        self.compare.panel_updated(panel)

    def compare_pair(self, mechanism: str, params: dict) -> None:
        """Compare ``mechanism`` with exactly ``params`` (the recommendation, calibrated) beside
        scaled dot-product at its defaults (uncalibrated: what users get without the workbench)."""
        try:
            workbench.make(mechanism, **params)
        except Exception as exc:
            self.messages.error(exc, f"recommended parameters for {mechanism}")
            params = {}
        self.compare.set_mechanisms([(mechanism, params, False), ("scaled_dot_product", {}, False)])
        self.tabs.active = TABS.index("Compare")

    def state_changed(self) -> None:
        """Something the URL records changed: update the URL and the lists that follow the panels."""
        if not getattr(self, "_ready", False):
            return
        self.inspect.refresh_panels()
        self.bench.refresh_mechanisms()
        if self.location is not None:
            try:
                url_state.write_location(self.current_state(), self.location)
            except Exception as exc:  # the URL is a convenience: never break the page for it
                self.messages.error(exc, "URL state")

    def current_state(self):
        names, params = self.compare.mechanisms()
        return self.session.to_state(names, params, self.compare.calibrated())

    def _tab_changed(self, event) -> None:
        """A tab is drawn when first shown; map tiles (Compare, Inspect) and the report are
        computed only while their tab is shown."""
        if event.new not in self._drawn:
            self._drawn.add(event.new)
            self._tab_boxes[event.new].objects = [self._tab_contents[event.new]]
        self.compare.pause(TABS[event.new] != "Compare")
        self.inspect.active = TABS[event.new] == "Inspect"
        self.inspect.tiles.pause(not self.inspect.active)
        self.report.active = TABS[event.new] == "Report"
        if self.inspect.active:
            self.inspect.show_if_stale()
        if self.report.active:
            self.report.show_if_stale()
        if TABS[event.new] == "Model":
            self.model.start()

    def _restore_selection(self, prep) -> None:
        sel = self.initial_state.selected
        if sel is None or self.session.selected is not None:
            return
        n = prep.shape[0]
        if sel >= n:  # a link made on larger data: the last query, said out loud rather than dropped
            self.messages.warning(f"link: the selected query {sel:,} is beyond this data's {n:,} queries; "
                                  f"selected query {n - 1:,} instead", topic="link")
            sel = n - 1
        self.session.selected = sel
        self.initial_state.selected = None


def create_app(**kwargs) -> pn.template.BootstrapTemplate:
    """The servable page of a new dashboard session: a Panel template with the data controls in its
    sidebar and the status area and tabs in the main area (:meth:`Dashboard.page`)."""
    return Dashboard(**kwargs).page()
