"""Registers, spills and shared memory of every GPU kernel body, compiled by nvcc for sm_80 and sm_90.

Run: ``python -m benchmarks.gpu_build [--append benchmarks/RESULTS.md]``. Each body of
``kernels/gpu`` is compiled with the CUDA prelude (``--resource-usage``) for the compile-time
variants the launchers build; no GPU is needed.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time

from kernels.gpu.build import ARCHS, VARIANTS, find_nvcc, is_hot, nvcc_resources
from kernels.gpu.flash import mma_layout, tiled_layout
from workbench.benchmarking import print_and_append

#: The compile-time constants a row shows (flash_tiled's layout offsets follow from them).
SHOWN = ("HEAD_DIM", "VALUE_DIM", "SCORE", "BLOCK_Q", "BLOCK_K", "TM", "TN", "DC", "VC", "WARPS", "BK", "FEATURES", "THREADS", "COL_TILE",
         "COLS")


def _dynamic(name: str, defines: dict) -> int:
    """Local memory the launcher sizes at launch (bytes): the register-tiled and tensor-core bodies."""
    if name == "flash_tiled":
        return tiled_layout(defines["HEAD_DIM"], defines["VALUE_DIM"], defines["TM"], defines["TN"], defines["DC"],
                            defines["VC"])["shared_bytes"]
    if name == "flash_mma":
        return mma_layout(defines["HEAD_DIM"], defines["VALUE_DIM"], defines["WARPS"], defines["BK"], "cuda")["shared_bytes"]
    return 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", metavar="PATH")
    a = ap.parse_args(argv)
    nvcc = find_nvcc()
    if nvcc is None:
        raise SystemExit("nvcc not found: install the CUDA toolkit")
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    lines = [f"\n### GPU kernels compiled by nvcc (`python -m benchmarks.gpu_build`, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
             f"{version}. No GPU involved: registers, local-memory spills and static shared memory per thread "
             "block, as ptxas reports them.\n",
             "| kernel | variant | arch | registers / thread | spill bytes | shared memory (bytes) |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, variants in VARIANTS.items():
            for defines in variants:
                if not is_hot(defines):
                    continue
                for arch in ARCHS:
                    r = nvcc_resources(nvcc, name, arch, defines, tmp)
                    var = ", ".join(f"{k}={v}" for k, v in defines.items() if k in SHOWN)
                    dynamic = _dynamic(name, defines)
                    lines.append(f"| `{name}` | {var} | {arch} | {r['registers']} | {r['spill_bytes']} | {r['smem']:,}"
                                 + (f" + {dynamic:,} dynamic" if dynamic else "") + " |")
    print_and_append("\n".join(lines) + "\n", a.append)


if __name__ == "__main__":
    main()
