"""The report on samples: above ``sample`` keys every metric is the mean over independent samples ± its standard error."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.data.demos import load_demo
from workbench.errors import ConfigurationError
from workbench.report import Report, analyze_keys, build_report
from workbench.report.build import _samples


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_sets_are_measured_whole(rng):
    x = _unit(rng, 300, 16)
    rep = analyze_keys(x, sample=500)
    assert rep.settings["sample"] is None and rep.errors == {}
    assert rep.to_dict() == analyze_keys(x, sample=None).to_dict()


def test_samples_are_sorted_disjoint_when_they_fit_and_seeded():
    a = _samples(1000, 300, 3, 5)
    assert [len(s) for s in a] == [300] * 3
    assert all(np.all(np.diff(s) > 0) for s in a)
    assert len(np.unique(np.concatenate(a))) == 900  # disjoint
    b = _samples(1000, 400, 3, 5)  # 1,200 > 1,000: independent samples, each without repeats
    assert all(len(np.unique(s)) == 400 for s in b)
    assert all(np.array_equal(u, v) for u, v in zip(a, _samples(1000, 300, 3, 5)))
    assert not np.array_equal(a[0], _samples(1000, 300, 3, 6)[0])


def test_sampled_metrics_are_the_mean_of_the_samples_reports(rng):
    # the definition: each metric of the sampled report = the mean of the exact reports of the
    # samples (same queries), its error = their standard deviation / √r
    x = _unit(rng, 900, 12)
    q = rng.standard_normal((4, 12))
    rep = build_report(q, x, sample=200, replicates=3, seed=3)
    rows = _samples(900, 200, 3, 3)
    parts = [build_report(q, x[r], sample=None, seed=3) for r in rows]
    assert rep.settings["sample"] == {"size": 200, "replicates": 3, "of": 900, "disjoint": True}
    assert rep.n_keys == 900
    for m in rep.metrics:
        vals = [p.metric(m.name).value for p in parts]
        assert m.value == pytest.approx(np.mean(vals), rel=1e-12, abs=1e-15)
        assert rep.errors[m.name] == pytest.approx(np.std(vals, ddof=1) / math.sqrt(3), rel=1e-9, abs=1e-15)
    assert rep.health_score == pytest.approx(np.mean([m.score for m in rep.metrics]))


def test_the_standard_error_shrinks_with_the_sample(rng):
    x = _unit(rng, 6000, 8)
    small = analyze_keys(x, sample=150, replicates=6, seed=2)
    large = analyze_keys(x, sample=900, replicates=6, seed=2)
    for name in ("topology_coherence", "ot_distance"):
        assert large.errors[name] < small.errors[name]


def test_sequence_order_is_read_in_whole_set_positions():
    # a sequence of 6,000 keys whose neighbours follow the row order: sampled at 1,500 keys the
    # locality is still measured in the whole set's positions, so Sparse is recommended with a
    # window of the same order as the exact report's
    ds = load_demo("sequence", n=6000)
    exact = analyze_keys(ds.x, sample=None)
    rep = analyze_keys(ds.x, sample=1500, replicates=2)
    assert exact.recommendation.choice == rep.recommendation.choice == "Sparse"
    assert rep.features["locality_window"] == exact.features["locality_window"] == math.ceil(6000 / 32)
    w_exact, w = exact.recommendation.params["window"], rep.recommendation.params["window"]
    assert 0.5 < w / w_exact < 2


def test_real_embeddings_sampled_and_exact_agree():
    x = np.asarray(load_demo("python_stdlib").x)
    exact = analyze_keys(x, sample=None)
    rep = analyze_keys(x, sample=600, replicates=3)
    assert rep.recommendation.choice == exact.recommendation.choice
    assert set(rep.errors) == {m.name for m in rep.metrics}


def test_memory_mapped_keys(tmp_path, rng):
    path = tmp_path / "keys.npy"
    np.save(path, _unit(rng, 3000, 16))
    keys = np.load(path, mmap_mode="r")
    rep = analyze_keys(keys, sample=1000, replicates=2)
    assert rep.n_keys == 3000 and rep.settings["sample"]["of"] == 3000


def test_sampled_reports_round_trip_through_json(rng):
    rep = analyze_keys(_unit(rng, 1200, 8), sample=400, replicates=2)
    back = Report.from_json(rep.to_json())
    assert back.errors == rep.errors and back.settings["sample"] == rep.settings["sample"]


@pytest.mark.parametrize("kw, name", [({"sample": "all"}, "sample"), ({"sample": 10}, "sample"),
                                      ({"sample": 1.5}, "sample"), ({"replicates": 0}, "replicates"),
                                      ({"replicates": 100}, "replicates")])
def test_bad_sampling_arguments_are_named(rng, kw, name):
    with pytest.raises(ConfigurationError, match=name):
        analyze_keys(_unit(rng, 100, 4), **kw)


def test_large_samples_use_the_ann_graph_with_the_same_bridging(rng, monkeypatch):
    # above AUTO_HNSW_ABOVE keys the shared graph comes from HNSW; H0 still bridges its components
    # by exact shortest edges, so on separated clusters it matches the exact kNN graph's report
    import workbench.autograph

    c = rng.standard_normal((12, 10)) * 8
    x = c[rng.integers(0, 12, 1500)] + rng.standard_normal((1500, 10))
    exact = analyze_keys(x, sample=None)
    monkeypatch.setattr(workbench.autograph, "AUTO_HNSW_ABOVE", 1000)
    ann = analyze_keys(x, sample=None)
    assert exact.settings["graph"] == "knn" and ann.settings["graph"] == "hnsw"
    assert ann.metric("h0_persistence").value == pytest.approx(exact.metric("h0_persistence").value, rel=0.02)
    assert ann.recommendation.choice == exact.recommendation.choice


def test_the_report_command_reads_a_file_lazily(tmp_path, rng, capsys):
    import json

    from workbench.cli import main

    np.save(tmp_path / "k.npy", _unit(rng, 3000, 16))
    rc = main(["report", str(tmp_path / "k.npy"), "--sample", "800", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "3,000 keys × 16, measured on 3 samples of 800 keys" in out and " ± " in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["settings"]["sample"]["size"] == 800 and rep["errors"]
    assert main(["report", "python_stdlib"]) == 0 and "recommendation:" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing.npy")]) == 2
    assert "missing.npy: no such file" in capsys.readouterr().err


def test_the_report_view_shows_errors_and_the_sampling(rng):
    from apps.report_view import metric_rows, metrics_html

    rep = analyze_keys(_unit(rng, 1500, 8), sample=500, replicates=2)
    rows = metric_rows(rep)
    assert all(r["std_error"] == pytest.approx(rep.errors[r["metric"]]) for r in rows)
    html = metrics_html(rep)
    assert " ± " in html and "2 random samples of 500 of the 1,500 keys" in html
    whole = analyze_keys(_unit(rng, 300, 8))
    assert " ± " not in metrics_html(whole) and all(r["std_error"] is None for r in metric_rows(whole))
