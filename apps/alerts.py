"""Visible messages: every problem becomes a ``pn.pane.Alert`` that names it, never a traceback.

One status area: the newest message, dismissible (×), and the earlier ones behind a "history"
toggle, newest first (the last few kept). ``Messages.error(exc_or_text, where=...)`` shows a red
alert, ``warning`` a yellow one, ``info`` a blue one, ``success`` a green one. Library errors (``workbench.errors``) carry their own
message naming the argument; anything else is shown as "<where>: unexpected <Type>: <message>"
and logged with its traceback on the server.
"""
from __future__ import annotations

import html
import logging

import panel as pn
import param

log = logging.getLogger("workbench.apps")


def describe(exc: BaseException | str, where: str = "") -> str:
    """One line naming the problem: the library's message, or the type and message of a bug."""
    from workbench.errors import WorkbenchError

    if isinstance(exc, str):
        text = exc
    elif isinstance(exc, WorkbenchError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory: the input is too large for this machine; reduce the number of queries or keys"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or "unknown error"
    return f"{where}: {text}" if where else text


class Messages(param.Parameterized):
    """The session's message area (a column of alerts, newest first)."""

    keep = param.Integer(default=8, bounds=(1, None), doc="How many messages the area keeps (the newest shown).")
    last_error = param.String(default="", doc="Text of the newest error (empty when none).")

    def __init__(self, **params):
        super().__init__(**params)
        self.dismiss = pn.widgets.Button(label="×", width=34, height=34, margin=(4, 2), color="light",
                                         css_classes=["wb-dismiss"], description="hide this message")
        self.dismiss.on_click(lambda *_: self._dismiss())
        self.show_history = pn.widgets.Toggle(label="history", width=110, margin=(4, 5), visible=False,
                                              css_classes=["wb-history-toggle"])
        self.show_history.param.watch(lambda e: setattr(self.older, "visible", e.new), "value")
        self.latest = pn.Column(sizing_mode="stretch_width", margin=0)
        self.older = pn.Column(sizing_mode="stretch_width", margin=(0, 0, 0, 20), visible=False,
                               css_classes=["wb-history"])
        self.bar = pn.Row(self.latest, self.dismiss, self.show_history, sizing_mode="stretch_width", margin=0,
                          visible=False)
        self.panel = pn.Column(self.bar, self.older, sizing_mode="stretch_width", margin=0,
                               css_classes=["wb-messages"])
        self.history: list[tuple[str, str, str | None]] = []
        self.dismissed = False

    def shown(self) -> list[tuple[str, str]]:
        """``(kind, text)`` of the messages the area holds, newest first (the newest on show unless
        dismissed, the others behind the history toggle)."""
        return [(k, t) for k, t, _ in self.history]

    def error(self, exc: BaseException | str, where: str = "") -> str:
        text = describe(exc, where)
        self.last_error = text
        self._show(text, "danger")
        return text

    def info(self, text: str, topic: str | None = None) -> None:
        self._show(text, "info", topic)

    def warning(self, text: str, topic: str | None = None) -> None:
        """Something was done differently from what was asked (e.g. a link's selection clamped)."""
        self._show(text, "warning", topic)

    def success(self, text: str, topic: str | None = None) -> None:
        """A success message; one with a ``topic`` (e.g. ``"data"``, the banner of the loaded data)
        replaces the previous message of that topic instead of stacking above it."""
        self._show(text, "success", topic)

    def clear(self) -> None:
        self.history.clear()
        self.last_error = ""
        self._render()

    def _dismiss(self) -> None:
        self.dismissed = True
        self._render()

    def _show(self, text: str, kind: str, topic: str | None = None) -> None:
        if topic is not None:
            self.history = [h for h in self.history if h[2] != topic]
        self.history.insert(0, (kind, text, topic))
        del self.history[self.keep:]
        self.dismissed = False
        self._render()

    @staticmethod
    def _alert(kind: str, text: str) -> pn.pane.Alert:
        return pn.pane.Alert(html.escape(text), alert_type=kind, sizing_mode="stretch_width", margin=(2, 5),
                             css_classes=[f"wb-alert-{kind}"])

    def _render(self) -> None:
        alerts = [self._alert(k, t) for k, t, _ in self.history]
        self.latest.objects = alerts[:1] if not self.dismissed else []
        self.older.objects = alerts[1:] if not self.dismissed else alerts
        n = len(self.older.objects)
        self.show_history.label = f"history ({n})"
        self.show_history.visible = n > 0
        self.dismiss.visible = bool(self.latest.objects)
        self.bar.visible = bool(alerts)
