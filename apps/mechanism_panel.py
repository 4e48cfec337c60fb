"""One Compare panel: a mechanism, its parameter widgets, its attention map and its diagnostics.

The widgets come from the mechanism's ``param`` declaration (``pn.Param`` on an instance), so a
newly registered mechanism gets its panel without any code here. A parameter change re-runs
the mechanism in the background (``workbench.compare.run`` + ``diagnostics`` against scaled
dot-product); maps up to ``compare.MAX_DENSE`` entries are kept whole and shown max-pooled to
the screen (``compare.pool_weights``, off the event loop), larger ones lazily tile by tile
(``compare.weights_tile``). Errors keep the previous map and show a message.
"""
from __future__ import annotations

import html
import math
import time
from typing import TYPE_CHECKING, Callable

import holoviews as hv
from holoviews import streams
import numpy as np
import panel as pn
import param

import workbench
from workbench import compare
from workbench.errors import WorkbenchError

from apps import export
from apps.maps import MapView, TileView

if TYPE_CHECKING:  # pragma: no cover
    from apps.session import Prepared


def mechanism_names() -> list[str]:
    """Every registered mechanism (the registry is the only list)."""
    import workbench.mechanisms  # noqa: F401  (registers them)

    return workbench.list_mechanisms()


def parameter_names(instance: param.Parameterized) -> list[str]:
    """The parameters a user sets (``name`` excluded), in declaration order."""
    return [n for n in instance.param if n != "name"]


def widget_types(instance: param.Parameterized, names: list[str] | None = None) -> dict:
    """Widget choices that keep every value exact and every doc visible, by parameter type.

    Numbers get input boxes, not sliders: ``pn.Param`` would make a slider of a bounded number,
    and a slider cannot show ``None`` (e.g. ``scale=None`` meaning 1/sqrt(d)); the box keeps the
    bounds as start/end. Booleans get an off/on button pair instead of a checkbox, because a
    checkbox cannot show the parameter's doc as a tooltip; the buttons carry the parameter's name.
    """
    out: dict = {}
    for n in names or parameter_names(instance):
        p = instance.param[n]
        if isinstance(p, param.Integer):
            out[n] = pn.widgets.IntInput
        elif isinstance(p, param.Number):
            out[n] = pn.widgets.FloatInput
        elif isinstance(p, param.Boolean) and not p.allow_None:
            # a button group shows no title of its own: its buttons name the parameter ("causal: off")
            label = n.replace("_", " ")
            out[n] = {"type": pn.widgets.RadioButtonGroup, "options": {f"{label}: off": False, f"{label}: on": True},
                      "color": "default", "variant": "outline"}
    return out


def parameter_widgets(instance: param.Parameterized) -> pn.Param:
    """Widgets generated from ``instance``'s ``param`` declaration (docs become tooltips)."""
    return pn.Param(instance, parameters=parameter_names(instance), show_name=False, sizing_mode="stretch_width",
                    default_layout=pn.Column, margin=0, widgets=widget_types(instance))


def current_params(instance: param.Parameterized) -> dict:
    """Current values of the user-settable parameters."""
    return {n: getattr(instance, n) for n in parameter_names(instance)}


def nondefault_params(instance) -> dict:
    """The parameters that differ from their declared default (what a URL needs)."""
    return instance.nondefault_params()


def run_rows(prep) -> np.ndarray | None:
    """The query rows ``compare.run`` reports: every shown row while the map fits in
    ``compare.MAX_DENSE`` entries, else evenly spaced rows (diagnostics on a sample; the map
    itself is then drawn lazily, tile by tile). None means every row of ``q``."""
    m, lk = prep.shape
    if m * lk <= compare.MAX_DENSE:
        return None if m == prep.q.shape[0] else prep.query_index
    n = max(1, compare.MAX_DENSE // max(lk, 1))
    pick = np.unique(np.linspace(0, m - 1, min(n, m)).round().astype(np.int64))
    return prep.query_index[pick]


def entropy_curve(data) -> hv.Curve:
    """Entropy per query as a curve whose y range is never narrower than 5% of its level (at least 0.01
    nats): nearly constant entropies would otherwise get ticks like "1.000e-5" around a flat line."""
    y = np.asarray(data, dtype=np.float64)
    lo, hi = (float(y.min()), float(y.max())) if y.size else (0.0, 1.0)
    pad = max(0.05 * max(abs(lo), abs(hi)), 0.01) - (hi - lo)
    if pad > 0:
        lo, hi = lo - pad / 2, hi + pad / 2
    return hv.Curve((np.arange(y.size), y), "query", "entropy").redim.range(entropy=(lo, hi))


def _fmt(v, spec: str = ".3f", none: str = "—") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return none
    return format(v, spec)


def diagnostics_rows(diag: dict) -> list[tuple[str, str]]:
    """``(label, text)`` pairs of one panel's diagnostics, in the order shown."""
    ent = diag.get("entropy_mean")
    emax = diag.get("entropy_max")
    return [
        ("entropy / query (mean)", f"{_fmt(ent)} of max {_fmt(emax)} nats" if ent is not None else "—"),
        ("sparsity (w < 1e-3)", _fmt(diag.get("sparsity"), ".1%")),
        (f"top-{diag.get('top_k') or 'k'} overlap with SDPA", _fmt(diag.get("top_k_overlap"), ".1%")),
        ("output distance to SDPA", _fmt(diag.get("output_distance"), ".3g")),
        ("run time", f"{_fmt(diag.get('seconds'), '.4f')} s"),
        ("backend", str(diag.get("backend") or "—")),
    ]


def diagnostics_table(diag: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in diagnostics_rows(diag))
    return f'<table class="wb-diag">{cells}</table>'


_WRAP = "pre {white-space: pre-wrap; font-size: 11px; margin: 2px 0;}"

_CSS = """
table.wb-diag {border-collapse: collapse; font-size: 12px; width: 100%;}
table.wb-diag th {text-align: left; font-weight: normal; color: #555; padding: 1px 6px 1px 0;}
table.wb-diag td {text-align: right; font-family: monospace; padding: 1px 0;}
"""


class MechanismPanel:
    """A compare panel; ``app`` provides ``session``, ``runner``, ``messages``, ``reference(prep)``,
    ``select_query(q)``, ``remove_panel(panel)`` and ``state_changed()``."""

    def __init__(self, app, index: int, name: str, params: dict | None = None, calibrate: bool | None = None):
        self.app = app
        self.index = index
        # calibration: fit the temperature (and any domain parameter) to the loaded keys before a run
        self.auto_calibrate = True
        self.calibration = None  # the last workbench.calibration.Calibration applied
        self._calibrated_for: tuple | None = None  # (data version, mechanism) of that calibration
        self._fitted: set = set()  # the parameters the last calibration set
        self._applying = False  # True while calibrated values are written into the widgets
        self.run_count = 0
        self.result = None
        self.diagnostics: dict = {}
        self.prepared: Prepared | None = None
        self.lazy = False
        self.mechanism = pn.widgets.Select(label="mechanism", options=mechanism_names(), value=name,
                                           sizing_mode="stretch_width", css_classes=["wb-mechanism-select"])
        self.remove = pn.widgets.Button(label="✕", width=36, color="light", description="Remove this panel",
                                        css_classes=["wb-remove-panel"])
        self.remove.on_click(lambda *_: app.remove_panel(self))
        self.info = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 5), css_classes=["wb-mech-info"])
        self.widgets_box = pn.Column(sizing_mode="stretch_width", margin=0)
        self.map = MapView(submit=self._submit_tile, title="", height=300, on_tap=lambda q, k: app.select_query(q),
                           on_hover=self._hovered)
        self.tiles = TileView(submit=self._submit_tile, height=300, on_tap=lambda q, k: app.select_query(q),
                              css_class="wb-panel-tiles", on_hover=self._hovered)
        # HoloViews panes are shown and hidden through a Column around each: a layout parameter set on
        # the pane itself copies its figure's properties back, and under a template's design those hold
        # stylesheet objects that Panel's own List[str] refuses (TypeError, seen with BootstrapTemplate)
        self.map_box = pn.Column(self.map.pane, sizing_mode="stretch_width", margin=0)
        self.tiles_box = pn.Column(self.tiles.pane, sizing_mode="stretch_width", margin=0, visible=False)
        self.status = pn.pane.Str("", css_classes=["wb-run-status"], margin=(0, 5), stylesheets=[_WRAP])
        # what the run decided or warns about (e.g. points outside a geometric mechanism's domain);
        # always present, so a new note changes text only and never the page layout
        self.notes = pn.pane.HTML("", css_classes=["wb-run-notes"], sizing_mode="stretch_width", margin=(0, 5),
                                  styles={"color": "#9a5b00", "font-size": "12px"})
        self.diag = pn.pane.HTML("", stylesheets=[_CSS], sizing_mode="stretch_width", margin=(0, 5))
        self.entropy = pn.pane.HoloViews(None, height=110, sizing_mode="stretch_width", linked_axes=False)
        self.entropy_box = pn.Column(self.entropy, sizing_mode="stretch_width", margin=0, visible=False)
        self.calib_info = pn.pane.HTML("", css_classes=["wb-calibration"], sizing_mode="stretch_width",
                                       margin=(0, 5), styles={"font-size": "12px", "color": "#33691e"})
        self.recalibrate = pn.widgets.Button(label="recalibrate", width=100, height=28, margin=(0, 5),
                                             description="Fit the temperature again to the loaded keys "
                                                         "(mean normalised entropy 0.5)",
                                             css_classes=["wb-recalibrate"])
        self.recalibrate.on_click(lambda *_: self.calibrate_again())
        self.hover = pn.pane.HTML("", css_classes=["wb-map-hover"], sizing_mode="stretch_width", margin=(0, 5),
                                  styles={"font-size": "12px", "min-height": "1.5em"})
        self._entropy_pipe: streams.Pipe | None = None
        self.instance: param.Parameterized | None = None
        self._pending_params: dict = {}
        self._pending_calibrate: bool | None = None
        self._set_mechanism(name, params or {}, calibrate)
        self.mechanism.param.watch(self._mechanism_chosen, "value")
        self.show_params = pn.widgets.Toggle(label="parameters ▾", value=False, sizing_mode="stretch_width",
                                             css_classes=["wb-params-toggle"], margin=(0, 5))
        self.widgets_box.visible = False
        self.show_params.param.watch(lambda e: setattr(self.widgets_box, "visible", e.new), "value")
        self.settings = pn.Column(self.show_params, self.widgets_box, sizing_mode="stretch_width", margin=0)
        self.export = export.plot_buttons(self.static_map, f"attention-map-{index + 1}", app.messages)
        self.view = pn.Column(
            pn.Row(self.mechanism, self.remove, sizing_mode="stretch_width"),
            self.info, pn.Row(self.calib_info, self.recalibrate, sizing_mode="stretch_width"), self.settings,
            self.map_box, self.tiles_box, self.hover, self.status, self.notes, self.export, self.diag,
            self.entropy_box,
            sizing_mode="stretch_width", css_classes=["wb-panel", f"wb-panel-{index}"],
            styles={"border": "1px solid #ddd"}, margin=5,
        )

    # -- mechanism and parameters ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.mechanism.value

    def params(self) -> dict:
        return current_params(self.instance)

    def set_mechanism(self, name: str, params: dict | None = None, calibrate: bool | None = None) -> None:
        """Switch this panel to mechanism ``name`` with ``params`` (as if chosen in the menu).

        ``calibrate``: fit the temperature to the loaded keys (None: unless ``params`` set it)."""
        if name == self.mechanism.value:
            self._set_mechanism(name, dict(params or {}), calibrate)
            return
        self._pending_params = dict(params or {})
        self._pending_calibrate = calibrate
        self.mechanism.value = name

    def _mechanism_chosen(self, event) -> None:
        params, self._pending_params = self._pending_params, {}
        calibrate, self._pending_calibrate = self._pending_calibrate, None
        self._set_mechanism(event.new, params, calibrate)

    def _set_mechanism(self, name: str, params: dict, calibrate: bool | None = None) -> None:
        try:
            instance = workbench.make(name, **params)
        except Exception as exc:
            self.app.messages.error(exc, f"panel {self.index + 1} ({name})")
            instance = workbench.make(name)
        self.instance = instance
        which = type(instance).temperature_parameter()
        # a link or a caller that sets the temperature gets exactly that; otherwise it is fitted
        self.auto_calibrate = (which is not None and which not in params) if calibrate is None else bool(calibrate)
        self.calibration, self._calibrated_for, self._fitted = None, None, set()
        self._show_calibration()
        info = workbench.registry[name]
        graph = " · needs a graph (k from the Data tab)" if info.needs_graph else ""
        self.info.object = f"**{html.escape(info.summary)}**  \n`{html.escape(info.formula)}`{graph}"
        self.widgets_box.objects = [parameter_widgets(instance)]
        instance.param.watch(self._param_changed, parameter_names(instance))
        self.app.state_changed()
        self.recompute()

    def _param_changed(self, *events):
        if self._applying:
            return
        fitted = self._fitted | {type(self.instance).temperature_parameter()}
        if self.auto_calibrate and any(e.name in fitted for e in events):
            self.auto_calibrate = False  # a value set by hand is kept until "recalibrate"
            self._show_calibration(edited=True)
        self.app.state_changed()
        self.recompute()

    # -- calibration -------------------------------------------------------------------------------
    def calibrate_again(self) -> None:
        """Fit the temperature to the loaded keys again (the "recalibrate" button)."""
        self.auto_calibrate = True
        self._calibrated_for = None
        self.recompute()

    def _needs_calibration(self, prep) -> bool:
        return (self.auto_calibrate and type(self.instance).temperature_parameter() is not None
                and self._calibrated_for != (prep.version, self.name))

    def _show_calibration(self, edited: bool = False) -> None:
        cal = self.calibration
        which = type(self.instance).temperature_parameter() if self.instance is not None else None
        if which is None:
            text = "no temperature to calibrate"
        elif edited:
            text = f"{which} set by hand (not calibrated)"
        elif cal is not None and self.auto_calibrate:
            text = "calibrated: " + html.escape(cal.describe())
        elif self.auto_calibrate:
            text = "calibrates to the loaded keys…"
        else:
            value = getattr(self.instance, which)
            text = f"not calibrated: {which} = {'default' if value is None else f'{value:.4g}'}"
        self.calib_info.object = text
        self.recalibrate.visible = which is not None

    def _apply_calibration(self, cal, prep) -> None:
        """Write the calibrated values into the instance (and so its widgets) without a re-run."""
        changes = {k: v for k, v in cal.params.items() if k in self.instance.param and k != "backend"}
        which = type(self.instance).temperature_parameter()
        if which is not None and which not in changes:  # fitted value equal to the default
            changes[which] = self.instance.param[which].default
        self._applying = True
        try:
            self.instance.param.update(**changes)
        finally:
            self._applying = False
        self.calibration = cal
        self._fitted = set(changes)
        self._calibrated_for = (prep.version, self.name)
        self._show_calibration()
        self.app.state_changed()

    def _hovered(self, q: int, k: int) -> None:
        """The texts (or indices) of the query and key under the pointer, and the weight there."""
        prep = self.prepared
        if prep is None:
            return
        view = self.tiles if self.lazy else self.map
        w = view.value_at(q, k)
        qt, kt = prep.query_text(q), prep.key_text(k)
        weight = "" if w is None else f" · weight {w:.4f}"
        self.hover.object = (f"<b>query {q}</b> {html.escape(qt[:90])} → <b>key {k}</b> {html.escape(kt[:90])}"
                             f"{weight}")

    # -- computing -------------------------------------------------------------------------------------
    def set_data(self, prep: Prepared) -> None:
        self.prepared = prep
        self.recompute()

    def recompute(self) -> None:
        prep = self.prepared
        if prep is None or self.instance is None:
            return
        name, params = self.name, self.params()
        session = self.app.session
        gk, gkind = session.graph_k, session.graph_kind
        graph = prep.graph if gkind == "auto" else None  # the data's own graph, where it brought one
        qi = run_rows(prep)
        m, lk = prep.shape
        lazy = m * lk > compare.MAX_DENSE
        requested = time.perf_counter()
        plan = None if lazy else self.map.plan(prep.shape)
        calibrate = self._needs_calibration(prep)
        keep = {n: v for n, v in params.items()
                if n not in self._fitted | {type(self.instance).temperature_parameter()}}

        def work(job):
            cal, failure = None, None
            run_params = params
            if calibrate:
                try:
                    mech = workbench.calibrate(name, prep.k, graph_k=gk, **keep)
                except WorkbenchError as exc:  # the run goes on with the current values, and says why
                    failure = str(exc)
                else:
                    cal = mech.calibration
                    run_params = {**params, **{k: v for k, v in current_params(mech).items() if k in params}}
                job.check()
            res = compare.run(name, run_params, prep.q, prep.k, prep.v, query_index=qi, graph_kind=gkind,
                              graph_k=gk, preferred_graph=graph)
            # the map's screen-sized image is pooled here, off the event loop
            first = None
            if plan is not None and res.weights is not None and res.weights.shape == tuple(prep.shape):
                first = MapView.pooled(res.weights, plan)
            return res, first, cal, run_params, failure

        def done(out):
            res, first, cal, run_params, failure = out
            if cal is not None:
                self._apply_calibration(cal, prep)
            elif failure is not None:
                self._calibrated_for = (prep.version, self.name)  # not retried until the data change
                self.calib_info.object = f"not calibrated: {html.escape(failure)}"
            if res.error is not None:
                self.status.object = f"error: {res.error}"
                self.app.messages.error(res.error, f"panel {self.index + 1} ({name})")
                return
            self.result = res
            self.run_count += 1
            self._show_map(res, prep, name, run_params, gkind, gk, lazy, first)  # the map first, diagnostics next
            total = time.perf_counter() - requested
            how = f"lazy tiles (diagnostics on {qi.size:,} sampled queries)" if lazy else "weights"
            self.status.object = (f"#{self.run_count} · {name} · {m:,} × {lk:,} {how} · run {res.seconds:.3f} s · "
                                  f"shown {total:.3f} s after the change · {res.backend}")
            self.notes.object = "<br>".join(f"⚠ {html.escape(n)}" for n in res.notes)
            self.app.panel_updated(self)
            is_reference = name == compare.REFERENCE and not nondefault_params(self.instance)
            self._diagnose(res, prep, reference_is_self=is_reference)

        self.status.object = "calibrating and computing…" if calibrate else "computing…"
        self.app.runner.submit(f"panel-{id(self)}", work, done,
                               lambda exc: self._failed(exc, name))

    def _diagnose(self, res, prep, reference_is_self: bool) -> None:
        """Diagnostics against scaled dot-product, computed after the map is on screen."""

        def work(job):
            ref = res if reference_is_self else self.app.reference(prep)
            job.check()
            return compare.diagnostics(res, ref)

        def done(diag):
            self.diagnostics = diag
            self._show_diagnostics(diag)

        self.diag.object = diagnostics_table({"name": res.name, "seconds": res.seconds, "backend": res.backend}) \
            .replace("<table", "<table style='opacity:0.5'")
        self.app.runner.submit(f"diag-{id(self)}", work, done,
                               lambda exc: self.app.messages.error(exc, f"panel {self.index + 1} diagnostics"))

    def _failed(self, exc, name):
        self.status.object = "error (previous map kept)"
        self.app.messages.error(exc, f"panel {self.index + 1} ({name})")

    def _show_map(self, res, prep, name, params, gkind, gk, lazy: bool, first=None) -> None:
        if not lazy and res.weights is None:  # a mechanism without attention weights: say so, draw nothing
            self.lazy = False
            self.map_box.visible = self.tiles_box.visible = False
            self.app.messages.info(f"panel {self.index + 1} ({name}): no attention map — "
                                   + ("; ".join(res.notes) or "the mechanism returned no weights"))
        elif not lazy:
            self.lazy = False
            self.tiles_box.visible = False
            self.map_box.visible = True
            self.map.show(res.weights, first)
        else:
            self.lazy = True
            self.map_box.visible = False
            self.tiles_box.visible = True
            q, k = prep.q_shown, prep.k
            self.tiles.set_source(
                lambda rows, cols, out: compare.weights_tile(name, params, q, k, rows=rows, cols=cols, out_shape=out,
                                                             graph_kind=gkind, graph_k=gk),
                prep.shape, name)
        self.map.select(self.app.session.selected)
        self.tiles.select(self.app.session.selected)

    def _show_diagnostics(self, diag: dict) -> None:
        self.diag.object = diagnostics_table(diag or {})
        ent = (diag or {}).get("entropy")
        if ent is not None and len(ent) > 1:
            ent = np.asarray(ent, dtype=np.float64)
            if self._entropy_pipe is None:  # one plot; later curves stream into it (cheap on the event loop)
                self._entropy_pipe = streams.Pipe(data=ent)
                curve = hv.DynamicMap(entropy_curve, streams=[self._entropy_pipe]).opts(
                    height=110, responsive=True, toolbar=None, line_width=1, title="entropy per query (nats)",
                    fontsize={"title": 9, "labels": 8, "ticks": 7}, yticks=3, ylabel="", framewise=True,
                    yformatter="%.3g")
                self.entropy.object = curve
            else:
                self._entropy_pipe.send(ent)
            self.entropy_box.visible = True
        else:
            self.entropy_box.visible = False

    def pause(self, paused: bool) -> None:
        """Its maps (dense and lazy) compute no tiles while paused (see :meth:`apps.maps.TileView.pause`)."""
        self.map.pause(paused)
        self.tiles.pause(paused)

    def _submit_tile(self, work: Callable, done: Callable) -> None:
        self.app.runner.submit(f"tile-{id(self)}", work, done,
                               lambda exc: self.app.messages.error(exc, f"panel {self.index + 1} tile"))

    # -- selection and export -------------------------------------------------------------------------
    def select(self, query: int | None) -> None:
        self.map.select(query)
        self.tiles.select(query)

    def weights_row(self, query: int) -> np.ndarray | None:
        """The selected query's weights over every key (dense result, else an exact tile row)."""
        if not self.lazy and self.result is not None and self.result.weights is not None:
            w = self.result.weights
            return np.asarray(w[query]) if 0 <= query < w.shape[0] else None
        prep = self.prepared
        if prep is None or not (0 <= query < prep.shape[0]):
            return None
        return compare.weights_tile(self.name, self.params(), prep.q_shown, prep.k, rows=(query, query + 1),
                                    cols=None, out_shape=(1, prep.shape[1]), reduce="sum",
                                    graph_kind=self.app.session.graph_kind, graph_k=self.app.session.graph_k)[0]

    def static_map(self) -> hv.Image | None:
        """The current map as a static element (for PNG/HTML export)."""
        from apps.maps import region_image

        if not self.lazy and self.result is not None and self.result.weights is not None:
            return region_image(self.result.weights, (0, self.result.weights.shape[0]),
                                (0, self.result.weights.shape[1]), label=self.name)
        data = self.tiles._pipe.data if self.tiles._pipe is not None else None
        return data if isinstance(data, hv.Image) else None
