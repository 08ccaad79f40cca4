"""A DICOM file's first frame as stored values, reduced when it is huge.

Native data is read straight from the buffer after its length is checked against the
header. Compressed data is cut to the first frame, its codestream header is checked
against the DICOM header (codestream.py), and only then decoded by pydicom's plugins
(pylibjpeg, -libjpeg, -openjpeg, -rle, pyjpegls, Pillow) in a worker under the decode
budget (budget.py), which sends back the frame already reduced.
"""

from __future__ import annotations

import re
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEG2000TransferSyntaxes,
    JPEGBaseline8Bit,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from inference.errors import PixelDataMismatchError, PixelDecodeError, TruncatedFileError, UnsupportedStudyError
from inference.loaders import budget
from inference.loaders.codestream import check_j2k, check_jpeg, check_rle
from inference.loaders.dicom_values import get_value, native_frame_bytes
from inference.loaders.pixels import reduce_pixels, reduction_factor

# pydicom's warning for an RLE segment that decodes to more bytes than the image needs.
_RLE_PADDING = re.compile(r"non-conformant padding - (\d+) vs\. (\d+) bytes")
#: The decoders' generation. 2 (issue 14): JPEG baseline through Pillow (libjpeg-turbo),
#: three times faster than 1, pylibjpeg-libjpeg, which LungLens used before. The two differ
#: by one grey level in ~3 % of pixels, so a study's pixel fingerprint depends on the
#: generation (inference.hashing recognises studies fingerprinted under 1).
DECODING = 2
# What pydicom's decoders read from the header; the worker gets these and the frame only.
_PIXEL_KEYWORDS = (
    "Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "PhotometricInterpretation", "PlanarConfiguration",
)


def first_frame(path: Path, ds: Dataset, ts: UID, frames: int, decoding: int = DECODING) -> np.ndarray:
    """The first frame's stored values: (rows, cols) or (rows, cols, samples), reduced by
    ``reduction_factor`` when the image is above WORK_PIXELS, decoded by the decoders of
    generation ``decoding`` (:data:`DECODING`). The caller has checked that a decoder for
    ``ts`` is installed."""
    factor = reduction_factor(int(ds.Columns), int(ds.Rows))
    if not ts.is_encapsulated:
        # A deflated data set holds its first frame only (deflate.py inflates no more).
        _check_native_length(path, ds, 1 if ts == DeflatedExplicitVRLittleEndian else frames)
        words = _native_words(ds)
        if words is not None:
            return reduce_pixels(words, factor, partial(_stored_values, ds=ds))
        return reduce_pixels(_native_pixel_array(path, ds, frames), factor)
    codec = codec_name(ts)
    frame = _first_fragment_bytes(path, ds, codec, frames)
    _check_codestream(path, ds, ts, codec, frame)
    budget.check_memory(path, native_frame_bytes(ds), f"the {codec} image")
    return budget.run(path, decode_frame, path, _frame_dataset(ds, ts, frame), codec, factor, decoding)


def decode_frame(path: Path, ds: Dataset, codec: str, factor: int, decoding: int = DECODING) -> np.ndarray:
    """Decode the one frame of ``ds`` and reduce it: what the decode worker runs."""
    ts = ds.file_meta.TransferSyntaxUID
    try:
        with warnings.catch_warnings(record=True) as caught:  # the worker has one thread
            warnings.simplefilter("always")
            arr = _decode(ds, ts, decoding)
    except MemoryError:
        raise
    except BaseException as err:  # the plugins raise anything, Rust panics included
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise PixelDecodeError(path, f"{codec} pixel data could not be decoded") from err
    if arr.shape[:2] != (int(ds.Rows), int(ds.Columns)):
        raise PixelDataMismatchError(path, f"{codec} pixel data does not match the image size")
    if ts == RLELossless:
        _check_rle_lengths(path, caught, int(ds.Rows), int(ds.Columns))
    return reduce_pixels(arr, factor)


def _check_rle_lengths(path: Path, caught: list[warnings.WarningMessage], rows: int, cols: int) -> None:
    """pydicom keeps the start of an RLE segment longer than the image and only warns: some
    encoders pad a segment by a byte or a row. More than a row over is another image."""
    for warning in caught:
        found = _RLE_PADDING.search(str(warning.message))
        if found and int(found[1]) - int(found[2]) > cols:
            raise PixelDataMismatchError(
                path, f"the RLE segments decode to {int(found[1]):,} bytes but the header's {cols} × {rows} "
                f"needs {int(found[2]):,}",
            )


def _decode(ds: Dataset, ts: UID, decoding: int) -> np.ndarray:
    """The frame through the plugin of this generation; a JPEG baseline stream Pillow refuses
    goes to pydicom's other plugins, as it did before generation 2."""
    if decoding >= 2 and ts == JPEGBaseline8Bit and "pillow" in get_decoder(ts).available_plugins:
        try:
            return pixel_array(ds, decoding_plugin="pillow")
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 -- the others decide; their failure is reported
            pass
    return pixel_array(ds, decoding_plugin=_strict_plugin(ts))


def _strict_plugin(ts: UID) -> str:
    """The one plugin to use where pydicom would fall back to a lenient one after a failure.

    CharLS (pyjpegls) refuses a JPEG-LS stream too short for its size, where libjpeg goes
    on to decode seconds of noise; pydicom's own RLE decoder checks every segment's
    length and never panics, where pylibjpeg-rle (tried after it) prints a Rust panic.
    "" keeps pydicom's order of plugins.
    """
    if ts in JPEGLSTransferSyntaxes and "pyjpegls" in get_decoder(ts).available_plugins:
        return "pyjpegls"
    if ts == RLELossless:
        return "pydicom"
    return ""


def codec_name(ts: UID) -> str:
    if ts in JPEG2000TransferSyntaxes:
        return "JPEG 2000"
    if ts in JPEGLSTransferSyntaxes:
        return "JPEG-LS"
    if ts in JPEGTransferSyntaxes:
        return "JPEG"
    if ts == RLELossless:
        return "RLE"
    return ts.name


def _first_fragment_bytes(path: Path, ds: Dataset, codec: str, frames: int) -> bytes:
    offsets = get_value(ds, "ExtendedOffsetTable"), get_value(ds, "ExtendedOffsetTableLengths")
    try:
        return get_frame(ds.PixelData, 0, number_of_frames=frames,
                         extended_offsets=offsets if all(offsets) else None)
    except Exception as err:  # pydicom raises several types for damaged item tags
        raise PixelDecodeError(path, f"{codec} pixel data is damaged (its fragments cannot be read)") from err


def _check_codestream(path: Path, ds: Dataset, ts: UID, codec: str, frame: bytes) -> None:
    rows, cols, samples = int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel)
    if ts in JPEGTransferSyntaxes or ts in JPEGLSTransferSyntaxes:
        check_jpeg(path, frame, codec, (cols, rows, samples))
    elif ts in JPEG2000TransferSyntaxes:
        check_j2k(path, frame, cols, rows, samples)
    elif ts == RLELossless:
        check_rle(path, frame, cols, rows, samples * ((int(ds.BitsAllocated) + 7) // 8))


def _frame_dataset(ds: Dataset, ts: UID, frame: bytes) -> Dataset:
    """A data set holding just what decoding one frame needs (a few KB to send, not the file)."""
    out = Dataset()
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ts
    for keyword in _PIXEL_KEYWORDS:
        value = get_value(ds, keyword)
        if value is not None:
            setattr(out, keyword, value)
    out.PixelData = encapsulate([frame])
    out["PixelData"].VR = "OB"
    out["PixelData"].is_undefined_length = True
    return out


def _check_native_length(path: Path, ds: Dataset, frames: int) -> None:
    have = len(ds.PixelData)
    if have < native_frame_bytes(ds, frames):
        if have < native_frame_bytes(ds) or frames == 1:
            raise TruncatedFileError(path, "file is truncated (the pixel data is incomplete)")
        raise TruncatedFileError(path, f"file is truncated (it holds fewer than its {frames} frames)")


def _native_pixel_array(path: Path, ds: Dataset, frames: int) -> np.ndarray:
    """Layouts other than one plain word per pixel (colour, 1-bit...), through pydicom."""
    try:
        arr = pixel_array(ds, index=0 if frames > 1 else None)
    except MemoryError as err:
        raise UnsupportedStudyError(path, "not enough memory to decode this image") from err
    except Exception as err:
        if "less than expected" in str(err):
            raise TruncatedFileError(path, "file is truncated") from err
        raise PixelDecodeError(path, f"{ds.file_meta.TransferSyntaxUID.name} pixel data could not be decoded") from err
    if frames > 1 and arr.ndim == (4 if int(ds.SamplesPerPixel) > 1 else 3):
        arr = arr[0]
    return arr


def _native_words(ds: Dataset) -> np.ndarray | None:
    """The first frame of native single-sample data as a view of the buffer, one word a pixel.

    One pass fewer than pydicom's pixel_array on a 7.5-megapixel film; None when the
    layout is not a plain 8/16/32-bit word per pixel.
    """
    bits = int(ds.BitsAllocated)
    if bits not in (8, 16, 32) or int(ds.SamplesPerPixel) != 1:
        return None
    little = ds.file_meta.TransferSyntaxUID != ExplicitVRBigEndian
    return np.frombuffer(
        ds.PixelData, dtype=np.dtype(f"{'<' if little else '>'}u{bits // 8}"),
        count=int(ds.Rows) * int(ds.Columns),
    ).reshape(int(ds.Rows), int(ds.Columns))


def _stored_values(words: np.ndarray, ds: Dataset) -> np.ndarray:
    """Raw words -> stored values, honouring a HighBit above BitsStored - 1 (stored bits not
    at the bottom of the word), which pydicom does not; overlay bits are dropped."""
    bits, stored = words.dtype.itemsize * 8, int(ds.BitsStored)
    try:
        high = int(get_value(ds, "HighBit"))
    except (TypeError, ValueError):
        high = stored - 1
    shift = high + 1 - stored if stored - 1 <= high < bits else 0
    if shift:
        words = words >> shift
    signed = int(ds.PixelRepresentation) == 1
    if stored < bits:
        words = words & ((1 << stored) - 1)  # drop overlay bits and garbage above BitsStored
        if signed:  # sign-extend the stored two's complement value
            sign = 1 << (stored - 1)
            return (words.astype(np.int64 if bits == 32 else np.int32) ^ sign) - sign
        return words
    return words.view(np.dtype(f"{words.dtype.byteorder}i{words.dtype.itemsize}")) if signed else words
