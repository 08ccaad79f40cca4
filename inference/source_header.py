"""The header of the DICOM film a result is about, for the SR and the Secondary Capture that
join its study.

It is the header the film was loaded with (:attr:`inference.study.Study.header`), not read
from the file again: the file may have been replaced since (a new CD's IM000001 is another
patient), and reading it again without the loader's leniency refused a film with no preamble
that the loader had read (an old CD's export), and in the DICOM node that error stopped all
analysis. Its text is decoded by the character set it declares and is written back as UTF-8:
highdicom could not build an SR or a capture from a Japanese (ISO 2022 IR 87) header at all,
and a capture copied a Latin-1 name's bytes under no declared set.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .errors import LungLensError
from .study import Study

log = logging.getLogger(__name__)
UTF8 = "ISO_IR 192"


class SourceNotDicomError(LungLensError):
    """The source is not a DICOM image whose study an export can join."""


def study_header(study: Study) -> Dataset:
    """A copy (the exports change it; :func:`in_utf8` makes it) of the header ``study`` was
    loaded with, its text in UTF-8; read from its file for a study loaded without one."""
    if study.metadata.source_format != "DICOM":
        raise SourceNotDicomError(
            f"{study.path.name}: a DICOM export joins the source's study, and a "
            f"{study.metadata.source_format or 'raster'} file has none; use a DICOM study")
    return in_utf8(study.header) if study.header is not None else read_header(study.path)


def read_header(path: Path) -> Dataset:
    """A DICOM file's header without its pixels, read as leniently as the loader reads it
    (no preamble, no file meta); :class:`SourceNotDicomError` when it cannot be read."""
    try:
        return in_utf8(pydicom.dcmread(path, stop_before_pixels=True, force=True))
    except Exception as err:  # noqa: BLE001 -- pydicom raises many types for a damaged header
        raise SourceNotDicomError(f"{path.name}: the DICOM header could not be read "
                                  f"({type(err).__name__}: {err})") from err


def in_utf8(ds: Dataset) -> Dataset:
    """A copy of ``ds`` with every text value decoded by its declared character set (pydicom's
    fallbacks for an unknown one) and declared UTF-8, as the exports write it; as it was, its
    own set still declared, when that fails part-way (the values not yet decoded would be
    read as UTF-8, and a Latin-1 name garbled). ``ds`` itself is never changed."""
    try:
        decoded = copy.deepcopy(ds)
        decoded.decode()
    except Exception:  # noqa: BLE001 -- kept as it came; the export says what it cannot write
        log.debug("could not decode every text value of a DICOM header", exc_info=True)
        return copy.deepcopy(ds)
    decoded.SpecificCharacterSet = UTF8
    return decoded
