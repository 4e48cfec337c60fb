"""The dashboard's view-model, without a browser (``Dashboard(sync=True)`` runs every job inline).

Widgets are generated for every registered mechanism from its ``param`` declaration and every
parameter documents itself; bad input shows an error alert naming the problem and keeps the
previous data; linked selection, URL state, report, export and the background runner behave.
"""
from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import panel as pn
import param
import pytest

import workbench
from workbench import compare
from apps.url_state import AppState

from apps import export, url_state
from apps.alerts import Messages, describe
from apps.app import Dashboard
from apps.background import Cancelled, Runner
from apps.maps import MapView, TileView, _clamp_range, region_image
from apps.mechanism_panel import (MechanismPanel, current_params, diagnostics_rows, nondefault_params,
                                  parameter_names, parameter_widgets, run_rows)
from apps.ordering import order_for
from apps.projection import TOP_KEYS
from apps.session import Session, prepare

SMALL = 240  # points of the clusters demo most tests load (the real default set has 1,294)
#: The default panels on the NumPy reference backend: these tests are about the views, and a cold
#: Numba cache would otherwise compile kernels here (the kernels have their own tests). The tests
#: of the real default data set (sentence embeddings) are at the end.
REFERENCE_BACKEND = AppState(dataset="clusters", params=[{"backend": "numpy"}, {"backend": "numpy"}],
                             calibrate=[False, False])


@pytest.fixture
def dash() -> Dashboard:
    """A fresh dashboard for tests that change it."""
    return Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)


@pytest.fixture(scope="module")
def shared() -> Dashboard:
    """One dashboard for the tests that only read it or feed it input it must refuse."""
    return Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _alerts(d: Dashboard) -> list[tuple[str, str]]:
    """(alert_type, text) of the messages in the status area, newest first."""
    return d.messages.shown()


# -- widgets from param declarations ----------------------------------------------------------------

@pytest.mark.parametrize("name", workbench.list_mechanisms())
def test_every_mechanism_gets_one_widget_per_parameter_with_its_doc(name):
    inst = workbench.make(name)
    widgets = parameter_widgets(inst)._widgets
    names = parameter_names(inst)
    assert names, name
    for pname in names:
        doc = inst.param[pname].doc
        assert doc and doc.strip(), f"{name}.{pname} has no doc"
        w = widgets[pname]
        assert w.description == doc  # the doc is the widget's tooltip
        default = inst.param[pname].default
        if default is not None and not isinstance(default, (list, dict, tuple)):
            assert w.value == default, (name, pname, w.value, default)


def test_widgets_come_from_the_declaration_not_from_per_mechanism_code():
    """A mechanism class the dashboard has never seen gets working widgets."""

    class Unseen(workbench.Mechanism):
        """A test-only mechanism (never registered)."""

        sharpness = param.Number(default=1.5, bounds=(0, 10), doc="How sharp.")
        mode = param.Selector(default="a", objects=["a", "b"], doc="Which mode.")
        steps = param.Integer(default=None, allow_None=True, bounds=(1, 9), doc="Optional steps.")

    inst = Unseen()
    widgets = parameter_widgets(inst)._widgets
    assert isinstance(widgets["sharpness"], pn.widgets.FloatInput)  # a box, not a slider
    assert isinstance(widgets["mode"], pn.widgets.Select)
    assert isinstance(widgets["steps"], pn.widgets.IntInput) and widgets["steps"].value is None
    assert (widgets["steps"].start, widgets["steps"].end) == (1, 9)
    widgets["sharpness"].value = 3.25
    widgets["mode"].value = "b"
    assert (inst.sharpness, inst.mode) == (3.25, "b")
    assert nondefault_params(inst) == {"sharpness": 3.25, "mode": "b"}


def test_every_session_option_documents_itself():
    for pname, p in Session.param.objects("existing").items():
        if pname != "name":
            assert p.doc and p.doc.strip(), pname


def test_a_panel_builds_for_every_registered_mechanism(shared):
    tiny = prepare(workbench.data.load_demo("clusters", n=48), None)
    for name in workbench.list_mechanisms():
        panel = MechanismPanel(shared, 0, name, {"backend": "numpy"})
        panel.set_data(tiny)
        assert panel.name == name
        assert set(current_params(panel.instance)) == set(workbench.registry[name].parameters)
        # the data were loaded, so the panel has run: a map or a message, never silence
        assert panel.run_count == 1 or "error" in panel.status.object, (name, panel.status.object)


# -- the demo, compare and diagnostics ----------------------------------------------------------------

def test_opens_on_the_demo_with_maps_and_diagnostics(shared):
    dash = shared
    prep = dash.session.prepared
    assert prep is not None and prep.shape == (SMALL, SMALL)
    assert [p.name for p in dash.compare.panels] == AppState().mechanisms
    assert not any(dash.compare.calibrated())  # these panels keep their defaults (REFERENCE_BACKEND)
    for panel in dash.compare.panels:
        assert panel.map.weights is not None and panel.map.weights.shape == (SMALL, SMALL)
        np.testing.assert_allclose(panel.map.weights.sum(axis=1), 1.0, atol=1e-4)
        labels = [a for a, _ in diagnostics_rows(panel.diagnostics)]
        assert labels[0].startswith("entropy") and labels[-1] == "backend"
    sdp = dash.compare.panels[0]
    # scaled dot-product against itself: full overlap, zero output distance
    assert sdp.diagnostics["top_k_overlap"] == pytest.approx(1.0)
    assert sdp.diagnostics["output_distance"] == pytest.approx(0.0, abs=1e-6)
    # its map is softmax(q k^T / sqrt(d)) of the prepared data, written out here in float64
    q = prep.q.astype(np.float64)
    s = q @ q.T / np.sqrt(q.shape[1])
    w = np.exp(s - s.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    # the map is exactly what the library computes, and that is the definition up to float32 rounding
    # (logits reach ~100 on this demo; the kernel's tolerance is tested in tests/kernels)
    direct = workbench.make("scaled_dot_product", backend="numpy").weights(prep.q, prep.k)
    np.testing.assert_array_equal(sdp.map.weights, direct)
    np.testing.assert_allclose(sdp.map.weights, w, atol=1e-4)


def test_a_parameter_change_reruns_only_that_panel_and_changes_its_map(dash):
    sdp, other = dash.compare.panels
    before, other_runs = sdp.map.weights.copy(), other.run_count
    widgets = sdp.widgets_box.objects[0]._widgets
    widgets["scale"].value = 1.0  # from 1/sqrt(d): sharper attention
    assert sdp.instance.scale == 1.0
    assert sdp.run_count == 2 and other.run_count == other_runs
    assert not np.allclose(sdp.map.weights, before)
    ent_before = -np.sum(before * np.log(np.where(before > 0, before, 1)), axis=1).mean()
    assert sdp.diagnostics["entropy_mean"] < ent_before  # a larger scale sharpens every row on average


def test_a_parameter_change_streams_the_pooled_map_into_the_same_plot(dash):
    sdp = dash.compare.panels[0]
    pipe, element = sdp.map._pipe, sdp.map.element
    sdp.instance.scale = 0.5
    assert sdp.map._pipe is pipe and sdp.map.element is element  # same plot: only a new image travels
    shown = pipe.data
    tile = shown.dimension_values(2, flat=False)
    h, w = tile.shape
    assert h <= SMALL and w <= SMALL and shown.label == ""
    rows, cols = sdp.map.last["rows"], sdp.map.last["cols"]
    # the image is the max-pool of the new weights over the visible region, by the definition
    ws = sdp.map.weights
    for a in (0, h // 2, h - 1):
        for b in (0, w - 1):
            ra, rb = rows[0] + a * (rows[1] - rows[0]) // h, rows[0] + (a + 1) * (rows[1] - rows[0]) // h
            ca, cb = cols[0] + b * (cols[1] - cols[0]) // w, cols[0] + (b + 1) * (cols[1] - cols[0]) // w
            assert tile[h - 1 - a if shown.dimension_values("query", expanded=False)[0] > shown.dimension_values(
                "query", expanded=False)[-1] else a, b] == pytest.approx(float(ws[ra:rb, ca:cb].max()))


def test_a_dense_map_pools_the_region_in_view_and_drops_stale_tiles():
    jobs = []
    mv = MapView(submit=lambda work, done: jobs.append((work, done)), max_pixels=50)
    w = np.zeros((400, 300), np.float32)
    w[123, 45] = 1.0
    mv.show(w, MapView.pooled(w, mv.plan(w.shape)))
    assert jobs == [] and mv.last["rows"] == (0, 400) and mv.last["out_shape"] == (50, 50)
    assert mv._pipe.data.dimension_values(2).max() == 1.0  # the sharp weight survives pooling
    mv._range.event(x_range=(40.0, 60.0), y_range=(100.0, 140.0))  # a zoom: the region is pooled again
    work, done = jobs.pop()
    mv.show(w * 0.5)  # meanwhile new weights of the same shape arrive: their tile is requested
    new_work, new_done = jobs.pop()
    before = mv._pipe.data
    done(work(None))  # the zoom's tile was computed from the old weights: never drawn
    assert mv._pipe.data is before
    new_done(new_work(None))
    assert mv._pipe.data.dimension_values(2).max() == 0.5
    assert mv.last["rows"] == (100, 141) and mv.last["cols"] == (40, 61)  # the zoom is kept
    plan = mv.plan((10, 10))  # another shape: the whole map
    assert plan[0] == (0, 10) and plan[1] == (0, 10)


def test_a_panel_warns_when_points_lie_outside_its_geometry_until_they_are_mapped_into_the_ball(dash):
    sdp, hyp = dash.compare.panels
    assert hyp.name == "hyperbolic" and "outside the Poincaré ball" in hyp.notes.object
    assert sdp.notes.object == ""
    dash.session.normalisation = "ball"
    assert hyp.notes.object == "" and np.mean(np.diag(hyp.map.weights)) < 0.5
    assert dash.current_state().normalisation == "ball"  # and so is the link


def test_a_run_error_shows_an_alert_and_keeps_the_previous_map(dash):
    panel = dash.compare.panels[0]
    runs = panel.run_count
    panel.set_mechanism("multi_head", {"backend": "numpy"})
    assert panel.name == "multi_head" and panel.instance.backend == "numpy" and panel.run_count == runs + 1
    before = panel.map.weights.copy()
    panel.instance.num_heads = 7  # 32 features do not split into 7 heads
    assert "error" in panel.status.object
    kind, text = _alerts(dash)[0]
    assert kind == "danger" and "panel 1 (multi_head)" in text and "num_heads" in text and "divisible" in text
    np.testing.assert_array_equal(panel.map.weights, before)


def test_two_to_four_panels(dash):
    cv = dash.compare
    for name in ("local_global", "linear"):
        cv.add_panel(name, {"backend": "numpy"})
    assert [p.name for p in cv.panels] == ["scaled_dot_product", "hyperbolic", "local_global", "linear"]
    assert all(p.run_count == 1 for p in cv.panels[2:])
    assert cv.add_panel("flash", {}) is None and "at most 4" in dash.messages.last_error
    cv.remove_panel(cv.panels[1])
    cv.remove_panel(cv.panels[1])
    assert [p.name for p in cv.panels] == ["scaled_dot_product", "linear"]
    assert [p.index for p in cv.panels] == [0, 1] and "wb-panel-1" in cv.panels[1].view.css_classes
    cv.remove_panel(cv.panels[0])
    assert len(cv.panels) == 2 and "at least 2" in dash.messages.last_error
    assert [r["mechanism"] for r in cv.diagnostics_table()] == ["scaled_dot_product", "linear"]


def test_large_maps_are_drawn_lazily_with_diagnostics_on_sampled_queries():
    ds = workbench.data.load_demo("sequence", n=5000)  # 25M entries > compare.MAX_DENSE
    prep = prepare(ds, None)
    rows = run_rows(prep)
    assert rows is not None and rows.size * prep.shape[1] <= compare.MAX_DENSE
    assert rows[0] == 0 and rows[-1] == prep.shape[0] - 1 and np.all(np.diff(rows) > 0)
    small = prepare(workbench.data.load_demo("sequence", n=300), None)
    assert run_rows(small) is None


# -- bad input keeps the previous data -----------------------------------------------------------------

def _pickled_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return buf.getvalue()


BAD_FILES = [
    ("embeddings.exe", b"MZ\x90\x00", "extension"),
    ("corrupt.npy", b"\x93NUMPY garbage that is not an array", "corrupt"),
    ("ragged.csv", b"1,2,3\n4,5\n6,7,8\n", "ragged"),
    ("words.csv", b"a,b,c\nx,y,z\nu,v,w\n", "non-numeric"),
    ("nan.csv", b"1,2\nnan,4\n5,6\n", "NaN"),
    ("empty.csv", b"", "zero rows"),
    ("vector.npy", _npy(np.arange(5, dtype=np.float32)), "one dimension"),
    ("pickle.npy", _pickled_npy(), "pickle"),
]


@pytest.mark.parametrize("filename, content, problem", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_shows_a_message_naming_the_problem_and_keeps_the_data(shared, filename, content, problem):
    dash = shared
    before = dash.session.prepared
    dataset = dash.session.dataset
    maps = [p.map.weights for p in dash.compare.panels]
    dash.session.load_bytes(content, filename)
    kind, text = _alerts(dash)[0]
    assert kind == "danger"
    assert filename in text and problem.lower() in text.lower(), text
    assert "Traceback" not in text
    assert dash.session.prepared is before and dash.session.dataset is dataset
    assert all(p.map.weights is w for p, w in zip(dash.compare.panels, maps))


def test_a_file_over_the_size_cap_is_refused():
    d = Dashboard(sync=True, demo_size=SMALL, max_bytes=1000, state=REFERENCE_BACKEND)
    before = d.session.prepared
    d.session.load_bytes(_npy(np.ones((100, 8), np.float32)), "big.npy")
    kind, text = _alerts(d)[0]
    assert kind == "danger" and "big.npy" in text and "too large" in text and "1000 bytes" in text
    assert d.session.prepared is before


def test_a_server_file_over_the_upload_cap_loads_under_its_own_cap(tmp_path):
    """Uploads keep their cap; a file on the server's disk has its own (default: a quarter of the
    machine's memory), and is refused beyond it."""
    path = tmp_path / "server.npy"
    np.save(path, np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32))
    d = Dashboard(sync=True, demo_size=SMALL, max_bytes=1000, state=REFERENCE_BACKEND)
    assert d.session.max_path_bytes >= 1 << 20
    d.session.load_path(str(path))
    assert d.session.dataset.x.shape == (100, 8), _alerts(d)
    d.session.max_path_bytes = 1000
    d.session.load_path(str(path))
    kind, text = _alerts(d)[0]
    assert kind == "danger" and "too large" in text


def test_keys_of_another_dimension_are_refused_and_the_data_kept(shared):
    dash = shared
    before = dash.session.prepared
    dash.session.load_bytes(_npy(np.ones((50, 5), np.float32) + np.arange(5)), "keys5.npy", as_keys=True)
    kind, text = _alerts(dash)[0]
    assert kind == "danger" and "mismatched" in text and "keys5.npy" in text
    assert dash.session.prepared is before


def test_a_valid_upload_replaces_the_data_and_every_map(dash):
    x = np.random.default_rng(3).standard_normal((150, 12)).astype(np.float32)
    dash.session.load_bytes(_npy(x), "mine.npy")
    prep = dash.session.prepared
    assert prep.shape == (150, 150) and prep.q.shape == (150, 12)
    np.testing.assert_array_equal(prep.q, x)
    for panel in dash.compare.panels:
        assert panel.map.weights.shape == (150, 150)
    assert _alerts(dash)[0][0] == "success"


def test_text_files_arrive_as_str_from_the_drop_zone_and_load(dash):
    dash.session.load_bytes("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n", "text.csv")
    assert dash.session.prepared.q.shape == (4, 2), dash.messages.history
    assert list(dash.session.dataset.labels) == ["x", "y", "x", "y"]


def test_a_path_on_the_server_loads_and_can_be_confined(dash, tmp_path, monkeypatch):
    x = np.random.default_rng(1).standard_normal((60, 6)).astype(np.float32)
    (tmp_path / "inside.npy").write_bytes(_npy(x))
    dash.session.load_path(str(tmp_path / "inside.npy"))
    np.testing.assert_array_equal(dash.session.prepared.q, x)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    before = dash.session.prepared
    dash.session.load_path(str(tmp_path / "inside.npy"))
    assert "outside the data directory" in dash.messages.last_error and dash.session.prepared is before
    (tmp_path / "data" / "ok.npy").write_bytes(_npy(x[:30]))
    dash.session.load_path("ok.npy")  # relative to the data directory
    assert dash.session.prepared.q.shape == (30, 6)
    dash.session.load_path("missing.npy")
    assert "missing.npy" in dash.messages.last_error and dash.session.prepared.q.shape == (30, 6)


def test_an_option_error_keeps_the_data(dash):
    before = dash.session.prepared
    dash.session.queries = "label"
    dash.session.label = "no-such-label"
    assert dash.session.prepared is before
    assert "no-such-label" in dash.messages.last_error


def test_label_queries_select_that_label(dash):
    dash.session.label = "2"
    dash.session.queries = "label"
    prep = dash.session.prepared
    labels = dash.session.dataset.labels
    np.testing.assert_array_equal(prep.query_index, np.flatnonzero(labels.astype(str) == "2"))
    assert dash.compare.panels[0].map.weights.shape == (prep.query_index.size, SMALL)


# -- linked selection ------------------------------------------------------------------------------

def test_selecting_a_query_in_one_map_selects_it_everywhere(dash):
    dash.tabs.active = 2  # Inspect
    panel = dash.compare.panels[1]
    panel.map._tapped(x=3.2, y=7.4)  # a click on the cell (query 7, key 3)
    assert dash.session.selected == 7
    for p in dash.compare.panels:
        assert p.map._query.query == 7
    assert dash.inspect.tiles._query.query == int(dash.inspect.inv_q[7])
    frame, qxy = dash.compare.projection._marks.data
    lead_row = dash.compare.panels[0].map.weights[7]
    top = np.argsort(-lead_row, kind="stable")[:TOP_KEYS]
    assert set(frame["index"]) == set(top.tolist())
    np.testing.assert_allclose(qxy, dash.compare.projection.xy[7])  # the query's own point (same set)
    assert dash.inspect.bars.object is not None
    assert "Selected query 7" in dash.compare.selection.object


# -- inspect tiles ------------------------------------------------------------------------------------

def test_tile_regions_follow_the_view_and_never_exceed_the_screen():
    tv = TileView(submit=lambda work, done: None, max_pixels=500)
    tv.shape = (100_000, 80_000)
    rows, cols, out = tv.region((-5000.0, 1e9), (10.2, 19.7), width=800, height=300)
    assert cols == (0, 80_000) and rows == (10, 21) and out == (11, 500)  # row 20 spans 19.5–20.5
    assert _clamp_range(None, 7) == (0, 7)
    assert _clamp_range((3.6, 3.7), 7) == (4, 5)  # never empty
    img = region_image(np.arange(6.0).reshape(2, 3), (10, 14), (0, 3))
    np.testing.assert_allclose(img.dimension_values("query", expanded=False), [10.5, 12.5])
    np.testing.assert_allclose(img.dimension_values("key", expanded=False), [0, 1, 2])


def test_inspect_draws_the_visible_region_through_weights_tile(dash):
    assert dash.inspect.tiles.last == {}  # nothing computed while the tab is hidden
    dash.tabs.active = 2
    last = dash.inspect.tiles.last
    assert last["rows"] == (0, SMALL) and last["cols"] == (0, SMALL)
    img = dash.inspect.tiles._pipe.data
    prep = dash.session.prepared
    tile = compare.weights_tile("scaled_dot_product", dash.compare.panels[0].params(), prep.q, prep.k,
                                rows=last["rows"], cols=last["cols"], out_shape=last["out_shape"])
    np.testing.assert_array_equal(img.dimension_values(2, flat=False), tile.astype(np.float32))


def test_sorting_by_label_groups_the_labels(dash):
    dash.inspect.active = True
    dash.inspect.order.value = "label"
    labels = dash.session.prepared.query_labels.astype(str)
    sorted_labels = labels[dash.inspect.perm_q]
    assert list(sorted_labels) == sorted(labels)


def test_cluster_order_keeps_separated_clusters_contiguous():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 4)), rng.normal(50, 0.1, (30, 4))])
    perm = rng.permutation(60)
    order = order_for("cluster order", x[perm])
    assert sorted(order) == list(range(60))
    side = (x[perm][order, 0] > 25).astype(int)
    assert np.count_nonzero(np.diff(side)) == 1  # one boundary between the two clusters


# -- report, bench, export, URL ------------------------------------------------------------------------

def test_report_shows_metrics_gauge_and_a_recommendation_that_opens_a_comparison(dash):
    assert dash.report.report is None  # computed when its tab is opened
    dash.tabs.active = 3
    r = dash.report.report
    assert r is not None, dash.messages.history
    assert 0 <= dash.report.gauge.value <= 100
    assert dash.report.gauge.value == pytest.approx(100 * r.health_score, abs=0.1)
    for m in r.metrics:
        assert m.name in dash.report.metrics.object
    assert r.recommendation.mechanism in dash.report.recommendation.object
    assert r.recommendation.rule.split()[0] in dash.report.recommendation.object
    dash.report.compare_button.clicks += 1
    assert [p.name for p in dash.compare.panels] == [r.recommendation.mechanism, "scaled_dot_product"]


def test_bench_measures_the_selected_mechanisms(dash):
    dash.bench.lengths.value = [32, 64]
    dash.bench.repeats.value = 1
    dash.bench.mechanisms.value = ["scaled_dot_product"]
    dash.bench.start()
    rows = dash.bench.rows
    assert [(r["mechanism"], r["length"]) for r in rows] == [("scaled_dot_product", 32), ("scaled_dot_product", 64)]
    assert all(r["seconds"] > 0 for r in rows)
    assert dash.bench.plots.object is not None
    text = export.csv_bytes(dash.bench.table_rows()).decode()
    assert text.splitlines()[0].startswith("mechanism,length")
    # issue 18 (9): no "error None" column when nothing failed; errors as text when something did
    assert "error" not in text.splitlines()[0] and "None" not in text
    dash.bench.rows = rows + [{**rows[0], "seconds": None, "error": "out of memory at L=64"}]
    shown = dash.bench.table_rows()
    assert [r["error"] for r in shown] == ["", "", "out of memory at L=64"]


def test_exports_are_real_files(shared):
    dash = shared
    png = export.png_bytes(dash.compare.panels[0].static_map())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    html = export.html_bytes(dash.compare.panels[0].static_map()).decode()
    assert "<html" in html.lower() and "Bokeh" in html and "cdn.bokeh.org" not in html  # standalone, offline
    rows = dash.compare.diagnostics_table()
    csv_text = export.csv_bytes(rows).decode().splitlines()
    assert csv_text[0].split(",")[:3] == ["panel", "mechanism", "params"] and len(csv_text) == 3
    dash.tabs.active = 3
    report = json.loads(dash.report.report.to_json())
    assert report["recommendation"]["mechanism"] == dash.report.report.recommendation.mechanism
    proj = export.png_bytes(dash.compare.projection.static())
    assert proj[:4] == b"\x89PNG"


def test_url_state_round_trips_and_reproduces_the_view():
    state = AppState(dataset="tree", mechanisms=["linear", "scaled_dot_product"],
                     params=[{"num_features": 64, "backend": "numpy"}, {"backend": "numpy"}], normalisation="l2",
                     graph_k=5, selected=3, calibrate=[False, False])

    class FakeLocation:
        search = url_state.query_string(state)

    back = url_state.state_from_location(FakeLocation())
    assert back == state
    d = Dashboard(sync=True, state=back)
    assert [p.name for p in d.compare.panels] == ["linear", "scaled_dot_product"]
    assert d.compare.panels[0].instance.num_features == 64
    assert d.session.normalisation == "l2" and d.session.graph_k == 5
    assert d.session.dataset.name == "tree" and d.session.selected == 3
    assert d.current_state() == state
    garbage = url_state.state_from_location(type("L", (), {"search": "?m=nope,%%&p0=[&k=-3&data=../../etc"})())
    assert garbage == AppState(mechanisms=["scaled_dot_product", "hyperbolic"], params=[{}, {}])


def test_keys_from_another_demo_come_from_the_link_and_from_the_menu():
    d = Dashboard(sync=True, state=AppState(dataset="clusters", keys="sequence", params=REFERENCE_BACKEND.params))
    prep = d.session.prepared
    assert d.session.keys == "sequence" and d.session.keys_dataset.name == "sequence"
    assert prep.shape == (1200, 2048) and not prep.same_set  # 1,200 cluster queries over 2,048 sequence keys
    assert d.compare.panels[0].map.weights.shape == (1200, 2048)
    assert "keys=sequence" in url_state.query_string(d.current_state())
    d.session.keys = "digits"  # d = 64: cannot serve queries of d = 32
    assert "mismatched" in d.messages.last_error and d.session.keys == "sequence"
    assert d.session.prepared is prep
    d.session.keys = "same"
    assert d.session.prepared.shape == (1200, 1200) and d.session.prepared.same_set


def test_location_is_written_after_a_change():
    class FakeLocation:
        search = ""

    loc = FakeLocation()
    d = Dashboard(sync=True, demo_size=SMALL, location=loc, state=REFERENCE_BACKEND)
    assert "m=scaled_dot_product%2Chyperbolic" in loc.search and "backend" in loc.search
    d.compare.panels[1].mechanism.value = "local_global"
    assert "m=scaled_dot_product%2Clocal_global" in loc.search
    d.session.normalisation = "standard"
    assert "norm=standard" in loc.search


# -- messages and the background runner -----------------------------------------------------------------

def test_messages_name_the_problem_and_never_show_a_traceback():
    m = Messages(keep=2)
    m.error(workbench.errors.DataError("x.csv: ragged rows: line 3 has 2 fields, expected 3"), "upload 'x.csv'")
    m.error(KeyError("boom"), "view")
    m.error("third")
    assert len(m.shown()) == 2  # only the newest `keep`
    assert m.shown()[0] == ("danger", "third")
    assert "unexpected KeyError" in m.shown()[1][1]
    assert describe(MemoryError()).startswith("out of memory")


def test_one_status_area_the_newest_shown_dismissible_the_rest_behind_a_toggle():
    # issue 18 (6): up to four full-width alerts piled up, none dismissible
    m = Messages()
    m.info("first")
    assert [a.object for a in m.latest.objects] == ["first"] and not m.show_history.visible
    m.error("second")
    m.success("loaded", topic="data")
    assert [a.object for a in m.latest.objects] == ["loaded"]  # one alert on show
    assert [a.object for a in m.older.objects] == ["second", "first"] and not m.older.visible
    assert m.show_history.visible and m.show_history.label == "history (2)"
    m.show_history.value = True
    assert m.older.visible
    m.dismiss.clicks += 1  # × hides the newest; it stays in the history
    assert m.latest.objects == [] and [a.object for a in m.older.objects] == ["loaded", "second", "first"]
    m.warning("again")
    assert [a.object for a in m.latest.objects] == ["again"] and m.dismiss.visible


def test_runner_supersedes_cancels_and_reports_errors_off_the_ui_thread():
    runner = Runner()
    started, release = threading.Event(), threading.Event()
    seen: dict = {"done": [], "failed": [], "cancelled": 0, "threads": set()}

    def slow(job):
        seen["threads"].add(threading.current_thread().name)
        started.set()
        release.wait(5)
        job.check()
        return "old"

    def record(value):
        seen["done"].append(value)

    runner.submit("slot", slow, record, seen["failed"].append,
                  cancelled=lambda: seen.__setitem__("cancelled", seen["cancelled"] + 1))
    assert started.wait(5)
    runner.submit("slot", lambda job: "new", record, seen["failed"].append)  # supersedes the slow one
    release.set()
    runner.submit("other", lambda job: 1 / 0, record, seen["failed"].append)
    deadline = time.time() + 5
    while time.time() < deadline and (len(seen["done"]) < 1 or len(seen["failed"]) < 1 or runner.running("slot")):
        time.sleep(0.01)
    time.sleep(0.05)
    assert seen["done"] == ["new"]  # the superseded result was dropped
    assert isinstance(seen["failed"][0], ZeroDivisionError)
    assert all(name.startswith("workbench-app") for name in seen["threads"])

    cancel_seen = threading.Event()
    job = runner.submit("bench", lambda job: (time.sleep(0.05), job.check()), record, seen["failed"].append,
                        cancelled=cancel_seen.set)
    assert runner.cancel("bench") and job.cancelled
    assert cancel_seen.wait(5)
    with pytest.raises(Cancelled):
        job.check()


def test_only_the_compare_tab_is_drawn_until_another_is_shown(dash):
    boxes = dash._tab_boxes
    assert [len(b.objects) for b in boxes] == [0, 1, 0, 0, 0, 0] and boxes[1].objects[0] is dash.compare.view
    dash.tabs.active = 0  # the Data tab, drawn now and kept
    dash.tabs.active = 1
    assert boxes[0].objects == [dash.data.view] and [len(b.objects) for b in boxes] == [1, 1, 0, 0, 0, 0]
    dash.tabs.active = 3  # the Report: drawn, and computed because it is shown
    assert boxes[3].objects == [dash.report.view] and dash.report.active


def test_a_hidden_map_computes_no_tile_until_shown_and_a_shrinking_plot_keeps_its_tile(dash):
    jobs = []
    tv = TileView(submit=lambda work, done: jobs.append((work, done)), max_pixels=500)
    tv.pause(True)
    tv.set_source(lambda rows, cols, out: np.ones(out), (10_000, 8_000))
    assert jobs == [] and tv._pending  # hidden: nothing computed
    tv.pause(False)
    assert len(jobs) == 1  # shown again: the missed view is drawn
    work, done = jobs.pop()
    done(work(None))
    assert tv.last["out_shape"] == (500, 500)
    tv._size.event(width=300, height=200)  # the plot shrank (say, a scrollbar appeared)
    assert jobs == []  # the tile already drawn is fine enough
    tv._size.event(width=800, height=700)  # it grew past the tile: not here, max_pixels caps it
    assert jobs == []
    tv._range.event(x_range=(0.0, 100.0), y_range=(0.0, 50.0))  # a zoom is a new region
    assert len(jobs) == 1
    # the dashboard pauses the Compare panels while another tab is shown
    dash.tabs.active = 2
    assert all(p.map.paused and p.tiles.paused for p in dash.compare.panels) and not dash.inspect.tiles.paused
    dash.tabs.active = 1
    assert not any(p.map.paused or p.tiles.paused for p in dash.compare.panels) and dash.inspect.tiles.paused


# -- the real default data set: calibrated panels, texts, the evidence ---------------------------------

@pytest.fixture(scope="module")
def real() -> Dashboard:
    """The dashboard as a new user gets it: the shipped sentence embeddings, default panels."""
    return Dashboard(sync=True)


def test_opens_on_real_text_embeddings_with_calibrated_meaningful_maps(real):
    from workbench.entropy import normalised_entropy

    prep = real.session.prepared
    assert real.session.dataset.name == "scipy_api" and prep.shape == (1294, 1294)
    assert prep.query_texts is not None and prep.graph is not None  # texts and the See Also graph
    assert real.compare.calibrated() == [True, True]
    for panel in real.compare.panels:
        cal = panel.calibration
        assert cal is not None and cal.target == 0.5
        assert "calibrated:" in panel.calib_info.object and "T =" in panel.calib_info.object
        ent = float(np.mean(normalised_entropy(panel.map.weights)))
        assert 0.4 <= ent <= 0.6, (panel.name, ent)  # not the flat map of the defaults (0.9999)
    sdp, hyp = real.compare.panels
    assert sdp.instance.scale == pytest.approx(cal_scale := sdp.calibration.value) and cal_scale > 1
    assert hyp.notes.object == ""  # calibrated hyperbolic holds the unit vectors inside its ball
    state = real.current_state()  # the link carries the fitted values
    assert state.params[0]["scale"] == pytest.approx(cal_scale) and state.dataset == "scipy_api"


def test_hand_edit_keeps_the_value_and_recalibrate_fits_again():
    d = Dashboard(sync=True)
    sdp = d.compare.panels[0]
    fitted = sdp.instance.scale
    sdp.widgets_box.objects[0]._widgets["scale"].value = 2.0
    assert not sdp.auto_calibrate and sdp.instance.scale == 2.0 and "by hand" in sdp.calib_info.object
    assert d.current_state().calibrate[0] is False
    d.session.reprepare()  # new data version: a hand-set value stays
    assert sdp.instance.scale == 2.0
    sdp.calibrate_again()
    assert sdp.auto_calibrate and sdp.instance.scale == pytest.approx(fitted)


def test_hover_and_selection_show_the_texts(real):
    sdp = real.compare.panels[0]
    sdp._hovered(3, 10)
    prep = real.session.prepared
    assert prep.query_text(3)[:40] in sdp.hover.object and prep.key_text(10)[:40] in sdp.hover.object
    assert "weight" in sdp.hover.object
    real.select_query(5)
    text = real.compare.selection.object
    assert prep.query_text(5)[:30] in text
    row = sdp.map.weights[5]
    top = compare.attended_keys(row, top=3)
    for j in top:
        assert f"key {int(j)} · **{row[j]:.3f}**" in text and prep.key_text(int(j))[:30] in text


def test_the_search_box_selects_a_query_by_its_text(real):
    prep = real.session.prepared
    want = next(i for i, t in enumerate(prep.query_texts) if t.startswith("scipy.linalg.expm "))
    real.compare.search.value = "scipy.linalg.expm "
    assert real.session.selected == want
    real.compare.search.value = "no such docstring anywhere"
    assert "No query text contains" in real.compare.selection.object


def test_one_banner_for_the_current_data():
    d = Dashboard(sync=True, state=REFERENCE_BACKEND, demo_size=SMALL)
    d.session.load_demo("digits")
    d.session.load_demo("scipy_api")
    banners = [t for k, t in _alerts(d) if k == "success"]
    assert len(banners) == 1 and "scipy_api" in banners[0]


def test_compare_recommended_puts_it_beside_default_scaled_dot_product():
    d = Dashboard(sync=True)
    d.report.active = True
    d.report.compute()
    rec = d.report.report.recommendation
    d.report._compare_recommended()
    a, b = d.compare.panels
    assert (a.name, b.name) == (rec.mechanism, "scaled_dot_product")
    assert not a.auto_calibrate and not b.auto_calibrate
    assert nondefault_params(b.instance) == {}  # the default, never the recommendation beside itself
    for k, v in rec.params.items():
        assert getattr(a.instance, k) == pytest.approx(v)
    assert d.current_state().calibrate == [False, False]


def test_report_of_real_embeddings_tells_the_truth_and_shows_its_evidence():
    d = Dashboard(sync=True)
    d.report.active = True
    d.report.compute()
    r = d.report.report
    ent = r.metric("attention_entropy")
    assert ent.value > 0.99 and ent.status == "CRITICAL"  # uniform attention is not healthy
    assert r.health_score < 0.85
    rec = r.recommendation
    m = workbench.make(rec.mechanism, **rec.params)  # the recommendation, reproduced
    assert m.current_temperature(384) == pytest.approx(rec.suggested_temperature if rec.mechanism ==
                                                       "scaled_dot_product" else m.current_temperature(384))
    ev = d.report.evaluation
    assert ev is not None and ev.measure == "knn_accuracy" and ev.recommended == rec.choice
    assert len([row for row in ev.rows if row["score"] is not None]) == 5  # raw + four candidates
    assert "★ recommended" in d.report.eval_table.object
    assert d.report.leaderboard.object is not None and "best by evaluation" in d.report.eval_status.object


def test_a_single_key_file_is_refused_and_the_panels_keep_working():
    # a single key can be neither calibrated nor projected: the load is refused (issue 18) and the
    # panels keep the data they show
    d = Dashboard(sync=True, state=AppState(dataset="clusters", params=[{"backend": "numpy"}, {"backend": "numpy"}]),
                  demo_size=SMALL)
    shape = d.session.prepared.shape
    d.session.load_bytes(_npy(np.ones((1, 16), np.float32)), "one.npy")
    sdp = d.compare.panels[0]
    assert d.session.prepared.shape == shape and "one: 1 row" in _alerts(d)[0][1]
    assert "calibrated" in sdp.calib_info.object and sdp.map.weights is not None


def test_bench_and_evaluation_run_on_a_configured_cluster(dash, monkeypatch):
    # WORKBENCH_DASK_SCHEDULER set: the Bench tab's cells and the Report's candidates run as Dask tasks
    distributed = pytest.importorskip("distributed")
    import workbench.distributed.grid as grid

    # worker processes, as a real cluster has (Numba's parallel kernels must not run in two threads of a process)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                       host="127.0.0.1", dashboard_address=None)
    monkeypatch.setattr(grid, "_CONFIGURED", {})
    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", cluster.scheduler_address)
    try:
        dash.bench.lengths.value = [32, 64]
        dash.bench.repeats.value = 1
        dash.bench.mechanisms.value = ["scaled_dot_product", "flash"]
        dash.bench.start()
        rows = dash.bench.rows
        assert [(r["mechanism"], r["length"]) for r in rows] == [
            ("scaled_dot_product", 32), ("scaled_dot_product", 64), ("flash", 32), ("flash", 64)]
        assert all(r["seconds"] > 0 and "params" in r for r in rows), rows
        assert grid._CONFIGURED  # the configured scheduler was used
        dash.tabs.active = 3
        ev = dash.report.evaluation
        assert ev is not None and not ev.cancelled and ev.best is not None, dash.messages.history
    finally:
        for c in grid._CONFIGURED.values():
            c.close()
        cluster.close()


def test_load_file_reads_the_path_as_typed_before_enter_or_blur(tmp_path):
    # issue 18 (1): the field's value is committed on Enter or blur only; a click on "Load file" right
    # after typing must load what the field shows, not an empty path
    path = tmp_path / "typed.npy"
    np.save(path, np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32))
    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    d.data.path.value_input = str(path)  # typed, not committed
    assert d.data.path.value == ""
    d.data.load_path.clicks += 1
    assert d.session.dataset.x.shape == (60, 8), _alerts(d)


def test_boolean_parameters_name_themselves_on_their_buttons():
    # issue 18 (9): the Causal toggle had no label (a button group shows no title)
    from apps.mechanism_panel import parameter_widgets

    widgets = parameter_widgets(workbench.make("scaled_dot_product"))
    causal = widgets._widgets["causal"]
    assert isinstance(causal, pn.widgets.RadioButtonGroup)
    assert list(causal.options) == ["causal: off", "causal: on"] and causal.value is False


def test_unlabelled_points_get_no_lone_legend_entry():
    # issue 18 (9): unlabelled data showed a legend with a single "—" entry
    import holoviews as hv

    from apps.projection import ProjectionView, points_frame

    hv.extension("bokeh", logo=False)
    view = ProjectionView(app=None)
    xy = np.random.default_rng(0).standard_normal((30, 2))
    plain = view._base(points_frame(xy, None, None)).opts.get("plot").kwargs
    assert plain["show_legend"] is False and "coloured by label" not in plain["title"]
    labelled = view._base(points_frame(xy, np.arange(30) % 3, None)).opts.get("plot").kwargs
    assert labelled["show_legend"] is True and "coloured by label" in labelled["title"]


@pytest.mark.parametrize("rows", [1, 2])
def test_a_file_with_too_few_rows_is_refused_and_the_data_kept(rows):
    # issue 18 (4): a 1-row file loaded as "1 × 16", then the projection failed (IndexError) and the
    # maps went blank with the old caption
    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    before = d.session.dataset
    d.session.load_bytes(_npy(np.ones((rows, 16), np.float32)), "tiny.npy")
    kind, text = _alerts(d)[0]
    assert kind == "danger" and f"tiny: {rows} row" in text and "at least 3" in text
    assert d.session.dataset is before


def test_choosing_a_label_selects_its_rows_as_queries():
    # issue 18 (7): the label dropdown re-ran the maps unchanged unless Queries was also set to 'label'
    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    assert d.session.queries == "all"
    d.data.label_select.value = "2"
    prep, labels = d.session.prepared, d.session.dataset.labels
    assert d.session.queries == "label"
    np.testing.assert_array_equal(prep.query_index, np.flatnonzero(labels.astype(str) == "2"))
    assert d.compare.panels[0].map.weights.shape[0] == prep.query_index.size
    d.data.label_select.value = ""  # cleared: every row again
    assert d.session.queries == "all" and d.session.prepared.query_index.size == SMALL


def test_the_entropy_sparkline_range_is_never_a_sliver():
    # issue 18 (9): nearly constant entropies got ticks such as "1.000e-5"
    from apps.mechanism_panel import entropy_curve

    flat = entropy_curve(np.full(50, 4.2) + 1e-9 * np.arange(50))
    lo, hi = flat.range("entropy")
    assert lo <= 4.2 <= hi and hi - lo >= 0.05 * 4.2 - 1e-12
    varied = entropy_curve(np.linspace(1.0, 3.0, 20))
    assert varied.range("entropy") == (1.0, 3.0)


def test_bench_plots_label_only_the_measured_lengths():
    # issue 18 (9): the log axis labelled every minor step, running together ("3000 35004000")
    import holoviews as hv

    from apps.bench_view import bench_plots

    hv.extension("bokeh", logo=False)
    rows = [{"mechanism": "flash", "length": L, "seconds": 1e-3 * L, "peak_mib": 1.0} for L in (1000, 3000, 3500, 4000)]
    layout = bench_plots(rows)
    for overlay in layout:
        ticks = overlay.opts.get("plot").kwargs["xticks"]
        assert ticks == [(1000, "1,000"), (3000, "3,000"), (3500, "3,500"), (4000, "4,000")]


def test_a_selection_beyond_the_data_is_clamped_with_a_note():
    # issue 18 (3): a link's sel=1346 on a 1,200-row demo was silently dropped
    d = Dashboard(sync=True, demo_size=SMALL, state=AppState(selected=1_000_000, params=[{"backend": "numpy"}] * 2))
    n = d.session.prepared.shape[0]
    assert d.session.selected == n - 1
    kind, text = next(a for a in _alerts(d) if a[0] == "warning")
    assert "1,000,000" in text and f"selected query {n - 1:,} instead" in text


def test_links_carry_a_server_path_and_say_when_data_was_uploaded(tmp_path):
    # issue 18 (3): a copied link silently reopened on the demo after an upload or a server-path load
    path = tmp_path / "server.npy"
    x = np.random.default_rng(2).standard_normal((70, 6)).astype(np.float32)
    np.save(path, x)
    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    d.session.load_path(str(path))
    state = d.session.to_state(["scaled_dot_product", "flash"], [{}, {}])
    assert state.source == f"path:{path}"
    again = Dashboard(sync=True, demo_size=SMALL, state=AppState.from_query(state.to_query()))
    np.testing.assert_array_equal(again.session.dataset.x, x)

    d.session.load_bytes(_npy(x), "mine.npy")
    state = d.session.to_state(["scaled_dot_product", "flash"], [{}, {}])
    assert state.source == "upload:mine"
    opened = Dashboard(sync=True, demo_size=SMALL, state=AppState.from_query(state.to_query()))
    kind, text = next(a for a in _alerts(opened) if a[0] == "warning")
    assert "uploads do not travel in links" in text and "mine" in text
    assert opened.session.dataset.source.startswith("demo:")


def test_a_link_carries_the_demo_and_its_size():
    # issue 18 (4): a link made on a 300-row demo reopened on the default size
    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    d.session.load_demo("clusters", 300)
    state = d.session.to_state(["scaled_dot_product", "flash"], [{}, {}])
    assert state.demo_size == 300 and state.to_query()["size"] == "300"
    opened = Dashboard(sync=True, state=AppState.from_query(state.to_query()))
    assert opened.session.dataset.n == 300 and opened.session.demo_size == 300
    d.session.load_demo("sequence", 120)
    assert AppState.from_query(d.session.to_state(["flash", "flash"], [{}, {}]).to_query()).demo_size == 120
    d.session.load_demo("digits")  # a real set has one size: none in the link
    assert "size" not in d.session.to_state(["flash", "flash"], [{}, {}]).to_query()
    for bad in ("1", "x", "-5", "10000000"):  # out of bounds or not a number: the default
        assert AppState.from_query({"size": bad}).demo_size is None


def _wait_idle(d: Dashboard, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with d.runner._lock:
            busy = bool(d.runner._jobs)
        if not busy:
            time.sleep(0.2)  # a job's done callback may be between the thread and the views
            with d.runner._lock:
                if not d.runner._jobs:
                    return
        time.sleep(0.05)
    raise AssertionError(f"jobs still running after {timeout} s: {list(d.runner._jobs)}")


def test_rapid_switching_leaves_every_panel_consistent():
    # issue 18 (8): once a panel's dropdown showed "hyperbolic" while it computed scaled dot-product;
    # ten changes in a row on real threads, then idle: title, widgets, map and status all agree
    d = Dashboard(sync=False, demo_size=SMALL, state=REFERENCE_BACKEND)
    _wait_idle(d)
    panel = d.compare.panels[1]
    names = ["hyperbolic", "linear", "flash", "sliced_wasserstein", "hyperbolic", "scaled_dot_product", "linear",
             "local_global", "flash", "hyperbolic"]
    for name in names:
        panel.mechanism.value = name
        time.sleep(0.02)
    _wait_idle(d)
    last = names[-1]
    assert panel.mechanism.value == last and panel.instance.__class__ is type(workbench.make(last))
    assert workbench.registry[last].summary in panel.info.object
    assert panel.result is not None and panel.result.name == last, panel.result.name
    assert f" · {last} · " in panel.status.object, panel.status.object
    assert panel.widgets_box.objects[0].object is panel.instance  # the widgets edit the instance that runs
    assert d.current_state().mechanisms[1] == last  # and the link says so too


def test_the_report_states_one_entropy_figure_and_tabulates_its_numbers():
    # issue 18 (9): the Report showed "0.2943" and "entropy 0.19" and ended in a raw "numbers:" dump
    import re

    d = Dashboard(sync=True, demo_size=SMALL, state=REFERENCE_BACKEND)
    d.report.active = True
    d.report.compute()
    metrics = re.sub("<[^>]+>", " ", d.report.metrics.object)
    value = re.search(r"attention_entropy\s+(\S+)", metrics).group(1)
    rec = d.report.recommendation.object
    assert f"attention_entropy = {value} (H/ln n)" in rec  # the advice quotes the metric, as printed there
    assert "entropy_ratio" not in rec and "of its maximum" not in rec
    details = rec[rec.index("<details"):]
    assert "<table" in details and "norm_share" in details and "</details>" in details
    assert "entropy after calibration" in d.report.eval_table.object
