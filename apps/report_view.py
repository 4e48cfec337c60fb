"""Report tab: the unified report of the loaded keys (``workbench.compare.report_for``) and its evidence.

Each metric with its status colour, the health score as a gauge, the recommendation (calibrated
parameters) with the rule that fired and the numbers it looked at, and a one-click "compare the
recommended mechanism with default scaled dot-product". Then the evidence: every candidate,
calibrated, run and scored on the data (``workbench.report.evaluate``: k-NN label accuracy with
labels, denoising neighbour recall without) as a leaderboard — bar chart and table, the
recommendation marked — computed in the background with a progress bar and cancel. The graph
``k`` (also used by graph mechanisms) is a visible control here. The report downloads as JSON,
the metrics as CSV.
"""
from __future__ import annotations

import html
import math

import holoviews as hv
import panel as pn

from workbench import compare

from apps import export
from apps.task_controls import TaskControls

STATUS_COLOURS = {"OK": "#2e7d32", "WARNING": "#f9a825", "CRITICAL": "#c62828"}


def metric_rows(report) -> list[dict]:
    """Plain rows of the report's metrics: name, value, its standard error (sampled reports), status, score."""
    errors = getattr(report, "errors", {}) or {}
    return [{"metric": m.name, "value": _num(m.value), "std_error": _num(errors.get(m.name)),
             "status": str(m.status), "score": _num(m.score)} for m in report.metrics]


def sample_note(report) -> str:
    """One sentence on the sampling of a sampled report ('' when every key was measured)."""
    s = (getattr(report, "settings", {}) or {}).get("sample")
    if not s:
        return ""
    return (f"Measured on {s['replicates']} random samples of {s['size']:,} of the {s['of']:,} keys "
            f"({'disjoint' if s.get('disjoint') else 'independent'}); each value is their mean, ± its standard "
            f"error over the samples.")


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def metrics_html(report) -> str:
    """The metrics as an HTML table, each status cell in its colour."""
    rows = []
    for r in metric_rows(report):
        colour = STATUS_COLOURS.get(r["status"].upper(), "#555")
        value = "—" if r["value"] is None else f"{r['value']:.4g}"
        if r["std_error"] is not None:
            value += f" ± {r['std_error']:.2g}"
        score = "—" if r["score"] is None else f"{r['score']:.2f}"
        rows.append(f"<tr><td>{html.escape(r['metric'])}</td><td class='num'>{value}</td>"
                    f"<td><span class='wb-status' style='background:{colour}'>{html.escape(r['status'])}</span></td>"
                    f"<td class='num'>{score}</td></tr>")
    note = sample_note(report)
    return ("<table class='wb-metrics'><tr><th>metric</th><th>value</th><th>status</th><th>score</th></tr>"
            + "".join(rows) + "</table>" + (f"<p><small>{html.escape(note)}</small></p>" if note else ""))


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def recommendation_markdown(report) -> str:
    rec = report.recommendation
    lines = [f"### Recommendation: {html.escape(rec.choice)} → `{html.escape(rec.mechanism)}`",
             f"**Rule that fired:** {html.escape(rec.rule)}"]
    if rec.params:
        # a code span: Markdown shows it verbatim (escaping it here would show the entities)
        args = ", ".join([repr(rec.mechanism)] + [f"{k}={_value(v)}" for k, v in rec.params.items()])
        lines.append(f"**Parameters (calibrated):** `workbench.make({args.replace('`', '')})`")
    if rec.calibration:
        lines.append(f"**Calibration:** {html.escape(rec.calibration)}")
    if rec.temperature_advice:
        lines.append(f"**Temperature:** {html.escape(rec.temperature_advice)}")
    if rec.explanation:
        lines.append(html.escape(rec.explanation))
    if rec.numbers:
        # a collapsed table; the entropy is the metrics table's attention_entropy, not repeated here
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td class='num'>{html.escape(_value(v))}</td></tr>"
                       for k, v in rec.numbers.items()
                       if not isinstance(v, dict) and k not in ("entropy_ratio", "entropy_ratio_for_advice"))
        lines.append("<details class='wb-numbers'><summary>the numbers the rules read</summary>"
                     f"<table class='wb-metrics'><tr><th>feature</th><th>value</th></tr>{rows}</table></details>")
    for note in rec.notes:
        lines.append(f"<small>note: {html.escape(str(note))}</small>")
    return "\n\n".join(lines)


MEASURES = {"knn_accuracy": "5-NN label accuracy of the outputs",
            "denoising_recall": "denoising neighbour recall (no labels)"}
#: What each measure is, in a sentence (below the table).
MEASURE_DOCS = {"knn_accuracy": "Score: leave-one-out 5-nearest-neighbour label accuracy of each candidate's "
                                "self-attention outputs.",
                "denoising_recall": "Score (the data have no labels): the keys get Gaussian noise as large as the "
                                    "distance to their nearest neighbour; each candidate attends over the noisy "
                                    "keys; the score is the share of each key's 10 clean nearest neighbours found "
                                    "among its output's 10 nearest."}


def leaderboard_plot(ev) -> hv.Overlay:
    """Bars of every candidate's score (best first), the recommendation in green, the raw keys as a line."""
    rows = [r for r in ev.table() if r["choice"] != "raw" and r["score"] is not None]
    raw = next((r["score"] for r in ev.rows if r["choice"] == "raw"), None)
    data = [(f"{r['choice']}\n{r['mechanism']}", r["score"], "recommended" if r["recommended"] else
             ("best" if r["best"] else "candidate")) for r in rows]
    colours = {"recommended": "#2e7d32", "best": "#1565c0", "candidate": "#9e9e9e"}
    bars = hv.Bars(data, kdims=["candidate"], vdims=["score", "role"]).opts(
        color="role", cmap=colours, responsive=True, height=260, ylim=(0, 1.02), tools=["hover"],
        title=f"evidence: {MEASURES.get(ev.measure, ev.measure)}", fontsize={"title": 10}, show_legend=False)
    if raw is None:
        return bars * hv.HLine(-1)
    return bars * hv.HLine(raw).opts(color="#ff7043", line_dash="dashed", line_width=2)


def leaderboard_html(ev) -> str:
    """The evaluation table, best first, with the recommendation and the raw keys marked."""
    head = ("<table class='wb-metrics wb-leaderboard'><tr><th>candidate</th><th>mechanism</th><th>score</th>"
            "<th>entropy after calibration</th><th>parameters (calibrated)</th><th>s</th><th></th></tr>")
    rows = []
    for r in ev.table():
        score = "—" if r["score"] is None else f"{r['score']:.3f}"
        ent = "" if r["entropy"] is None else f"{r['entropy']:.2f}"
        params = ", ".join(f"{k}={_value(v)}" for k, v in (r["params"] or {}).items())
        mark = ("★ recommended" if r["recommended"] else "") + (" · best" if r["best"] else "")
        if r["error"]:
            mark = f"error: {r['error']}"
        rows.append(f"<tr><td>{html.escape(r['choice'])}</td><td>{html.escape(r['mechanism'])}</td>"
                    f"<td class='num'>{score}</td><td class='num'>{ent}</td><td>{html.escape(params)}</td>"
                    f"<td class='num'>{(r['seconds'] or 0):.1f}</td><td>{html.escape(mark)}</td></tr>")
    regret = "" if ev.regret is None else f" Regret of the recommendation: {ev.regret:.3f}."
    return (head + "".join(rows) + "</table>"
            + f"<p style='font-size:12px;color:#555'>{html.escape(MEASURE_DOCS.get(ev.measure, ''))} "
              f"{ev.sample:,} of {ev.n_keys:,} keys (evenly strided), each candidate calibrated to entropy 0.5; "
              f"the raw keys score the dashed line.{regret}</p>")


_CSS = """
table.wb-metrics {border-collapse: collapse; font-size: 14px;}
table.wb-metrics th, table.wb-metrics td {padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left;}
table.wb-metrics td.num {text-align: right; font-family: monospace;}
span.wb-status {color: white; border-radius: 3px; padding: 1px 6px; font-size: 12px;}
"""


class ReportView:
    """The Report tab; ``app`` is the :class:`~apps.app.Dashboard`."""

    def __init__(self, app):
        self.app = app
        self.session = app.session
        self.report = None
        self.graph_k = pn.widgets.IntInput(label="graph k (kNN / HNSW neighbours)", start=1, end=1024,
                                           value=self.session.graph_k, width=220,
                                           description="Neighbours per node of the report's graph metrics and of "
                                                       "the graph given to graph mechanisms.")
        self.graph_k.link(self.session, value="graph_k", bidirectional=True)
        self.status = pn.pane.Str("", css_classes=["wb-report-status"])
        self.metrics = pn.pane.HTML("", stylesheets=[_CSS], css_classes=["wb-report-metrics"])
        # a Bokeh-drawn dial (no ECharts download): red below 50, amber to 70, green above
        self.gauge = pn.indicators.Dial(label="health", value=0, bounds=(0, 100), format="{value}%", height=260,
                                        width=280, colors=[(0.5, "#c62828"), (0.7, "#f9a825"), (1, "#2e7d32")],
                                        css_classes=["wb-gauge"])
        self.recommendation = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["wb-recommendation"])
        self.compare_button = pn.widgets.Button(label="Compare the recommended mechanism with scaled dot-product",
                                                color="success", disabled=True, css_classes=["wb-compare-rec"])
        self.compare_button.on_click(self._compare_recommended)
        self.evaluation = None
        self.eval_task = TaskControls(app, "evaluate", "Evaluate again", "wb-eval", what="evaluation")
        self.eval_status, self.eval_progress = self.eval_task.status, self.eval_task.progress
        self.eval_task.run.on_click(lambda *_: self.evaluate())
        self.leaderboard = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=260, linked_axes=False,
                                             css_classes=["wb-leaderboard-plot"])
        self.eval_table = pn.pane.HTML("", stylesheets=[_CSS], sizing_mode="stretch_width",
                                       css_classes=["wb-leaderboard"])
        self.json = export.json_button(lambda: self.report.to_json() if self.report is not None else "",
                                       "report.json", "report JSON", app.messages)
        self.csv = export.csv_button(lambda: metric_rows(self.report) if self.report is not None else [],
                                     "report-metrics.csv", "metrics CSV", app.messages)
        self.view = pn.Column(
            pn.Row(self.graph_k, self.json, self.csv), self.status,
            pn.Row(pn.Column("### Metrics", self.metrics), self.gauge),
            self.recommendation, self.compare_button,
            "### Evidence: the candidates, calibrated and scored on these data",
            pn.Row(self.eval_task.run, self.eval_task.cancel, self.eval_status), self.eval_progress,
            pn.Row(self.leaderboard, self.eval_table, sizing_mode="stretch_width"), sizing_mode="stretch_width",
        )
        self.active = False  # computed when the tab is shown (a large key set takes a while)
        self._stale = True
        self.session.on_prepared(lambda prep: self.compute())
        self.session.param.watch(lambda *_: self.compute(), "graph_k")

    def show_if_stale(self) -> None:
        if self._stale:
            self.compute()

    def compute(self) -> None:
        """Compute the report of the loaded keys (now if the tab is shown, else when it is opened)."""
        prep = self.session.prepared
        if prep is None:
            return
        if not self.active:
            self._stale = True
            self.status.object = "the report is computed when this tab is opened"
            return
        self._stale = False
        k = self.session.graph_k
        kds = prep.keys_dataset

        def work(job):
            report = compare.report_for(kds if kds is not None else prep.k, k=k)
            if isinstance(report, str):  # the report module refused: its message says why
                raise RuntimeError(report)
            return report

        def done(report):
            self.report = report
            self.metrics.object = metrics_html(report)
            self.gauge.value = round(100 * float(report.health_score), 1)
            self.recommendation.object = recommendation_markdown(report)
            rec = report.recommendation
            if rec.mechanism == "scaled_dot_product":
                self.compare_button.label = "Compare calibrated scaled dot-product with its defaults"
            else:
                self.compare_button.label = f"Compare {rec.mechanism} (calibrated) with default scaled dot-product"
            self.compare_button.disabled = False
            self.status.object = f"report of {prep.describe()} (k = {k})"
            self.evaluate()

        def failed(exc):
            self.status.object = "report unavailable (see the message above)"
            self.app.messages.error(str(exc) if isinstance(exc, RuntimeError) else exc, "report")

        self.status.object = "computing the report…"
        self.app.runner.submit("report", work, done, failed)

    def evaluate(self) -> None:
        """Score every candidate on the loaded keys (the leaderboard), with progress and cancel."""
        prep, report = self.session.prepared, self.report
        if prep is None or report is None:
            return
        kds = prep.keys_dataset
        keys = kds.x if kds is not None else prep.k
        labels = kds.labels if kds is not None else prep.key_labels

        def work(job):
            from workbench.distributed import configured_client
            from workbench.report import evaluate

            client = configured_client()  # a configured Dask cluster scores the candidates side by side
            where = "" if client is None else f" on the cluster {client.scheduler.address}"
            return evaluate(keys, labels, report=report, cancel=job.event, client=client,
                            progress=lambda i, n: job.progress(i / n, f"{i}/{n} candidates{where}"))

        def done(ev):
            self.evaluation = ev
            self.leaderboard.object = leaderboard_plot(ev)
            self.eval_table.object = leaderboard_html(ev)
            best = next((r for r in ev.table() if r["best"]), None)
            return ("cancelled: partial results" if ev.cancelled else
                    f"best by evaluation: {best['choice']} ({best['mechanism']})" if best else
                    "no candidate could be scored")

        self.eval_task.start(work, done, "evaluating the candidates…")

    def _compare_recommended(self, *_):
        if self.report is None:
            return
        rec = self.report.recommendation
        self.app.compare_pair(rec.mechanism, dict(rec.params or {}))
