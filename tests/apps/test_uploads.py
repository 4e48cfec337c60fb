"""The drop zones (issue 18): a too-large upload raises the same alert as a too-large path, from its
first chunk and without keeping the rest; each handled file (loaded or refused) is removed from the
zone (FilePond would show a refused file as "Upload complete" and keep the list growing; the browser
test checks the zone empties in the page)."""
from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest

from apps.app import Dashboard
from apps.url_state import AppState
from workbench import data as wdata

MB = 1 << 20


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _chunks(widget, name: str, content: bytes):
    """The upload events the browser sends for one file (FileDropper's chunking)."""
    size = widget.chunk_size
    total = -(-(len(content) + 1) // size)
    for i in range(total):
        yield SimpleNamespace(event_name="upload_event", data={
            "chunk": i + 1, "total_chunks": total, "name": name, "type": "application/octet-stream",
            "data": content[i * size:(i + 1) * size]})


@pytest.fixture
def dash():
    d = Dashboard(sync=True, demo_size=200, state=AppState(mechanisms=["scaled_dot_product"], params=[{}],
                                                             calibrate=[False]))
    d.session.max_bytes = 3 * MB
    for zone in (d.data.drop, d.data.keys_drop):  # small chunks: a few events per test file
        zone.limit_bytes = d.session.max_bytes
        zone.widget.chunk_size = MB
    return d


def test_a_too_large_upload_is_refused_at_its_first_chunk_with_the_path_alert(dash):
    zone = dash.data.drop
    widget = zone.widget
    big = b"\0" * (6 * MB)
    events = list(_chunks(widget, "huge.npy", big))
    widget._process_event(events[0])
    kind, text = dash.messages.shown()[0]
    assert kind == "danger" and "huge.npy" in text and "too large" in text and "upload limit" in text
    with pytest.raises(wdata.loaders.DataError, match="too large") as path_error:  # the same words as a path
        wdata.load_embeddings(big, filename="huge.npy", max_bytes=dash.session.max_bytes)
    assert text.split(": too large")[0].endswith("huge.npy") and "upload limit" in str(path_error.value)
    assert zone.cleared == ["huge.npy"] and zone.clear_signal.value == "1:huge.npy"  # leaves the zone
    for e in events[1:]:
        widget._process_event(e)
    assert widget._file_buffer == {} and widget.value == {}  # nothing of it kept


def test_files_arriving_together_each_load_and_each_leaves_the_zone(dash):
    zone = dash.data.drop
    widget = zone.widget
    rng = np.random.default_rng(0)
    a = _npy(rng.standard_normal((40, 8)).astype(np.float32))  # one chunk
    b = _npy(rng.standard_normal((40000, 8)).astype(np.float32))  # ~1.3 MB: two chunks
    ea, eb = list(_chunks(widget, "a.npy", a)), list(_chunks(widget, "b.npy", b))
    assert len(eb) == 2
    widget._process_event(eb[0])
    widget._process_event(ea[0])  # a completes while b is still arriving
    assert zone.cleared == ["a.npy"] and dash.session.dataset.name == "a"
    widget._process_event(eb[1])
    assert dash.session.dataset.name == "b" and dash.session.dataset.n == 40000
    assert zone.cleared == ["a.npy", "b.npy"] and zone.clear_signal.value == "2:b.npy"
    assert [k for k, _ in dash.messages.shown()].count("danger") == 0


def test_a_refused_file_is_not_kept_while_another_loads(dash):
    zone = dash.data.drop
    widget = zone.widget
    ok = _npy(np.random.default_rng(1).standard_normal((30, 4)).astype(np.float32))
    big = list(_chunks(widget, "big.npy", b"\1" * (5 * MB)))
    widget._process_event(big[0])
    for e in _chunks(widget, "ok.npy", ok):
        widget._process_event(e)
    assert dash.session.dataset.name == "ok"
    for e in big[1:]:
        widget._process_event(e)
    assert "big.npy" not in widget._file_buffer and "big.npy" not in widget.value
    assert zone.cleared == ["big.npy", "ok.npy"]
