"""A fingerprint of a study's pixels, so the worklist can tell an already-analysed image.

It hashes the decoded pixels (as the model sees them, before preprocessing), not the file:
the same radiograph under another file name or transfer syntax that decodes to the same
values has the same fingerprint; two different images never share one in practice. (The
worklist answers a study only from a result of the same fingerprint *and* header: the
header can change the input gate's verdict.)

The fingerprint is versioned (:data:`VERSION`), and a study stored under an earlier version
is still recognised (:func:`earlier_pixel_sha256`, asked by the result store only when the
worklist holds another fingerprint for the same file; the row is then re-keyed):

1. SHA-256 of the pixels as float32; JPEG baseline decoded by pylibjpeg-libjpeg.
2. (issue 14) Pixels that are whole numbers within 8 or 16 bits -- every 8-bit raster, most
   DICOMs -- are hashed at that width: a quarter or half the bytes, a third of the time on a
   CPU without SHA instructions (28 ms for a 1,024² film). Other pixels as in version 1.
   JPEG baseline is decoded by Pillow (:data:`inference.loaders.DECODING`), which gives
   another grey level to ~3 % of the pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
from pydicom.uid import JPEGBaseline8Bit

from .loaders import DECODING, load_study
from .study import Study

VERSION = 2
# The narrow integer types pixels are hashed in when they fit exactly, tagged in the hash.
_NARROW = (np.dtype("u1"), np.dtype("<u2"), np.dtype("<i2"))
# Transfer syntaxes (by name, as StudyMetadata holds them) whose decoder changed with version 2.
_REDECODED = {JPEGBaseline8Bit.name}


def pixel_sha256(study: Study) -> str:
    """Hex SHA-256 of the study's pixels (version :data:`VERSION`), prefixed by their shape (so
    a 2x8 and a 4x4 image with the same values differ) and, when hashed narrow, their type."""
    pixels = np.ascontiguousarray(study.pixels, dtype="<f4")
    narrow = _narrowed(pixels)
    if narrow is None:
        return float32_sha256(pixels)
    return _sha256(f"{narrow.dtype.str}:{_shape(narrow)};", narrow)


def float32_sha256(pixels: np.ndarray) -> str:
    """The version-1 fingerprint: SHA-256 of ``pixels`` as little-endian float32, after their shape."""
    pixels = np.ascontiguousarray(pixels, dtype="<f4")
    return _sha256(f"{_shape(pixels)};", pixels)


def earlier_pixel_sha256(study: Study, today: str) -> Iterator[str]:
    """The fingerprints ``study`` had under earlier versions where they differ from ``today``'s
    (its :func:`pixel_sha256`, which every caller has already), cheapest first: its pixels
    hashed as float32, then, for a JPEG-baseline DICOM, its file decoded again by the earlier
    decoders (nothing if it cannot be read any more)."""
    as_float = float32_sha256(study.pixels)
    if as_float != today:
        yield as_float
    if study.metadata.transfer_syntax not in _REDECODED:
        return
    for generation in range(DECODING - 1, 0, -1):
        try:
            yield float32_sha256(load_study(study.path, decoding=generation).pixels)
        except Exception:  # noqa: BLE001 -- a file changed or gone since: nothing to recognise
            return


def holds_pixels(study: Study, fingerprint: str) -> bool:
    """Whether ``study`` has the pixels of ``fingerprint``, under today's version or an earlier
    one: a file replaced since its result was stored (a new CD under the same names) must
    not be shown under that result."""
    today = pixel_sha256(study)
    return fingerprint == today or fingerprint in earlier_pixel_sha256(study, today)


def _narrowed(pixels: np.ndarray) -> np.ndarray | None:
    """``pixels`` in the first of _NARROW that holds every value exactly, or None."""
    if pixels.size == 0:
        return None
    lo, hi = float(pixels.min()), float(pixels.max())
    for dtype in _NARROW:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            narrow = pixels.astype(dtype)
            return narrow if np.array_equal(narrow, pixels) else None
    return None


def _shape(pixels: np.ndarray) -> str:
    return "x".join(str(n) for n in pixels.shape)


def _sha256(prefix: str, pixels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(prefix.encode("ascii"))
    h.update(pixels)  # C-contiguous: read in place, no copy
    return h.hexdigest()
