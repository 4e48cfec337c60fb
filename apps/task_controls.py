"""A background task with a run button, a cancel button, a progress bar and a status line.

The Bench tab's sweep and the Report tab's evaluation share it: :meth:`TaskControls.start`
submits ``work(job)`` to the session's :class:`~apps.background.Runner` in its own slot, shows the
progress the job reports, enables cancel while it runs, and ends with ``done(result)`` (which
returns the status text), a failure message naming the problem, or "cancelled".
"""
from __future__ import annotations

from typing import Any, Callable

import panel as pn


class TaskControls:
    """Controls of one slot; ``css`` prefixes the CSS classes (``{css}-run``, ``-cancel``, ``-progress``, ``-status``)."""

    def __init__(self, app, slot: str, run_label: str, css: str, *, what: str):
        self.app, self.slot, self.what = app, slot, what
        self.run = pn.widgets.Button(label=run_label, color="primary", width=140, margin=(23, 5, 5, 5),
                                     css_classes=[f"{css}-run"])
        self.cancel = pn.widgets.Button(label="Cancel", color="danger", width=90, disabled=True,
                                        margin=(23, 5, 5, 5), css_classes=[f"{css}-cancel"])
        self.progress = pn.indicators.Progress(label="progress", value=0, max=100, sizing_mode="stretch_width",
                                               visible=False, css_classes=[f"{css}-progress"])
        self.status = pn.pane.Str("", css_classes=[f"{css}-status"])
        self.cancel.on_click(lambda *_: self.stop())

    def start(self, work: Callable[[Any], Any], done: Callable[[Any], str], starting: str) -> None:
        """Run ``work(job)`` in the background; ``done(result)`` returns the final status text."""
        self.progress.value, self.progress.visible = 0, True
        self.run.disabled, self.cancel.disabled = True, False
        self.status.object = starting

        def finished(result):
            self._finish()
            self.status.object = done(result)

        def on_progress(fraction, text):
            self.progress.value = int(round(100 * fraction))
            self.status.object = f"running… {text}"

        def failed(exc):
            self._finish()
            self.status.object = "failed (see the message above)"
            self.app.messages.error(exc, self.what)

        def cancelled():
            self._finish()
            self.status.object = "cancelled"

        self.app.runner.submit(self.slot, work, finished, failed, on_progress=on_progress, cancelled=cancelled)

    def stop(self) -> None:
        if self.app.runner.cancel(self.slot):
            self.status.object = "cancelling… (stops after the current step)"

    def _finish(self) -> None:
        self.run.disabled, self.cancel.disabled = False, True
        self.progress.visible = False
