"""Bench tab: time and memory against sequence length for the selected mechanisms.

Runs ``workbench.benchmarking.bench_lengths`` (self-attention on random ``(L, d)`` inputs with the
loaded data's ``d``, the Compare panels' parameters) in the background with a progress bar and a
cancel button; plots seconds and peak MiB against length on log axes; the rows download as CSV.
"""
from __future__ import annotations

import math
import threading

import holoviews as hv
import panel as pn

from workbench import benchmarking
from workbench.distributed import bench_grid, configured_client

from apps import export
from apps.task_controls import TaskControls


def default_lengths(n_keys: int, start: int = 128, most: int = 16384) -> list[int]:
    """Powers of two from ``start`` up to the loaded number of keys (at least two lengths)."""
    top = max(start * 2, min(most, 1 << max(0, math.ceil(math.log2(max(n_keys, 2))))))
    out, L = [], start
    while L <= top:
        out.append(L)
        L *= 2
    return out


def bench_plots(rows: list[dict]) -> hv.Layout | None:
    """Seconds and peak MiB against length, one curve per mechanism, log-log."""
    ok = [r for r in rows if r.get("seconds") is not None]
    if not ok:
        return None
    names = list(dict.fromkeys(r["mechanism"] for r in ok))
    t_curves, m_curves = [], []
    for name in names:
        rs = sorted((r for r in ok if r["mechanism"] == name), key=lambda r: r["length"])
        t_curves.append(hv.Curve([(r["length"], r["seconds"]) for r in rs], "length", "seconds", label=name)
                        * hv.Scatter([(r["length"], r["seconds"]) for r in rs], "length", "seconds", label=name))
        mem = [(r["length"], max(r["peak_mib"], 1e-3)) for r in rs if r.get("peak_mib") is not None]
        if mem:
            m_curves.append(hv.Curve(mem, "length", "peak MiB", label=name) * hv.Scatter(mem, "length", "peak MiB",
                                                                                          label=name))
    # ticks at the measured lengths only: Bokeh's log ticker labels every minor step ("3000 35004000")
    lengths = sorted({int(r["length"]) for r in ok})
    if len(lengths) > 8:
        lengths = lengths[:: -(-len(lengths) // 8)]
    opts = dict(logx=True, logy=True, responsive=True, height=360, legend_position="top_left", show_grid=True,
                tools=["hover"], xticks=[(L, f"{L:,}") for L in lengths])
    t = hv.Overlay(t_curves).opts(hv.opts.Overlay(title="time per call", **opts))
    parts = [t]
    if m_curves:
        parts.append(hv.Overlay(m_curves).opts(hv.opts.Overlay(title="peak memory (NumPy, tracemalloc)", **opts)))
    return hv.Layout(parts).cols(2).opts(shared_axes=False)


class BenchView:
    """The Bench tab; ``app`` is the :class:`~apps.app.Dashboard`."""

    def __init__(self, app):
        self.app = app
        self.session = app.session
        self.rows: list[dict] = []
        self.mechanisms = pn.widgets.MultiChoice(label="mechanisms (the Compare panels' parameters)", options=[],
                                                 value=[], sizing_mode="stretch_width",
                                                 css_classes=["wb-bench-mechanisms"])
        self.lengths = pn.widgets.LiteralInput(label="lengths L", type=list, value=[128, 256, 512, 1024], width=320,
                                               css_classes=["wb-bench-lengths"])
        self.repeats = pn.widgets.IntInput(label="repeats", value=3, start=1, end=50, width=90)
        self.task = TaskControls(app, "bench", "Run benchmark", "wb-bench", what="bench")
        self.run, self.cancel, self.progress, self.status = (self.task.run, self.task.cancel, self.task.progress,
                                                             self.task.status)
        self.plots = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=380, linked_axes=False)
        self.table = pn.pane.DataFrame(None, sizing_mode="stretch_width", index=False, float_format="{:.4g}".format,
                                       css_classes=["wb-bench-table"], max_height=320)
        self.run.on_click(lambda *_: self.start())
        self.view = pn.Column(
            pn.Row(self.mechanisms), pn.Row(self.lengths, self.repeats, self.run, self.cancel),
            self.progress, self.status, self.plots,
            pn.Row(export.plot_buttons(lambda: bench_plots(self.rows), "benchmark", app.messages),
                   export.csv_button(lambda: self.table_rows(), "benchmark.csv", "CSV", app.messages)),
            self.table, sizing_mode="stretch_width",
        )
        self.session.on_prepared(self._prepared)

    def refresh_mechanisms(self) -> None:
        names = list(dict.fromkeys(p.name for p in self.app.compare.panels))
        self.mechanisms.options = names
        self.mechanisms.value = [n for n in self.mechanisms.value if n in names] or names

    def _prepared(self, prep) -> None:
        self.lengths.value = default_lengths(prep.k.shape[0])

    def table_rows(self) -> list[dict]:
        """The rows as shown and exported: no per-call times; an ``error`` column only when some row has
        one (with "" for the others, never "None"); parameters as text."""
        errors = any(r.get("error") for r in self.rows)
        out = []
        for r in self.rows:
            row = {k: v for k, v in r.items() if k != "times" and (errors or k != "error")}
            if errors:
                row["error"] = r.get("error") or ""
            if "params" in row:
                row["params"] = ", ".join(f"{k}={v}" for k, v in row["params"].items())
            out.append(row)
        return out

    def start(self) -> None:
        prep = self.session.prepared
        names = list(self.mechanisms.value)
        if prep is None or not names:
            self.app.messages.error("bench: choose at least one mechanism (and load data)")
            return
        params = {p.name: p.params() for p in reversed(self.app.compare.panels)}
        lengths, repeats, d = list(self.lengths.value or []), int(self.repeats.value), int(prep.k.shape[1])
        gk = self.session.graph_k
        total = len(names) * max(len(lengths), 1)

        def work(job):
            event = threading.Event()
            client = configured_client()  # a configured Dask cluster runs the cells side by side
            if client is not None:
                def grid_progress(done, n):
                    job.progress(done / n, f"{done}/{n} cells on the cluster {client.scheduler.address}")
                    if job.cancelled:
                        event.set()

                rows = bench_grid([(n, params.get(n, {})) for n in names], lengths, d=d, repeats=repeats,
                                  graph_k=gk, client=client, progress=grid_progress, cancel=event)
                job.check()
                return rows
            rows: list[dict] = []
            for i, name in enumerate(names):
                job.check()

                def progress(done, n, i=i, name=name):
                    job.progress((i * len(lengths) + done) / total, f"{name}: {done}/{n}")
                    if job.cancelled:
                        event.set()

                rows += benchmarking.bench_lengths(name, params.get(name, {}), lengths, d=d, progress=progress,
                                              cancel=event, repeats=repeats, graph_k=gk)
                if job.cancelled:
                    event.set()
                job.check()
            return rows

        def done(rows):
            self.rows = rows
            self.table.object = _frame(self.table_rows())
            self.plots.object = bench_plots(rows)
            errors = [r for r in rows if r.get("error")]
            return f"done: {len(rows)} measurements" + (f", {len(errors)} with errors" if errors else "")

        self.task.start(work, done, f"running {len(names)} mechanism(s) × {len(lengths)} lengths, d = {d}…")

    def stop(self) -> None:
        self.task.stop()


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)
