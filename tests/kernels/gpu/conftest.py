"""Fixtures of the GPU-kernel tests: OpenCL (PoCL) for the portable bodies, nvcc for the CUDA builds.

Without PyOpenCL or nvcc the tests skip with the reason, except under CI=true, where `make test`
installs PyOpenCL and the machine has nvcc: a missing tool there is a failure, not a skip.
"""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str):
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the GPU kernels must be checked in CI)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def opencl():
    """``kernels.gpu.flash`` with an OpenCL device ready (PoCL's CPU device)."""
    try:
        import pyopencl  # noqa: F401

        from kernels.gpu.runtime import opencl_context

        opencl_context()
    except Exception as exc:  # no package, no platform or no device
        _missing(f"no OpenCL device ({type(exc).__name__}: {exc}); pip install pyopencl pocl-binary-distribution")
    import kernels.gpu.flash as gpu_flash

    return gpu_flash


@pytest.fixture(scope="session")
def nvcc():
    from kernels.gpu.build import find_nvcc

    path = find_nvcc()
    if path is None:
        _missing("nvcc not found (CUDA toolkit): the .cu bodies cannot be compiled here")
    return path


@pytest.fixture(scope="session")
def cp():
    """CuPy with a CUDA device; the test is skipped cleanly without one (marked gpu)."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (a GPU machine has cupy-cuda13x)")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as exc:  # no driver
        pytest.skip(f"no CUDA device ({type(exc).__name__})")
    return cupy
