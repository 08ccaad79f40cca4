"""DICOM studies: header, pixel semantics (Modality LUT, MONOCHROME1, VOI), metadata, tags.

Decoding goes through pydicom's pixel-data plugins (pylibjpeg, -libjpeg, -openjpeg, -rle,
pyjpegls); everything after decoding is done here in float32 so a 3,000-pixel 16-bit film
loads in tens of milliseconds.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000TransferSyntaxes,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSTransferSyntaxes,
    JPEGLSLossless,
    JPEGTransferSyntaxes,
    RLELossless,
)

from inference.errors import (
    PixelDecodeError,
    TruncatedFileError,
    UnsupportedStudyError,
)
from inference.loaders.pixels import check_size, robust_window, to_gray
from inference.loaders.warnings import study_warnings
from inference.study import Study, StudyMetadata

PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, Float/DoubleFloatPixelData
_MAX_TAG_VALUE = 160  # characters of a value shown in the tags panel


# pydicom warns about every odd value it meets; the Study's own warnings say what matters.
# A process-wide filter, set once: warnings.catch_warnings() is not thread-safe and the app
# loads studies on several threads.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")

_SEQUENCE_DELIMITERS = (b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd")  # (FFFE,E0DD) LE, BE


def load_dicom(path: Path, data: bytes) -> Study:
    """A DICOM file's bytes -> Study. Raises StudyLoadError subclasses only."""
    ds = _read(path, data)
    ts = _transfer_syntax(path, ds)
    rows, cols, spp, frames = _geometry(path, ds)
    arr = _decode_first_frame(path, ds, ts, frames)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()

    colour = transparent = False
    if photometric == "PALETTE COLOR":
        arr = _palette_to_rgb(path, ds, arr)
    if arr.ndim == 3:
        arr, colour, transparent = to_gray(arr, order="RGB")
        pixels = arr.astype(np.float32, copy=False)
        window = robust_window(pixels)
    else:
        pixels, lo, hi = _modality(ds, arr)
        window = _voi_window(ds)
        if photometric == "MONOCHROME1":
            # Bone bright for the viewer and the model: flip the whole possible range, so
            # a MONOCHROME1 film and its MONOCHROME2 twin give identical pixels.
            np.subtract(lo + hi, pixels, out=pixels)
            if window is not None:
                window = (lo + hi - window[0], window[1])
        if window is None:
            window = robust_window(pixels)

    meta = _metadata(ds, ts, photometric, rows, cols)
    return Study(
        path=path,
        pixels=pixels,
        window=window,
        metadata=meta,
        warnings=study_warnings(meta, rows, cols, colour=colour, frames=frames, transparent=transparent),
        tags=dicom_tags(ds),
    )


def _read(path: Path, data: bytes) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (EOFError, struct.error) as err:
        raise TruncatedFileError(path, "file is truncated") from err
    except Exception as err:  # pydicom raises many types for damaged headers
        if "end of file" in str(err).lower() or "buffer" in str(err).lower():
            raise TruncatedFileError(path, "file is truncated") from err
        raise UnsupportedStudyError(path, f"DICOM header is damaged ({_short(err)})") from err
    if "PixelData" not in ds:
        if 0x7FE00008 in ds or 0x7FE00009 in ds:
            raise UnsupportedStudyError(path, "DICOM float pixel data is not supported")
        # pydicom stops silently at an end of file between (or inside) header elements.
        image_modality = _text(ds, "Modality").upper() in _IMAGE_MODALITIES
        if len(ds) == 0 or "Rows" in ds or image_modality or _is_image_sop(ds):
            raise TruncatedFileError(
                path, "file is truncated or damaged (the DICOM image has no pixel data)"
            )
        raise UnsupportedStudyError(path, f"DICOM file has no pixel data ({_what_it_is(ds)})")
    if _encapsulated_without_end(ds, data):
        raise TruncatedFileError(path, "file is truncated (the pixel data is incomplete)")
    return ds


def _encapsulated_without_end(ds: Dataset, data: bytes) -> bool:
    """Compressed pixel data ends with a sequence delimiter; pydicom reads on without it."""
    if not ds["PixelData"].is_undefined_length:
        return False
    start = max(0, len(data) - len(ds.PixelData) - 64)
    return all(data.find(d, start) == -1 for d in _SEQUENCE_DELIMITERS)


_IMAGE_MODALITIES = {"CR", "DX", "DR", "RG", "MG", "CT", "MR", "US", "NM", "XA", "RF", "PT", "OT"}


def _is_image_sop(ds: Dataset) -> bool:
    """The SOP Class says the file was meant to hold an image."""
    sop = str(_get(ds, "SOPClassUID") or _get(ds.file_meta, "MediaStorageSOPClassUID") or "")
    name = UID(sop).name.lower() if sop else ""
    return "image storage" in name


def _what_it_is(ds: Dataset) -> str:
    """Why there are no pixels, in words: "it is a structured report"."""
    sop = str(_get(ds, "SOPClassUID") or _get(ds.file_meta, "MediaStorageSOPClassUID") or "")
    name = UID(sop).name if sop else ""
    modality = _text(ds, "Modality").upper()
    lowered = name.lower()
    if modality == "SR" or " sr " in f" {lowered} " or "report" in lowered:
        return "it is a structured report"
    if sop == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        return "it is a DICOMDIR index, open the image files it lists"
    if "pdf" in lowered or modality == "DOC":
        return "it is an encapsulated PDF document"
    if "presentation state" in lowered or modality == "PR":
        return "it is a presentation state"
    if "key object" in lowered or modality == "KO":
        return "it is a key object selection"
    if name and name != sop:
        return f"it is a {name} object"
    if modality:
        return f"its modality is {_clean(modality)}"
    return "the file may be damaged"


def _transfer_syntax(path: Path, ds: Dataset) -> UID:
    """The transfer syntax, guessed from how the file was read when it has no file meta."""
    meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else FileMetaDataset()
    ds.file_meta = meta
    ts = _get(meta, "TransferSyntaxUID")
    if ts:
        ts = UID(str(ts))
        if not ts.is_transfer_syntax:
            raise UnsupportedStudyError(path, f"unknown DICOM transfer syntax {_clean(ts)}")
        return ts
    if ds["PixelData"].is_undefined_length:
        ts = _guess_compressed_syntax(ds.PixelData)
        if ts is None:
            raise UnsupportedStudyError(
                path, "DICOM file has compressed pixel data but no transfer syntax"
            )
    else:
        implicit, little = ds.original_encoding
        if implicit is None:
            implicit, little = True, True
        ts = ImplicitVRLittleEndian if implicit else (
            ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    meta.TransferSyntaxUID = ts
    return ts


def _guess_compressed_syntax(encapsulated: bytes) -> UID | None:
    """Name the codec from the first fragment's magic bytes (files without file meta)."""
    from pydicom.encaps import generate_fragments

    try:
        items = generate_fragments(encapsulated)
        next(items, b"")  # the Basic Offset Table item, empty or not
        first = next(items, b"")
    except Exception:
        return None
    if first.startswith(b"\xff\x4f\xff\x51") or first[4:8] == b"jP  ":
        return JPEG2000
    if first.startswith(b"\xff\xd8\xff"):
        sof = first.find(b"\xff\xf7")
        if sof != -1 and sof < 4096:
            return JPEGLSLossless
        if b"\xff\xc3" in first[:4096]:
            return JPEGLosslessSV1
        return JPEGBaseline8Bit
    if len(first) >= 64 and int.from_bytes(first[:4], "little") in range(1, 16):
        return RLELossless
    return None


def _geometry(path: Path, ds: Dataset) -> tuple[int, int, int, int]:
    """Rows, columns, samples per pixel, frames; fills in the defaults pydicom needs."""
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if _get(ds, k) in (None, "")]
    if missing:
        raise UnsupportedStudyError(path, f"DICOM image header is missing {', '.join(missing)}")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits_allocated = int(ds.BitsAllocated)
        spp = int(_get(ds, "SamplesPerPixel") or 1)
        frames = int(str(_get(ds, "NumberOfFrames") or 1).strip() or 1)
        bits_stored = int(_get(ds, "BitsStored") or bits_allocated)
    except Exception as err:  # a damaged element raises on conversion
        raise UnsupportedStudyError(path, f"DICOM image header is damaged ({_short(err)})") from err
    check_size(path, cols, rows)
    if bits_allocated not in (1, 8, 16, 32) or not 1 <= bits_stored <= bits_allocated:
        raise UnsupportedStudyError(
            path, f"unsupported bit depth ({bits_stored} bits stored in {bits_allocated})"
        )
    if spp not in (1, 3):
        raise UnsupportedStudyError(path, f"unsupported samples per pixel ({spp})")
    if frames < 1:
        frames = 1
    photometric = str(_get(ds, "PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        if spp != 1:
            raise UnsupportedStudyError(path, "DICOM colour image has no PhotometricInterpretation")
        photometric = "MONOCHROME2"
    if photometric not in _PHOTOMETRICS or (spp == 1) != (photometric in _ONE_SAMPLE):
        raise UnsupportedStudyError(
            path, f"unsupported photometric interpretation {_clean(photometric)} with {spp} sample(s)"
        )
    # What pydicom's decoders read, rewritten clean (a damaged original would raise there).
    pixel_rep = _get(ds, "PixelRepresentation")
    planar = _get(ds, "PlanarConfiguration")
    _set(ds, "PhotometricInterpretation", photometric)
    _set(ds, "SamplesPerPixel", spp)
    _set(ds, "BitsStored", bits_stored)
    _set(ds, "PixelRepresentation", 1 if pixel_rep == 1 else 0)
    if spp > 1:
        _set(ds, "PlanarConfiguration", 1 if planar == 1 else 0)
    return rows, cols, spp, frames


def _set(ds: Dataset, keyword: str, value) -> None:
    """Replace an element, even one whose raw value cannot be converted."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag in ds:
        del ds[tag]
    setattr(ds, keyword, value)


_ONE_SAMPLE = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"}
_PHOTOMETRICS = _ONE_SAMPLE | {
    "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420",
}


def _decode_first_frame(path: Path, ds: Dataset, ts: UID, frames: int) -> np.ndarray:
    codec = _codec_name(ts)
    if not ts.is_encapsulated:
        _check_native_length(path, ds, frames)
        grey = _native_grey(ds)
        if grey is not None:
            return grey
    else:
        decoder = get_decoder(ts)
        if not decoder.is_available:
            raise PixelDecodeError(path, f"no decoder for {codec} pixel data is installed")
    try:
        arr = pixel_array(ds, index=0 if frames > 1 else None)
    except MemoryError as err:
        raise UnsupportedStudyError(path, "not enough memory to decode this image") from err
    except BaseException as err:  # the plugins raise anything, Rust panics included
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        if not ts.is_encapsulated and "less than expected" in str(err):
            raise TruncatedFileError(path, "file is truncated") from err
        raise PixelDecodeError(path, f"{codec} pixel data could not be decoded") from err
    if frames > 1 and arr.ndim == (4 if int(ds.SamplesPerPixel) > 1 else 3):
        arr = arr[0]
    expected = (int(ds.Rows), int(ds.Columns))
    if arr.shape[:2] != expected:
        raise PixelDecodeError(path, f"{codec} pixel data does not match the image size")
    return arr


def _codec_name(ts: UID) -> str:
    if ts in JPEG2000TransferSyntaxes:
        return "JPEG 2000"
    if ts in JPEGLSTransferSyntaxes:
        return "JPEG-LS"
    if ts in JPEGTransferSyntaxes:
        return "JPEG"
    if ts == RLELossless:
        return "RLE"
    return ts.name


def _check_native_length(path: Path, ds: Dataset, frames: int) -> None:
    bits = int(ds.BitsAllocated)
    per_frame = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel)
    needed = (per_frame * frames * bits + 7) // 8
    have = len(ds.PixelData)
    if have < needed:
        if have < (per_frame * bits + 7) // 8 or frames == 1:
            raise TruncatedFileError(path, "file is truncated (the pixel data is incomplete)")
        raise TruncatedFileError(path, f"file is truncated (it holds fewer than its {frames} frames)")


def _native_grey(ds: Dataset) -> np.ndarray | None:
    """First frame of native single-sample pixel data, read straight from the buffer.

    One pass fewer than pydicom's pixel_array on a 7.5-megapixel film, and it honours a
    HighBit above BitsStored - 1 (stored bits not at the bottom of the word), which
    pydicom does not. None when the layout is not a plain 8/16/32-bit word per pixel.
    """
    bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    if bits not in (8, 16, 32) or int(ds.SamplesPerPixel) != 1:
        return None
    try:
        high = int(_get(ds, "HighBit"))
    except (TypeError, ValueError):
        high = stored - 1
    shift = high + 1 - stored if stored - 1 <= high < bits else 0
    little = ds.file_meta.TransferSyntaxUID != ExplicitVRBigEndian
    words = np.frombuffer(
        ds.PixelData, dtype=np.dtype(f"{'<' if little else '>'}u{bits // 8}"),
        count=int(ds.Rows) * int(ds.Columns),
    ).reshape(int(ds.Rows), int(ds.Columns))
    if shift:
        words = words >> shift
    signed = int(ds.PixelRepresentation) == 1
    if stored < bits:
        words = words & ((1 << stored) - 1)  # drop overlay bits and garbage above BitsStored
        if signed:  # sign-extend the stored two's complement value
            sign = 1 << (stored - 1)
            return (words.astype(np.int64 if bits == 32 else np.int32) ^ sign) - sign
        return words
    return words.view(np.dtype(f"{'<' if little else '>'}i{bits // 8}")) if signed else words


def _palette_to_rgb(path: Path, ds: Dataset, arr: np.ndarray) -> np.ndarray:
    try:
        return apply_color_lut(arr, ds)
    except Exception as err:
        raise UnsupportedStudyError(path, f"palette colour lookup table is damaged ({_short(err)})") from err


def _stored_range(ds: Dataset) -> tuple[int, int]:
    bits = int(ds.BitsStored)
    if int(ds.PixelRepresentation) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _modality(ds: Dataset, arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored values -> modality units (float32) and the range they can span."""
    smin, smax = _stored_range(ds)
    if "ModalityLUTSequence" in ds:
        try:
            out = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
            ends = np.asarray(apply_modality_lut(np.array([smin, smax]), ds), dtype=np.float64)
            return out, float(ends.min()), float(ends.max())
        except Exception:
            pass  # a damaged LUT: fall back to the rescale (or identity)
    slope = _number(ds, "RescaleSlope", 1.0) or 1.0
    intercept = _number(ds, "RescaleIntercept", 0.0)
    out = arr.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    a, b = smin * slope + intercept, smax * slope + intercept
    return out, float(min(a, b)), float(max(a, b))


def _voi_window(ds: Dataset) -> tuple[float, float] | None:
    """The file's default window in modality units: VOI LUT sequence, else Window Center/Width."""
    seq = _get(ds, "VOILUTSequence")
    if seq:
        window = _lut_window(seq[0])
        if window is not None:
            return window
    center = _number(ds, "WindowCenter", None)
    width = _number(ds, "WindowWidth", None)
    if center is None or width is None or not width > 0:
        return None
    return center, width


def _lut_window(item: Dataset) -> tuple[float, float] | None:
    """The input range over which a VOI LUT climbs from its lowest to its highest output."""
    try:
        first = int(item.LUTDescriptor[1])
        data = item.LUTData
        lut = np.asarray(data if not isinstance(data, (bytes, bytearray)) else np.frombuffer(data, "<u2"))
    except Exception:
        return None
    if lut.size < 2:
        return None
    rising = np.flatnonzero(lut > lut.min())
    below_top = np.flatnonzero(lut < lut.max())
    if rising.size == 0 or below_top.size == 0:
        return None
    lo = first + max(int(rising[0]) - 1, 0)
    hi = first + min(int(below_top[-1]) + 1, lut.size - 1)
    return (lo + hi) / 2.0, float(max(hi - lo, 1))


def _number(ds: Dataset, keyword: str, default: float | None) -> float | None:
    value = _get(ds, keyword)
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if not value:
            return default
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default


def _get(ds: Dataset, keyword: str):
    """ds.get() that never raises on a damaged element."""
    try:
        return ds.get(keyword)
    except Exception:
        return None


def _text(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _metadata(ds: Dataset, ts: UID, photometric: str, rows: int, cols: int) -> StudyMetadata:
    return StudyMetadata(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_sex=_text(ds, "PatientSex"),
        patient_age=_text(ds, "PatientAge"),
        study_date=_text(ds, "StudyDate"),
        study_description=_text(ds, "StudyDescription"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        accession_number=_text(ds, "AccessionNumber"),
        modality=_text(ds, "Modality"),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        institution=_text(ds, "InstitutionName"),
        photometric_interpretation=photometric,
        rows=rows,
        columns=cols,
        bits_stored=int(ds.BitsStored),
        transfer_syntax=ts.name,
        source_format="DICOM",
    )


def dicom_tags(ds: Dataset) -> list[tuple[str, str, str]]:
    """(tag, keyword, value) rows for the tags panel: file meta, then the top-level data set.

    Sequences are summarised by their item count and pixel data is left out: the panel is
    for reading the header, and both would be megabytes of noise.
    """
    rows: list[tuple[str, str, str]] = []
    for source in (ds.file_meta, ds):
        for tag in list(source.keys()):
            if tag in PIXEL_DATA_TAGS:
                continue
            try:
                elem = source[tag]
                rows.append((_tag_text(tag), elem.keyword or elem.name, _value_text(elem)))
            except Exception:
                rows.append((_tag_text(tag), "", "<unreadable>"))
    return rows


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _value_text(elem) -> str:
    value = elem.value
    if elem.VR == "SQ":
        n = len(value)
        return f"<sequence of {n} item{'s' if n != 1 else ''}>"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, pydicom.multival.MultiValue):
        text = "\\".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= _MAX_TAG_VALUE else text[: _MAX_TAG_VALUE - 1] + "…"


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return _clean(text if len(text) <= 120 else text[:119] + "…")


def _clean(text: object) -> str:
    """A header value fit for a message: damaged files hold control bytes."""
    return "".join(c if c.isprintable() else "?" for c in str(text))
