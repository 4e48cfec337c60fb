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
