"""Mechanism backends derived from the kernels they use, resolved once per call by the base class."""
import numpy as np
import pytest

import workbench
from kernels.capabilities import Kernel
from kernels.flash import FLASH
from workbench.errors import ConfigurationError
from workbench.mechanisms.base import Mechanism

NAMES = workbench.list_mechanisms()
BACKENDS = ("numpy", "numba", "cupy")


def qkv(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((2, 6, 4)).astype(dtype) for _ in range(3))


@pytest.mark.parametrize("name", NAMES)
def test_backends_are_the_intersection_of_the_kernels_backends(name):
    info = workbench.registry[name]
    used = info.cls.kernels_used
    assert used and all(isinstance(k, Kernel) for k in used)
    assert info.kernels == tuple(k.name for k in used)
    for b in BACKENDS:
        served = all(k.backends[b] is None for k in used)
        assert (info.backends[b] is None) == served, b
        if not served:  # the reason is the union of the kernels' reasons
            assert info.backends[b].split("; ") == [k.backends[b] for k in used if k.backends[b] is not None]


#: The mechanisms whose every kernel has a CuPy kernel (kernels/gpu).
ON_CUPY = {"diffusion", "flash", "hyperbolic", "linear", "lorentz_cascade", "sliced_wasserstein"}


def test_the_backends_served_are_those_of_before():
    """Deriving the backends changed no mechanism's availability: NumPy and Numba everywhere except
    centroid_ot (NumPy only); CuPy exactly where every kernel has a GPU body."""
    for name in NAMES:
        served = [b for b in BACKENDS if workbench.registry[name].backends[b] is None]
        cpu = ["numpy"] if name == "centroid_ot" else ["numpy", "numba"]
        assert served == cpu + (["cupy"] if name in ON_CUPY else []), name


def test_not_supported_reasons_for_given_inputs():
    q, k, v = qkv()
    flash = workbench.make("flash")
    assert flash.not_supported_reasons("numba", q, k, v) == []
    assert flash.not_supported_reasons("auto", q, k) == []
    assert flash.not_supported_reasons("cupy", q, k, v) == ["cupy needs CuPy arrays, got NumPy arrays"]
    sdp = workbench.make("scaled_dot_product")  # its dense kernel has no GPU body yet
    assert sdp.not_supported_reasons("cupy", q, k, v) == ["no CuPy kernel for dense yet",
                                                         "cupy needs CuPy arrays, got NumPy arrays"]
    # float16 and integers are cast by the mechanism, so they are served
    assert flash.not_supported_reasons("numba", q.astype(np.float16), k.astype(np.int64)) == []
    assert flash.not_supported_reasons("numba", q, k, graph=np.zeros((2, 0), int)) == \
        ["Flash does not use a graph in this configuration"]
    info = workbench.registry["centroid_ot"]
    assert info.not_supported_reasons("numba", q, k, v) == [info.backends["numba"]]
    assert info.not_supported_reasons("numpy", q, k, v, num_centroids=2) == []
    with pytest.raises(workbench.errors.ShapeError):  # invalid inputs raise as a call does
        flash.not_supported_reasons("numba", q, k[..., :3])


def test_backend_for_is_the_resolution_of_a_call():
    q, k, v = qkv()
    assert workbench.make("flash").backend_for(q, k, v) == "numba"
    assert workbench.make("centroid_ot").backend_for(q, k, v) == "numpy"
    assert workbench.make("flash", backend="numpy").backend_for(q) == "numpy"
    with pytest.raises(ConfigurationError, match="backend: backend 'numba' cannot serve centroid_ot: no Numba kernel"):
        workbench.make("centroid_ot", backend="numba").backend_for(q, k, v)


class _Recorder(Mechanism):
    """Records the backend the base class resolved (computes nothing with it)."""

    family, formula, time_complexity, memory_complexity = "core", "mean of v", "O(1)", "O(1)"
    kernels_used = (FLASH,)
    seen: list = []

    def _forward(self, b):
        self.seen.append(b.backend)
        return np.repeat(b.v.mean(axis=1, keepdims=True), b.q.shape[1], axis=1)


def test_the_base_class_resolves_once_per_call_and_refuses_before_any_work():
    q, k, v = qkv()
    _Recorder.seen.clear()
    _Recorder()(q, k, v)
    _Recorder(backend="numpy")(q, k, v)
    assert _Recorder.seen == ["numba", "numpy"]
    with pytest.raises(ConfigurationError) as excinfo:
        _Recorder(backend="cupy")(q, k, v)
    assert str(excinfo.value) == "backend: backend 'cupy' cannot serve flash: cupy needs CuPy arrays, got NumPy arrays"
    assert _Recorder.seen == ["numba", "numpy"]


def test_mechanisms_without_kernels_serve_numpy_or_what_they_declare():
    class Own(Mechanism):
        family, formula, time_complexity, memory_complexity = "core", "v", "O(1)", "O(1)"

    class Declared(Mechanism):
        family, formula, time_complexity, memory_complexity = "core", "v", "O(1)", "O(1)"
        backends = {"numpy": None, "numba": None, "cupy": "a tutorial mechanism, NumPy only"}

    assert [b for b, why in Own.backends.items() if why is None] == ["numpy"]
    assert "declares no kernels" in Own.backends["numba"]
    assert Declared.backends == {"numpy": None, "numba": None, "cupy": "a tutorial mechanism, NumPy only"}
    q, _, _ = qkv()
    assert Own().backend_for(q) == "numpy" and Declared().backend_for(q) == "numba"
    with pytest.raises(ConfigurationError, match="a tutorial mechanism, NumPy only"):
        Declared(backend="cupy").backend_for(q)
