"""Visible messages: every problem becomes a ``pn.pane.Alert`` that names it, never a traceback.

``Messages.error(exc_or_text, where=...)`` shows a red alert at the top of the page (newest first,
the last few kept), ``info`` a blue one. Library errors (``workbench.errors``) carry their own
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

    keep = param.Integer(default=4, bounds=(1, None), doc="How many messages stay visible.")
    last_error = param.String(default="", doc="Text of the newest error (empty when none).")

    def __init__(self, **params):
        super().__init__(**params)
        self.panel = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["wb-messages"])
        self.history: list[tuple[str, str, str | None]] = []

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
        self.panel.objects = []

    def _show(self, text: str, kind: str, topic: str | None = None) -> None:
        if topic is not None:
            self.history = [h for h in self.history if h[2] != topic]
        self.history.insert(0, (kind, text, topic))
        del self.history[self.keep:]
        alerts = []
        for k, t, _ in self.history:
            alert = pn.pane.Alert(html.escape(t), alert_type=k, sizing_mode="stretch_width",
                                  margin=(2, 5), css_classes=[f"wb-alert-{k}"])
            alerts.append(alert)
        self.panel.objects = alerts
