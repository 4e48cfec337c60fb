"""GPU benchmark (needs a CUDA GPU, CuPy and PyTorch): our CuPy kernels against their peers, same run.

Run: ``python -m benchmarks.gpu [--quick] [--append benchmarks/RESULTS.md]``. Without a GPU it says
so and exits 0 (nothing is measured, nothing is written).

* flash, float32, ``(B, H, L, d) = (1, 16, L, d)`` for ``L`` = 512 … 16,384 and ``d`` = 64, 128:
  median seconds of :func:`kernels.gpu.flash.flash_cupy` and of
  ``torch.nn.functional.scaled_dot_product_attention`` on the same float32 data (the peer), TFLOP/s
  (``4·B·H·L²·d`` flops) and the ratio (torch time / ours; ≥ 1 means ours is faster), max |difference|.
* hyperbolic (Einstein midpoint), ``(1, 1, 16384, 64)``: :func:`kernels.gpu.hyperbolic.hyperbolic_cupy`
  against a CuPy array-expression baseline (pairwise distances as one ``(L, L)`` matrix, softmax,
  one matrix product — what a user would write), and the Numba CPU kernel's time from this run.

Each timing: warm-up, then CUDA events around ``repeats`` calls, median. The GPU model, CUDA and
library versions are printed with the table.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from workbench.benchmarking import print_and_append


def _gpu():
    try:
        import cupy as cp

        if cp.cuda.runtime.getDeviceCount() < 1:
            return None, "no CUDA device"
        return cp, cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as exc:  # no CuPy, no driver
        return None, f"{type(exc).__name__}: {exc}"


def _time(cp, fn, repeats: int) -> float:
    fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def flash_rows(cp, lengths, dims, heads: int, repeats: int) -> list[dict]:
    import torch

    from kernels.gpu.flash import flash_cupy

    rows = []
    for d in dims:
        for L in lengths:
            rng = np.random.default_rng(L + d)
            q, k, v = (cp.asarray(rng.standard_normal((heads, L, d)).astype(np.float32)) for _ in range(3))
            tq, tk, tv = (torch.as_tensor(x, device="cuda") for x in (q, k, v))
            ours = _time(cp, lambda: flash_cupy(q, k, v), repeats)
            peer = _time(cp, lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), repeats)
            diff = float(cp.abs(flash_cupy(q, k, v)[0] -
                                cp.asarray(torch.nn.functional.scaled_dot_product_attention(tq, tk, tv))).max())
            flops = 4.0 * heads * L * L * d
            rows.append({"L": L, "d": d, "ours_s": ours, "torch_s": peer, "tflops": flops / ours / 1e12,
                         "torch_tflops": flops / peer / 1e12, "ratio": peer / ours, "max_diff": diff})
            print(rows[-1], flush=True)
    return rows


def hyperbolic_row(cp, L: int, d: int, repeats: int) -> dict:
    from kernels.gpu.hyperbolic import hyperbolic_cupy
    from kernels.hyperbolic import hyperbolic_attention

    rng = np.random.default_rng(0)
    q, k, v = (0.3 * rng.standard_normal((1, L, d)).astype(np.float32) for _ in range(3))
    qg, kg, vg = (cp.asarray(x) for x in (q, k, v))

    def baseline():  # the array-expression version a user would write (projection omitted: inside the ball)
        sq = (qg * qg).sum(-1)
        sk = (kg * kg).sum(-1)
        d2 = cp.maximum(sq[..., :, None] + sk[..., None, :] - 2 * qg @ kg.transpose(0, 2, 1), 0)
        x = 2 * d2 / ((1 - sq)[..., :, None] * (1 - sk)[..., None, :])
        s = -cp.arccosh(1 + x)
        w = cp.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        lam = 2 / (1 - (vg * vg).sum(-1, keepdims=True))
        r = w @ cp.concatenate([lam * vg, lam - 1], -1)
        return r

    ours = _time(cp, lambda: hyperbolic_cupy(qg, kg, vg), repeats)
    base = _time(cp, baseline, repeats)
    hyperbolic_attention(q, k, v, backend="numba")  # warm-up: compile or load the Numba cache
    t0 = time.perf_counter()
    want = hyperbolic_attention(q, k, v, backend="numba")
    cpu = time.perf_counter() - t0
    diff = float(np.abs(cp.asnumpy(hyperbolic_cupy(qg, kg, vg)) - want).max())
    return {"L": L, "d": d, "ours_s": ours, "cupy_expr_s": base, "numba_cpu_s": cpu, "vs_expr": base / ours,
            "vs_numba": cpu / ours, "max_diff": diff}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L = 512 and 2,048 only")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--append", metavar="PATH")
    a = ap.parse_args(argv)
    cp, name = _gpu()
    if cp is None:
        print(f"no GPU here ({name}): nothing measured")
        return 0
    import torch

    lengths = [512, 2048] if a.quick else [512, 1024, 2048, 4096, 8192, 16384]
    rows = flash_rows(cp, lengths, (64, 128), 16, a.repeats)
    hyp = hyperbolic_row(cp, 2048 if a.quick else 16384, 64, a.repeats)
    lines = [f"\n### GPU kernels on {name} (`python -m benchmarks.gpu`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
             f"CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, torch {torch.__version__}; "
             f"medians of {a.repeats} calls timed by CUDA events.\n",
             "| L | d | flash_fwd.cu ms | TFLOP/s | torch SDPA fp32 ms | torch TFLOP/s | ratio (torch / ours) | max diff |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['L']:,} | {r['d']} | {1e3 * r['ours_s']:.3f} | {r['tflops']:.2f} | {1e3 * r['torch_s']:.3f} | "
              f"{r['torch_tflops']:.2f} | {r['ratio']:.2f} | {r['max_diff']:.1e} |" for r in rows]
    lines += ["", "| hyperbolic (1, 1, L, d) | ours ms | CuPy expressions ms | Numba CPU ms | × expressions | × Numba | max diff |",
              "|---|---|---|---|---|---|---|",
              f"| L = {hyp['L']:,}, d = {hyp['d']} | {1e3 * hyp['ours_s']:.2f} | {1e3 * hyp['cupy_expr_s']:.2f} | "
              f"{1e3 * hyp['numba_cpu_s']:.1f} | {hyp['vs_expr']:.2f} | {hyp['vs_numba']:.1f} | {hyp['max_diff']:.1e} |"]
    print_and_append("\n".join(lines) + "\n", a.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
