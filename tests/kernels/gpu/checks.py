"""The check every flash launcher passes, on any API: ``run(q, k, v, mask, scale, causal, offset, kernel=,
tiles=)`` returning NumPy ``(out, lse)``, against the float64 reference (outputs, −inf rows, LSE)."""
from __future__ import annotations

import numpy as np

from kernels.reference.flash import flash_attention


def check_flash(run, q, k, v, mask=None, scale=None, causal=False, offset=0, *, atol=2e-6, kernel=None, tiles=None):
    out, lse = run(q, k, v, mask, scale, causal, offset, tiles=tiles, kernel=kernel)
    want_out, want_lse = flash_attention(*(np.asarray(x, np.float64) for x in (q, k, v)), mask, scale, causal, offset)
    assert out.dtype == np.float32 and out.shape == want_out.shape and lse.shape == want_lse.shape
    np.testing.assert_allclose(out, want_out, atol=atol, rtol=2e-5)
    assert np.array_equal(np.isneginf(lse), np.isneginf(want_lse))
    fin = np.isfinite(want_lse)
    np.testing.assert_allclose(lse[fin], want_lse[fin], rtol=2e-6, atol=2e-5)
    return out, lse


def check_cascade(run, rng, B, lq, lk, d, dv, spread, score, *, curvatures=(0.1, 1.0, 4.0), temperature=1.0,
                  with_mask=False, kernel=None, vnorm=0.9):
    """``run(q, k, v, curvatures, temperature, score, mask, kernel)`` → NumPy ``S (H, B, Lq, dv + 1)``
    against the float64 reference (``top_k = 0``). Rule: per row, every coordinate within ``3e-5·S_0`` —
    the time coordinate bounds every coordinate of a positive combination of hyperboloid points
    (``|Σ w x_s| ≤ Σ w x_0``), so this is float32 rounding relative to the sum's size, however much the
    spatial coordinates cancel. A row with no allowed key is exactly 0. Values: random directions with
    norms up to ``vnorm`` (the GPU heads take ``√c‖v‖ ≤ 4``)."""
    from kernels.reference.lorentz import cascade_attention

    q = (spread * rng.standard_normal((B, lq, d))).astype(np.float32)
    k = (spread * rng.standard_normal((B, lk, d))).astype(np.float32)
    v = rng.standard_normal((B, lk, dv))
    v = (v / np.linalg.norm(v, axis=-1, keepdims=True) * rng.uniform(0.2, 1.0, (B, lk, 1)) * vnorm).astype(np.float32)
    mask = None
    if with_mask:
        mask = rng.random((B, lq, lk)) > 0.3
        mask[-1, 0] = False
    cs = np.asarray(curvatures, np.float64)
    got = run(q, k, v, cs, temperature, score, mask, kernel)
    want = cascade_attention(*(x.astype(np.float64) for x in (q, k, v)), cs, temperature, score, 0, mask)
    assert got.shape == want.shape == (cs.size, B, lq, dv + 1)
    bound = 3e-5 * np.abs(want[..., :1]) + 1e-30
    assert (np.abs(got - want) <= bound).all(), float((np.abs(got - want) / bound).max())
    if with_mask:
        assert np.all(got[:, -1, 0] == 0)
    return got
