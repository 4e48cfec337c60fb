"""The dashboard's URL state: AppState round trips, falls back to defaults on garbage, never raises."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.url_state import AppState


def test_app_state_round_trip():
    s = AppState(dataset="tree", keys="clusters", mechanisms=["hyperbolic", "scaled_dot_product", "hyperbolic"],
                 params=[{"c": 0.5, "temperature": 2.0}, {"causal": True}, {"aggregation": "einstein"}],
                 queries="label", label="2", normalisation="l2", pca_dim=8, graph_kind="hnsw", graph_k=12, seed=3,
                 selected=17, n_queries=50, projection="pca")
    q = s.to_query()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in q.items())
    assert AppState.from_query(q) == s
    # web servers hand over lists of bytes
    assert AppState.from_query({k: [v.encode()] for k, v in q.items()}) == s
    assert AppState.from_query(AppState().to_query()) == AppState()


def test_app_state_from_garbage_falls_back_to_defaults():
    d = AppState()
    g = AppState.from_query({
        "data": "../../etc/passwd", "keys": "x", "m": "nope,,hyperbolic", "p0": "{not json", "p1": '{"c": "big"}',
        "nq": "many", "pca": "-4", "norm": "l3", "k": "1e9", "seed": "-1", "sel": "x", "q": "some", "graph": "ring",
    })
    assert g.dataset == d.dataset and g.keys == "same" and g.n_queries == d.n_queries and g.pca_dim is None
    assert g.normalisation == "none" and g.graph_k == 8 and g.seed == 0 and g.selected is None
    assert g.mechanisms[0] == "hyperbolic" and g.params[0] == {} and 2 <= len(g.mechanisms) <= 4
    five = AppState.from_query({"m": "flash,flash,linear,hyperbolic,scaled_dot_product"})
    assert len(five.mechanisms) == 4
    mixed = AppState.from_query({"m": "hyperbolic,flash", "p0": '{"c": 0.25, "tol": "x", "zzz": 1}'})
    assert mixed.params[0] == {"c": 0.25}
    assert AppState.from_query(None) == d and AppState.from_query("junk") == d


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.sampled_from(["data", "m", "p0", "p1", "nq", "pca", "k", "sel", "q", "label", "zz"]),
                       st.one_of(st.text(max_size=30), st.binary(max_size=10),
                                 st.lists(st.text(max_size=5), max_size=2))))
def test_app_state_never_raises(query):
    s = AppState.from_query(query)
    assert 2 <= len(s.mechanisms) <= 4 and len(s.params) == len(s.mechanisms)
    assert AppState.from_query(s.to_query()) == s


def test_calibration_flags_travel_in_the_link():
    s = AppState(mechanisms=["scaled_dot_product", "hyperbolic"], params=[{"scale": 8.5}, {}], calibrate=[False, True])
    q = s.to_query()
    assert q["cal"] == "01" and AppState.from_query(q) == s  # panel 1 keeps its scale, panel 2 fits its own
    assert "cal" not in AppState().to_query() and AppState().calibrate == [True, True]
    assert AppState.from_query({"m": "flash,linear", "cal": "0"}).calibrate == [False, True]
