"""Report tab: the unified report of the loaded keys (``workbench.compare.report_for``).

Each metric with its status colour, the health score as a gauge, the recommendation with the
rule that fired and the numbers it looked at, and a one-click "compare the recommended
mechanism with scaled dot-product". The graph ``k`` (also used by graph mechanisms) is a visible
control here. The report downloads as JSON, the metrics as CSV.
"""
from __future__ import annotations

import html
import math

import panel as pn

from workbench import compare

from apps import export

STATUS_COLOURS = {"OK": "#2e7d32", "WARNING": "#f9a825", "CRITICAL": "#c62828"}


def metric_rows(report) -> list[dict]:
    """Plain rows of the report's metrics: name, value, status, score."""
    return [{"metric": m.name, "value": _num(m.value), "status": str(m.status), "score": _num(m.score)}
            for m in report.metrics]


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
        score = "—" if r["score"] is None else f"{r['score']:.2f}"
        rows.append(f"<tr><td>{html.escape(r['metric'])}</td><td class='num'>{value}</td>"
                    f"<td><span class='wb-status' style='background:{colour}'>{html.escape(r['status'])}</span></td>"
                    f"<td class='num'>{score}</td></tr>")
    return ("<table class='wb-metrics'><tr><th>metric</th><th>value</th><th>status</th><th>score</th></tr>"
            + "".join(rows) + "</table>")


def recommendation_markdown(report) -> str:
    rec = report.recommendation
    lines = [f"### Recommendation: {html.escape(rec.choice)} → `{html.escape(rec.mechanism)}`",
             f"**Rule that fired:** {html.escape(rec.rule)}"]
    if rec.params:
        lines.append("**Suggested parameters:** " + html.escape(", ".join(f"{k}={v}" for k, v in rec.params.items())))
    if rec.temperature_advice:
        lines.append(f"**Temperature:** {html.escape(rec.temperature_advice)}")
    if rec.explanation:
        lines.append(html.escape(rec.explanation))
    if rec.numbers:
        nums = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in rec.numbers.items())
        lines.append(f"<small>numbers: {html.escape(nums)}</small>")
    for note in rec.notes:
        lines.append(f"<small>note: {html.escape(str(note))}</small>")
    return "\n\n".join(lines)


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
        self.json = export.json_button(lambda: self.report.to_json() if self.report is not None else "",
                                       "report.json", "report JSON", app.messages)
        self.csv = export.csv_button(lambda: metric_rows(self.report) if self.report is not None else [],
                                     "report-metrics.csv", "metrics CSV", app.messages)
        self.view = pn.Column(
            pn.Row(self.graph_k, self.json, self.csv), self.status,
            pn.Row(pn.Column("### Metrics", self.metrics), self.gauge),
            self.recommendation, self.compare_button, sizing_mode="stretch_width",
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
            self.compare_button.label = f"Compare {rec.mechanism} with scaled dot-product"
            self.compare_button.disabled = False
            self.status.object = f"report of {prep.describe()} (k = {k})"

        def failed(exc):
            self.status.object = "report unavailable (see the message above)"
            self.app.messages.error(str(exc) if isinstance(exc, RuntimeError) else exc, "report")

        self.status.object = "computing the report…"
        self.app.runner.submit("report", work, done, failed)

    def _compare_recommended(self, *_):
        if self.report is None:
            return
        rec = self.report.recommendation
        self.app.compare_pair(rec.mechanism, dict(rec.params or {}))
