"""Metric values: status agrees with direction, the smooth score, both profiles' numbers (docs/upstream.md#report)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigurationError
from workbench.report import HIGHER_IS_WORSE, LOWER_IS_WORSE, METRIC_NAMES, MetricSpec, MetricValue, profile_specs
from workbench.report.metrics import TWO_SIDED


def _flat(v):
    return tuple(v) if isinstance(v, tuple) else (v,)


def spec_grid(spec):
    lo, hi = spec.healthy
    pts = {lo, hi, *_flat(spec.warning), *_flat(spec.critical), 0.0}
    span = max(abs(x) for x in pts) + 1.0
    return np.unique(np.concatenate([np.linspace(-span, 2 * span, 301), list(pts),
                                     [p + e for p in pts for e in (-1e-9, 1e-9)]]))


# -- upstream's "Tests assert" list, under the compat constructor ------------------------------------

def test_upstream_coherence_example_is_healthy_and_ok():
    m = MetricValue.from_thresholds("TopologyCoherence", 0.7, 0, 1, 0.3, 0.1)
    assert m.direction == LOWER_IS_WORSE
    assert m.normalized == pytest.approx(0.7, abs=1e-5)
    assert m.is_healthy and m.status == "OK" and not m.is_critical and not m.is_warning
    assert m.score == 1.0


def test_upstream_ot_example_is_a_warning_not_critical():
    m = MetricValue.from_thresholds("OTDistance", 5, 0, 10, 3, 7)
    assert m.direction == HIGHER_IS_WORSE
    assert m.is_warning and not m.is_critical and m.status == "WARNING"
    assert m.score == pytest.approx((7 - 5) / (7 - 3))


# -- status and direction ---------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ("default", "compat"))
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_status_agrees_with_direction(profile, name):
    spec = profile_specs(profile, n_keys=100)[name]
    for v in spec_grid(spec):
        m = spec.evaluate(v)
        if spec.direction == TWO_SIDED:  # past either end
            def past(x, pair):
                return x < pair[0] or x > pair[1]
            want = "CRITICAL" if past(v, spec.critical) else ("WARNING" if past(v, spec.warning) else "OK")
        else:
            worse = (lambda a, b: a > b) if spec.direction == HIGHER_IS_WORSE else (lambda a, b: a < b)
            want = "CRITICAL" if worse(v, spec.critical) else ("WARNING" if worse(v, spec.warning) else "OK")
        assert m.status == want, (name, v)
        assert m.is_critical == (want == "CRITICAL") and m.is_warning == (want == "WARNING")
        lo, hi = spec.healthy
        assert m.is_healthy == (lo <= v <= hi)
        assert 0.0 <= m.normalized <= 1.0


@pytest.mark.parametrize("profile", ("default", "compat"))
def test_healthy_inputs_are_not_critical(profile):
    """Upstream flagged coherence > 0.1 and entropy > 0.2 as critical: never again."""
    specs = profile_specs(profile, n_keys=100)
    assert specs["topology_coherence"].evaluate(0.9).status == "OK"
    top = 1.0 if profile == "default" else math.log(100)
    assert specs["attention_entropy"].evaluate(0.9 * top).status == "OK"
    assert specs["topology_coherence"].evaluate(0.05).status == "CRITICAL"
    if profile == "compat":
        assert specs["attention_entropy"].evaluate(0.05).status == "CRITICAL"


def test_entropy_is_two_sided_in_the_default_profile():
    """Near one-hot and near-uniform attention are both warnings; perfectly uniform is critical
    (scaled dot-product at its default scale on unit-norm embeddings: 'healthy' no more)."""
    spec = profile_specs("default", n_keys=2429)["attention_entropy"]
    status = {v: spec.evaluate(v).status for v in (0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.9999)}
    assert status == {0.01: "CRITICAL", 0.05: "WARNING", 0.1: "OK", 0.5: "OK", 0.9: "OK", 0.95: "WARNING",
                      0.9999: "CRITICAL"}
    assert spec.evaluate(0.5).score == 1.0 and spec.evaluate(0.9999).score == 0.0
    assert spec.evaluate(0.94).score == pytest.approx((0.98 - 0.94) / (0.98 - 0.9))
    assert spec.evaluate(0.06).score == pytest.approx((0.06 - 0.02) / (0.1 - 0.02))


# -- the smooth score ------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ("default", "compat"))
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_score_is_one_when_healthy_zero_past_critical_linear_between(profile, name):
    spec = profile_specs(profile, n_keys=100)[name]
    if spec.direction == TWO_SIDED:  # each side as a one-sided metric
        (bl, bh), (cl, ch) = spec.bad_bound, spec.critical
        for b, c in ((bl, cl), (bh, ch)):
            assert spec.evaluate(b).score == 1.0
            assert spec.evaluate(c).score == pytest.approx(0.0, abs=1e-12)
            assert spec.evaluate(b + 0.25 * (c - b)).score == pytest.approx(0.75)
            assert spec.evaluate(c + (c - b)).score == 0.0
        return
    b, c = spec.bad_bound, spec.critical
    assert spec.evaluate(b).score == 1.0
    assert spec.evaluate(c).score == pytest.approx(0.0, abs=1e-12)
    assert spec.evaluate(b + 0.25 * (c - b)).score == pytest.approx(0.75)
    beyond = c + (c - b) if spec.direction == HIGHER_IS_WORSE else c - abs(c - b) - 1
    assert spec.evaluate(beyond).score == 0.0
    lo, hi = spec.healthy
    inside = [v for v in np.linspace(lo, hi, 11) if spec.evaluate(v).status == "OK"]
    assert all(spec.evaluate(v).score == 1.0 for v in inside)


@pytest.mark.parametrize("profile", ("default", "compat"))
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_score_is_monotone_and_lipschitz(profile, name):
    spec = profile_specs(profile, n_keys=100)[name]
    grid = spec_grid(spec)
    s = np.array([spec.evaluate(v).score for v in grid])
    assert np.all((s >= 0) & (s <= 1))
    if spec.direction == TWO_SIDED:  # rises to the healthy band, falls after it
        mid = 0.5 * sum(spec.healthy)
        up, down = s[grid <= mid], s[grid >= mid]
        assert np.all(np.diff(up) >= -1e-12) and np.all(np.diff(down) <= 1e-12)
        slope = max(1.0 / abs(c - b) for b, c in zip(spec.bad_bound, spec.critical))
        assert np.all(np.abs(np.diff(s)) <= slope * np.diff(grid) + 1e-9)
        return
    step = np.diff(s) if spec.direction == HIGHER_IS_WORSE else -np.diff(s)
    assert np.all(step <= 1e-12)  # never better as the value gets worse
    slope = 1.0 / abs(spec.critical - spec.bad_bound)
    assert np.all(np.abs(np.diff(s)) <= slope * np.diff(grid) + 1e-9)  # continuous: no jumps


def test_warning_inside_the_healthy_range_wins():
    """README: OT healthy up to 0.5 but warning above 0.3 — the score falls from 0.3."""
    spec = profile_specs("default")["ot_distance"]
    assert spec.bad_bound == 0.3
    m = spec.evaluate(0.4)
    assert m.is_healthy and m.status == "WARNING" and m.score == pytest.approx(0.75)


# -- the numbers of both profiles ---------------------------------------------------------------------

DEFAULT = {  # README's intended thresholds, scale-free (docs/upstream.md#report), H0 ours
    "ot_distance": (HIGHER_IS_WORSE, (0, 0.5), 0.3, 0.7),
    "topology_coherence": (LOWER_IS_WORSE, (0.5, 1.0), 0.3, 0.1),
    "ib_kl": (HIGHER_IS_WORSE, (0, 0.2), 0.5, 1.0),
    "diffusion_energy": (HIGHER_IS_WORSE, (0, 1.0), 2.0, 5.0),
    "attention_entropy": (TWO_SIDED, (0.1, 0.9), (0.1, 0.9), (0.02, 0.98)),
    "h0_persistence": (HIGHER_IS_WORSE, (0, 1.5), 2.0, 5.0),
}
COMPAT = {  # upstream's table
    "ot_distance": (HIGHER_IS_WORSE, (0, 10), 5, 8),
    "topology_coherence": (LOWER_IS_WORSE, (0, 1), 0.3, 0.1),
    "ib_kl": (HIGHER_IS_WORSE, (0, 100), 50, 80),
    "diffusion_energy": (HIGHER_IS_WORSE, (0, 100), 50, 80),
    "attention_entropy": (LOWER_IS_WORSE, None, 0.5, 0.2),
    "h0_persistence": (HIGHER_IS_WORSE, (0, 100), 50, 80),
}


@pytest.mark.parametrize("profile, table", [("default", DEFAULT), ("compat", COMPAT)])
@pytest.mark.parametrize("n", (1, 2, 50))
def test_profile_numbers(profile, table, n):
    specs = profile_specs(profile, n_keys=n)
    assert tuple(specs) == METRIC_NAMES
    for name, (direction, healthy, w, c) in table.items():
        s = specs[name]
        if healthy is None:  # compat entropy: 0 .. max(ln n, 1)
            healthy = (0, max(math.log(n), 1.0))
        assert (s.direction, s.healthy, s.warning, s.critical) == (direction, tuple(map(float, healthy)), w, c)


def test_bad_specs_and_values():
    with pytest.raises(ConfigurationError, match="direction"):
        MetricSpec("x", "sideways", (0, 1), 0.5, 0.8)
    with pytest.raises(ConfigurationError, match="warning"):
        MetricSpec("x", HIGHER_IS_WORSE, (0, 1), 0.9, 0.8)
    with pytest.raises(ConfigurationError, match="warning"):
        MetricSpec("x", LOWER_IS_WORSE, (0, 1), 0.1, 0.3)
    with pytest.raises(ConfigurationError, match="healthy"):
        MetricSpec("x", HIGHER_IS_WORSE, (1, 0), 0.5, 0.8)
    with pytest.raises(ConfigurationError, match="value"):
        MetricSpec("x", HIGHER_IS_WORSE, (0, 1), 0.5, 0.8).evaluate(float("nan"))
    with pytest.raises(ConfigurationError, match="profile"):
        profile_specs("strict")


def test_round_trip_of_a_metric():
    m = profile_specs("default")["ib_kl"].evaluate(0.7)
    d = m.to_dict()
    assert d["status"] == "WARNING" and d["direction"] == HIGHER_IS_WORSE
    assert MetricValue.from_dict(d) == m
    e = profile_specs("default")["attention_entropy"].evaluate(0.95)
    assert MetricValue.from_dict(json.loads(json.dumps(e.to_dict()))) == e


def test_bad_two_sided_specs():
    with pytest.raises(ConfigurationError, match="pair"):
        MetricSpec("x", TWO_SIDED, (0.1, 0.9), 0.1, 0.02)
    with pytest.raises(ConfigurationError, match="two-sided"):
        MetricSpec("x", TWO_SIDED, (0.1, 0.9), (0.1, 0.9), (0.2, 0.98))


# -- any thresholds: score in [0, 1], monotone, status consistent (hypothesis) -----------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([HIGHER_IS_WORSE, LOWER_IS_WORSE]), st.lists(finite, min_size=4, max_size=4),
       st.lists(finite, min_size=2, max_size=2))
def test_any_spec_scores_monotonically(direction, bounds, values):
    lo, hi, w, c = bounds
    lo, hi = min(lo, hi), max(lo, hi)
    w, c = (min(w, c), max(w, c)) if direction == HIGHER_IS_WORSE else (max(w, c), min(w, c))
    spec = MetricSpec("m", direction, (lo, hi), w, c)
    a, b = sorted(values)  # b is worse than a for higher-is-worse
    sa, sb = spec.evaluate(a).score, spec.evaluate(b).score
    assert 0.0 <= sa <= 1.0 and 0.0 <= sb <= 1.0
    assert (sb <= sa) if direction == HIGHER_IS_WORSE else (sa <= sb)
    rank = {"OK": 0, "WARNING": 1, "CRITICAL": 2}
    ra, rb = rank[spec.evaluate(a).status], rank[spec.evaluate(b).status]
    assert (rb >= ra) if direction == HIGHER_IS_WORSE else (ra >= rb)
    for v in (a, b):
        m = spec.evaluate(v)
        if m.status == "CRITICAL":
            assert m.score == 0.0 or m.value == m.critical
