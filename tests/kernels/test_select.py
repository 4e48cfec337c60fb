"""The one top-k helper (kernels.reference.select, kernels.numba.select) and the kNN kernels that call
it, against formulas written here: a stable argsort of the scores, a brute-force distance matrix."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.reference.select import top_k, top_k_mask


def _brute(s, k, mask, largest):
    """Stable argsort of the allowed entries (ties: smaller index), padded with -1."""
    out = []
    for r in range(s.shape[0]):
        allowed = np.ones(s.shape[1], bool) if mask is None else mask[r]
        key = np.where(allowed, -s[r] if largest else s[r], 0.0)
        order = [j for j in np.argsort(key, kind="stable") if allowed[j]][:k]
        out.append(order + [-1] * (k - len(order)))
    return np.array(out, np.int64).reshape(s.shape[0], k)


def _cases():
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        for n in (1, 2, 5, 17):
            for k in sorted({0, 1, n // 2, n, n + 2}):
                yield rng.standard_normal((6, n)).astype(dtype), k  # random
                yield rng.integers(-1, 2, (6, n)).astype(dtype), k  # many ties
                ext = np.array([np.finfo(dtype).max, -np.finfo(dtype).max, np.inf, -np.inf, 0.0, 1e-30], dtype)
                yield rng.choice(ext, (6, n)), k  # extreme values, NaN-free


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_reference_top_k_is_a_stable_sort(largest, masked):
    rng = np.random.default_rng(1)
    for s, k in _cases():
        mask = rng.random(s.shape) < 0.6 if masked else None
        idx, vals = top_k(s, k, mask=mask, largest=largest)
        want = _brute(s, k, mask, largest)
        np.testing.assert_array_equal(idx, want)
        ok = want >= 0
        np.testing.assert_array_equal(vals[ok], np.take_along_axis(s, np.maximum(want, 0), 1)[ok])
        assert np.all(vals[~ok] == (-np.inf if largest else np.inf))
        keep = top_k_mask(s, k, mask=mask, largest=largest)
        want_keep = np.zeros(s.shape, bool)
        for r in range(s.shape[0]):
            want_keep[r, want[r][want[r] >= 0]] = True
        np.testing.assert_array_equal(keep, want_keep)


def test_numba_insert_sorted_matches_reference():
    from kernels.numba.select import top_k_rows

    for s, k in _cases():
        if k == 0 or k > s.shape[1]:
            continue
        for largest in (True, False):
            idx = np.full((s.shape[0], k), -1, np.int64)
            vals = np.full((s.shape[0], k), np.inf, np.float64)
            top_k_rows(s.astype(np.float64), k, largest, idx, vals)
            ridx, rvals = top_k(s, k, largest=largest)
            np.testing.assert_array_equal(idx, ridx)
            np.testing.assert_array_equal(vals, rvals.astype(np.float64))


def test_numba_top_k_mask_row_matches_reference():
    from kernels.numba.select import top_k_mask_row

    rng = np.random.default_rng(3)
    for s, k in _cases():
        if k == 0:  # the cascade calls it only for top_k >= 1 (top_k = 0 means "no selection")
            continue
        s = s.astype(np.float64)
        s[~np.isfinite(s)] = 0.0  # quickselect ranks finite scores (the cascade's are finite)
        mask = rng.random(s.shape) < 0.7
        want = top_k_mask(s, k, mask=mask)
        for r in range(s.shape[0]):
            keep = np.zeros(s.shape[1], np.bool_)
            top_k_mask_row(s[r], mask[r], k, keep, np.empty(s.shape[1]))
            np.testing.assert_array_equal(keep, want[r])
