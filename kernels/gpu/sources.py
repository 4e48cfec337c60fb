"""Kernel sources: a portable body (``kernels/gpu/NAME.cu``) behind the prelude of an API.

``source(name, api, defines)`` = the ``#define`` lines of ``defines`` (compile-time constants such
as ``HEAD_DIM``), the API's prelude (``"cuda"`` or ``"opencl"``), then the body. The prelude maps
the few names a body uses for what differs between CUDA and OpenCL C (kernel and address-space
qualifiers, thread and block indices, local memory, barriers, math functions). A body's line
``#include "NAME.cuh"`` is replaced by that file of ``kernels/gpu/`` (functions shared by several
bodies, e.g. the flash scores), so the source is one string for NVRTC, nvcc and OpenCL alike.
"""
from __future__ import annotations

import re
from pathlib import Path

GPU_DIR = Path(__file__).resolve().parent
PRELUDES = {"cuda": GPU_DIR / "prelude_cuda.cuh", "opencl": GPU_DIR / "prelude_opencl.h"}

__all__ = ["GPU_DIR", "PRELUDES", "bodies", "source"]


def bodies() -> list[str]:
    """The names of every kernel body (``kernels/gpu/*.cu``)."""
    return sorted(p.stem for p in GPU_DIR.glob("*.cu"))


def source(name: str, api: str, defines: dict | None = None) -> str:
    """The full source of body ``name`` for ``api`` ("cuda" or "opencl") with ``defines``."""
    if api not in PRELUDES:
        raise ValueError(f"api: expected one of {sorted(PRELUDES)}, got {api!r}")
    body = GPU_DIR / f"{name}.cu"
    if not body.is_file():
        raise ValueError(f"name: no kernel body {name!r}; have {bodies()}")
    head = "".join(f"#define {k} {int(v)}\n" for k, v in (defines or {}).items())
    return head + PRELUDES[api].read_text() + "\n" + _INCLUDE.sub(_included, body.read_text())


_INCLUDE = re.compile(r'^#include "(\w+\.cuh)"$', re.MULTILINE)


def _included(match) -> str:
    path = GPU_DIR / match.group(1)
    if not path.is_file():
        raise ValueError(f"#include: no shared kernel file {match.group(1)!r} in {GPU_DIR}")
    return path.read_text()
