"""Float32 error of the GPU bodies on real embeddings, run through OpenCL on the CPU (PoCL; no GPU needed).

Run: ``python -m benchmarks.gpu_accuracy [--append benchmarks/RESULTS.md]``. On the shipped ``scipy_api``
set (unit-norm 384-d sentence embeddings: heads wider than 128, read by chunks), 96 queries × 256 keys,
and on unit-norm random rows of 1,024 dimensions: max |error| of the flash and hyperbolic bodies against
the float64 reference, beside the error of the float32 reference itself (the yardstick of the tests:
at most twice it, plus float32 rounding).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from kernels.gpu.flash import flash_opencl, head_chunks
from kernels.gpu.hyperbolic import hyperbolic_opencl
from kernels.reference import hyperbolic as hyperbolic_ref
from kernels.reference.flash import flash_attention
from workbench.benchmarking import print_and_append
from workbench.data import load_demo


def _f64(*xs):
    return [x.astype(np.float64) for x in xs]


def rows() -> list[tuple[str, str, float, float]]:
    """``(case, chunks, max |error| of the body, max |error| of the float32 reference)``."""
    x = load_demo("scipy_api").x.astype(np.float32)
    q, k = x[None, :96], x[None, 96:352]
    rng = np.random.default_rng(0)
    v = rng.standard_normal((1, 256, 384)).astype(np.float32)
    out = []
    for scale in (1 / np.sqrt(384), 20.0):
        got, _ = flash_opencl(q, k, v, None, scale)
        want, _ = flash_attention(*_f64(q, k, v), None, scale)
        plain, _ = flash_attention(q, k, v, None, scale)
        out.append((f"flash, scipy_api 384-d, scale {scale:.3g}", str(head_chunks(384, 384)),
                    float(np.abs(got - want).max()), float(np.abs(plain - want).max())))
    for c in (0.25, 1.0):
        for agg in ("einstein", "tangent"):
            got = hyperbolic_opencl(q, k, k, c, 0.1, agg)
            want = hyperbolic_ref.attention(*_f64(q, k, k), c, 0.1, agg)
            plain = hyperbolic_ref.attention(q, k, k, c, 0.1, agg)
            out.append((f"hyperbolic {agg}, scipy_api 384-d, c = {c:g}, T = 0.1", str(head_chunks(384, 385)),
                        float(np.abs(got - want).max()), float(np.abs(plain - want).max())))
    q2, k2, v2 = (rng.standard_normal((1, n, 1024)).astype(np.float32) for n in (40, 150, 150))
    q2, k2 = (a / np.linalg.norm(a, axis=-1, keepdims=True) for a in (q2, k2))
    v2 = np.concatenate([v2, v2[..., :1]], -1)
    got, _ = flash_opencl(q2, k2, v2, None, 20.0)
    want, _ = flash_attention(*_f64(q2, k2, v2), None, 20.0)
    plain, _ = flash_attention(q2, k2, v2, None, 20.0)
    out.append(("flash, unit-norm random 1,024-d, dv = 1,025, scale 20", str(head_chunks(1024, 1025)),
                float(np.abs(got - want).max()), float(np.abs(plain - want).max())))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", metavar="PATH")
    a = ap.parse_args(argv)
    lines = [f"\n### GPU bodies on real embeddings, through OpenCL (`python -m benchmarks.gpu_accuracy`, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
             "| case | chunks (DC, VC) | body max abs error | float32 reference max abs error |", "|---|---|---|---|"]
    lines += [f"| {case} | {chunks} | {err:.2e} | {plain:.2e} |" for case, chunks, err, plain in rows()]
    print_and_append("\n".join(lines) + "\n", a.append)


if __name__ == "__main__":
    main()
