"""Compile the kernel bodies with nvcc (no GPU needed): what CI checks and RESULTS.md records.

:data:`VARIANTS` lists the compile-time constants each body is built with (the launchers' head
dimensions, the edge cases); :func:`is_hot` says which must not spill to local memory;
:func:`nvcc_resources` compiles one variant for one architecture and reads ptxas's report.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from kernels.gpu.flash import mma_layout, tiled_layout
from kernels.gpu.linear import plan as linear_plan
from kernels.gpu.sources import source

ARCHS = ("sm_80", "sm_90")


def _tiled(d: int, dv: int, score: int, tm: int = 4, tn: int = 4) -> dict:
    lay = tiled_layout(d, dv, tm, tn)  # the default chunks of the head (kernels.gpu.flash.head_chunks)
    return {"HEAD_DIM": d, "VALUE_DIM": dv, "SCORE": score,
            **{k: v for k, v in lay.items() if k not in ("shared_bytes", "rows", "value_blocks")}}


def _mma(d: int, dv: int, warps: int = 4, bk: int = 64) -> dict:
    lay = mma_layout(d, dv, warps, bk, "cuda")
    return {"HEAD_DIM": d, "VALUE_DIM": dv, **{k: v for k, v in lay.items() if k not in ("shared_bytes", "rows")}}


#: Compile-time variants of each body (every ``kernels/gpu/*.cu`` has an entry).
VARIANTS = {"flash_fwd": [{"HEAD_DIM": 1, "VALUE_DIM": 1, "SCORE": 0},
                          {"HEAD_DIM": 64, "VALUE_DIM": 64, "SCORE": 0},
                          {"HEAD_DIM": 128, "VALUE_DIM": 128, "SCORE": 0},
                          {"HEAD_DIM": 1, "VALUE_DIM": 2, "SCORE": 1},  # hyperbolic: values one wider
                          {"HEAD_DIM": 64, "VALUE_DIM": 65, "SCORE": 1},
                          {"HEAD_DIM": 128, "VALUE_DIM": 129, "SCORE": 1},
                          {"HEAD_DIM": 32, "VALUE_DIM": 64, "SCORE": 2},  # sliced Wasserstein, 32 projections
                          {"HEAD_DIM": 128, "VALUE_DIM": 128, "SCORE": 2},
                          {"HEAD_DIM": 64, "VALUE_DIM": 65, "SCORE": 3},  # Lorentz heads: hyperboloid values
                          {"HEAD_DIM": 1, "VALUE_DIM": 129, "SCORE": 4}],  # Busemann: no dimension loop
            "flash_tiled": [_tiled(1, 1, 0), _tiled(64, 64, 0), _tiled(128, 128, 0), _tiled(64, 64, 0, 8),
                            _tiled(128, 128, 0, 8), _tiled(1, 2, 1), _tiled(64, 65, 1), _tiled(128, 129, 1),
                            _tiled(32, 64, 2), _tiled(128, 128, 2), _tiled(64, 65, 3), _tiled(128, 129, 3),
                            _tiled(1, 65, 4),
                            # embedding widths, read by chunks (dimensions and value columns)
                            _tiled(384, 384, 0), _tiled(384, 384, 0, 8), _tiled(1024, 1024, 0, 8), _tiled(384, 385, 1),
                            _tiled(1024, 1025, 1), _tiled(384, 385, 3), _tiled(384, 64, 2)],
            "flash_mma": [_mma(1, 1), _mma(64, 64), _mma(128, 128, bk=32), _mma(128, 129, bk=32), _mma(64, 64, 8, 32)],
            "csr_step": [{"COLS": 1, "THREADS": 128}, {"COLS": 64, "THREADS": 128}],
            "linear_fwd": [linear_plan(1, 1), linear_plan(64, 64), linear_plan(256, 128), linear_plan(600, 64),
                           linear_plan(1024, 129)]}


def is_hot(defines: dict) -> bool:
    """The variants that must not spill: head dimensions 64/128 and the embedding widths 384/1,024, 64/256/1,024
    features, 64 columns."""
    return defines.get("HEAD_DIM") in (64, 128, 384, 1024) or defines.get("FEATURES") in (64, 256, 1024) or defines.get("COLS") == 64

__all__ = ["ARCHS", "VARIANTS", "is_hot", "find_nvcc", "nvcc_resources"]


def find_nvcc() -> str | None:
    """The nvcc on PATH, else the CUDA toolkit's default location, else None."""
    path = shutil.which("nvcc")
    if path is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        path = "/usr/local/cuda/bin/nvcc"
    return path


def nvcc_resources(nvcc: str, name: str, arch: str, defines: dict, workdir) -> dict:
    """Compile body ``name`` for ``arch`` (``--resource-usage``) in ``workdir``: registers per thread,
    spill bytes (stores + loads), static shared memory, and ptxas's text. RuntimeError on a failed build."""
    workdir = Path(workdir)
    tag = "_".join(str(v) for v in defines.values())
    src = workdir / f"{name}_{arch}_{tag}.cu"
    src.write_text(source(name, "cuda", defines))
    p = subprocess.run([nvcc, f"-arch={arch}", "-cubin", "-o", str(src.with_suffix(".cubin")), "--resource-usage",
                        str(src)], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"nvcc {name} {defines} {arch}:\n{p.stderr[-3000:]}")
    text = p.stdout + p.stderr
    regs = [int(x) for x in re.findall(r"Used (\d+) registers", text)]
    spills = [int(a) + int(b) for a, b in re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)]
    smem = [int(x) for x in re.findall(r"(\d+) bytes smem", text)]
    if not regs:
        raise RuntimeError(f"nvcc {name} {defines} {arch}: no resource report in\n{text}")
    return {"registers": max(regs), "spill_bytes": sum(spills), "smem": max(smem, default=0), "text": text}
