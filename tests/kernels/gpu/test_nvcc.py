"""Every portable kernel body compiles with nvcc for sm_80 and sm_90 (CUDA prelude), with
``--resource-usage``; the hot kernels spill nothing to local memory (register counts: RESULTS.md,
``python -m benchmarks.gpu_build``)."""
from __future__ import annotations

import pytest

from kernels.gpu.build import ARCHS, VARIANTS, is_hot, nvcc_resources
from kernels.gpu.sources import GPU_DIR, PRELUDES, bodies


def test_every_body_has_variants_and_both_preludes_exist():
    assert set(bodies()) == set(VARIANTS), "a new .cu body needs its compile variants in kernels/gpu/build.py"
    assert all(p.is_file() for p in PRELUDES.values())
    for name in bodies():
        body = (GPU_DIR / f"{name}.cu").read_text()
        # portable subset: indices, local memory and barriers come through the prelude
        for cuda_only in ("__syncthreads", "threadIdx", "blockIdx", "__shared__", "__shfl", "atomicAdd", "__global__"):
            assert cuda_only not in body, f"{name}.cu uses {cuda_only} directly"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_bodies_compile_for_the_gpu(nvcc, tmp_path, name, arch):
    for defines in VARIANTS[name]:
        r = nvcc_resources(nvcc, name, arch, defines, tmp_path)
        if is_hot(defines):
            assert r["spill_bytes"] == 0, f"{name} {defines} on {arch} spills:\n{r['text']}"
            assert r["registers"] <= 255


@pytest.mark.parametrize("arch", ARCHS)
def test_the_tensor_core_body_compiles_to_tf32_mma(nvcc, tmp_path, arch):
    """flash_mma's products are tensor-core instructions on CUDA (the emulation is OpenCL's only): its PTX
    holds mma.sync TF32 tiles and the TF32 rounding of the 3×TF32 split, and no local-memory traffic."""
    import subprocess

    from kernels.gpu.sources import source

    src = tmp_path / "flash_mma.cu"
    src.write_text(source("flash_mma", "cuda", VARIANTS["flash_mma"][1]))
    subprocess.run([nvcc, f"-arch={arch}", "-ptx", "-o", str(tmp_path / "flash_mma.ptx"), str(src)], check=True,
                   capture_output=True, timeout=300)
    ptx = (tmp_path / "flash_mma.ptx").read_text()
    assert ptx.count("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32") >= 3
    assert "cvt.rna.tf32.f32" in ptx and "shfl.sync.bfly" in ptx
    assert "ld.local" not in ptx and "st.local" not in ptx
