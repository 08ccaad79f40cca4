"""PNG, JPEG, BMP and TIFF studies, decoded with Pillow (TIFF with tifffile first) in a
worker under the decode budget, after their headers are checked."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode

from inference.errors import PixelDecodeError, StudyLoadError, TruncatedFileError, UnsupportedStudyError
from inference.loaders import budget
from inference.loaders.codestream import check_jpeg
from inference.loaders.pixels import MAX_PIXELS, check_size, reduce_pixels, reduction_factor, robust_window, to_gray
from inference.loaders.sniff import raster_size
from inference.loaders.warnings import study_warnings
from inference.study import Study, StudyMetadata

# The size is checked against our own limits before decoding; Pillow's lower
# decompression-bomb limit would otherwise refuse a large but legitimate film.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Modes numpy cannot take as they are: decoded to RGB(A) or grey first.
_CONVERT = {"P": "RGB", "PA": "RGBA", "1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DecodedRaster:
    """What the decode worker hands back: the first image (reduced when huge), the full size,
    and how many images the file holds (a multi-page TIFF: only the first is analysed)."""

    pixels: np.ndarray
    width: int
    height: int
    pages: int = 1


def load_raster(path: Path, data: bytes, fmt: str) -> Study:
    """The bytes of a PNG/JPEG/BMP/TIFF file -> Study (grey, float32, values as stored)."""
    size = raster_size(data, fmt) or (_tiff_size(data) if fmt == "TIFF" else None)
    if size is not None:
        check_size(path, *size)
    _check_complete(path, data, fmt)
    if fmt == "JPEG":
        check_jpeg(path, data, "JPEG", None)
    decoded = budget.run(path, decode_raster, path, data, fmt)
    img, width, height = decoded.pixels, decoded.width, decoded.height
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] > 4):
        raise UnsupportedStudyError(path, f"unsupported {fmt} layout {img.shape} (not a 2-D image)")
    check_size(path, width, height)
    channels = 1 if img.ndim == 2 else img.shape[2]
    bits = img.dtype.itemsize * 8
    gray, colour, transparent = to_gray(img)
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
        warnings=study_warnings(
            meta, height, width, colour=colour, frames=decoded.pages, transparent=transparent,
            shown=pixels.shape[:2]
        ),
    )


def decode_raster(path: Path, data: bytes, fmt: str) -> DecodedRaster:
    """The first image in the file, reduced when huge, with its full size: what the decode
    worker runs. Grey, grey+alpha, RGB or RGBA, bit depth kept.

    TIFF goes to tifffile first: Pillow reads 16-bit colour TIFFs as 8 bits.
    """
    decoders = (_tifffile, _pillow) if fmt == "TIFF" else (_pillow,)
    for decode in decoders:
        try:
            img = decode(path, data, fmt)
        except (StudyLoadError, MemoryError):
            raise
        except Exception:  # any decoder failure (damaged data, unknown variant): try the next
            continue
        if img.pixels.size:
            return img
    raise PixelDecodeError(path, f"{fmt} image could not be decoded (the file may be damaged)")


def _pillow(path: Path, data: bytes, fmt: str) -> DecodedRaster:
    """Pillow's header (size, mode) is checked before anything is decoded; a huge JPEG is
    decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (``draft``), other formats reduced
    by Pillow's box filter, which needs no full-size numpy copy."""
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
        check_size(path, width, height)
        factor = reduction_factor(width, height)
        if factor > 1 and im.format == "JPEG":
            im.draft(None, (width // factor, height // factor))
        bands = len(im.getbands()) * np.dtype(ImageMode.getmode(im.mode).typestr).itemsize
        budget.check_memory(path, im.width * im.height * bands, f"the {fmt} image")
        mode = _CONVERT.get(im.mode)
        if mode == "RGB" and "transparency" in im.info:
            mode = "RGBA"
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
        # A TIFF's pages; not a phone JPEG's preview or gain map (MPO), which is no second film.
        pages = getattr(im, "n_frames", 1) if fmt == "TIFF" else 1
        img = im.convert(mode) if mode else im
        factor = reduction_factor(*img.size)
        if factor > 1:
            try:
                img = img.reduce(factor)
            except ValueError:  # a mode the box filter does not take (16-bit grey)
                img = reduce_pixels(np.asarray(img), factor)
        pixels, (w, h) = upright(np.asarray(img), orientation, (width, height))
        return DecodedRaster(pixels, w, h, pages)


def upright(img: np.ndarray, orientation: object, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels (and full (width, height)) as the file's EXIF Orientation says to show them.

    Every photo viewer and PACS import applies it: a JPEG stored mirrored (2) or on its side
    (6, 8) was analysed and shown as stored -- left and right swapped against what the reader
    sees elsewhere, or "looks rotated" and out of scope. Same result as Pillow's
    ``ImageOps.exif_transpose``, on the array so that 16-bit images keep their depth."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
           8: lambda a: np.rot90(a, 1)}
    op = ops.get(orientation) if isinstance(orientation, int) else None
    if op is None:
        return img, size
    turned = orientation >= 5  # type: ignore[operator]
    return np.ascontiguousarray(op(img)), (size[1], size[0]) if turned else size


def _tifffile(path: Path, data: bytes, fmt: str) -> DecodedRaster:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        budget.check_memory(path, int(np.prod(page.shape)) * page.dtype.itemsize, f"the {fmt} image")
        arr = page.asarray()
        min_is_white = page.photometric == tifffile.PHOTOMETRIC.MINISWHITE
        bits = int(page.bitspersample)
        pages = sum(1 for p in tif.pages if not getattr(p, "is_reduced", False))  # not thumbnails
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] > 4:  # planar RGB(A)
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim not in (2, 3):
        raise ValueError(f"not a 2-D image: {arr.shape}")
    if min_is_white and arr.ndim == 2 and arr.dtype.kind == "u":
        # Bone bright, as a MONOCHROME1 DICOM is turned, over the range the file's bits hold
        # (12-bit data in 16-bit words): read as stored, a film from a scanner writing
        # MinIsWhite was analysed as its negative ("looks rotated ... lateral").
        arr = ((1 << min(bits, arr.dtype.itemsize * 8)) - 1) - arr
    height, width = arr.shape[:2]
    check_size(path, width, height)
    return DecodedRaster(reduce_pixels(arr, reduction_factor(width, height)), width, height, pages)


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
