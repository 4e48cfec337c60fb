"""Long work off the UI thread: a shared thread pool, per-slot supersession, progress and cancel.

``Runner.submit(slot, work, done)`` runs ``work(job)`` on a worker thread and then ``done(result)``
on the session's event loop (with the Bokeh document lock, so plots and streams may be updated).
A newer submission to the same slot supersedes the older one: the older job is asked to stop
(``job.cancelled`` turns True) and its result is dropped. Errors become ``failed(exc)`` calls on
the event loop, never tracebacks in the page.

Results reach the views only once the session's page has connected (Panel's ``onload``): a
HoloViews plot refreshed on a document with no open websocket reschedules its refresh at every
tick until Bokeh discards the session. A page requested but never opened (a plain GET, a link
preview, a tab closed at once) kept a core fully busy that way (measured in the browser tests: 70 s
per such session, ~3,000 refreshes a second, while the real page's tiles waited for the CPU).

In unit tests (no server document) ``Runner(sync=True)`` runs everything inline and in order.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import panel as pn
from panel.io.state import set_curdoc

log = logging.getLogger("workbench.apps")

#: One pool for every session: the machine has few cores and NumPy/Numba use them all already.
_POOL = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)), thread_name_prefix="workbench-app")


_SPIN_CSS = """
.wb-spin {display: inline-block; width: 10px; height: 10px; margin-right: 6px; vertical-align: -1px;
          border: 2px solid #bbb; border-top-color: #1f77b4; border-radius: 50%; animation: wb-spin 0.8s linear infinite;}
@keyframes wb-spin {to {transform: rotate(360deg);}}
"""


class Cancelled(Exception):
    """Raised by :meth:`Job.check` when the job was cancelled or superseded."""


class Job:
    """Handle passed to the work function: ``cancelled`` flag, ``check()`` and ``progress()``."""

    def __init__(self, slot: str, on_progress: Callable[[float, str], None] | None = None):
        self.slot = slot
        self._event = threading.Event()
        self._on_progress = on_progress
        self.started = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def event(self) -> threading.Event:
        """Set when the job is cancelled (for library calls that take a ``cancel`` event)."""
        return self._event

    def cancel(self) -> None:
        self._event.set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job should stop (call between units of work)."""
        if self._event.is_set():
            raise Cancelled(self.slot)

    def progress(self, fraction: float, text: str = "") -> None:
        """Report progress in [0, 1] (safe from the worker thread: Panel schedules the update)."""
        if self._on_progress is not None and not self.cancelled:
            self._on_progress(min(max(float(fraction), 0.0), 1.0), text)


class Runner:
    """Submits work for one browser session; see the module docstring."""

    def __init__(self, sync: bool = False):
        self.sync = sync
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # A spinning ring drawn by CSS inside the text: changing a pane's text leaves the page
        # layout alone, whereas toggling a LoadingSpinner's classes made Bokeh lay out and repaint
        # every plot of the page (measured 0.4 s in headless chromium on 2 cores) at each job.
        self.activity = pn.pane.HTML("idle", css_classes=["wb-activity"], margin=(8, 5), stylesheets=[_SPIN_CSS],
                                     styles={"color": "#777", "font-size": "12px"}, width=260, height=24)

    def running(self, slot: str) -> bool:
        with self._lock:
            return slot in self._jobs

    def cancel(self, slot: str) -> bool:
        """Ask the job in ``slot`` to stop; True if there was one."""
        with self._lock:
            job = self._jobs.get(slot)
        if job is not None:
            job.cancel()
        return job is not None

    def cancel_all(self) -> None:
        """Ask every running job to stop (the session is going away)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()

    def submit(self, slot: str, work: Callable[[Job], Any], done: Callable[[Any], None],
               failed: Callable[[BaseException], None], *,
               on_progress: Callable[[float, str], None] | None = None,
               cancelled: Callable[[], None] | None = None) -> Job:
        """Run ``work(job)`` off the UI thread, then ``done(result)`` or ``failed(exc)`` on the loop."""
        job = Job(slot, on_progress)
        with self._lock:
            old = self._jobs.get(slot)
            if old is not None:
                old.cancel()
            self._jobs[slot] = job
        self._refresh_busy()

        def finish(outcome: tuple[bool, Any]) -> None:
            with self._lock:
                current = self._jobs.get(slot) is job
                if current:
                    del self._jobs[slot]
            self._refresh_busy()
            if self.sync or pn.state.loaded:
                deliver(outcome, current)
            else:  # the page has not connected yet: views change once it has (see the module docstring)
                pn.state.onload(lambda: deliver(outcome, current))

        def deliver(outcome: tuple[bool, Any], current: bool) -> None:
            ok, value = outcome
            if not current or isinstance(value, Cancelled) or (job.cancelled and ok):
                if current and cancelled is not None:
                    cancelled()
                return
            try:
                (done if ok else failed)(value)
            except Exception as exc:  # a bug in a view must not kill the session
                log.exception("workbench dashboard: callback of %s failed", slot)
                if ok:
                    failed(exc)

        if self.sync:
            finish(self._call(work, job))
            return job

        doc = pn.state.curdoc

        def run() -> None:
            outcome = self._call(work, job)
            if doc is not None and doc.session_context is not None:
                def on_loop() -> None:
                    with set_curdoc(doc):
                        finish(outcome)
                try:
                    doc.add_next_tick_callback(on_loop)  # the one Document method safe from threads
                except Exception:  # the session was closed meanwhile
                    pass
            else:
                finish(outcome)

        _POOL.submit(run)
        return job

    @staticmethod
    def _call(work: Callable[[Job], Any], job: Job) -> tuple[bool, Any]:
        try:
            return True, work(job)
        except BaseException as exc:  # reported through failed(), never raised into the server
            if not isinstance(exc, (Cancelled, Exception)):
                raise
            if not isinstance(exc, Cancelled) and not _expected(exc):
                log.exception("workbench dashboard: %s failed", job.slot)
            return False, exc

    def _refresh_busy(self) -> None:
        with self._lock:
            slots = sorted({s.split("-")[0] for s in self._jobs})
        text = f"<span class='wb-spin'></span>working: {', '.join(slots)}" if slots else "idle"
        if self.activity.object != text:
            self.activity.object = text


def _expected(exc: BaseException) -> bool:
    """Errors the library raises on purpose (bad data, bad parameters) are not logged as bugs."""
    from workbench.errors import WorkbenchError

    return isinstance(exc, WorkbenchError)
