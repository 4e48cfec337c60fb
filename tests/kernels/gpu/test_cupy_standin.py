"""The CuPy paths on the CPU: the GPU tests (marked gpu) run in a subprocess on the CuPy stand-in
(``tests/cupy_standin``: CuPy 14.2's array rules over NumPy, CUDA launches through OpenCL on PoCL), so CI
without a GPU runs them too; and the stand-in's rules themselves, on a copy imported under another name.

The stand-in is never ``cupy`` in this process: ``kernels.dispatch`` takes ``sys.modules["cupy"].ndarray``
for GPU arrays. A machine with a real CuPy runs the GPU tests themselves and skips the subprocess.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "cupy_standin"
GPU_TESTS = ["tests/kernels/gpu/test_cupy_kernels.py", "tests/kernels/gpu/test_cuda_bodies.py",
             "tests/kernels/gpu/test_host.py"]
#: The GPU tests run there: all but the benchmark-size ones (minutes on PoCL) and the tensor-core body's, whose
#: emulated warp the OpenCL tests already run (a cold PoCL cache compiles them for 70 s: CI's time budget).
SELECTION = "not benchmark_size and not mma"
#: What the GPU tests above pass on the stand-in (raise it when adding GPU tests; a drop means tests went missing).
PASSED = 126


def _real_cupy() -> bool:
    spec = importlib.util.find_spec("cupy")
    return spec is not None and spec.origin is not None and STANDIN not in Path(spec.origin).resolve().parents


@pytest.mark.opencl
@pytest.mark.skipif(_real_cupy(), reason="a real CuPy is installed: the GPU tests run on it, not on the stand-in")
def test_the_gpu_tests_pass_on_the_cupy_standin(opencl):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(STANDIN), os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS,
                          "-k", SELECTION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "CuPy is not installed" not in out and "no CUDA device" not in out, out[-6000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed[1]) >= PASSED, out[-3000:]


# -- the stand-in's rules ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin():
    """The stand-in, imported as ``cupy_standin_under_test`` (never as ``cupy``), then forgotten."""
    name, cupy = "cupy_standin_under_test", sys.modules.get("cupy")
    spec = importlib.util.spec_from_file_location(name, STANDIN / "cupy" / "__init__.py",
                                                  submodule_search_locations=[str(STANDIN / "cupy")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # for its relative imports
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    assert sys.modules.get("cupy") is cupy  # the stand-in did not become `cupy`


def test_no_implicit_conversion_to_numpy(standin):
    cp = standin
    from kernels.dispatch import is_cupy_array

    x = cp.asarray(np.arange(6.0).reshape(2, 3))
    for convert in (np.asarray, np.ascontiguousarray, lambda a: np.array(a, np.float32)):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
            convert(x)
    assert isinstance(x.get(), np.ndarray) and cp.asnumpy(x).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert not is_cupy_array(x)  # here it is not `cupy`


def test_numpy_functions_dispatch_with_cupys_signatures(standin):
    cp = standin
    x = cp.asarray(np.arange(6.0).reshape(2, 3))
    total = np.sum(x, axis=-1)
    assert isinstance(total, cp.ndarray) and total.get().tolist() == [3.0, 12.0]
    assert isinstance(np.max(x), cp.ndarray) and np.max(x).ndim == 0  # CuPy's reductions give 0-d arrays
    with pytest.raises(TypeError, match=r"cupy.max: .*initial"):
        np.max(x, initial=0.0)
    with pytest.raises(TypeError, match="no implementation found for 'numpy.insert'"):  # CuPy has no insert
        np.insert(x, 0, 1.0)
    with pytest.raises(TypeError, match=r"cupy.where: numpy.ndarray argument"):
        np.where(np.ones((2, 3), bool), x, 0.0)
    with pytest.raises(TypeError, match="a must be a CuPy array"):
        cp.ascontiguousarray(np.zeros(3))
    assert float(np.linalg.norm(x)) == pytest.approx(np.sqrt(55.0))


def test_ufuncs_take_cupys_keywords_and_operands(standin):
    cp = standin
    x, y = cp.asarray(np.arange(1.0, 4.0)), cp.ones(3)
    with pytest.raises(TypeError, match=r"cupy.divide: Wrong arguments \['where'\]"):
        np.divide(x, y, out=cp.zeros(3), where=y > 0)
    with pytest.raises(TypeError, match="numpy.ndarray operand"):
        x + np.ones(3)
    with pytest.raises(TypeError, match="operand of type list"):
        np.add(x, [1.0, 2.0, 3.0])
    assert (x * 2 + np.float32(1)).get().tolist() == [3.0, 5.0, 7.0]
    assert np.greater(x, np.asarray(1.5)).get().tolist() == [False, True, True]  # 0-d to comparisons only
    out = cp.zeros(3)
    assert cp.add(x, 1, out=out) is out and out.get().tolist() == [2.0, 3.0, 4.0]
    x += y
    assert x.get().tolist() == [2.0, 3.0, 4.0]


def test_methods_and_assignments_as_cupy(standin):
    cp = standin
    x = cp.asarray(np.array([[3.0, 1.0], [2.0, 0.5]]))
    with pytest.raises(TypeError):
        x.max(initial=0.0)
    with pytest.raises(TypeError, match="kind='quicksort'"):
        x.argsort(kind="quicksort")
    with pytest.raises(TypeError, match="basic slice"):
        x[0] = np.zeros(2)
    x[0] = cp.zeros(2)
    x[1, :] = 7.0
    assert x.get().tolist() == [[0.0, 0.0], [7.0, 7.0]]
    assert x.cumprod(axis=1).get().tolist() == [[0.0, 0.0], [7.0, 49.0]]  # a CuPy method passed to NumPy's
    with pytest.raises(AttributeError):
        x.resize  # NumPy's, not CuPy's


def _parameters(fn) -> list:
    return [[p.name, int(p.kind), p.default is not p.empty] for p in inspect.signature(fn).parameters.values()]


def test_the_written_functions_and_methods_are_cupys(standin):
    """What the stand-in writes out by hand has CuPy 14.2's parameters (cupy_signatures.json)."""
    cp = standin
    funcs, methods = cp.SIGNATURES["funcs"], cp.SIGNATURES["methods"]
    for name in ("asarray", "array", "ascontiguousarray", "asnumpy", "get_array_module", "empty", "zeros", "ones",
                 "full", "arange"):
        assert _parameters(getattr(cp, name)) == funcs[name], name
    assert _parameters(cp.ndarray.view) == methods["view"]  # the one method with a signature CuPy exposes
    written = [n for n in vars(cp.ndarray) if not n.startswith("_")]
    assert written and [n for n in written if n not in methods] == []


def test_launches_are_checked_as_cuda_checks_them(standin, monkeypatch):
    cp = standin
    runner = sys.modules[cp.__name__ + "._runner"]
    launches = []
    monkeypatch.setattr(runner, "runner", lambda *args: launches.append(args))
    kernel = cp.RawModule(code="// not compiled here", options=("--std=c++14",)).get_function("k")
    x = cp.zeros((4, 3), cp.float32)
    kernel((2, 1), (32,), (x, np.int32(3), np.float32(0.5), np.ones(1, np.int64)))
    assert len(launches) == 1 and launches[0][1:4] == ("k", (2, 1), (32,))
    refused = {
        "grid and block must be tuples": lambda: kernel([2, 1], (32,), (x,)),
        "Python int": lambda: kernel((2,), (32,), (x, 3)),
        "Python float": lambda: kernel((2,), (32,), (x, 0.5)),
        "non-contiguous": lambda: kernel((2,), (32,), (x.T,)),
        "numpy.ndarray of shape": lambda: kernel((2,), (32,), (np.zeros(3),)),
        "over 48 KiB": lambda: kernel((2,), (32,), (x,), shared_mem=64 * 1024),
        "past the device": lambda: kernel((1, 65536), (32,), (x,)),
        "threads": lambda: kernel((1,), (2048,), (x,)),
        "opt-in": lambda: setattr(kernel, "max_dynamic_shared_size_bytes", 232448 + 1),
    }
    for message, launch in refused.items():
        with pytest.raises(TypeError, match=message):
            launch()
    kernel.max_dynamic_shared_size_bytes = 64 * 1024
    kernel((2,), (32,), (x,), shared_mem=64 * 1024)
    with pytest.raises(TypeError):  # shared_mem is a keyword
        kernel((2,), (32,), (x,), 1024)
    assert len(launches) == 2


def test_the_device_is_an_h200(standin):
    cp = standin
    attrs = cp.cuda.Device().attributes
    assert attrs["MultiProcessorCount"] == 132 and attrs["MaxSharedMemoryPerBlockOptin"] == 232448
    assert cp.cuda.runtime.getDeviceCount() == 1


def test_the_runner_reads_back_the_body_and_its_constants(standin):
    cp = standin
    from kernels.gpu.sources import source

    runner = sys.modules[cp.__name__ + "._runner"]
    defines = {"HEAD_DIM": 16, "VALUE_DIM": 8, "OFFSET": -3}
    code = source("flash_fwd", "cuda", defines)
    assert runner.body_of(code) == ("flash_fwd", tuple(defines.items()))
    with pytest.raises(TypeError, match="expected '#define NAME integer'"):
        runner.body_of("#define SCALE 0.5\n" + code)
    with pytest.raises(TypeError, match="no kernels/gpu body"):
        runner.body_of(code + "\n// changed")
