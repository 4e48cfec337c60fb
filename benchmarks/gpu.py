"""GPU benchmark (needs a CUDA GPU, CuPy and PyTorch): our CuPy kernels against their peers, same run.

Run: ``python -m benchmarks.gpu [--quick] [--append benchmarks/RESULTS.md]``. Without a GPU it says
so and exits 0 (nothing is measured, nothing is written).

* flash, float32, ``(B, H, L, d) = (1, 16, L, d)`` for ``L`` = 512 … 16,384 and ``d`` = 64, 128:
  median seconds of :func:`kernels.gpu.flash.flash_cupy` (each kernel of :data:`FLASH_KERNELS`) and of
  ``torch.nn.functional.scaled_dot_product_attention`` on the same float32 data (the peer), TFLOP/s
  (``4·B·H·L²·d`` flops) and the ratio (torch time / ours; ≥ 1 means ours is faster), max |difference|.
* hyperbolic (Einstein midpoint), ``(1, 1, 16384, 64)``: :func:`kernels.gpu.hyperbolic.hyperbolic_cupy`
  against a CuPy array-expression baseline (pairwise distances as one ``(L, L)`` matrix, softmax,
  one matrix product — what a user would write), and the Numba CPU kernel's time from this run.
* wide heads (sentence and image embeddings, read by chunks), unit-norm rows ``(1, 1, 8192, d)``, ``d`` = 384,
  1,024: flash ("tiled") against torch SDPA float32 in the same run, and hyperbolic at ``d`` = 384 (rows of
  norm 0.9) against the CuPy array expressions and the Numba CPU kernel (:func:`wide_rows`).
* Lorentz cascade heads, 4 curvatures, unit-norm ``(1, 8192, 64)``: :func:`kernels.gpu.lorentz.cascade_cupy`
  against the same kind of array expressions (:func:`lorentz_expressions`) and the Numba CPU kernel.

Each timing: warm-up, then CUDA events around ``repeats`` calls, median. The GPU model, CUDA and
library versions are printed with the table.
"""
from __future__ import annotations

import argparse
import statistics
import time
import traceback

import numpy as np

from workbench.benchmarking import print_and_append


#: Tile shapes ``(query rows per block, keys per tile)`` the sweep tries (the default first).
SWEEP_TILES = [("rows", (32, 16)), ("rows", (128, 8)), ("tiled", (4, 4)), ("tiled", (8, 4)), ("tiled", (4, 8)),
               ("tiled", (8, 8)), ("tiled", (2, 4)), ("tiled", None), ("mma", (4, 64)), ("mma", (4, 32)),
               ("mma", (8, 32)), ("mma", (2, 64)), ("mma", None)]
#: At L = 512 (few blocks per multiprocessor): the default choice against fixed shapes.
SHORT_TILES = [("tiled", (8, 4)), ("tiled", (4, 4)), ("tiled", (2, 4)), ("tiled", None), ("mma", (2, 64)),
               ("mma", None)]
#: Wide heads (one head, L = 8,192): "tiled" tiles ``(TM, TN)`` or ``(TM, TN, DC, VC)`` (None: the default chunks)
#: — fewer value blocks (a larger VC) recompute the scores fewer times but hold more accumulators per thread.
WIDE_TILES = {384: [("tiled", None), ("tiled", (2, 4)), ("tiled", (8, 4)), ("tiled", (4, 4, None, 192)),
                    ("tiled", (2, 4, None, 384)), ("tiled", (4, 4, 32, None)), ("tiled", (4, 4, 128, None))],
              1024: [("tiled", None), ("tiled", (2, 4)), ("tiled", (2, 4, None, 342)), ("tiled", (2, 4, None, 513)),
                     ("tiled", (4, 4, 128, None))]}
#: The flash kernels of the main table: one thread per row, register tiles, tensor cores (3×TF32).
FLASH_KERNELS = ("rows", "tiled", "mma")


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
            # torch as (1, H, L, d): a 3-D call would leave the fused kernels for the unfused MATH path
            tq, tk, tv = (torch.as_tensor(x, device="cuda")[None] for x in (q, k, v))
            if L == lengths[0]:
                print("torch SDPA picks", sdpa_backend(torch, tq, tk, tv), flush=True)
            flops = 4.0 * heads * L * L * d
            row = {"L": L, "d": d}
            peer = _time(cp, lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), repeats)
            want = cp.asarray(torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)[0])
            row.update(torch_s=peer, torch_tflops=flops / peer / 1e12)
            for kernel in FLASH_KERNELS:
                try:
                    ours = _time(cp, lambda: flash_cupy(q, k, v, kernel=kernel), repeats)
                    diff = float(cp.abs(flash_cupy(q, k, v, kernel=kernel)[0] - want).max())
                except Exception as exc:  # a compile or launch failure is a result too
                    print(kernel, type(exc).__name__, str(exc)[:300], flush=True)
                    ours, diff = float("nan"), float("nan")
                row.update({f"{kernel}_s": ours, f"{kernel}_tflops": flops / ours / 1e12, f"{kernel}_ratio": peer / ours,
                            f"{kernel}_diff": diff})
            rows.append(row)
            print(row, flush=True)
    return rows


def sdpa_backend(torch, q, k, v) -> str:
    """The backend torch's SDPA dispatcher picks for these tensors (its private chooser; "?" if absent)."""
    try:
        from torch.nn.attention import SDPBackend

        return SDPBackend(int(torch._fused_sdp_choice(q, k, v))).name
    except Exception as exc:  # a torch without the chooser
        return f"? ({type(exc).__name__})"


def tile_rows(cp, L: int, dims, heads: int, tiles, repeats: int) -> list[dict]:
    """Our flash at one length for each ``(kernel, tiles)``: "rows" (query rows per block, keys per tile),
    "tiled" (query rows, keys per thread)."""
    from kernels.gpu.flash import flash_cupy

    rows = []
    for d in dims:
        rng = np.random.default_rng(d)
        q, k, v = (cp.asarray(rng.standard_normal((heads, L, d)).astype(np.float32)) for _ in range(3))
        for kernel, t in tiles:
            try:
                s = _time(cp, lambda: flash_cupy(q, k, v, tiles=t, kernel=kernel), repeats)
                rows.append({"L": L, "d": d, "kernel": kernel, "tiles": t, "ms": 1e3 * s,
                             "tflops": 4.0 * heads * L * L * d / s / 1e12})
            except Exception as exc:  # a tile shape that does not fit (shared memory, registers)
                rows.append({"L": L, "d": d, "kernel": kernel, "tiles": t, "ms": float("nan"), "tflops": float("nan"),
                             "error": f"{type(exc).__name__}: {exc}"[:200]})
            print(rows[-1], flush=True)
    return rows


def peer_rows(cp, L: int, dims, heads: int, repeats: int) -> list[dict]:
    """torch SDPA float32 by each of its backends that takes float32, and the one its dispatcher picks."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    rows = []
    for d in dims:
        rng = np.random.default_rng(d)
        tq, tk, tv = (torch.as_tensor(rng.standard_normal((1, heads, L, d)).astype(np.float32), device="cuda")
                      for _ in range(3))
        picked = sdpa_backend(torch, tq, tk, tv)
        for be in (SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
            try:
                with sdpa_kernel([be]):
                    s = _time(cp, lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), repeats)
                rows.append({"L": L, "d": d, "backend": be.name, "picked": be.name == picked, "ms": 1e3 * s,
                             "tflops": 4.0 * heads * L * L * d / s / 1e12})
            except Exception as exc:  # a backend that refuses float32 here
                rows.append({"L": L, "d": d, "backend": be.name, "picked": False, "ms": float("nan"),
                             "tflops": float("nan"), "error": f"{type(exc).__name__}: {str(exc)[:120]}"})
            print(rows[-1], flush=True)
    return rows


def hyperbolic_row(cp, L: int, d: int, repeats: int, norm: float | None = None) -> dict:
    """Hyperbolic attention (Einstein midpoint) on ``(1, L, d)``: N(0, 0.3²) rows, or rows of ``norm``."""
    from kernels.gpu.hyperbolic import hyperbolic_cupy
    from kernels.hyperbolic import hyperbolic_attention

    rng = np.random.default_rng(0)
    q, k, v = (0.3 * rng.standard_normal((1, L, d)).astype(np.float32) for _ in range(3))
    if norm is not None:  # embeddings scaled into the ball (the baseline below does not project)
        q, k, v = (norm * x / np.linalg.norm(x, axis=-1, keepdims=True) for x in (q, k, v))
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
    # the kernel alone, on arrays already projected (the call above adds the host-side float64 steps)
    from kernels.gpu.flash import poincare_partial
    from kernels.gpu.hyperbolic import _prepare

    parts = [cp.asarray(x) for x in _prepare(q, k, v, 1.0, "einstein")]
    alone = {kern: _time(cp, lambda: poincare_partial("cuda", *parts, 1.0, 1.0, kernel=kern), repeats)
             for kern in ("rows", "tiled")}
    hyperbolic_attention(q, k, v, backend="numba")  # warm-up: compile or load the Numba cache
    t0 = time.perf_counter()
    want = hyperbolic_attention(q, k, v, backend="numba")
    cpu = time.perf_counter() - t0
    diff = float(np.abs(cp.asnumpy(hyperbolic_cupy(qg, kg, vg)) - want).max())
    return {"L": L, "d": d, "ours_s": ours, "cupy_expr_s": base, "numba_cpu_s": cpu, "vs_expr": base / ours,
            "vs_numba": cpu / ours, "max_diff": diff, "rows_kernel_s": alone["rows"], "tiled_kernel_s": alone["tiled"]}


def wide_rows(cp, L: int, dims, repeats: int) -> list[dict]:
    """Flash ("tiled", by chunks) against torch SDPA float32 on unit-norm ``(1, 1, L, d)`` rows (scale 20: the
    logit range real embeddings need), TFLOP/s and the ratio, max |difference|."""
    import torch

    from kernels.gpu.flash import flash_cupy

    rows = []
    for d in dims:
        rng = np.random.default_rng(d)
        x = [rng.standard_normal((1, L, d)).astype(np.float32) for _ in range(3)]
        q, k = (cp.asarray(a / np.linalg.norm(a, axis=-1, keepdims=True)) for a in x[:2])
        v = cp.asarray(x[2])
        tq, tk, tv = (torch.as_tensor(a, device="cuda")[None] for a in (q, k, v))
        flops = 4.0 * L * L * d
        peer = _time(cp, lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, scale=20.0), repeats)
        want = cp.asarray(torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, scale=20.0)[0])
        ours = _time(cp, lambda: flash_cupy(q, k, v, scale=20.0), repeats)
        diff = float(cp.abs(flash_cupy(q, k, v, scale=20.0)[0] - want).max())
        rows.append({"L": L, "d": d, "torch_picks": sdpa_backend(torch, tq, tk, tv), "torch_s": peer,
                     "ours_s": ours, "tflops": flops / ours / 1e12, "ratio": peer / ours, "diff": diff})
        print(rows[-1], flush=True)
    return rows


def _wide_table(rows: list[dict], h: dict) -> list[str]:
    out = ["", "| wide heads (1, 1, L, d), unit-norm | torch SDPA fp32 ms (backend) | ours ms (tiled, chunks) | "
           "ours TFLOP/s | ratio | max diff |", "|---|---|---|---|---|---|"]
    out += [f"| L = {r['L']:,}, d = {r['d']} | {1e3 * r['torch_s']:.2f} ({r['torch_picks']}) | {1e3 * r['ours_s']:.2f} | "
            f"{r['tflops']:.2f} | {r['ratio']:.2f} | {r['diff']:.1e} |" for r in rows]
    return out + _hyperbolic_table(h)


def lorentz_expressions(xp, q, k, v, c: float):
    """One Lorentz head as a user would write it with array expressions (``xp``: CuPy, or NumPy to check):
    points by ``exp_0``, ``d = arcosh(−c⟨x, y⟩_L)/√c`` from one matrix product, softmax, the weighted sum
    of the values on the hyperboloid ``(B, Lq, dv + 1)``."""
    sc = c ** 0.5

    def exp0(u):
        n = xp.maximum(xp.sqrt((u * u).sum(-1, keepdims=True)), 1e-12)
        xs = xp.sinh(sc * n) / (sc * n) * u
        return xp.sqrt(1 / c + (xs * xs).sum(-1, keepdims=True)), xs

    q0, qs = exp0(q)
    k0, ks = exp0(k)
    inner = qs @ ks.transpose(0, 2, 1) - q0 * k0.transpose(0, 2, 1)
    s = -xp.arccosh(xp.maximum(-c * inner, 1.0)) / sc
    w = xp.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    v0, vs = exp0(v)
    return w @ xp.concatenate([v0, vs], -1)


def lorentz_row(cp, L: int, d: int, repeats: int) -> dict:
    """Lorentz cascade heads (4 curvatures, 0.1 … 2), unit-norm rows ``(1, L, d)``: our GPU heads
    (:func:`kernels.gpu.lorentz.cascade_cupy`) against the array expressions and the Numba CPU kernel."""
    from kernels.gpu.lorentz import cascade_cupy
    from kernels.lorentz import cascade_attention

    cs = np.exp(np.linspace(np.log(0.1), np.log(2.0), 4))
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, L, d)) for _ in range(3))
    q, k, v = (np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), np.float32) for x in (q, k, v))
    qg, kg, vg = (cp.asarray(x) for x in (q, k, v))
    ours = _time(cp, lambda: cascade_cupy(qg, kg, vg, cs), repeats)
    base = _time(cp, lambda: cp.stack([lorentz_expressions(cp, qg, kg, vg, float(c)) for c in cs]), repeats)
    cascade_attention(q, k, v, curvatures=cs, backend="numba")  # warm-up: compile or load the Numba cache
    t0 = time.perf_counter()
    want = cascade_attention(q, k, v, curvatures=cs, backend="numba")
    cpu = time.perf_counter() - t0
    diff = float((np.abs(cp.asnumpy(cascade_cupy(qg, kg, vg, cs)) - want) / want[..., :1]).max())
    return {"L": L, "d": d, "ours_s": ours, "cupy_expr_s": base, "numba_cpu_s": cpu, "vs_expr": base / ours,
            "vs_numba": cpu / ours, "max_rel_diff": diff}


def _lorentz_table(h: dict) -> list[str]:
    return ["", "| Lorentz heads (1, L, d), 4 curvatures, unit-norm rows | ours ms | CuPy expressions ms | Numba CPU ms | "
            "× expressions | × Numba | max diff / S₀ |", "|---|---|---|---|---|---|---|",
            f"| L = {h['L']:,}, d = {h['d']} | {1e3 * h['ours_s']:.2f} | {1e3 * h['cupy_expr_s']:.2f} | "
            f"{1e3 * h['numba_cpu_s']:.1f} | {h['vs_expr']:.2f} | {h['vs_numba']:.1f} | {h['max_rel_diff']:.1e} |"]


def _flash_table(rows: list[dict]) -> list[str]:
    head = "| L | d | torch SDPA fp32 ms | torch TFLOP/s | " + " | ".join(
        f"{k} ms | {k} TFLOP/s | {k} ratio" for k in FLASH_KERNELS) + " | max diff (" + ", ".join(FLASH_KERNELS) + ") |"
    out = [head, "|" + "---|" * (4 + 3 * len(FLASH_KERNELS) + 1)]
    for r in rows:
        cells = [f"{r['L']:,}", str(r["d"]), f"{1e3 * r['torch_s']:.3f}", f"{r['torch_tflops']:.2f}"]
        for k in FLASH_KERNELS:
            cells += [f"{1e3 * r[k + '_s']:.3f}", f"{r[k + '_tflops']:.2f}", f"{r[k + '_ratio']:.2f}"]
        cells.append(", ".join(f"{r[k + '_diff']:.1e}" for k in FLASH_KERNELS))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _hyperbolic_table(h: dict) -> list[str]:
    return ["", "| hyperbolic (1, 1, L, d) | ours ms (whole call) | kernel alone ms (rows, tiled) | CuPy expressions ms | "
            "Numba CPU ms | × expressions | × Numba | max diff |", "|---|---|---|---|---|---|---|---|",
            f"| L = {h['L']:,}, d = {h['d']} | {1e3 * h['ours_s']:.2f} | {1e3 * h['rows_kernel_s']:.2f}, "
            f"{1e3 * h['tiled_kernel_s']:.2f} | {1e3 * h['cupy_expr_s']:.2f} | {1e3 * h['numba_cpu_s']:.1f} | "
            f"{h['vs_expr']:.2f} | {h['vs_numba']:.1f} | {h['max_diff']:.1e} |"]


def _tile_table(rows: list[dict]) -> list[str]:
    return ["", "| our flash | L | d | kernel | tiles (None: default) | ms | TFLOP/s |",
            "|---|---|---|---|---|---|---|"] + [
        f"| | {r['L']:,} | {r['d']} | {r['kernel']} | {r['tiles']} | {r['ms']:.3f} | {r['tflops']:.2f} |"
        + (f" {r['error']}" if "error" in r else "") for r in rows]


def _peer_table(rows: list[dict]) -> list[str]:
    return ["", "| torch SDPA fp32 at L = 4,096 | d | backend | picked by default | ms | TFLOP/s |",
            "|---|---|---|---|---|---|"] + [
        f"| | {r['d']} | {r['backend']} | {'yes' if r['picked'] else ''} | {r['ms']:.3f} | {r['tflops']:.2f} |"
        + (f" {r['error']}" if "error" in r else "") for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L = 512 and 2,048 only")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--append", metavar="PATH")
    ap.add_argument("--sweep", action="store_true", help="also time other tile shapes and each torch SDPA backend")
    a = ap.parse_args(argv)
    cp, name = _gpu()
    if cp is None:
        print(f"no GPU here ({name}): nothing measured")
        return 0
    import torch

    lengths = [512, 2048] if a.quick else [512, 1024, 2048, 4096, 8192, 16384]
    lines = [f"\n### GPU kernels on {name} (`python -m benchmarks.gpu`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
             f"CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, torch {torch.__version__}; "
             f"medians of {a.repeats} calls timed by CUDA events.\n"]
    sections = [lambda: _flash_table(flash_rows(cp, lengths, (64, 128), 16, a.repeats)),
                lambda: _hyperbolic_table(hyperbolic_row(cp, 2048 if a.quick else 16384, 64, a.repeats)),
                lambda: _lorentz_table(lorentz_row(cp, 1024 if a.quick else 8192, 64, a.repeats)),
                lambda: _wide_table(wide_rows(cp, 2048 if a.quick else 8192, (384, 1024), a.repeats),
                                    hyperbolic_row(cp, 2048 if a.quick else 8192, 384, a.repeats, norm=0.9))]
    if a.sweep:
        sections += [lambda: _tile_table(tile_rows(cp, 4096, (64, 128), 16, SWEEP_TILES, a.repeats)
                                         + tile_rows(cp, 512, (64, 128), 16, SHORT_TILES, a.repeats)),
                     lambda: _peer_table(peer_rows(cp, 4096, (64, 128), 16, a.repeats)),
                     lambda: _tile_table([r for d, t in WIDE_TILES.items() for r in tile_rows(cp, 8192, (d,), 1, t, a.repeats)])]
    for section in sections:  # one failing section (a compile error, say) leaves the others measured
        try:
            part = section()
        except Exception:
            part = ["", "```", traceback.format_exc()[-2000:], "```"]
        print("\n".join(part), flush=True)
        lines += part
    print_and_append("\n".join(lines) + "\n", a.append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
