"""The DICOM tags panel: (tag, keyword, value) rows, readable whatever the header holds."""

from __future__ import annotations

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, Float/DoubleFloatPixelData
_MAX_TAG_VALUE = 160  # characters of a value shown in the tags panel


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


def _value_text(elem: DataElement) -> str:
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
