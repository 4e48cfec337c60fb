"""``topology_gated``: each mode against its definition, the gating per query, state, and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench import topology as T
from workbench.errors import ConfigurationError, WorkbenchError

BACKENDS = ("numpy", "numba")
STABLE = dict(stable_threshold=0.0, freeze_threshold=0.0)  # c >= 0 always: Stable
CAUTIOUS = dict(stable_threshold=1.0, freeze_threshold=0.0, hysteresis=0.0)  # 0 < c < 1: Cautious
FREEZE = dict(stable_threshold=1.0, freeze_threshold=1.0)  # c < 1: Freeze


def data(rng, b=2, lq=7, lk=11, d=5, dv=3, dtype=np.float64):
    return tuple(rng.standard_normal(s).astype(dtype) for s in ((b, lq, d), (b, lk, d), (b, lk, dv)))


def definition(q, k, v, mode, allowed, scale, width):
    """One query, float64 loops: softmax over all / top-width allowed keys, or the argmax value."""
    idx = [j for j in range(len(k)) if allowed[j]]
    w = np.zeros(len(k))
    if not idx:
        return np.zeros(v.shape[1]), w
    dots = {j: float(np.dot(q.astype(np.float64), k[j].astype(np.float64))) for j in idx}
    if mode == "freeze":
        best = max(idx, key=lambda j: (dots[j], -j))  # largest, smaller index on ties
        w[best] = 1.0
    else:
        if mode == "cautious":
            idx = sorted(idx, key=lambda j: (-dots[j], j))[:width]
        m = max(dots[j] for j in idx)
        z = sum(math.exp(scale * (dots[j] - m)) for j in idx)
        for j in idx:
            w[j] = math.exp(scale * (dots[j] - m)) / z
    return w @ v.astype(np.float64), w


def check_against_definition(mech, q, k, v, mask, width, tol):
    out = mech(q, k, v, mask=mask)
    modes = mech.trace.modes
    w = mech.weights(q, k, mask=mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) / mech.temperature
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            allowed = np.ones(k.shape[1], bool) if mask is None else np.broadcast_to(mask, w.shape)[b, i]
            ref_o, ref_w = definition(q[b, i], k[b], v[b], modes[b, i], allowed, scale, width)
            np.testing.assert_allclose(out[b, i], ref_o, atol=tol)
            np.testing.assert_allclose(w[b, i], ref_w, atol=tol)
    return modes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_mode_is_scaled_dot_product(backend, dtype, rng):
    """Appendix A: topology gating in Stable mode with T = 1 equals scaled dot-product attention."""
    q, k, v = data(rng, dtype=dtype)
    mask = rng.random((2, 7, 11)) < 0.7
    mask[1, 3] = False
    gated = workbench.make("topology_gated", backend=backend, **STABLE)
    sdpa = workbench.make("scaled_dot_product", backend="numpy")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gated(q, k, v, mask=mask), sdpa(q, k, v, mask=mask), atol=tol)
    np.testing.assert_allclose(gated.weights(q, k, mask=mask), sdpa.weights(q, k, mask=mask), atol=tol)
    assert (gated.trace.modes == "stable").all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("base_width, factor", [(6, 0.5), (64, 0.5), (5, 0.2), (8, 1.0)])
def test_cautious_mode_is_top_w_softmax(backend, base_width, factor, rng):
    q, k, v = data(rng, lk=13)
    mask = rng.random((2, 7, 13)) < 0.6  # some rows have fewer allowed keys than W
    mask[0, 2] = False
    mech = workbench.make("topology_gated", backend=backend, base_width=base_width, cautious_width_factor=factor,
                          temperature=0.7, **CAUTIOUS)
    width = max(1, int(math.floor(base_width * factor)))
    modes = check_against_definition(mech, q, k, v, mask, width, 1e-12)
    assert (modes == "cautious").all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_freeze_mode_copies_the_argmax_value(backend, rng):
    q, k, v = data(rng, lk=9)
    mask = rng.random((2, 7, 9)) < 0.5
    mask[1, 0] = False
    mech = workbench.make("topology_gated", backend=backend, **FREEZE)
    modes = check_against_definition(mech, q, k, v, mask, 0, 0.0)
    assert "freeze" in modes and set(modes.ravel()) <= {"freeze", "stable"}  # one-key windows: c = 1, Stable
    out = mech(q, k, v)
    best = np.argmax(np.einsum("bid,bjd->bij", q, k), axis=-1)
    np.testing.assert_array_equal(out, np.take_along_axis(v, best[..., None], axis=1))  # bit-exact copy


def test_ties_break_towards_the_smaller_index():
    k = np.array([[1.0, 0], [0, 1], [1, 0], [1, 0], [0.5, 0]])
    v = np.arange(5.0)[:, None]
    q = np.array([1.0, 0.0])
    frz = workbench.make("topology_gated", **FREEZE)
    assert frz(q, k, v)[0] == 0.0
    caut = workbench.make("topology_gated", base_width=2, cautious_width_factor=1.0, **CAUTIOUS)
    w = caut.weights(q, k)
    np.testing.assert_allclose(w, [0.5, 0, 0.5, 0, 0])  # keys 0 and 2 of the three tied at the top


@pytest.mark.parametrize("backend", BACKENDS)
def test_mode_follows_the_window_coherence(backend, rng):
    """Per batch element: a coherent ramp (Stable), an off-centre cloud (Cautious), a centred one (Freeze)."""
    n, d = 24, 16
    ramp = np.linspace(0.5, 3.0, n)[:, None] * rng.standard_normal(d)[None] + 0.01 * rng.standard_normal((n, d))
    cloud = rng.standard_normal((n, d)) + rng.standard_normal(d)  # cosines ~0.5
    centred = rng.standard_normal((n, d))  # cosines ~0, neighbours anywhere in the sequence
    k = np.stack([ramp, cloud, centred])
    q = rng.standard_normal((3, 5, d))
    v = rng.standard_normal((3, n, 2))
    mech = workbench.make("topology_gated", backend=backend)
    mech(q, k, v)
    expected = []
    for b in range(3):
        c = T.window_coherence(k[b], 8, T.DEFAULT_METRICS)
        expected.append(T.AttentionPolicy().determine_mode(c).value)
        np.testing.assert_allclose(mech.trace.coherence[b], c, rtol=0, atol=1e-12)
        assert (mech.trace.modes[b] == expected[-1]).all()
    assert expected == ["stable", "cautious", "freeze"]
    assert list(mech.mode) == expected
    assert mech.trace.modes.shape == (3, 5) and len(mech.policies) == 3


def test_upstream_cases():
    ramp = np.tile(0.1 * np.arange(20)[:, None], (1, 32)).astype(np.float32)
    mech = workbench.make("topology_gated")
    out = mech(ramp[3], ramp, ramp)
    assert out.shape == (32,) and isinstance(mech.mode, str)
    eye = np.eye(10, dtype=np.float32)
    mech = workbench.make("topology_gated", stable_threshold=0.9, freeze_threshold=0.8)
    mech(eye[0], eye, eye)
    assert mech.mode in ("freeze", "cautious")


def test_refresh_every_update_period_tokens_across_calls(rng):
    k = rng.standard_normal((12, 4))
    v = rng.standard_normal((12, 2))
    mech = workbench.make("topology_gated", persistent=True, update_period=4)
    for t in range(10):
        mech(rng.standard_normal(4), k, v)
    assert [r.step for r in mech.history] == [0, 4, 8]  # upstream: calls 1, 6, 11
    assert mech.policies[0].steps == 10
    mech.reset()
    assert mech.mode is None and mech.history == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_causal_batch_equals_streaming_the_prefixes(backend, rng):
    """One causal call over L tokens = L persistent one-query calls on the growing key prefix."""
    L, d = 30, 6
    walk = np.cumsum(rng.standard_normal((L, d)), axis=0)  # coherence changes along the sequence
    keys = np.concatenate([walk[:15], rng.standard_normal((15, d)) * 4])
    q = rng.standard_normal((L, d))
    v = rng.standard_normal((L, 3))
    causal = np.tril(np.ones((L, L), bool))
    common = dict(update_period=3, k_neighbors=4, hysteresis=0.02, backend=backend)
    batched = workbench.make("topology_gated", **common)
    out = batched(q, keys, v, mask=causal)
    stream = workbench.make("topology_gated", persistent=True, **common)
    outs, modes = [], []
    for t in range(L):
        outs.append(stream(q[t], keys[:t + 1], v[:t + 1]))
        modes.append(stream.mode)
    np.testing.assert_allclose(out, np.stack(outs), atol=1e-12)
    assert list(batched.trace.modes) == modes
    assert [(r.step, r.mode) for r in batched.history] == [(r.step, r.mode) for r in stream.history]
    assert len(set(modes)) > 1  # the test exercises a mode change


def test_explicit_state_in_and_out(rng):
    q, k, v = data(rng, b=2, lq=3)
    mech = workbench.make("topology_gated", update_period=2)
    out1, s1 = mech.gated(q, k, v)
    before = [p.history for p in s1]
    out2, s2 = mech.gated(q, k, v, state=s1)
    assert [p.history for p in s1] == before  # the input state is not modified
    assert [p.steps for p in s2] == [6, 6] and mech.policies == []  # the instance holds nothing
    pers = workbench.make("topology_gated", update_period=2, persistent=True)
    np.testing.assert_array_equal(pers(q, k, v), out1)
    np.testing.assert_array_equal(pers(q, k, v), out2)
    assert [p.history for p in pers.policies] == [p.history for p in s2]
    with pytest.raises(ConfigurationError, match="state"):
        mech.gated(q, k, v, state=s1[:1])


def test_weights_is_a_dry_run_and_batch_shapes_must_match(rng):
    q, k, v = data(rng, b=2, lq=3)
    mech = workbench.make("topology_gated", persistent=True)
    mech(q, k, v)
    steps = [p.steps for p in mech.policies]
    mech.weights(q, k)
    assert [p.steps for p in mech.policies] == steps
    with pytest.raises(ConfigurationError) as e:
        mech(q[:1], k[:1], v[:1])
    assert "persistent" in str(e.value)
    fresh = workbench.make("topology_gated")
    a = fresh(q, k, v)
    np.testing.assert_array_equal(fresh(q, k, v), a)  # not persistent: a pure function of its inputs


def test_trace_shapes():
    rng = np.random.default_rng(0)
    mech = workbench.make("topology_gated")
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 2))
    mech(q, k, v)
    assert mech.trace.modes.shape == (2, 3, 4) and mech.trace.coherence.shape == (2, 3, 4)
    assert mech.mode.shape == (2, 3)
    mech(q[0, 0, 0], k[0, 0], v[0, 0])
    assert mech.trace.modes.shape == () and isinstance(mech.mode, str)


def test_fully_masked_queries_leave_the_policy_waiting(rng):
    q, k, v = data(rng, b=1, lq=6, lk=8)
    mask = np.ones((6, 8), bool)
    mask[:2] = False
    mech = workbench.make("topology_gated", update_period=4)
    out = mech(q, k, v, mask=mask)
    assert (out[0, :2] == 0).all()
    assert [r.step for r in mech.history] == [2]  # the first refresh waits for a query with keys
    assert np.isnan(mech.trace.coherence[0, :2]).all()


def _check(excinfo, arg):
    assert issubclass(excinfo.type, WorkbenchError)
    assert arg in str(excinfo.value)


@pytest.mark.parametrize("params, arg", [
    ({"metrics": []}, "metrics"), ({"metrics": ["bogus"]}, "metrics"), ({"temperature": -1.0}, "temperature"),
    ({"temperature": 0.0}, "temperature"), ({"k_neighbors": 0}, "k_neighbors"), ({"update_period": 0}, "update_period"),
    ({"stable_threshold": 0.2, "freeze_threshold": 0.5}, "freeze_threshold"), ({"hysteresis": -0.1}, "hysteresis"),
    ({"base_width": 0}, "base_width"), ({"cautious_width_factor": 0.0}, "cautious_width_factor"),
    ({"history_size": 0}, "history_size"),
])
def test_bad_parameters(params, arg):
    with pytest.raises(ConfigurationError) as e:
        workbench.make("topology_gated", **params)
    _check(e, arg)


def test_parameters_changed_after_construction_are_checked(rng):
    q, k, v = data(rng)
    mech = workbench.make("topology_gated")
    mech.metrics = []
    with pytest.raises(ConfigurationError) as e:
        mech(q, k, v)
    _check(e, "metrics")
    mech = workbench.make("topology_gated")
    mech.freeze_threshold = 0.9
    with pytest.raises(ConfigurationError) as e:
        mech.weights(q, k)
    _check(e, "freeze_threshold")
