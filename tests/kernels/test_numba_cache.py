"""Cached Numba kernels are dropped when any module of ``kernels.numba`` changes, not only their own."""
from __future__ import annotations

from kernels.numba import renew_stale_cache


def test_a_changed_helper_drops_every_cached_kernel(tmp_path):
    (tmp_path / "kernel.py").write_text("from helper import f\n")
    helper = tmp_path / "helper.py"
    helper.write_text("def f(): return 1\n")
    cache = tmp_path / "__pycache__"

    def cached():
        cache.mkdir(exist_ok=True)
        for name in ("kernel.k-3.py311.nbi", "kernel.k-3.py311.1.nbc"):
            (cache / name).write_bytes(b"compiled")

    cached()
    assert renew_stale_cache(tmp_path)  # first time: no record of what the cache was built from
    assert (cache / "numba-sources.sha256").exists() and not list(cache.glob("*.nb?"))
    cached()
    assert not renew_stale_cache(tmp_path)  # nothing changed: the cache stays
    assert len(list(cache.glob("*.nb?"))) == 2
    helper.write_text("def f(): return 2\n")  # a helper changes, the kernel's own file does not
    assert renew_stale_cache(tmp_path)
    assert not list(cache.glob("*.nb?")), "the kernel inlining the old helper must be compiled again"
