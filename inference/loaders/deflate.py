"""Deflated Explicit VR Little Endian files, inflated only as far as their image needs.

pydicom inflates the whole data set, whatever its size: a 1 MB file can hold a gigabyte of
private padding, or zeros enough for a 20,000² image. Here the header is inflated up to
HEADER_LIMIT, the image size read from it is checked like any other, and then exactly the
first frame's bytes are inflated. Whatever follows is never inflated.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from inference.errors import TruncatedFileError, UnsupportedStudyError
from inference.loaders.budget import check_memory
from inference.loaders.dicom_values import native_frame_bytes, short_error
from inference.loaders.pixels import check_size

# Inflated bytes allowed before the pixel data: real headers are kilobytes, a few
# megabytes with an embedded ICC profile or overlays.
HEADER_LIMIT = 16 << 20
_PIXEL_DATA = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT"}
_INFLATE_STEP = 16 << 20


def read_deflated(path: Path, data: bytes) -> Dataset | None:
    """The data set of a deflated file with its first frame's pixel data; None if not deflated."""
    meta_end = _deflated_meta_end(data)
    if meta_end is None:
        return None
    meta = pydicom.dcmread(io.BytesIO(data[:meta_end]), force=True).file_meta
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        head = inflater.decompress(data[meta_end:], HEADER_LIMIT)
    except zlib.error as err:
        raise UnsupportedStudyError(path, f"deflated DICOM data is damaged ({short_error(err)})") from err
    fp = DicomBytesIO(head)
    fp.is_little_endian, fp.is_implicit_VR = True, False
    ds = read_dataset(fp, False, True, stop_when=lambda tag, vr, length: tag == 0x7FE00010)
    ds.file_meta = meta
    at = fp.tell()
    element = head[at : at + 12]
    if element[:4] != _PIXEL_DATA or len(element) < 12:
        if len(head) == HEADER_LIMIT and not inflater.eof:
            raise UnsupportedStudyError(
                path, f"deflated DICOM holds more than {HEADER_LIMIT >> 20} MB of other data before its image: refused"
            )
        return ds  # no pixel data: the caller says why (truncated, a report...)
    (length,) = struct.unpack("<I", element[8:12])
    if length == 0xFFFFFFFF:
        raise UnsupportedStudyError(path, "deflated DICOM holds compressed (encapsulated) pixel data: not valid")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows and cols:  # a missing size is reported by the header checks that follow
        check_size(path, cols, rows)
    needed = min(length, native_frame_bytes(ds))
    check_memory(path, 2 * needed, "the deflated image")  # the inflated steps, then joined
    ds.add_new(0x7FE00010, element[4:6].decode("ascii", "replace"), _inflate(path, inflater, head[at + 12 :], needed))
    return ds


def _inflate(path: Path, inflater: zlib._Decompress, start: bytes, size: int) -> bytes:
    """``size`` inflated bytes, ``start`` being the first of them, inflated a step at a time."""
    parts = [start[:size]]
    have = len(parts[0])
    try:
        while have < size and not inflater.eof:
            chunk = inflater.decompress(inflater.unconsumed_tail, min(_INFLATE_STEP, size - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
    except zlib.error as err:
        raise UnsupportedStudyError(path, f"deflated DICOM pixel data is damaged ({short_error(err)})") from err
    if have < size:
        raise TruncatedFileError(path, "file is truncated (the pixel data is incomplete)")
    return b"".join(parts)


def _deflated_meta_end(data: bytes) -> int | None:
    """Where the file meta group ends, if its transfer syntax is Deflated Explicit VR LE."""
    i = 132 if data[128:132] == b"DICM" else 0
    syntax = b""
    while i + 8 <= len(data) and data[i : i + 2] == b"\x02\x00":
        vr = data[i + 4 : i + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack("<I", data[i + 8 : i + 12])
            start = i + 12
        else:
            (length,) = struct.unpack("<H", data[i + 6 : i + 8])
            start = i + 8
        if data[i + 2 : i + 4] == b"\x10\x00":
            syntax = data[start : start + length]
        i = start + length
    return i if syntax.rstrip(b"\0 ").decode("ascii", "replace") == DeflatedExplicitVRLittleEndian else None
