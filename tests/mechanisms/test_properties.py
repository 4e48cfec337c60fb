"""Property-based tests of every registered mechanism on both CPU backends.

Weights are distributions over the allowed keys, masked keys get exactly zero, fully masked
rows give zeros (never NaN), permutation invariance where it holds, batching equals looping,
FlashAttention equals dense attention, the Numba backend equals the NumPy reference, and a
1-D query equals row 0 of the batched call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench

BACKENDS = ("numpy", "numba")
SETTINGS = settings(max_examples=25, deadline=None)

#: Output tolerance relative to the output magnitude, and weight tolerance, per dtype.
OUT_TOL = {np.float32: 2e-5, np.float64: 1e-10}
W_TOL = {np.float32: 1e-5, np.float64: 1e-10}


@dataclass(frozen=True)
class Config:
    name: str
    params: dict = field(default_factory=dict)
    permutation_invariant: bool = False
    equal_lengths: bool = False  # batched calls need Lq == Lk
    heads: int = 1  # d and dv must divide by this
    normalised: bool = True  # rows of the weights sum to 1 whenever a key is allowed

    @property
    def id(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}[{extra}]" if extra else self.name

    def supports(self, backend: str) -> bool:
        return workbench.registry[self.name].backends.get(backend) is None

    def make(self, backend: str, **over):
        """The mechanism on ``backend``, or on the NumPy reference where the registry says the
        backend cannot serve it (the properties hold either way; test_errors checks the refusal)."""
        backend = backend if self.supports(backend) else "numpy"
        return workbench.make(self.name, backend=backend, **{**self.params, **over})

    def allowed(self, batch: int, lq: int, lk: int, mask) -> np.ndarray:
        """The pattern each query may attend, written out independently of the library."""
        i = np.arange(lq)[:, None]
        j = np.arange(lk)[None, :]
        a = np.ones((lq, lk), dtype=bool)
        causal = self.params.get("causal", False)
        if self.name == "local_global":
            w, g = self.params.get("window", 32), self.params.get("num_global_tokens", 2)
            a = (np.abs(i - j) <= w // 2) | (j < g) | (i < g)
            if causal:
                a &= j <= i
        elif causal:
            a &= j <= i + self.params.get("causal_offset", 0)
        out = np.broadcast_to(a, (batch, lq, lk))
        if mask is not None:
            out = out & np.broadcast_to(mask, (batch, lq, lk))
        return np.array(out)


CONFIGS = [
    Config("scaled_dot_product", permutation_invariant=True),
    Config("scaled_dot_product", {"causal": True}),
    Config("scaled_dot_product", {"causal": True, "causal_offset": 3}),
    Config("scaled_dot_product", {"scale": 0.7}, permutation_invariant=True),
    Config("multi_head", {"num_heads": 2}, permutation_invariant=True, heads=2),
    Config("multi_head", {"num_heads": 2, "causal": True}, heads=2),
    Config("multi_head", {"num_heads": 2, "projections": True, "seed": 3}, permutation_invariant=True, heads=2),
    Config("flash", {"block_size": 5, "query_block_size": 3}, permutation_invariant=True),
    Config("flash", {"block_size": 4, "query_block_size": 7, "causal": True}),
    Config("flash", {"causal": True, "causal_offset": -2}),
    Config("linear", {"num_features": 32}, permutation_invariant=True),
    Config("linear", {"num_features": 32, "causal": True}, equal_lengths=True),
    Config("linear", {"num_features": 16, "kernel": "elu+1", "orthogonal": False}, permutation_invariant=True),
    Config("linear", {"num_features": 16, "kernel": "relu"}, permutation_invariant=True, normalised=False),
    Config("local_global", {"window": 5, "num_global_tokens": 2}, equal_lengths=True),
    Config("local_global", {"window": 4, "num_global_tokens": 1, "causal": True}, equal_lengths=True),
    Config("local_global", {"window": 1, "num_global_tokens": 0}, equal_lengths=True),
    Config("moe", {"experts": ["scaled_dot_product", "flash"]}, permutation_invariant=True, normalised=False),
    Config("moe", {"capacity_factor": None, "experts": ["scaled_dot_product", "edge_featured"]},
           permutation_invariant=True),
    Config("dual_space", permutation_invariant=True),
    Config("dual_space", {"projections": False, "c": 0.5, "temperature": 0.7}, permutation_invariant=True),
    Config("mixed_curvature", permutation_invariant=True),
    Config("mixed_curvature", {"mixing_weight": 0.3, "c": 0.5, "euclidean_dim": 1}, permutation_invariant=True),
    Config("lorentz_cascade", {"num_heads": 3}, permutation_invariant=True),
    Config("lorentz_cascade", {"num_heads": 2, "score": "busemann", "top_k": 3}),
    Config("lorentz_cascade", {"num_heads": 1, "top_k": 2}),
    Config("fused_mixed_curvature", permutation_invariant=True),
    Config("fused_mixed_curvature", {"quantize": True, "hyperbolic_curvature": 0.5, "spherical_curvature": 2.0},
           permutation_invariant=True),
    Config("fused_mixed_curvature", {"num_heads": 2, "per_head_variation": 0.2}, permutation_invariant=True, heads=2),
    Config("edge_featured", {"num_heads": 1}, permutation_invariant=True),
    Config("edge_featured", {"num_heads": 1, "variant": "gatv1", "concat": False}, permutation_invariant=True),
    Config("graph_rope", {"position_source": "index"}),
    Config("hyperbolic", permutation_invariant=True),
    Config("hyperbolic", {"c": 0.5, "aggregation": "tangent"}, permutation_invariant=True),
    Config("topology_gated"),
    Config("topology_gated", {"metrics": ["disagreement", "spectral_gap"], "update_period": 3},
           permutation_invariant=True),
    Config("topology_gated", {"metrics": ["similarity_variance"], "stable_threshold": 1.0, "freeze_threshold": 0.0,
                              "base_width": 6}, permutation_invariant=True),
    Config("topology_gated", {"stable_threshold": 1.0, "freeze_threshold": 0.95, "hysteresis": 0.0, "temperature": 0.5}),
    Config("sliced_wasserstein", permutation_invariant=True),
    Config("sliced_wasserstein", {"num_projections": 8, "wasserstein_power": 1.0, "temperature": 0.5, "seed": 3},
           permutation_invariant=True),
    Config("sliced_wasserstein", {"num_projections": 6, "wasserstein_power": 3.0}, permutation_invariant=True),
    Config("sliced_wasserstein", {"num_candidates": 5}),
    Config("centroid_ot", {"num_centroids": 4}, permutation_invariant=True),
    Config("centroid_ot", {"num_centroids": 3, "plan": "query_set", "spread": "hard", "temperature": 0.5},
           permutation_invariant=True),
    Config("diffusion", {"k": 4}, permutation_invariant=True),
    Config("diffusion", {"graph": "dense", "laplacian": "unnormalized", "integrator": "expm", "scales": 2},
           permutation_invariant=True),
    Config("diffusion", {"laplacian": "symmetric", "k": 3, "diffusion_time": 2.0, "sigma": 2.0},
           permutation_invariant=True),
]
#: Mechanisms that cannot run without a graph carrying HNSW layers; their own test files cover them.
GRAPH_ONLY = {"hnsw_local_global"}
#: A mechanism registered without a configuration above (say, a new one in its own file) is
#: exercised at its defaults: the properties every attention shares hold there too.
DEFAULTED = sorted(set(workbench.list_mechanisms()) - {c.name for c in CONFIGS} - GRAPH_ONLY)
CONFIGS += [Config(name) for name in DEFAULTED]
IDS = [c.id for c in CONFIGS]
PERMUTATION_INVARIANT = [c for c in CONFIGS if c.permutation_invariant]


def test_every_registered_mechanism_is_exercised():
    assert {c.name for c in CONFIGS} | GRAPH_ONLY == set(workbench.list_mechanisms())
    assert not GRAPH_ONLY & {c.name for c in CONFIGS}
    for c in CONFIGS:
        if c.permutation_invariant:  # the brief: never local_global nor a causal variant
            assert c.name != "local_global" and not c.params.get("causal", False)


# --- inputs --------------------------------------------------------------------------------------

@dataclass
class Problem:
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None
    dtype: type

    @property
    def batch(self):
        return self.q.shape[0]


def make_mask(rng, kind: str, b: int, lq: int, lk: int):
    if kind == "none":
        return None
    if kind == "full":
        return rng.random((b, lq, lk)) < 0.6
    if kind == "shared":  # (Lq, Lk), broadcast over the batch
        return rng.random((lq, lk)) < 0.6
    if kind == "keypad":  # (B, 1, Lk)
        m = rng.random((b, 1, lk)) < 0.7
        m[:, :, 0] = True
        return m
    if kind == "rows_masked":  # some rows see nothing at all
        m = rng.random((b, lq, lk)) < 0.7
        m[:, rng.random(lq) < 0.4, :] = False
        m[0, 0, :] = False
        return m
    raise AssertionError(kind)


MASK_KINDS = ["none", "full", "shared", "keypad", "rows_masked"]


@st.composite
def problems(draw, cfg: Config, masks=MASK_KINDS, dtypes=(np.float32, np.float64), amplitudes=(1.0,),
             max_len: int = 40):
    b = draw(st.integers(1, 3))
    lq = draw(st.integers(1, max_len))
    lk = lq if cfg.equal_lengths else draw(st.integers(1, max_len))
    d = draw(st.integers(1, 16))
    dv = draw(st.integers(1, 8))
    if cfg.heads > 1:
        d = cfg.heads * -(-d // cfg.heads)
        dv = cfg.heads * -(-dv // cfg.heads)
    dtype = draw(st.sampled_from(dtypes))
    kind = draw(st.sampled_from(masks))
    amp = draw(st.sampled_from(amplitudes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = (amp * rng.standard_normal((b, lq, d))).astype(dtype)
    k = (amp * rng.standard_normal((b, lk, d))).astype(dtype)
    v = rng.standard_normal((b, lk, dv)).astype(dtype)
    return Problem(q, k, v, make_mask(rng, kind, b, lq, lk), dtype)


def assert_close(actual, expected, dtype, scale=None, what="output"):
    tol = OUT_TOL[dtype]
    mag = max(1.0, float(np.abs(expected).max(initial=0.0)) if scale is None else scale)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * mag, err_msg=what)


# --- weights -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_weights_are_distributions_over_allowed_keys(cfg, data):
    p = data.draw(problems(cfg))
    allowed = cfg.allowed(p.batch, p.q.shape[1], p.k.shape[1], p.mask)
    has_key = allowed.any(axis=-1)
    for backend in BACKENDS:
        mech = cfg.make(backend)
        w = mech.weights(p.q, p.k, mask=p.mask)
        assert w.shape == allowed.shape and w.dtype == p.dtype
        assert np.isfinite(w).all()
        assert (w >= 0).all()
        assert (w[~allowed] == 0).all(), "a masked key got non-zero weight"
        rows = w.sum(axis=-1)
        if cfg.normalised:
            np.testing.assert_allclose(rows[has_key], 1.0, rtol=0, atol=W_TOL[p.dtype], err_msg=backend)
        else:
            assert (rows <= 1 + W_TOL[p.dtype]).all()
        assert (rows[~has_key] == 0).all()


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_fully_masked_rows_give_zero_weights_and_output(cfg, data):
    p = data.draw(problems(cfg, masks=["rows_masked"]))
    allowed = cfg.allowed(p.batch, p.q.shape[1], p.k.shape[1], p.mask)
    empty = ~allowed.any(axis=-1)
    assert empty.any()
    for backend in BACKENDS:
        mech = cfg.make(backend)
        w = mech.weights(p.q, p.k, mask=p.mask)
        out = mech(p.q, p.k, p.v, mask=p.mask)
        assert not np.isnan(w).any() and not np.isnan(out).any()
        assert (w[empty] == 0).all(), backend
        assert (out[empty] == 0).all(), backend


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_masked(cfg, backend):
    rng = np.random.default_rng(0)
    d = dv = 4
    q, k, v = (rng.standard_normal((2, 5, n)).astype(np.float32) for n in (d, d, dv))
    mask = np.zeros((5, 5), dtype=bool)
    mech = cfg.make(backend)
    assert (mech.weights(q, k, mask=mask) == 0).all()
    out = mech(q, k, v, mask=mask)
    assert out.shape == (2, 5, dv) and (out == 0).all()


# --- invariances ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", PERMUTATION_INVARIANT, ids=[c.id for c in PERMUTATION_INVARIANT])
@SETTINGS
@given(data=st.data())
def test_permuting_keys_and_values_leaves_output_unchanged(cfg, data):
    p = data.draw(problems(cfg))
    perm = np.random.default_rng(p.k.shape[1]).permutation(p.k.shape[1])
    mask_p = None if p.mask is None else p.mask[..., perm]
    for backend in BACKENDS:
        mech = cfg.make(backend)
        out = mech(p.q, p.k, p.v, mask=p.mask)
        out_p = mech(p.q, p.k[:, perm], p.v[:, perm], mask=mask_p)
        assert_close(out_p, out, p.dtype, scale=float(np.abs(p.v).max()), what=backend)
        w = mech.weights(p.q, p.k, mask=p.mask)
        w_p = mech.weights(p.q, p.k[:, perm], mask=mask_p)
        np.testing.assert_allclose(w_p, w[..., perm], rtol=0, atol=W_TOL[p.dtype], err_msg=backend)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_batching_equals_looping(cfg, data):
    p = data.draw(problems(cfg))

    def item_mask(b):
        if p.mask is None or p.mask.ndim == 2:
            return p.mask
        return p.mask[b]

    for backend in BACKENDS:
        mech = cfg.make(backend)
        out = mech(p.q, p.k, p.v, mask=p.mask)
        loop = np.stack([mech(p.q[b], p.k[b], p.v[b], mask=item_mask(b)) for b in range(p.batch)])
        assert out.shape == loop.shape
        assert_close(out, loop, p.dtype, scale=float(np.abs(p.v).max()), what=backend)
        w = mech.weights(p.q, p.k, mask=p.mask)
        wl = np.stack([mech.weights(p.q[b], p.k[b], mask=item_mask(b)) for b in range(p.batch)])
        np.testing.assert_allclose(w, wl, rtol=0, atol=W_TOL[p.dtype], err_msg=backend)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_leading_batch_dims_broadcast(cfg, data):
    """``k, v`` without a batch axis broadcast against a batched ``q``; extra leading dims flatten."""
    p = data.draw(problems(cfg, masks=["none", "shared"], dtypes=(np.float64,)))
    for backend in BACKENDS:
        mech = cfg.make(backend)
        out = mech(p.q, p.k[0], p.v[0], mask=p.mask)
        full = mech(p.q, np.broadcast_to(p.k[:1], p.k.shape), np.broadcast_to(p.v[:1], p.v.shape), mask=p.mask)
        assert_close(out, full, p.dtype, what=backend)
        nested = mech(p.q[None], p.k[None], p.v[None], mask=p.mask)
        assert nested.shape == (1,) + out.shape[:1] + (p.q.shape[1], p.v.shape[-1])


# --- flash == dense ------------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), block_size=st.integers(1, 64), query_block_size=st.integers(1, 64),
       causal=st.booleans(), causal_offset=st.integers(-3, 3))
def test_flash_equals_scaled_dot_product(data, block_size, query_block_size, causal, causal_offset):
    p = data.draw(problems(Config("flash")))
    common = dict(causal=causal, causal_offset=causal_offset)
    ref = workbench.make("scaled_dot_product", backend="numpy", **common)
    expected = ref(p.q, p.k, p.v, mask=p.mask)
    expected_w = ref.weights(p.q, p.k, mask=p.mask)
    for backend in BACKENDS:
        flash = workbench.make("flash", backend=backend, block_size=block_size,
                               query_block_size=query_block_size, **common)
        out, lse = flash(p.q, p.k, p.v, mask=p.mask, return_lse=True)
        assert_close(out, expected, p.dtype, scale=float(np.abs(p.v).max()), what=backend)
        assert_close(flash(p.q, p.k, p.v, mask=p.mask), expected, p.dtype, scale=float(np.abs(p.v).max()))
        np.testing.assert_allclose(flash.weights(p.q, p.k, mask=p.mask), expected_w, rtol=0,
                                   atol=W_TOL[p.dtype], err_msg=backend)
        # log-sum-exp of the allowed scores; -inf for a row with nothing allowed
        allowed = Config("scaled_dot_product", common).allowed(p.batch, p.q.shape[1], p.k.shape[1], p.mask)
        s = np.einsum("bid,bjd->bij", p.q.astype(np.float64), p.k.astype(np.float64)) / np.sqrt(p.q.shape[-1])
        s = np.where(allowed, s, -np.inf)
        mx = np.max(s, axis=-1, initial=-np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            ref_lse = mx + np.log(np.exp(s - np.where(np.isfinite(mx), mx, 0)[..., None]).sum(-1))
        ref_lse = np.where(np.isfinite(mx), ref_lse, -np.inf)
        assert (np.isneginf(lse) == np.isneginf(ref_lse)).all()
        fin = np.isfinite(ref_lse)
        np.testing.assert_allclose(lse[fin], ref_lse[fin], rtol=0, atol=1e-4 if p.dtype == np.float32 else 1e-10)


# --- numba == numpy ------------------------------------------------------------------------------

def favor_linear(cfg: Config) -> bool:
    return cfg.name == "linear" and cfg.params.get("kernel", "favor+") == "favor+"


def logit_slack(cfg: Config, p: Problem) -> float:
    """Weight error that rounding the logits alone causes: ``4·eps·max_ij s·Σ_t |q_it k_jt|``.

    Two correct kernels round ``s·q·k`` differently (``(s·q)·k`` vs ``s·(q·k)``, other summation
    orders); a softmax weight moves by up to about twice the logit error. Negligible for unit
    inputs, it dominates for the large-logit (× 30) float32 inputs. ``s`` is the configuration's
    logit multiplier: its ``scale`` (default ``1/√d``) over its ``temperature``.
    """
    scale = cfg.params.get("scale") or 1.0 / np.sqrt(p.q.shape[-1])
    scale /= cfg.params.get("temperature") or 1.0
    bound = np.einsum("bid,bjd->bij", np.abs(p.q).astype(np.float64), np.abs(p.k).astype(np.float64)).max()
    return 4.0 * float(np.finfo(p.dtype).eps) * scale * float(bound)


def favor_denominators(cfg: Config, p: Problem) -> np.ndarray:
    """``Σ_j a_ij φ(q_i)·φ(k_j)`` of FAVOR+ linear attention, from the NumPy feature maps."""
    from kernels.reference.linear import feature_map

    mech = cfg.make("numpy")
    d = p.q.shape[-1]
    w = mech.features(d)
    s = 1.0 / np.sqrt(d)
    qf, kf = feature_map(p.q, w, "favor+", s, True), feature_map(p.k, w, "favor+", s, False)
    a = np.matmul(qf, np.swapaxes(kf, -1, -2))
    return np.where(cfg.allowed(p.batch, p.q.shape[1], p.k.shape[1], p.mask), a, 0).sum(-1)


def assert_backends_agree(cfg, p, conditioned=False, **over):
    if not cfg.supports("numba"):
        pytest.skip(f"{cfg.name} has no Numba backend: {workbench.registry[cfg.name].backends['numba']}")
    ref = cfg.make("numpy", **over)
    fast = cfg.make("numba", **over)
    expected = ref(p.q, p.k, p.v, mask=p.mask)
    actual = fast(p.q, p.k, p.v, mask=p.mask)
    assert actual.dtype == expected.dtype == p.dtype
    assert np.isfinite(actual).all()
    if conditioned and favor_linear(cfg):
        # FAVOR+ rows whose denominator is below sqrt(tiny) are sums of products that underflow
        # (subnormal or flushed, depending on the BLAS kernel's summation order): both backends must
        # stay finite, neither is exact there.
        den = favor_denominators(cfg, p)
        keep = ~(den < np.sqrt(np.finfo(p.dtype).tiny))
        expected, actual = np.where(keep[..., None], expected, 0), np.where(keep[..., None], actual, 0)
    slack = logit_slack(cfg, p) if conditioned else 0.0
    vmax = max(1.0, float(np.abs(p.v).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=(OUT_TOL[p.dtype] + slack) * vmax,
                               err_msg=f"{cfg.id} numba vs numpy")
    np.testing.assert_allclose(fast.weights(p.q, p.k, mask=p.mask), ref.weights(p.q, p.k, mask=p.mask),
                               rtol=0, atol=W_TOL[p.dtype] + slack, err_msg=f"{cfg.id} weights")


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_numba_equals_numpy(cfg, data):
    p = data.draw(problems(cfg))
    assert_backends_agree(cfg, p)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_numba_equals_numpy_adversarial(cfg, data):
    """Large logits (inputs × 30), tiny shapes, lengths off the block grid, masked rows."""
    p = data.draw(problems(cfg, masks=["none", "rows_masked", "keypad"], amplitudes=(30.0,), max_len=9))
    assert_backends_agree(cfg, p, conditioned=True)


def _adversarial_cases():
    rng = np.random.default_rng(1234)
    cases = []
    for lq, lk, d, dv in [(1, 1, 1, 1), (1, 7, 1, 2), (7, 1, 3, 1), (13, 13, 1, 1), (33, 33, 5, 3),
                          (17, 17, 16, 8)]:
        for amp in (1.0, 30.0):
            for masked_rows in (False, True):
                cases.append((lq, lk, d, dv, amp, masked_rows, int(rng.integers(2**31))))
    return cases


FIXED_ADVERSARIAL = [
    pytest.param(cfg, dtype, id=f"{name}-{cfg.id}")
    for cfg in CONFIGS for dtype, name in ((np.float32, "f32"), (np.float64, "f64"))
]


@pytest.mark.parametrize("cfg, dtype", FIXED_ADVERSARIAL)
def test_numba_equals_numpy_fixed_adversarial(cfg, dtype):
    for lq, lk, d, dv, amp, masked_rows, seed in _adversarial_cases():
        if cfg.equal_lengths:
            lk = lq
        if cfg.heads > 1:
            d, dv = cfg.heads * -(-d // cfg.heads), cfg.heads * -(-dv // cfg.heads)
        rng = np.random.default_rng(seed)
        q = (amp * rng.standard_normal((2, lq, d))).astype(dtype)
        k = (amp * rng.standard_normal((2, lk, d))).astype(dtype)
        v = rng.standard_normal((2, lk, dv)).astype(dtype)
        mask = None
        if masked_rows:
            mask = rng.random((2, lq, lk)) < 0.7
            mask[:, ::2, :] = False
        over = {}
        if cfg.name == "flash":  # key / query blocks that do not divide the lengths
            over = {"block_size": 4, "query_block_size": 3}
        assert_backends_agree(cfg, Problem(q, k, v, mask, dtype), conditioned=amp > 1, **over)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_numba_subnormal_denominator(causal):
    """Regression (float32, tiny FAVOR+ denominator): one query, one key; weight 1, output = v."""
    q = np.array([[50.0, 40.0, 10.0]], dtype=np.float32)
    k = np.array([[-36.0, 0.0, 20.0]], dtype=np.float32)
    v = np.ones((1, 1), dtype=np.float32)
    ref = workbench.make("linear", num_features=32, causal=causal, backend="numpy")
    np.testing.assert_array_equal(ref(q, k, v), [[1.0]])
    fast = workbench.make("linear", num_features=32, causal=causal, backend="numba")
    np.testing.assert_allclose(fast(q, k, v), [[1.0]], rtol=0, atol=2e-5)


@pytest.mark.parametrize("dtype, far", [(np.float64, 39.5), (np.float32, 15.0)], ids=["f64", "f32"])
def test_linear_numba_key_padding_mask_subnormal_denominator(dtype, far):
    """Regression (also float64): a masked key must not set the FAVOR+ key stabiliser, and a tiny
    denominator must not overflow through a reciprocal."""
    q = np.array([[1.0]], dtype=dtype)
    k = np.array([[0.0], [far]], dtype=dtype)
    v = np.array([[5.0], [1.0]], dtype=dtype)
    mask = np.array([False, True])
    ref = workbench.make("linear", num_features=32, backend="numpy")
    np.testing.assert_array_equal(ref(q, k, v, mask=mask), [[1.0]])
    fast = workbench.make("linear", num_features=32, backend="numba")
    np.testing.assert_allclose(fast(q, k, v, mask=mask), [[1.0]], rtol=0, atol=1e-10)


# --- single query --------------------------------------------------------------------------------

SINGLE_QUERY = [c for c in CONFIGS if c.name != "local_global"]


@pytest.mark.parametrize("cfg", SINGLE_QUERY, ids=[c.id for c in SINGLE_QUERY])
@SETTINGS
@given(data=st.data())
def test_single_query_equals_row_zero(cfg, data):
    p = data.draw(problems(Config(cfg.name, cfg.params, heads=cfg.heads), masks=["none", "keypad"]))
    q1, k, v = p.q[0, 0], p.k[0], p.v[0]
    mask1 = None if p.mask is None else p.mask[0, 0]
    for backend in BACKENDS:
        mech = cfg.make(backend)
        if cfg.equal_lengths and k.shape[0] != 1:  # causal linear: Lq = 1 != Lk
            with pytest.raises(workbench.errors.ShapeError):
                mech(q1, k, v, mask=mask1)
            continue
        out = mech(q1, k, v, mask=mask1)
        batched = mech(q1[None], k, v, mask=None if mask1 is None else mask1[None])
        assert out.shape == (v.shape[-1],)
        assert_close(out, batched[0], p.dtype, scale=float(np.abs(v).max()), what=backend)
        w = mech.weights(q1, k, mask=mask1)
        assert w.shape == (k.shape[0],)
        np.testing.assert_allclose(w, mech.weights(q1[None], k, mask=None if mask1 is None else mask1[None])[0],
                                   rtol=0, atol=W_TOL[p.dtype])


LOCAL_GLOBAL = [c for c in CONFIGS if c.name == "local_global"]


@pytest.mark.parametrize("cfg", LOCAL_GLOBAL, ids=[c.id for c in LOCAL_GLOBAL])
@SETTINGS
@given(data=st.data())
def test_local_global_single_query_sits_in_the_middle(cfg, data):
    p = data.draw(problems(cfg, masks=["none"], dtypes=(np.float64,)))
    q1, k, v = p.q[0, 0], p.k[0], p.v[0]
    n = k.shape[0]
    # the pattern row of position n // 2, restricted softmax written out here
    allowed = cfg.allowed(1, n, n, None)[0, n // 2]
    s = (k @ q1) / np.sqrt(q1.shape[0])
    e = np.where(allowed, np.exp(s - s[allowed].max()), 0.0)
    expected_w = e / e.sum()
    for backend in BACKENDS:
        mech = cfg.make(backend)
        w = mech.weights(q1, k)
        np.testing.assert_allclose(w, expected_w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(mech(q1, k, v), expected_w @ v, rtol=0, atol=1e-10 * max(1, np.abs(v).max()))
