"""What a compressed frame declares, read from its own headers before any decoder runs.

A decoder allocates what the codestream says, not what the DICOM header says: a 3 KB JPEG
whose frame header claims 30,000² costs gigabytes before it fails. So the size each
codestream declares (JPEG and JPEG-LS SOF, JPEG 2000 SIZ, the RLE header) is compared with
the header, and the stream's own shape is checked for what no encoder writes: thousands of
progressive scans, too few bytes for the pixels it declares, tiles that are not there.
Every contradiction raises ``PixelDataMismatchError`` naming both sides; a stream without
the header itself is a ``PixelDecodeError``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from inference.errors import PixelDataMismatchError, PixelDecodeError

# No codec writes a radiograph in fewer bits than this per sample (lossy JPEG 2000 at 100:1
# of a 12-bit film is 0.12): far below it, a stream cannot hold the image it declares.
MIN_BITS_PER_SAMPLE = 0.001
# Standard progressive scripts use 6 (grey) to 10 (colour) scans and optimisers stay
# well under 100; each extra scan is a full pass over the image's coefficients.
MAX_JPEG_SCANS = 100
# JPEG frame headers: SOF0-3, 5-7 (Huffman), 9-11, 13-15 (arithmetic), SOF55 (JPEG-LS).
_HUFFMAN_DCT = {0xC0, 0xC1, 0xC2, 0xC5, 0xC6}
_HUFFMAN_LOSSLESS = {0xC3, 0xC7}
_SOF = _HUFFMAN_DCT | _HUFFMAN_LOSSLESS | {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))
_J2K_SIZ = b"\xff\x4f\xff\x51"  # SOC then SIZ: how every JPEG 2000 codestream starts
_RLE_HEADER = 64


@dataclass(frozen=True)
class JpegFrame:
    """A JPEG or JPEG-LS frame header, and how much scan data follows it."""

    marker: int  # the SOFn marker's second byte
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) factor per component
    scans: int
    scan_bytes: int  # bytes from the first scan's data to the end of the stream

    @property
    def components(self) -> int:
        return len(self.sampling)

    def min_scan_bytes(self) -> int:
        """The fewest bytes scans of this size can take.

        Huffman coding gives a hard floor: every 8x8 block's DC difference takes at least
        a one-bit code (progressive DC scans included), every lossless sample too.
        Arithmetic coding and JPEG-LS run mode can code a flat image in almost nothing,
        so they get the MIN_BITS_PER_SAMPLE floor of any real radiograph.
        """
        if self.marker in _HUFFMAN_LOSSLESS:
            return self.width * self.height * self.components // 8
        if self.marker not in _HUFFMAN_DCT:
            return min_stream_bytes(self.width, self.height, self.components)
        hmax = max(h for h, _ in self.sampling)
        vmax = max(v for _, v in self.sampling)
        blocks = sum(
            math.ceil(math.ceil(self.width * h / hmax) / 8) * math.ceil(math.ceil(self.height * v / vmax) / 8)
            for h, v in self.sampling
        )
        return blocks // 8


def jpeg_frame(stream: bytes) -> JpegFrame | None:
    """The frame header of a JPEG / JPEG-LS stream, None if there is none before the first scan."""
    i, frame = 2, None
    n = len(stream)
    while i + 4 <= n:
        if stream[i] != 0xFF:
            return None
        marker = stream[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        (length,) = struct.unpack(">H", stream[i + 2 : i + 4])
        if marker in _SOF and i + 10 <= n:
            height, width, count = struct.unpack(">HHB", stream[i + 5 : i + 10])
            table = stream[i + 10 : i + 10 + 3 * count]
            sampling = tuple((table[k + 1] >> 4, table[k + 1] & 15) for k in range(0, len(table) - 2, 3))
            frame = (marker, width, height, sampling)
        if marker == 0xDA:  # the first scan: everything after it is scan data and more scans
            if frame is None or not frame[3] or min(min(s) for s in frame[3]) == 0:
                return None
            # 0xFF 0xDA never occurs inside scan data (Huffman stuffs 0xFF with 0x00, JPEG-LS
            # with a byte below 0x80), so counting it counts the scans.
            return JpegFrame(*frame, scans=stream.count(b"\xff\xda", i), scan_bytes=n - (i + 2 + length))
        if marker == 0xD9:
            return None
        i += 2 + length
    return None


def min_stream_bytes(width: int, height: int, components: int) -> int:
    """The fewest bytes a compressed stream of a real radiograph this size takes."""
    return math.ceil(width * height * components * MIN_BITS_PER_SAMPLE / 8)


def check_jpeg(path: Path, stream: bytes, codec: str, header: tuple[int, int, int] | None) -> JpegFrame:
    """Refuse a JPEG / JPEG-LS stream that contradicts the header or is not an image.

    ``header``: (width, height, samples per pixel) from the DICOM header; None for a raster
    file, whose stream is its own header.
    """
    frame = jpeg_frame(stream)
    if frame is None:
        raise PixelDecodeError(path, f"{codec} pixel data could not be decoded (the stream has no frame header)")
    if header is not None:
        width, height, samples = header
        if (frame.width, frame.height) != (width, height):
            raise PixelDataMismatchError(
                path, f"the {codec} stream says {frame.width} × {frame.height} but the header says "
                f"{width} × {height}",
            )
        if frame.components != samples:
            raise PixelDataMismatchError(
                path, f"the {codec} stream has {frame.components} components but the header says {samples} "
                f"sample{'s' if samples != 1 else ''} per pixel",
            )
    if frame.scans > MAX_JPEG_SCANS:
        raise PixelDataMismatchError(
            path, f"the {codec} stream has {frame.scans:,} scans (encoders write at most a few dozen)"
        )
    if frame.scan_bytes < frame.min_scan_bytes():
        raise PixelDataMismatchError(
            path, f"the {codec} stream holds {frame.scan_bytes:,} bytes of image data, too few for "
            f"{frame.width} × {frame.height} (at least {frame.min_scan_bytes():,})",
        )
    return frame


def check_j2k(path: Path, stream: bytes, width: int, height: int, samples: int) -> None:
    """Refuse a JPEG 2000 codestream whose SIZ contradicts the header or whose tiles are missing."""
    at = stream.find(_J2K_SIZ, 0, 4096)
    if at < 0 or len(stream) < at + 42:
        raise PixelDecodeError(path, "JPEG 2000 pixel data could not be decoded (the stream has no image header)")
    xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz = struct.unpack(">8IH", stream[at + 8 : at + 42])
    size = (xsiz - xo, ysiz - yo) if xsiz > xo and ysiz > yo else (0, 0)
    if size != (width, height):
        raise PixelDataMismatchError(
            path, f"the JPEG 2000 stream says {size[0]} × {size[1]} but the header says {width} × {height}"
        )
    if csiz != samples:
        raise PixelDataMismatchError(
            path, f"the JPEG 2000 stream has {csiz} components but the header says {samples} per pixel"
        )
    if not (0 < xt and 0 < yt and xto <= xo and yto <= yo and xto + xt > xo and yto + yt > yo):
        raise PixelDataMismatchError(path, "the JPEG 2000 stream's tile grid is invalid")
    least = min_stream_bytes(width, height, samples)
    if len(stream) < least:
        raise PixelDataMismatchError(
            path, f"the JPEG 2000 stream holds {len(stream):,} bytes, too few for {width} × {height} "
            f"(a radiograph takes at least {least:,})",
        )
    tiles = math.ceil((xsiz - xto) / xt) * math.ceil((ysiz - yto) / yt)
    present = _j2k_tiles(stream, at + 4)
    if present is None:
        raise PixelDataMismatchError(path, "the JPEG 2000 stream's tile parts run past its end")
    if len(present) != tiles or max(present, default=-1) >= tiles:
        raise PixelDataMismatchError(
            path, f"the JPEG 2000 stream holds {len(present):,} of its {tiles:,} tiles"
        )


def _j2k_tiles(stream: bytes, siz: int) -> set[int] | None:
    """Indices of the tiles that have tile parts, walking SOT to SOT; None if one overruns."""
    (lsiz,) = struct.unpack(">H", stream[siz : siz + 2])
    i = siz + lsiz
    n = len(stream)
    while i + 4 <= n and stream[i] == 0xFF and stream[i + 1] != 0x90:  # main header segments
        (length,) = struct.unpack(">H", stream[i + 2 : i + 4])
        i += 2 + length
    tiles: set[int] = set()
    while i + 12 <= n and stream[i : i + 2] == b"\xff\x90":
        tile, length = struct.unpack(">HI", stream[i + 4 : i + 10])
        tiles.add(tile)
        if length == 0:  # the last tile part runs to the end of the codestream
            return tiles
        if length < 14 or i + length > n:
            return None
        i += length
    return tiles


def check_rle(path: Path, frame: bytes, width: int, height: int, segments: int) -> None:
    """Refuse an RLE frame whose header does not describe ``segments`` segments of this image.

    PackBits turns two bytes into at most 128, so a segment shorter than 1/64 of its
    ``width * height`` bytes cannot hold them.
    """
    if len(frame) < _RLE_HEADER:
        raise PixelDataMismatchError(path, "the RLE frame is shorter than its header")
    count, *offsets = struct.unpack("<16I", frame[:_RLE_HEADER])
    if count != segments:
        raise PixelDataMismatchError(
            path, f"the RLE header has {count} segments but the image needs {segments}"
        )
    ends = [*offsets[:count], len(frame)][1:]
    starts = offsets[:count]
    if starts[0] != _RLE_HEADER or any(not s < e <= len(frame) for s, e in zip(starts, ends)):
        raise PixelDataMismatchError(path, "the RLE header's segment offsets are out of order or past the end")
    shortest = min(e - s for s, e in zip(starts, ends))
    if shortest * 64 < width * height:
        raise PixelDataMismatchError(
            path, f"an RLE segment holds {shortest:,} bytes, too few for {width} × {height} pixels"
        )
