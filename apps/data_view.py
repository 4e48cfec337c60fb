"""Data tab: demo sets, drag-and-drop upload or a path on the server, data options, the projection.

Formats and checks are :mod:`workbench.data`'s (``.npy .npz .csv .tsv .parquet .txt/.vec
.safetensors``; pickles never loaded). Uploads are capped at ``WORKBENCH_MAX_UPLOAD_MB`` (default
200 MiB; ``make serve MAX_UPLOAD_MB=…``): the drop zone refuses bigger files in the browser and the
loader refuses them again on the server. A bad file shows a message naming the problem and the
previous data stay loaded.
"""
from __future__ import annotations

import html
import itertools

import panel as pn

from workbench import data as wdata

from apps.mechanism_panel import widget_types
from apps.session import Session
from apps.uploads import DropZone

#: File types the loader reads. The drop zones accept any file (browsers give ``.npy`` and most of
#: these no MIME type, which the drop zone's own type filter would reject); the loader names a
#: wrong extension in its message.
ACCEPTED = sorted(wdata.FORMATS)
OPTION_NAMES = ["keys", "queries", "n_queries", "label", "normalisation", "pca_dim", "projection", "graph_kind",
                "graph_k", "seed"]


def _mb(n: int) -> str:
    return f"{n / (1 << 30):.1f}GB" if n >= 1 << 30 else f"{n / (1 << 20):g}MB"


def _named(widgets: dict, names: list[str]) -> dict:
    """Each option's widget also carries the class ``wb-opt-<name>`` (for pages and tests to find it)."""
    out = {}
    for n in names:
        spec = widgets.get(n)
        spec = dict(spec) if isinstance(spec, dict) else ({"type": spec} if spec is not None else {})
        spec["css_classes"] = [f"wb-opt-{n.replace('_', '-')}"]
        out[n] = spec
    return out


class DataView:
    """The Data tab of one session."""

    def __init__(self, app):
        self.app = app
        s: Session = app.session
        self.session = s
        self._uploads = itertools.count()
        demo_opts = pn.Param(s, parameters=["demo", "demo_size"], show_name=False, default_layout=pn.Column,
                             widgets={"demo": {"type": pn.widgets.Select, "css_classes": ["wb-demo-select"]},
                                      "demo_size": {"type": pn.widgets.IntInput, "placeholder": "default size",
                                                    "css_classes": ["wb-demo-size"]}})
        self.load_demo = pn.widgets.Button(label="Load demo", color="primary", width=110, margin=(5, 10),
                                           css_classes=["wb-load-demo"])
        self.load_demo.on_click(lambda *_: s.load_demo())
        # the server checks the size (a refusal is an alert like a too-large path), not the browser
        self.drop = DropZone(s.max_bytes, lambda name, content: self._dropped(name, content, as_keys=False),
                             lambda name, exc: s.refuse_upload(name, exc), multiple=True, layout="compact",
                             label="embeddings file", sizing_mode="stretch_width", css_classes=["wb-upload"])
        self.keys_drop = DropZone(s.max_bytes, lambda name, content: self._dropped(name, content, as_keys=True),
                                  lambda name, exc: s.refuse_upload(name, exc), multiple=False, layout="compact",
                                  label="keys/values file", sizing_mode="stretch_width",
                                  css_classes=["wb-upload-keys"])
        self.path = pn.widgets.TextInput(label="or a file on the server", placeholder="/path/to/embeddings.npy",
                                         sizing_mode="stretch_width", css_classes=["wb-path"])
        self.path_as_keys = pn.widgets.Checkbox(label="as keys/values", value=False, margin=(12, 5, 5, 10))
        self.load_path = pn.widgets.Button(label="Load file", width=100, margin=(5, 5, 5, 10),
                                           css_classes=["wb-load-path"])
        self.load_path.on_click(lambda *_: s.load_path(self.typed_path(), as_keys=self.path_as_keys.value))
        self.label_select = pn.widgets.Select(label="label (queries = label)", options=[""], value="", width=200,
                                              description="The label whose rows are the queries.")
        self.label_select.param.watch(lambda e: s.choose_label(e.new or ""), "value")
        names = [n for n in OPTION_NAMES if n != "label"]
        self.options = pn.Param(s, parameters=names, show_name=False, default_layout=pn.Column,
                                sizing_mode="stretch_width", css_classes=["wb-data-options"],
                                widgets=_named(widget_types(s, names), names))
        self.summary = pn.pane.Markdown("loading…", sizing_mode="stretch_width", css_classes=["wb-data-summary"])
        self.formats = pn.pane.Markdown(
            f"Formats: {', '.join(ACCEPTED)} (numeric columns; an optional label or text column). "
            f"Uploads up to **{_mb(s.max_bytes)}** (server setting `WORKBENCH_MAX_UPLOAD_MB`, "
            f"`make serve MAX_UPLOAD_MB=…`); files on the server up to **{_mb(s.max_path_bytes)}** "
            "(`WORKBENCH_MAX_PATH_MB`, default a quarter of its memory). Server paths are confined to "
            "`WORKBENCH_DATA_DIR` when it is set. "
            "Pickles are never loaded.",
            sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#555"})
        # the controls go in the page's sidebar (apps.app.Dashboard.page); the tab shows the data
        self.controls = pn.Column(
            "### Data", demo_opts, self.load_demo, "**Upload** (drag and drop, or click)", self.drop.view,
            "**Separate keys/values** (optional)", self.keys_drop.view,
            self.path, pn.Row(self.load_path, self.path_as_keys, sizing_mode="stretch_width"), self.formats,
            "### Options", self.options, self.label_select, sizing_mode="stretch_width", css_classes=["wb-data-controls"],
        )
        self.main = pn.Column(self.summary, app.compare.projection.data_pane, sizing_mode="stretch_width")
        self.view = pn.Row(pn.Column(self.controls, width=420), self.main, sizing_mode="stretch_width")
        s.on_prepared(self._prepared)


    def typed_path(self) -> str:
        """The path as the field shows it: ``value_input`` follows every keystroke, while ``value`` is only
        committed on Enter or blur — a click on "Load file" right after typing must read what was typed."""
        typed = self.path.value_input
        return typed if typed else self.path.value

    def _dropped(self, filename: str, content, as_keys: bool) -> None:
        """Load a file that arrived in a drop zone (each in its own slot: several load side by side)."""
        self.session.load_bytes(content, filename, as_keys=as_keys, slot=f"upload-{next(self._uploads)}")

    def _prepared(self, prep) -> None:
        s = self.session
        ds = s.dataset
        lines = [f"**{html.escape(prep.describe())}**"]
        if ds is not None:
            lines.append(f"source: `{html.escape(ds.source or ds.name)}`")
            if ds.labels is not None:
                labels = list(dict.fromkeys(ds.labels.astype(str).tolist()))
                shown = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
                lines.append(f"{len(labels)} labels: {html.escape(shown)}")
                self.label_select.options = ["", *labels[:500]]
            else:
                self.label_select.options = [""]
            if ds.texts is not None:
                lines.append("texts: " + html.escape(", ".join(ds.texts[:8])) + ("…" if len(ds.texts) > 8 else ""))
        if prep.notes:
            lines.append("notes: " + html.escape("; ".join(prep.notes)))
        self.summary.object = "  \n".join(lines)
