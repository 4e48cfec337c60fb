"""A drop zone that refuses a too-large file as the server refuses one, and lets go of each handled file.

Panel's ``FileDropper`` refuses files over ``max_file_size`` in the browser only: FilePond shows its
own note in the drop zone and the server never hears of it, so the status area stays silent. And
FilePond marks every file "Upload complete" once its bytes are sent, whatever the server then makes
of them, and keeps the list growing. :class:`BoundedDropper` leaves the size to the server: from the
first chunk it knows a lower bound of the file's size (``(total_chunks − 1) × chunk_size``) and refuses
beyond the limit at once with the loaders' own message, without keeping the chunks that follow;
:class:`DropZone` then removes each file from the zone in the browser once it is handled (loaded or
refused: the status area says which), leaving files still arriving alone.
"""
from __future__ import annotations

from typing import Callable

import panel as pn

from workbench import data as wdata
from workbench.errors import DataError


class BoundedDropper(pn.widgets.FileDropper):
    """``FileDropper`` that hands each complete file to ``on_file(name, content)`` and refuses uploads over
    ``limit_bytes`` from their first chunk (``on_refused(name, error)``, the rest of the file not kept)."""

    def __init__(self, limit_bytes: int, on_file: Callable[[str, object], None],
                 on_refused: Callable[[str, Exception], None], **params):
        super().__init__(**params)
        self.limit_bytes = int(limit_bytes)
        self.on_file, self.on_refused = on_file, on_refused
        self._refused: set[str] = set()

    def _process_event(self, event) -> None:
        if event.event_name != "upload_event":
            super()._process_event(event)
            return
        data = event.data
        name, last = data["name"], data["chunk"] == data["total_chunks"]
        if data["chunk"] == 1:
            self._refused.discard(name)
            at_least = (int(data["total_chunks"]) - 1) * self.chunk_size
            try:
                wdata.check_size(name, at_least, self.limit_bytes, upload=True)
            except DataError as exc:  # the loaders' own "too large" message
                self._refused.add(name)
                self.on_refused(name, exc)
        if name not in self._refused:
            super()._process_event(event)  # keeps the chunk; on the last one, the file is in value
            if last:
                self.on_file(name, self.value.get(name))
        if last:
            self._refused.discard(name)


#: Browser side of :meth:`DropZone.clear`: once the named file is no longer uploading (FilePond marks it
#: complete a moment after its last chunk), remove it from the drop zone. FilePond's file statuses:
#: 3 processing, 7 loading, 9 queued. Removing a processed file sends Panel's delete event (its bytes
#: leave the widget's value on the server too).
_CLEAR_JS = """
const name = cb_obj.value.slice(cb_obj.value.indexOf(":") + 1);
const view = Bokeh.index.find_one(dropper);
if (!name || view == null || view._file_pond == null) return;
const pond = view._file_pond;
let tries = 0;
const tick = () => {
  const items = pond.getFiles().filter(f => f.filename === name || f.relativePath === name);
  if (items.some(f => [3, 7, 9].includes(f.status)) && tries++ < 200) { setTimeout(tick, 50); return; }
  for (const f of items) pond.removeFile(f.id);
};
tick();
"""


class DropZone:
    """A drop zone (``view``) whose files go to ``on_file``, refusals to ``on_refused``; each handled file
    is then removed from the zone in the browser (:meth:`clear`)."""

    def __init__(self, limit_bytes: int, on_file: Callable[[str, object], None],
                 on_refused: Callable[[str, Exception], None], **params):
        self.on_file, self.on_refused = on_file, on_refused
        self.widget = BoundedDropper(limit_bytes, self._file, self._refused, **params)
        # a hidden field whose every change runs _CLEAR_JS in the page (value "<count>:<file name>")
        self.clear_signal = pn.widgets.TextInput(value="", visible=False)
        self.clear_signal.jscallback(value=_CLEAR_JS, args={"dropper": self.widget})
        self.cleared: list[str] = []
        self.view = pn.Column(self.widget, self.clear_signal, sizing_mode="stretch_width", margin=0)

    @property
    def limit_bytes(self) -> int:
        return self.widget.limit_bytes

    @limit_bytes.setter
    def limit_bytes(self, value: int) -> None:
        self.widget.limit_bytes = int(value)

    def _file(self, name: str, content) -> None:
        try:
            self.on_file(name, content)
        finally:
            self.clear(name)

    def _refused(self, name: str, exc: Exception) -> None:
        self.on_refused(name, exc)
        self.clear(name)

    def clear(self, name: str) -> None:
        """Remove file ``name`` from the drop zone in the browser (as soon as it is no longer uploading)."""
        self.cleared.append(name)
        self.clear_signal.value = f"{len(self.cleared)}:{name}"
