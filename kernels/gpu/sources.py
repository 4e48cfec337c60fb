"""Kernel sources: a portable body (``kernels/gpu/NAME.cu``) behind the prelude of an API.

``source(name, api, defines)`` = the ``#define`` lines of ``defines`` (compile-time constants such
as ``HEAD_DIM``), the API's prelude (``"cuda"`` or ``"opencl"``), then the body. The prelude maps
the few names a body uses for what differs between CUDA and OpenCL C (kernel and address-space
qualifiers, thread and block indices, local memory, barriers, math functions).
"""
from __future__ import annotations

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
    return head + PRELUDES[api].read_text() + "\n" + body.read_text()
