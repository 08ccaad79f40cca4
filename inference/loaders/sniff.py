"""What a file is, told from its first bytes: extensions lie (DICOM files often have none)."""

from __future__ import annotations

import struct

from inference.loaders.codestream import jpeg_frame

# How many leading bytes `sniff_format` needs: the DICOM preamble + "DICM".
HEAD_SIZE = 132

RASTER_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)

# Formats people mistake for images; named in the error so the user knows what they picked.
OTHER_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"GIF8", "a GIF image (not supported: save it as PNG)"),
    (b"RIFF", "a RIFF file (WebP, WAV or AVI)"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image file (not supported: save it as PNG)"),
    (b"\xff\x4f\xff\x51", "a raw JPEG 2000 codestream (not supported: save it as PNG)"),
)

# Groups a DICOM data set without preamble (or without file meta) can start with.
_DICOM_FIRST_GROUPS = {0x0002, 0x0008}
_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
    b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
}


def sniff_format(head: bytes) -> str | None:
    """"DICOM", "PNG", "JPEG", "TIFF", "BMP" from a file's first bytes, or None."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "DICOM"
    if _looks_like_bare_dicom(head):
        return "DICOM"
    for magic, name in RASTER_MAGIC:
        if head.startswith(magic):
            if name == "BMP" and not _plausible_bmp(head):
                continue
            return name
    return None


def describe_other(head: bytes) -> str | None:
    """A human name for a well-known non-image format ("a PDF document"), else None."""
    for magic, name in OTHER_MAGIC:
        if head.startswith(magic):
            return name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "a JSON file"
    if text[:1] == b"<":
        return "an XML or HTML file"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A data set starting right at byte 0: no preamble, maybe no file meta either."""
    if len(head) < 8:
        return False
    for endian in ("<", ">"):
        group, element = struct.unpack(endian + "HH", head[:4])
        if group not in _DICOM_FIRST_GROUPS or element > 0x0100:
            continue
        if head[4:6] in _VRS:  # explicit VR
            return True
        (length,) = struct.unpack(endian + "I", head[4:8])  # implicit VR: a sane length
        if length < 0x10000:
            return True
    return False


def _plausible_bmp(head: bytes) -> bool:
    """ "BM" alone is too weak: also ask for a known DIB header size."""
    if len(head) < 18:
        return False
    (dib_size,) = struct.unpack("<I", head[14:18])
    return dib_size in (12, 16, 40, 52, 56, 64, 108, 124)


def raster_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) read from a raster header without decoding, None if not found.

    Lets the loader refuse absurd sizes before any decoder allocates the pixels.
    """
    try:
        if fmt == "PNG" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if fmt == "BMP":
            (dib_size,) = struct.unpack("<I", data[14:18])
            if dib_size == 12:
                w, h = struct.unpack("<HH", data[18:22])
                return w, h
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "JPEG":
            frame = jpeg_frame(data)
            return (frame.width, frame.height) if frame is not None else None
    except struct.error:
        return None
    return None  # TIFF: the decoders' own header parse is cheap (checked after)
