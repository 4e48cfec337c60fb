"""Content digests of arrays: cache keys and "was this fitted to these very values?" checks."""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["array_digest"]


def array_digest(a) -> str:
    """BLAKE2b (128 bit, hex) of ``a``'s shape, dtype and C-order bytes: equal digests, equal arrays."""
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()
