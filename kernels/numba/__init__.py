"""Numba CPU kernels. Imported lazily by the dispatchers; compiled on first use, cached on disk.

Numba keys each cached kernel on the contents of its own source file, not on the helpers it
inlines or calls from the other modules here (``_common``, ``vecmath``, ``hyperbolic``…): after a
helper changes, a kernel whose own file did not would keep loading the old machine code. So at
import a digest of every module of this package is compared with the one the cache was built
from; when it differs, the cached kernels (``__pycache__/*.nbi``, ``*.nbc``, the default in-tree
cache) are dropped and each is compiled again on first use (``python -m workbench warm`` does it
ahead of time).
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def renew_stale_cache(here: Path) -> bool:
    """Drop the cached kernels of the package in ``here`` if its modules changed; True if so."""
    sources = sorted(here.glob("*.py"))
    digest = hashlib.sha256(b"\0".join(p.name.encode() + b"\0" + p.read_bytes() for p in sources)).hexdigest()
    cache = here / "__pycache__"
    record = cache / "numba-sources.sha256"
    try:
        if record.read_text() == digest:
            return False
    except OSError:
        pass
    try:  # a read-only install keeps whatever cache it has
        for entry in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            entry.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        record.write_text(digest)
    except OSError:
        pass
    return True


renew_stale_cache(Path(__file__).resolve().parent)
