"""Reading DICOM element values that may be damaged, without ever raising."""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset


def get_value(ds: Dataset, keyword: str) -> Any:
    """ds.get() that never raises on a damaged element."""
    try:
        return ds.get(keyword)
    except Exception:
        return None


def text_value(ds: Dataset, keyword: str) -> str:
    value = get_value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def number_value(ds: Dataset, keyword: str, default: float | None) -> float | None:
    value = get_value(ds, keyword)
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


def native_frame_bytes(ds: Dataset, frames: int = 1) -> int:
    """Bytes of ``frames`` uncompressed frames as the header describes them (0 if it cannot say)."""
    try:
        rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
        samples = int(get_value(ds, "SamplesPerPixel") or 1)
    except Exception:  # missing or damaged: the header checks report it
        return 0
    if text_value(ds, "PhotometricInterpretation").upper() == "YBR_FULL_422":
        samples = 2  # chroma halved: two samples a pixel
    return (rows * cols * samples * frames * bits + 7) // 8


def replace_value(ds: Dataset, keyword: str, value: Any) -> None:
    """Replace an element, even one whose raw value cannot be converted."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag in ds:
        del ds[tag]
    setattr(ds, keyword, value)


def short_error(err: BaseException) -> str:
    """The first line of an exception, short enough for a message."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return clean(text if len(text) <= 120 else text[:119] + "…")


def clean(text: object) -> str:
    """A header value fit for a message: damaged files hold control bytes."""
    return "".join(c if c.isprintable() else "?" for c in str(text))
