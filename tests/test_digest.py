"""Array digests: BLAKE2b of shape, dtype and C-order bytes, written out here with hashlib."""
from __future__ import annotations

import hashlib

import numpy as np

from workbench.digest import array_digest


def test_digest_is_blake2b_of_shape_dtype_and_bytes(rng):
    a = rng.standard_normal((5, 3))
    want = hashlib.blake2b(str(((5, 3), "<f8")).encode() + a.tobytes(order="C"), digest_size=16).hexdigest()
    assert array_digest(a) == want
    assert array_digest(np.asfortranarray(a)) == want  # layout does not matter, values do
    assert array_digest(a.T.copy().T) == want


def test_digest_tells_values_dtype_and_shape_apart(rng):
    a = rng.standard_normal((4, 6))
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.inf)
    digests = {array_digest(x) for x in (a, b, a.astype(np.float32), a.reshape(6, 4), a.reshape(-1))}
    assert len(digests) == 5
