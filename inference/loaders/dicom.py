"""DICOM studies: pixel semantics (Modality LUT, MONOCHROME1, VOI window) on the first frame.

The frame itself comes from dicom_frame.py (native from the buffer, compressed through the
decode budget); everything after it is done in float32 so a 3,000-pixel 16-bit film loads
in tens of milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder

from inference.errors import PixelDecodeError, StudyLoadError, UnsupportedStudyError
from inference.loaders.dicom_frame import DECODING, codec_name, first_frame
from inference.loaders.dicom_header import geometry, metadata, read_dataset, transfer_syntax
from inference.loaders.dicom_tags import dicom_tags
from inference.loaders.dicom_values import get_value, number_value, short_error
from inference.loaders.pixels import robust_window, to_gray
from inference.loaders.warnings import study_warnings
from inference.study import Study


def load_dicom(path: Path, data: bytes, decoding: int = DECODING) -> Study:
    """A DICOM file's bytes -> Study, decoded by the decoders of generation ``decoding``.
    Raises StudyLoadError subclasses only."""
    try:
        return _load(path, data, decoding)
    except (StudyLoadError, MemoryError):
        raise
    except Exception as err:  # a damaged element raises when pydicom converts its value
        raise UnsupportedStudyError(path, f"DICOM header is damaged ({short_error(err)})") from err


def _load(path: Path, data: bytes, decoding: int) -> Study:
    ds = read_dataset(path, data)
    ts = transfer_syntax(path, ds)
    rows, cols, _, frames = geometry(path, ds)
    if ts.is_encapsulated and not get_decoder(ts).is_available:
        raise PixelDecodeError(path, f"no decoder for {codec_name(ts)} pixel data is installed")
    arr = first_frame(path, ds, ts, frames, decoding)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()

    colour = transparent = False
    if photometric == "PALETTE COLOR":
        arr = _palette_to_rgb(path, ds, arr)
    if arr.ndim == 3:
        arr, colour, transparent = to_gray(arr)
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

    meta = metadata(ds, ts, photometric, rows, cols)
    return Study(
        path=path,
        pixels=pixels,
        window=window,
        metadata=meta,
        warnings=study_warnings(
            meta, rows, cols, colour=colour, frames=frames, transparent=transparent, shown=pixels.shape[:2]
        ),
        tags=dicom_tags(ds),
        header=_header(ds),
    )


def _header(ds: Dataset) -> Dataset:
    """The data set without its pixel data, and without the file's bytes: a FileDataset keeps
    the buffer it was read from, which made every study carry its whole file (15 MB more for a
    2,500 x 3,000 film, through the pipe at every N)."""
    header = Dataset({tag: element for tag, element in ds.items() if tag != 0x7FE00010})
    header.file_meta = ds.file_meta
    return header


def _palette_to_rgb(path: Path, ds: Dataset, arr: np.ndarray) -> np.ndarray:
    try:
        return apply_color_lut(arr, ds)
    except Exception as err:
        raise UnsupportedStudyError(path, f"palette colour lookup table is damaged ({short_error(err)})") from err


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
    slope = number_value(ds, "RescaleSlope", 1.0) or 1.0
    intercept = number_value(ds, "RescaleIntercept", 0.0)
    out = arr.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    a, b = smin * slope + intercept, smax * slope + intercept
    return out, float(min(a, b)), float(max(a, b))


def _voi_window(ds: Dataset) -> tuple[float, float] | None:
    """The file's default window in modality units: VOI LUT sequence, else Window Center/Width."""
    seq = get_value(ds, "VOILUTSequence")
    if seq:
        window = _lut_window(seq[0])
        if window is not None:
            return window
    center = number_value(ds, "WindowCenter", None)
    width = number_value(ds, "WindowWidth", None)
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
