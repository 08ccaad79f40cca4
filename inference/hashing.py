"""A fingerprint of a study's pixels, so the worklist can tell an already-analysed image.

It hashes the decoded pixels (as the model sees them, before preprocessing), not the file:
the same radiograph re-sent with a new header or another transfer syntax that decodes to
the same values is recognised; two different images never share a hash in practice.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .study import Study


def pixel_sha256(study: Study) -> str:
    """Hex SHA-256 of the study's pixels as little-endian float32, prefixed by their shape
    (so a 2x8 and a 4x4 image with the same values differ)."""
    pixels = np.ascontiguousarray(study.pixels, dtype="<f4")
    h = hashlib.sha256()
    h.update(("x".join(str(n) for n in pixels.shape) + ";").encode("ascii"))
    h.update(pixels.tobytes())
    return h.hexdigest()
