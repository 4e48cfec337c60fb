"""The evidence: candidates calibrated, run and scored; the denoising score against its definition."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import workbench
from workbench.data import load_demo
from workbench.errors import ConfigurationError, ShapeError
from workbench.report import analyze_keys, evaluate
from workbench.report.downstream import knn_label_accuracy
from workbench.report.evaluate import candidates, denoising_recall, strided_sample


@pytest.fixture(scope="module")
def text():
    ds = load_demo("python_stdlib")
    idx = strided_sample(ds.n, 600)
    return ds.x[idx], ds.labels[idx]


def test_every_candidate_is_calibrated_scored_and_reproducible(text):
    x, y = text
    report = analyze_keys(x)
    ev = evaluate(x, y, report=report)
    assert ev.measure == "knn_accuracy" and ev.recommended == report.recommendation.choice
    assert [r["choice"] for r in ev.rows] == ["raw", "Standard", "Sparse", "Geometric", "Diffusion"]
    assert ev.rows[0]["score"] == pytest.approx(knn_label_accuracy(x, y))
    for row in ev.rows[1:]:
        assert row["error"] is None and row["entropy"] == pytest.approx(0.5, abs=0.01)
        # the row's params rebuild the very mechanism that was scored
        m = workbench.make(row["mechanism"], **row["params"])
        assert row["score"] == pytest.approx(knn_label_accuracy(m(x, x, x), y), abs=1e-9)
    best = max(ev.rows[1:], key=lambda r: r["score"])
    assert ev.best == best["choice"]
    assert ev.regret == pytest.approx(best["score"] - ev.score_of(ev.recommended))
    table = ev.table()
    assert table[0]["score"] == max(r["score"] for r in ev.rows) and sum(r["recommended"] for r in table) == 1


def test_denoising_recall_against_its_definition(rng):
    clean = rng.standard_normal((60, 5))
    z = clean + 0.3 * rng.standard_normal((60, 5))
    k = 4

    def nn(a):
        d = ((a[:, None] - a[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(row, kind="stable")[:k]) for row in d]

    want = np.mean([len(a & b) / k for a, b in zip(nn(z), nn(clean))])
    assert denoising_recall(z, clean, k) == pytest.approx(want)
    assert denoising_recall(clean, clean, k) == 1.0


def test_without_labels_the_score_is_denoising_recall(text):
    x, _ = text
    ev = evaluate(x[:300], mechanisms=["scaled_dot_product", ("hyperbolic", {"c": 0.5})])
    assert ev.measure == "denoising_recall" and ev.recommended is None and ev.regret is None
    assert [r["choice"] for r in ev.rows] == ["raw", "scaled_dot_product", "hyperbolic"]
    assert all(0.0 <= r["score"] <= 1.0 for r in ev.rows)


def test_progress_and_cancel(text):
    x, y = text
    cancel = threading.Event()
    seen = []

    def progress(i, n):
        seen.append((i, n))
        cancel.set()  # stop after the first candidate

    ev = evaluate(x[:300], y[:300], progress=progress, cancel=cancel)
    assert seen == [(1, 4)] and ev.cancelled and len(ev.rows) == 2


def test_bad_input(text):
    x, y = text
    with pytest.raises(ShapeError, match="labels"):
        evaluate(x, y[:10])
    with pytest.raises(ConfigurationError, match="sample"):
        evaluate(x, y, sample=5)
    with pytest.raises(ShapeError, match="at least 10 keys"):
        evaluate(x[:5], y[:5])
    with pytest.raises(ConfigurationError, match="k: expected"):
        evaluate(x[:200], y[:200], k=500)


@pytest.fixture
def calibrations(monkeypatch):
    """The mechanism names passed to ``workbench.calibration.calibrate``, in call order."""
    import workbench.calibration as cal

    calls, real = [], cal.calibrate

    def counting(name, keys, **kw):
        calls.append(name)
        return real(name, keys, **kw)

    monkeypatch.setattr(cal, "calibrate", counting)
    return calls


def test_the_recommended_mechanism_is_calibrated_once(text, calibrations):
    x, y = text
    report = analyze_keys(x)
    rec = report.recommendation
    assert rec.mechanism in calibrations and rec.fitted is not None
    calibrations.clear()
    ev = evaluate(x, y, report=report)
    by_choice = {r["choice"]: r for r in ev.rows}
    # evaluate calibrates every candidate but the recommended one, which keeps the report's fit ...
    assert sorted(calibrations) == sorted(r["mechanism"] for r in ev.rows[1:] if r["choice"] != rec.choice)
    row = by_choice[rec.choice]
    assert row["params"] == rec.params and row["temperature"] == rec.fitted.temperature
    assert row["score"] == pytest.approx(knn_label_accuracy(workbench.make(rec.mechanism, **rec.params)(x, x, x), y),
                                         abs=1e-9)
    # ... and the other rows are what evaluating those candidates on their own gives
    others = [(c, name, params) for c, name, params in candidates(report) if c != rec.choice]
    alone = evaluate(x, y, mechanisms=[(name, params) for _, name, params in others])
    assert [r["score"] for r in alone.rows[1:]] == [by_choice[c]["score"] for c, _, _ in others]
    assert [r["params"] for r in alone.rows[1:]] == [by_choice[c]["params"] for c, _, _ in others]


def test_a_fit_on_other_keys_is_not_reused(text, calibrations):
    x, y = text
    report = analyze_keys(x[:250])  # another key set: its fit says nothing about x[:300]
    calibrations.clear()
    ev = evaluate(x[:300], y[:300], report=report)
    assert sorted(calibrations) == sorted(r["mechanism"] for r in ev.rows[1:])
    # without labels the mechanisms attend noisy keys, never the clean ones the report was made of
    report = analyze_keys(x[:300])
    calibrations.clear()
    ev = evaluate(x[:300], report=report)
    assert sorted(calibrations) == sorted(r["mechanism"] for r in ev.rows[1:])


def test_the_fit_stays_in_memory():
    from workbench.report import Report

    x = np.random.default_rng(3).standard_normal((80, 6))
    report = analyze_keys(x)
    assert report.recommendation.fitted is not None and "fitted" not in report.recommendation.to_dict()
    back = Report.from_json(report.to_json())
    assert back == report and back.recommendation.fitted is None
