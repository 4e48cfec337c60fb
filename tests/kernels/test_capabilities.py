"""The capability declarations of the kernels (kernels/capabilities.py) and the dispatch built on them."""
import importlib
import sys
import types

import numpy as np
import pytest

import kernels
from kernels.capabilities import Inputs, Kernel, KernelSpec, backends_of, declare, not_supported_reasons, select
from kernels.dispatch import resolve_backend

#: Every kernel entry module and the name of its declaration.
DECLARED = {
    "flash": "FLASH", "dense": "DENSE", "linear": "LINEAR", "local_global": "LOCAL_GLOBAL",
    "hyperbolic": "HYPERBOLIC", "curvature": "CURVATURE", "lorentz": "LORENTZ",
    "sliced_wasserstein": "SLICED_WASSERSTEIN", "centroid_ot": "CENTROID_OT", "diffusion": "DIFFUSION",
    "graph": "GRAPH", "knn": "KNN",
}
ALL = [getattr(importlib.import_module(f"kernels.{m}"), c) for m, c in DECLARED.items()]
BY_NAME = {k.name: k for k in ALL}


def arrays(dtype=np.float32, d=8):
    x = np.zeros((1, 4, d), dtype)
    return x, x, x


class FakeCupyArray:
    """Stands in for ``cupy.ndarray`` (the library is detected by type, never imported here)."""

    def __init__(self, shape=(1, 4, 8), dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)


@pytest.fixture
def fake_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(ndarray=FakeCupyArray))
    return FakeCupyArray


@pytest.mark.parametrize("kernel", ALL, ids=lambda k: k.name)
def test_every_kernel_declares_three_backends_once(kernel):
    assert isinstance(kernel, Kernel)
    assert [s.backend for s in kernel.specs] == ["numpy", "numba", "cupy"]
    assert all(s.kernel == kernel.name for s in kernel.specs)
    assert kernel.backends["numpy"] is None  # the reference always serves
    if kernel.name not in WITH_CUPY:
        assert kernel.backends["cupy"].startswith(f"no CuPy kernel for {kernel.name} yet")


#: Kernels with a CuPy kernel (kernels/gpu): served for CuPy arrays within their limits.
WITH_CUPY = {"diffusion", "flash", "hyperbolic", "knn", "linear", "lorentz", "sliced_wasserstein"}


def test_kernels_with_a_cupy_kernel_serve_cupy_arrays_only(fake_cupy):
    for kernel in ALL:
        if kernel.name not in WITH_CUPY:
            continue
        spec = kernel.spec("cupy")
        assert spec.not_supported_reasons(Inputs.of([fake_cupy()])) == []
        assert any("needs CuPy arrays" in r for r in spec.not_supported_reasons(Inputs.of(arrays())))
        f64 = spec.not_supported_reasons(Inputs.of([fake_cupy(dtype=np.float64)]))
        # the CuPy bodies are float32; the kNN search (array expressions) takes both floats
        assert f64 == [] if kernel.name == "knn" else any("float32" in r for r in f64)


@pytest.mark.parametrize("kernel", [k for k in ALL if k.name not in WITH_CUPY], ids=lambda k: k.name)
def test_cupy_cannot_serve_any_input_today(kernel, fake_cupy):
    for inputs in (Inputs.of(arrays()), Inputs.of([fake_cupy()]), Inputs(libraries=("cupy",), dtypes=("float64",))):
        reasons = kernel.spec("cupy").not_supported_reasons(inputs)
        assert reasons and reasons[0].startswith(f"no CuPy kernel for {kernel.name} yet")


@pytest.mark.parametrize("kernel", ALL, ids=lambda k: k.name)
def test_cpu_backends_serve_plain_float_inputs(kernel):
    for dtype in (np.float32, np.float64):
        assert kernel.spec("numpy").not_supported_reasons(Inputs.of(arrays(dtype))) == []
        numba = kernel.spec("numba").not_supported_reasons(Inputs.of(arrays(dtype)))
        assert numba == ([] if kernel.name != "centroid_ot" else [kernel.backends["numba"]])


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.complex64])
def test_wrong_dtype_is_a_reason(dtype):
    for backend in ("numpy", "numba"):
        reasons = BY_NAME["flash"].spec(backend).not_supported_reasons(Inputs.of(arrays(dtype)))
        assert reasons == [f"flash takes dtypes float32, float64, got {np.dtype(dtype).name}"]


def test_mask_causal_and_graph_only_where_declared():
    m = np.ones((1, 4, 4), bool)
    q = arrays()
    for name in ("centroid_ot", "diffusion", "graph"):
        assert f"{name} takes no mask" in BY_NAME[name].spec("numpy").not_supported_reasons(Inputs.of(q, mask=m))
    for name in ("flash", "dense", "linear", "local_global", "hyperbolic", "curvature", "lorentz",
                 "sliced_wasserstein"):
        assert BY_NAME[name].spec("numba").not_supported_reasons(Inputs.of(q, mask=m)) == []
    assert BY_NAME["hyperbolic"].spec("numpy").not_supported_reasons(Inputs.of(q, causal=True)) == \
        ["hyperbolic has no causal form"]
    assert BY_NAME["dense"].spec("numba").not_supported_reasons(Inputs.of(q, causal=True)) == []
    assert BY_NAME["dense"].spec("numba").not_supported_reasons(Inputs.of(q, graph=True)) == ["dense takes no graph"]
    assert BY_NAME["graph"].spec("numba").not_supported_reasons(Inputs.of(q, graph=True)) == []


def test_cupy_arrays_are_a_reason_for_the_cpu_backends(fake_cupy):
    inputs = Inputs.of([fake_cupy(), fake_cupy()])
    assert inputs.libraries == ("cupy",)
    for backend in ("numpy", "numba"):
        assert BY_NAME["dense"].spec(backend).not_supported_reasons(inputs) == \
            [f"{backend} needs NumPy arrays, got CuPy arrays"]
    mixed = Inputs.of([np.zeros((1, 4, 8), np.float32), fake_cupy()])
    assert "numba needs NumPy arrays, got CuPy arrays" in BY_NAME["dense"].spec("numba").not_supported_reasons(mixed)


def test_head_dim_limit_where_a_kernel_has_one():
    # Only the CuPy kernels have a head-dimension limit (a bound on one call's work: wider heads than 128
    # are read by chunks); the CPU kernels allocate per call. A spec that sets one refuses wider heads.
    assert {(k.name, s.backend): s.max_head_dim for k in ALL for s in k.specs
            if s.max_head_dim is not None} == {("flash", "cupy"): 8192, ("hyperbolic", "cupy"): 8192,
                                               ("lorentz", "cupy"): 8192, ("sliced_wasserstein", "cupy"): 8192,
                                               ("diffusion", "cupy"): 8192}
    spec = KernelSpec("toy", "numba", max_head_dim=128)
    assert spec.not_supported_reasons(Inputs.of(arrays(d=128))) == []
    assert spec.not_supported_reasons(Inputs.of(arrays(d=256))) == ["numba toy takes head dimensions up to 128, got 256"]
    toy = declare("toy", max_head_dim=64)
    assert select("auto", Inputs.of(arrays(d=32)), toy) == "numba"
    with pytest.raises(kernels.BackendError, match="takes head dimensions up to 64, got 96"):
        select("auto", Inputs.of(arrays(d=96)), toy)


def test_auto_picks_the_first_backend_without_reasons():
    q = arrays()
    assert resolve_backend("auto", q, BY_NAME["flash"]) == "numba"
    assert resolve_backend("auto", q, BY_NAME["centroid_ot"]) == "numpy"  # no Numba kernel
    assert resolve_backend("auto", q, (BY_NAME["dense"], BY_NAME["centroid_ot"])) == "numpy"
    # a Numba kernel limited to float64 leaves float32 calls to the reference
    f64 = Kernel("f64", (KernelSpec("f64", "numpy"), KernelSpec("f64", "numba", dtypes=("float64",)),
                         KernelSpec("f64", "cupy", missing="none")))
    assert resolve_backend("auto", q, f64) == "numpy"
    assert resolve_backend("auto", arrays(np.float64), f64) == "numba"


def test_auto_with_no_backend_lists_every_backend_s_reasons(fake_cupy):
    x = fake_cupy(dtype=np.float64)  # the CuPy flash kernel takes float32 only
    with pytest.raises(kernels.BackendError) as excinfo:
        kernels.flash_attention(x, x, x)
    msg = str(excinfo.value)
    assert msg.startswith("no backend can serve flash: ")
    for part in ("cupy: flash takes dtypes float32, got float64", "numba: numba needs NumPy arrays, got CuPy arrays",
                 "numpy: numpy needs NumPy arrays, got CuPy arrays"):
        assert part in msg
    assert not_supported_reasons("auto", Inputs.of(arrays()), BY_NAME["flash"]) == []


def test_explicit_backend_error_names_the_reasons():
    q = arrays()
    with pytest.raises(kernels.BackendError) as excinfo:
        kernels.attention(*q, backend="cupy")
    assert str(excinfo.value) == ("backend 'cupy' cannot serve dense: no CuPy kernel for dense yet; "
                                  "cupy needs CuPy arrays, got NumPy arrays")
    with pytest.raises(kernels.BackendError, match="backend 'numba' cannot serve centroid_ot: no Numba kernel: "):
        resolve_backend("numba", q, BY_NAME["centroid_ot"])
    with pytest.raises(kernels.BackendError, match="backend 'numpy' cannot serve centroid_ot: centroid_ot takes no mask"):
        resolve_backend("numpy", q, BY_NAME["centroid_ot"], mask=np.ones((1, 4, 4), bool))
    with pytest.raises(kernels.BackendError, match="takes dtypes float32, float64, got float16"):
        kernels.attention(*arrays(np.float16), backend="numpy")
    with pytest.raises(kernels.BackendError, match="backend must be one of"):
        resolve_backend("gpu", q, BY_NAME["dense"])


def test_kernel_calls_pass_their_mask_and_causal_flags(monkeypatch):
    """The entry points describe the call they received: a mask-free kernel spec refuses a dense call with a mask."""
    import kernels.dense as kd

    strict = declare("dense", masks=False, causal=False)
    monkeypatch.setattr(kd, "DENSE", strict)
    q = arrays()
    kd.attention(*q, backend="numpy")
    with pytest.raises(kernels.BackendError, match="dense takes no mask"):
        kd.attention(*q, mask=np.ones((1, 4, 4), bool), backend="numpy")
    with pytest.raises(kernels.BackendError, match="dense has no causal form"):
        kd.attention_weights(q[0], q[1], causal=True, backend="numpy")


def test_backends_of_several_kernels_is_the_intersection_with_the_union_of_reasons():
    both = backends_of((BY_NAME["dense"], BY_NAME["centroid_ot"]))
    assert both["numpy"] is None
    assert both["numba"] == BY_NAME["centroid_ot"].backends["numba"]
    assert both["cupy"] == "no CuPy kernel for dense yet; no CuPy kernel for centroid_ot yet"
    assert backends_of((BY_NAME["dense"], BY_NAME["dense"]))["cupy"] == "no CuPy kernel for dense yet"


def test_a_hand_written_map_still_resolves():
    hand = {"numpy": None, "numba": "absent", "cupy": "no GPU here"}
    assert resolve_backend("auto", arrays(), hand) == "numpy"
    with pytest.raises(kernels.BackendError, match="backend 'cupy' cannot serve this kernel: no GPU here"):
        resolve_backend("cupy", arrays(), hand)


def test_no_pasted_reasons_left():
    """The GPU's reason is written once (kernels/capabilities.py), not pasted into modules."""
    import pathlib

    root = pathlib.Path(kernels.__file__).parents[1]
    for path in [*root.glob("kernels/**/*.py"), *root.glob("workbench/**/*.py")]:
        text = path.read_text()
        assert "no CuPy kernel yet" not in text and "_NO_GPU" not in text, path
        assert "SUPPORT = {" not in text, path
