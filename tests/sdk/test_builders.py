"""Builders yield the registered mechanism they claim, configured with the builder's values, and
their output equals ``workbench.make(name, ...)`` called directly; options are honoured or refused."""
from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError
from workbench.sdk import AttentionBuilder, flash, hyperbolic, linear, local_global, moe, multi_head, scaled_dot
from workbench.sdk.builders import moe_roster

DIM = 24


@pytest.fixture
def qkv(rng):
    q = (rng.standard_normal((2, 6, DIM)) * 0.3).astype(np.float32)
    k = (rng.standard_normal((2, 6, DIM)) * 0.3).astype(np.float32)
    v = (rng.standard_normal((2, 6, DIM)) * 0.3).astype(np.float32)
    return q, k, v


ROSTER4 = ["scaled_dot_product", "hyperbolic", "linear", "edge_featured"]

#: builder → (registry name, the parameters it must carry), written out independently.
CASES = [
    (scaled_dot(DIM), "scaled_dot_product", {"causal": False}),
    (scaled_dot(DIM).causal(True), "scaled_dot_product", {"causal": True}),
    (multi_head(DIM, 4), "multi_head", {"num_heads": 4, "causal": False, "projections": False}),
    (multi_head(DIM, 3).causal(), "multi_head", {"num_heads": 3, "causal": True}),
    (flash(DIM, 4), "flash", {"block_size": 4, "causal": False}),
    (flash(DIM, 5).causal(True).dropout(0.1), "flash", {"block_size": 5, "causal": True}),
    (linear(DIM, 16), "linear", {"num_features": 16, "causal": False, "kernel": "favor+"}),
    (linear(DIM, 8).seed(3), "linear", {"num_features": 8, "seed": 3}),
    (local_global(DIM, 4), "local_global", {"window": 4, "num_global_tokens": 1, "causal": False}),
    (local_global(DIM, 2).global_tokens(0), "local_global", {"window": 2, "num_global_tokens": 0}),
    (hyperbolic(DIM, -1.0), "hyperbolic", {"c": 1.0}),
    (hyperbolic(DIM, -0.5), "hyperbolic", {"c": 0.5}),
    (moe(DIM, 4, 2), "moe", {"experts": ROSTER4, "top_k": 2, "capacity_factor": 1.25, "jitter_noise": 0.0}),
    (moe(DIM, 3, 1).expert_capacity(2.0).jitter_noise(0.01), "moe",
     {"experts": ROSTER4[:3], "top_k": 1, "capacity_factor": 2.0, "jitter_noise": 0.01}),
]


@pytest.mark.parametrize("builder, name, params", CASES, ids=lambda x: repr(x) if not isinstance(x, dict) else "")
def test_builder_yields_claimed_mechanism(builder, name, params, qkv):
    built = builder.backend("numpy").build()
    assert type(built.mechanism) is workbench.registry[name].cls
    assert built.name == name and built.dim == DIM
    got = built.params()
    for key, value in params.items():
        assert got[key] == value, key
    direct = workbench.make(name, backend="numpy", **params)
    q, k, v = qkv
    np.testing.assert_array_equal(built(q, k, v), direct(q, k, v))
    np.testing.assert_array_equal(built(q[0, 1], k[0], v[0]), direct(q[0, 1], k[0], v[0]))


def test_builder_methods_equal_functions():
    pairs = [
        (AttentionBuilder(DIM).multi_head(4), multi_head(DIM, 4)),
        (AttentionBuilder(DIM).flash(8), flash(DIM, 8)),
        (AttentionBuilder(DIM).linear(8), linear(DIM, 8)),
        (AttentionBuilder(DIM).local_global(4), local_global(DIM, 4)),
        (AttentionBuilder(DIM).hyperbolic(-2.0), hyperbolic(DIM, -2.0)),
        (AttentionBuilder(DIM).moe(2, 1), moe(DIM, 2, 1)),
        (AttentionBuilder(DIM).flash(8).scaled_dot(), scaled_dot(DIM)),
    ]
    for a, b in pairs:
        assert a.config == b.config and a.mechanism_params() == b.mechanism_params()


def test_builders_are_immutable_and_chain():
    base = multi_head(DIM, 4)
    c = base.causal(True).dropout(0.2)
    assert base.config["causal"] is False and base.config["dropout"] == 0.0
    assert c.config["causal"] is True and c.config["dropout"] == 0.2
    assert "multi_head" in c.description() and repr(c).startswith("multi_head(dim=24")


def test_default_backend_is_the_mechanisms_auto():
    """(Calls above use the NumPy reference so these tests never wait for Numba compilation.)"""
    assert scaled_dot(DIM).build().params()["backend"] == "auto"
    assert scaled_dot(DIM).backend("numba").build().params()["backend"] == "numba"


def test_moe_roster_cycles_the_default_experts():
    assert moe_roster(8) == ROSTER4 * 2
    assert moe_roster(1) == ["scaled_dot_product"]


# -- refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder, arg", [
    (multi_head(768, 7), "num_heads"),
    (multi_head(DIM, 0), "num_heads"),
    (scaled_dot(0), "dim"),
    (scaled_dot(24.0), "dim"),
    (flash(DIM, 0), "block_size"),
    (linear(DIM, 0), "num_features"),
    (local_global(DIM, 0), "window_size"),
    (hyperbolic(DIM, 1.0), "curvature"),
    (hyperbolic(DIM, 0.0), "curvature"),
    (hyperbolic(DIM, float("-inf")), "curvature"),
    (moe(DIM, 2, 3), "top_k"),
    (moe(DIM, 0, 1), "num_experts"),
    (moe(DIM, 4, 2).expert_capacity(0.0), "expert_capacity"),
    (moe(DIM, 4, 2).jitter_noise(1.0), "jitter_noise"),
    (scaled_dot(DIM).dropout(1.5), "dropout"),
    (scaled_dot(DIM).dropout(-0.1), "dropout"),
    (linear(DIM, 8).dropout(0.1), "dropout"),
    (hyperbolic(DIM, -1.0).dropout(0.1), "dropout"),
    (moe(DIM, 4, 2).dropout(0.1), "dropout"),
    (scaled_dot(DIM).expert_capacity(1.25), "expert_capacity"),
    (multi_head(DIM, 4).jitter_noise(0.01), "jitter_noise"),
    (flash(DIM, 4).global_tokens(2), "num_global_tokens"),
    (scaled_dot(DIM).causal("yes"), "causal"),
    (scaled_dot(DIM).seed(-1), "seed"),
    (scaled_dot(DIM).backend("tpu"), "backend"),
])
def test_invalid_options_are_configuration_errors(builder, arg):
    with pytest.raises(ConfigurationError, match=arg):
        builder.build()
