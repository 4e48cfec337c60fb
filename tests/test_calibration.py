"""Calibration: the temperature convention, the entropy reached (also on the shipped real sets), domains, bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.calibration import DENSE_SAMPLE, calibrate, self_attention_entropy, solve_temperature
from workbench.data import load_demo
from workbench.entropy import normalised_entropy
from workbench.errors import ConfigurationError, DataError, NumericalError, ShapeError


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def full_entropy(mech, x):
    """Mean H/ln n of self-attention over all of ``x`` (exact, dense)."""
    return self_attention_entropy(mech, x)


@pytest.fixture(scope="module")
def text():
    """A slice of the shipped sentence embeddings (unit norm, 384-d): every third row, 432 keys."""
    return load_demo("scipy_api").x[::3]


def test_defaults_are_uniform_on_unit_norm_embeddings_and_calibration_fixes_it(text):
    sdp = workbench.make("scaled_dot_product")
    w = sdp.weights(text, text)  # the fault: s = 1/√d makes every weight ≈ 1/n
    p = w.astype(np.float64)
    assert np.mean(-np.sum(p * np.log(p), axis=1)) / math.log(len(text)) > 0.99
    assert full_entropy(sdp, text) > 0.99
    cal = workbench.calibrate("scaled_dot_product", text)
    assert full_entropy(cal, text) == pytest.approx(0.5, abs=0.03)
    assert cal.calibration.entropy == pytest.approx(0.5, abs=1e-3)


def test_the_temperature_convention(text):
    """T divides the logits: scale = (1/√d)/T for dot products, the temperature itself elsewhere;
    make(name, **calibration.params) rebuilds the very same mechanism."""
    d = text.shape[1]
    sdp = workbench.calibrate("scaled_dot_product", text)
    c = sdp.calibration
    assert c.parameter == "scale" and sdp.scale == pytest.approx(1 / math.sqrt(d) / c.temperature, rel=1e-12)
    assert sdp.current_temperature(d) == pytest.approx(c.temperature)
    # the weights are softmax(q·k / (√d T)), written out
    q = text[:5]
    z = q @ text.T / (math.sqrt(d) * c.temperature)
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(sdp.weights(q, text), want / want.sum(1, keepdims=True), rtol=2e-4, atol=1e-7)
    again = workbench.make("scaled_dot_product", **c.params)
    np.testing.assert_array_equal(again.weights(q, text), sdp.weights(q, text))
    mh = workbench.calibrate("multi_head", text, num_heads=8)  # the head width sets s₀
    assert mh.scale == pytest.approx(1 / math.sqrt(d // 8) / mh.calibration.temperature, rel=1e-12)
    hyp = workbench.calibrate("hyperbolic", text)
    assert hyp.calibration.parameter == "temperature" and hyp.temperature == hyp.calibration.temperature


@pytest.mark.parametrize("target", (0.3, 0.7))
def test_other_targets(text, target):
    m = workbench.calibrate("scaled_dot_product", text, target_entropy=target)
    assert full_entropy(m, text) == pytest.approx(target, abs=0.03)


@pytest.mark.parametrize("name", workbench.list_mechanisms())
def test_every_mechanism_reaches_the_target_on_real_embeddings(name, text):
    """Each registered mechanism, calibrated at 0.5 on real sentence embeddings: its own map over
    every key has mean normalised entropy in [0.3, 0.7] (the issue's target; see the benchmark)."""
    x = text[:300] if name in ("graph_rope",) else text  # graph_rope attends every reachable node: O(n²·d)
    m = workbench.calibrate(name, x)
    assert 0.3 <= full_entropy(m, x) <= 0.7, m.calibration.describe()
    workbench.make(name, **m.calibration.params)  # the record rebuilds it


def test_unit_norm_inputs_never_land_on_the_ball_boundary(text):
    h = workbench.calibrate("hyperbolic", text)
    radius = 1 / math.sqrt(h.c)
    assert np.linalg.norm(text, axis=1).max() <= 0.95 * radius + 1e-6
    assert h.input_notes(text, text) == []  # nothing projected
    assert "0.95 of its radius" in h.calibration.domain
    # the default projects them onto the boundary, where each query attends itself alone
    assert workbench.make("hyperbolic").input_notes(text, text)
    # no longer the identity: a distance kernel still gives each query's own key the largest weight
    # (distance 0 against ≥ 5 for any other unit vector here), but 40 % goes to the others
    w = h.weights(text[:50], text)
    default = workbench.make("hyperbolic").weights(text[:50], text)
    assert np.mean(np.max(default, axis=1)) > 0.99 and np.mean(np.max(w, axis=1)) < 0.7
    inside = 0.5 * text  # already inside the unit ball: the curvature is kept
    assert "c" not in workbench.calibrate("hyperbolic", inside).calibration.params


def test_a_sample_estimates_the_entropy_over_many_keys(rng):
    """More keys than max_keys: the estimate from the sample matches the exact entropy over all keys."""
    base = unit(rng, 300, 64)
    x = base[rng.integers(0, 300, 6000)] + 0.1 * rng.standard_normal((6000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for name in ("scaled_dot_product", "multi_head"):  # one softmax per row; an average of heads (refined)
        m = workbench.calibrate(name, x, max_keys=1000, queries=128)
        assert m.calibration.keys == 1000 and m.calibration.n_keys == 6000
        q = x[rng.choice(6000, 200, replace=False)]
        exact = float(np.mean(normalised_entropy(m.weights(q, x))))
        assert exact == pytest.approx(0.5, abs=0.04), (name, m.calibration.notes)


def test_graph_and_windowed_mechanisms_sample_nodes_and_blocks(text):
    g = workbench.calibrate("edge_featured", text)
    assert g.calibration.sampling == "nodes" and g.calibration.keys == min(len(text), DENSE_SAMPLE)
    lg = workbench.calibrate("local_global", text, window=16)
    assert lg.calibration.sampling == "block" and lg.window == 16
    assert workbench.calibrate("scaled_dot_product", text).calibration.sampling == "keys"


def test_structure_is_kept_and_domain_rules_apply(text):
    d = workbench.calibrate("diffusion", text, diffusion_time=3.0, k=8)
    assert d.diffusion_time == 3.0 and d.k == 8 and d.calibration.parameter == "temperature"
    ot = workbench.calibrate("centroid_ot", text)
    assert ot.num_centroids >= math.ceil(2 * len(text) ** 0.5)  # enough clusters for entropy 0.5
    assert "num_centroids" in ot.calibration.domain


def test_moe_calibrates_its_experts(text):
    m = workbench.calibrate("moe", text)
    assert m.calibration.parameter == "expert_params"
    assert "scale" in m.expert_params["scaled_dot_product"] and "temperature" in m.expert_params["hyperbolic"]
    assert 0.3 <= full_entropy(m, text) <= 0.7


def test_a_mechanism_instance_is_copied_not_changed(text):
    base = workbench.make("scaled_dot_product", causal=True)
    m = workbench.calibrate(base, text)
    assert base.scale is None and m.causal and m.scale is not None and m is not base


def test_solve_temperature_out_of_reach():
    t, reached, notes = solve_temperature(lambda t: 0.8, 0.5, 1.0)
    assert reached == 0.8 and notes and "out of reach" in notes[0]
    t, reached, notes = solve_temperature(lambda t: t / (1 + t), 0.5, 1e-3)  # entropy = T/(1+T)
    assert t == pytest.approx(1.0, rel=2e-3) and not notes


def test_bad_input_names_the_argument(text):
    with pytest.raises(ConfigurationError, match="target_entropy"):
        calibrate("scaled_dot_product", text, target_entropy=1.5)
    with pytest.raises(ConfigurationError, match="target_entropy"):
        calibrate("scaled_dot_product", text, target_entropy=True)
    with pytest.raises(ConfigurationError, match="keys: calibration needs at least 2 keys"):
        calibrate("scaled_dot_product", text[:1])
    with pytest.raises(ShapeError, match="keys"):
        calibrate("scaled_dot_product", text[0])
    with pytest.raises(NumericalError, match="keys"):
        calibrate("scaled_dot_product", np.full((4, 3), np.nan))
    with pytest.raises(ConfigurationError, match="queries"):
        calibrate("scaled_dot_product", text, queries=0)
    with pytest.raises(ConfigurationError, match="max_keys"):
        calibrate("scaled_dot_product", text, max_keys=10**9)
    big = np.ones((100_000, 2), np.float32)
    with pytest.raises(ConfigurationError, match="queries, max_keys"):
        calibrate("scaled_dot_product", big, queries=100_000, max_keys=100_000)
    with pytest.raises(ConfigurationError, match="no mechanism 'nope'"):
        calibrate("nope", text)
    with pytest.raises(ConfigurationError, match="name_or_mechanism"):
        calibrate(3, text)
    with pytest.raises(ConfigurationError, match="unknown parameter"):
        calibrate("scaled_dot_product", text, temprature=2)
    with pytest.raises(DataError, match="keys"):
        calibrate("scaled_dot_product", np.array([["a", "b"], ["c", "d"]]))


def test_calibrate_on_100k_keys_is_bounded(rng):
    """The sample bounds the work: 100,000 × 384 keys calibrate from 256 queries × 4,096 keys
    (the time itself is measured in benchmarks/real_data.py, not asserted here)."""
    x = unit(rng, 100_000, 384)
    m = workbench.calibrate("scaled_dot_product", x)
    assert (m.calibration.queries, m.calibration.keys, m.calibration.n_keys) == (256, 4096, 100_000)
    q = x[rng.choice(100_000, 64, replace=False)]
    assert float(np.mean(normalised_entropy(m.weights(q, x)))) == pytest.approx(0.5, abs=0.05)


def test_the_record_names_the_keys_it_was_fitted_to(rng):
    from workbench.calibration import keys_digest

    x = rng.standard_normal((60, 4)).astype(np.float32)
    cal = calibrate("scaled_dot_product", x).calibration
    # the same values in float64 give the same digest; other keys do not
    assert cal.keys_digest == keys_digest(x) == keys_digest(x.astype(np.float64))
    assert keys_digest(x[:59]) != cal.keys_digest and keys_digest(x + 1) != cal.keys_digest
