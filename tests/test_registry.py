"""The registry and the parameter declarations every face of the project relies on."""
from __future__ import annotations

import numpy as np
import param
import pytest

import workbench
from workbench.cli import main
from workbench.errors import ConfigurationError

NAMES = workbench.list_mechanisms()


def test_core_mechanisms_are_registered():
    assert {"scaled_dot_product", "multi_head", "flash", "linear", "local_global"} <= set(NAMES)
    assert list(workbench.registry) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_complete(name):
    info = workbench.registry[name]
    assert info.name == name and info.family and info.formula
    assert info.time_complexity.startswith("O(") and info.memory_complexity.startswith("O(")
    assert isinstance(info.needs_graph, bool)
    assert set(info.backends) == {"numpy", "numba", "cupy"}
    assert info.backends["numpy"] is None  # the reference always exists
    for backend, why in info.backends.items():
        assert why is None or (isinstance(why, str) and why), backend
    assert info.summary


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_typed_bounded_defaulted_and_documented(name):
    cls = workbench.registry[name].cls
    for pname, p in workbench.registry[name].parameters.items():
        assert p.doc and len(p.doc) > 15, f"{name}.{pname} lacks a doc"
        assert type(p) is not param.Parameter, f"{name}.{pname} has no type"
        if isinstance(p, param.Number):
            assert p.bounds is not None, f"{name}.{pname} has no bounds"
        assert getattr(cls(), pname) == p.default


@pytest.mark.parametrize("name", NAMES)
def test_shared_parameter_names(name):
    params = workbench.registry[name].parameters
    for shared in ("causal", "scale", "seed"):
        if shared in params:
            assert params[shared].doc == workbench.registry["multi_head"].parameters[shared].doc


def test_named_parameters_from_the_issue():
    assert "num_heads" in workbench.registry["multi_head"].parameters
    assert "block_size" in workbench.registry["flash"].parameters
    assert {"num_features", "kernel"} <= set(workbench.registry["linear"].parameters)
    assert {"window", "num_global_tokens"} <= set(workbench.registry["local_global"].parameters)


def test_make_configures_and_dims_come_from_inputs():
    mech = workbench.make("multi_head", num_heads=8)
    assert mech.num_heads == 8
    x = np.random.default_rng(0).standard_normal((2, 5, 64)).astype(np.float32)
    assert mech(x, x, x).shape == (2, 5, 64)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigurationError, match="scaled_dot_product"):
        workbench.make("no_such_mechanism")


def test_register_adds_a_mechanism_everywhere():
    from workbench.registry import registry

    @workbench.register("_test_uniform")
    class Uniform(workbench.Mechanism):
        """Uniform attention over all keys, ``out = mean_j v_j``."""

        family = "test"
        formula = "mean_j v_j"
        time_complexity = "O(Lk·dv)"
        memory_complexity = "O(dv)"

        def _forward(self, b):
            return np.broadcast_to(b.v.mean(axis=1, keepdims=True), b.q.shape[:2] + b.v.shape[2:]).copy()

    try:
        assert "_test_uniform" in workbench.list_mechanisms()
        assert workbench.list_mechanisms(family="test") == ["_test_uniform"]
        v = np.arange(6, dtype=np.float32).reshape(3, 2)
        np.testing.assert_allclose(workbench.make("_test_uniform")(np.zeros(2), np.zeros((3, 2)), v), [2, 3])
        with pytest.raises(ConfigurationError, match="weights are not defined"):
            workbench.make("_test_uniform").weights(np.zeros(2), np.zeros((3, 2)))
    finally:
        registry._items.pop("_test_uniform")


def test_cli_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)
    assert main(["info", "linear"]) == 0
    out = capsys.readouterr().out
    assert "num_features" in out and "  kernels: linear\n" in out
    assert "    cupy: yes\n" in out  # kernels/gpu/linear_fwd.cu
    assert main(["info", "centroid_ot"]) == 0
    out = capsys.readouterr().out
    assert "    numpy: yes\n" in out
    assert "    numba: no (no Numba kernel: after k-means the work is a few (L x M) matrix products" in out
    assert main(["info", "graph_rope"]) == 0
    assert "    cupy: no (no CuPy kernel for graph yet; no CuPy kernel for dense yet)\n" in capsys.readouterr().out
    assert main(["info", "nope"]) == 2
    assert "no mechanism 'nope'" in capsys.readouterr().err


def test_cli_warm_runs_each_named_mechanism_and_reports_failures(capsys, monkeypatch):
    from workbench import compare, warm

    calls = []
    real_run = compare.run

    def spy(name, params, q, k, v, **kw):
        calls.append((name, q.shape, q.dtype))
        return real_run(name, params, q, k, v, **kw)

    monkeypatch.setattr(compare, "run", spy)
    assert main(["warm", "local_global", "graph_rope", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "local_global" in out and "graph_rope" in out and "error" not in out
    assert calls == [("local_global", (64, 16), np.float32), ("graph_rope", (64, 16), np.float32)]
    assert set(warm.warm(["local_global"])) == {"local_global"}
    monkeypatch.setattr(compare, "run", lambda name, *a, **k: compare.RunResult(name=name, params={}, error="boom"))
    assert main(["warm", "linear", "--jobs", "1"]) == 1
    assert "error: boom" in capsys.readouterr().out
    assert main(["warm", "nope"]) == 2


def test_a_graph_given_to_a_mechanism_that_ignores_graphs_is_refused():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ConfigurationError, match="graph"):
        workbench.make("scaled_dot_product")(x, x, x, graph=object())
    with pytest.raises(ConfigurationError, match="graph"):
        workbench.make("flash").weights(x, x, graph=object())
    with pytest.raises(ConfigurationError, match="graph"):
        workbench.make("flash")(x, x, x, graph=object(), return_lse=True)


def test_membership_is_a_plain_question():
    assert "scaled_dot_product" in workbench.registry
    assert "no_such_mechanism" not in workbench.registry
    assert 3 not in workbench.registry


def test_cli_calibrates_a_shipped_set_and_a_file(capsys, tmp_path):
    import json

    import numpy as np

    assert main(["calibrate", "scaled_dot_product", "scipy_api"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("scaled_dot_product on scipy_api (1,294 × 384): scale = ") and "target 0.5" in out[0]
    params = json.loads(out[-1])
    assert set(params) == {"scale"} and params["scale"] > 1
    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    assert main(["calibrate", "hyperbolic", str(path), "--target", "0.3"]) == 0
    assert "target 0.3" in capsys.readouterr().out
    assert main(["calibrate", "hyperbolic", str(tmp_path / "missing.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
