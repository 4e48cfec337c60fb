#!/usr/bin/env bash
# One prepared GPU session (a lent GPU machine): the GPU tests, then `python -m benchmarks.gpu --sweep`.
# Logs and the results table go to $OUT (the device tool's folder) or benchmarks/_out/gpu.
# Pure-Python packages the machine lacks (param) come as wheels in .whl/, installed to /tmp/site:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl param==<constraints.txt version>
set -u
OUT=${OUT:-benchmarks/_out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import cupy, torch, numba, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__, 'cuda', cupy.cuda.runtime.runtimeGetVersion())" | tee -a "$OUT/gpu.txt"
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"
t0=$(date +%s)
timeout "${TEST_TIMEOUT:-200}" python3 -m pytest -q -n 8 -p no:cacheprovider -m "gpu or not opencl" \
  tests/kernels/gpu/test_cuda_bodies.py tests/kernels/gpu/test_cupy_kernels.py tests/kernels/gpu/test_host.py \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? in $(( $(date +%s) - t0 )) s"; tail -30 "$OUT/pytest.log"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-300}" python3 -m benchmarks.gpu --sweep --append "$OUT/bench.md" > "$OUT/bench.log" 2>&1
echo "benchmark rc=$? in $(( $(date +%s) - t0 )) s"; tail -60 "$OUT/bench.log"
if [ "${NCU:-0}" = 1 ] && command -v ncu >/dev/null; then  # where the tiled kernel's time goes (one launch)
  t0=$(date +%s)
  timeout 120 ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section Occupancy \
    --section MemoryWorkloadAnalysis -k regex:flash_tiled -c 1 python3 -c "
import cupy as cp
from kernels.gpu.flash import flash_cupy
q, k, v = (cp.random.standard_normal((16, 4096, 64), dtype=cp.float32) for _ in range(3))
flash_cupy(q, k, v); cp.cuda.Device().synchronize()" > "$OUT/ncu.txt" 2>&1
  echo "ncu rc=$? in $(( $(date +%s) - t0 )) s"
  grep -E "Duration|Throughput|Stall|Warp Cycles|Achieved Occupancy|Registers|Bank|Issued Ipc|Eligible|No Eligible|Theoretical Occ" "$OUT/ncu.txt" | head -40
fi
