"""The sliced-Wasserstein score of the tile body (full path: −‖a_i − b_j‖_p / T over the projected
features) through OpenCL on the CPU, against the NumPy reference, for p = 1, 2 and a general p.
Rule (FlashAttention's): against float64, the kernel errs at most twice as much as a plain float32
evaluation of the same formula, summed term by term (the sums of |a − b|^p over 128 projections
round in float32)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.reference import sliced_wasserstein as R

pytestmark = pytest.mark.opencl


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
@pytest.mark.parametrize("B,lq,lk,P,dv", [(2, 40, 57, 32, 16), (1, 1, 1, 1, 1), (1, 70, 33, 128, 8)])
def test_full_path_equals_the_reference(opencl, rng, p, B, lq, lk, P, dv):
    a, b = (rng.standard_normal((B, L, P)).astype(np.float32) for L in (lq, lk))
    v = rng.standard_normal((B, lk, dv)).astype(np.float32)
    mask = rng.random((B, lq, lk)) > 0.3
    for m in (None, mask):
        out, lse = opencl.sw_partial("opencl", a, b, v, p, 0.8, m)
        want, want_lse = R.partial(a, b, v, p, 0.8, m)
        # the plain float32 formula, summed term after term as a kernel thread does (cumsum's last entry)
        terms = np.abs(a[:, :, None, :] - b[:, None, :, :]) ** np.float32(p)
        d32 = np.cumsum(terms, axis=-1, dtype=np.float32)[..., -1] ** np.float32(1 / p)
        s32 = np.where(m, -d32 / np.float32(0.8), -np.inf) if m is not None else -d32 / np.float32(0.8)
        e32 = np.exp(s32 - s32.max(-1, keepdims=True))
        plain = np.nan_to_num((e32 / e32.sum(-1, keepdims=True)) @ v)
        assert np.abs(out - want).max() <= 2 * np.abs(plain - want).max() + 2e-6
        fin = np.isfinite(want_lse)
        assert np.array_equal(fin, np.isfinite(lse))
        np.testing.assert_allclose(lse[fin], want_lse[fin], atol=3e-5, rtol=3e-6)
