"""PNG, JPEG, BMP and TIFF studies, decoded with OpenCV (Pillow/tifffile as fallbacks)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import numpy as np

from inference.errors import PixelDecodeError, TruncatedFileError, UnsupportedStudyError
from inference.loaders.pixels import check_size, robust_window, to_gray
from inference.loaders.sniff import raster_size
from inference.loaders.warnings import study_warnings
from inference.study import Study, StudyMetadata


def load_raster(path: Path, data: bytes, fmt: str) -> Study:
    """The bytes of a PNG/JPEG/BMP/TIFF file -> Study (grey, float32, values as stored)."""
    size = raster_size(data, fmt) or (_tiff_size(data) if fmt == "TIFF" else None)
    if size is not None:
        check_size(path, *size)
    _check_complete(path, data, fmt)
    img, order = _decode(data)
    if img is None:
        raise PixelDecodeError(path, f"{fmt} image could not be decoded (the file may be damaged)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] > 4):
        raise UnsupportedStudyError(path, f"unsupported {fmt} layout {img.shape} (not a 2-D image)")
    height, width = img.shape[:2]
    check_size(path, width, height)
    channels = 1 if img.ndim == 2 else img.shape[2]
    bits = img.dtype.itemsize * 8
    gray, colour, transparent = to_gray(img, order=order)
    pixels = gray.astype(np.float32, copy=False)
    meta = StudyMetadata(
        photometric_interpretation={1: "MONOCHROME2", 2: "MONOCHROME2", 3: "RGB", 4: "RGBA"}[channels],
        rows=height,
        columns=width,
        bits_stored=bits,
        transfer_syntax=fmt,
        source_format=fmt,
    )
    return Study(
        path=path,
        pixels=pixels,
        window=robust_window(pixels),
        metadata=meta,
        warnings=study_warnings(meta, height, width, colour=colour, transparent=transparent),
    )


def _decode(data: bytes) -> tuple[np.ndarray | None, str]:
    """(image, channel order). OpenCV first: fastest, keeps 16 bits with IMREAD_UNCHANGED."""
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is not None and img.size:
        return img, "BGR"
    return _decode_fallback(data), "RGB"


def _decode_fallback(data: bytes) -> np.ndarray | None:
    """Pillow, then tifffile, for the few variants OpenCV rejects (optional packages)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            if im.mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            return np.asarray(im)
    except Exception:
        pass
    try:
        import tifffile

        arr = tifffile.imread(io.BytesIO(data), key=0)
        return arr if arr.ndim in (2, 3) else None
    except Exception:
        return None


def _check_complete(path: Path, data: bytes, fmt: str) -> None:
    """Decoders paint a truncated JPEG grey and carry on: catch it from the file's end."""
    truncated = False
    if fmt == "PNG":
        truncated = b"IEND" not in data[-4096:]
    elif fmt == "JPEG":
        truncated = b"\xff\xd9" not in data[-(1 << 20):]
    elif fmt == "BMP" and len(data) >= 14:
        offset = struct.unpack("<I", data[10:14])[0]
        truncated = len(data) <= offset
    if truncated:
        raise TruncatedFileError(path, "file is truncated")


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth/ImageLength of the first IFD of a classic or Big TIFF."""
    try:
        endian = "<" if data[:2] == b"II" else ">"
        big = struct.unpack(endian + "H", data[2:4])[0] == 43
        if big:
            offset = struct.unpack(endian + "Q", data[8:16])[0]
            count = struct.unpack(endian + "Q", data[offset : offset + 8])[0]
            entry, start = 20, offset + 8
        else:
            offset = struct.unpack(endian + "I", data[4:8])[0]
            count = struct.unpack(endian + "H", data[offset : offset + 2])[0]
            entry, start = 12, offset + 2
        found: dict[int, int] = {}
        for i in range(min(count, 512)):
            e = data[start + i * entry : start + (i + 1) * entry]
            tag, typ = struct.unpack(endian + "HH", e[:4])
            if tag in (256, 257):
                value_at = 12 if big else 8
                code = "H" if typ == 3 else ("Q" if typ == 16 else "I")
                found[tag] = struct.unpack(endian + code, e[value_at : value_at + struct.calcsize(code)])[0]
        if 256 in found and 257 in found:
            return found[256], found[257]
    except (struct.error, IndexError):
        return None
    return None
