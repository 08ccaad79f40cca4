"""The loaded study: pixels ready for display and for the model, metadata, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class StudyMetadata:
    """What the viewer and reports show about a study. Empty strings where unknown."""

    patient_name: str = ""
    patient_id: str = ""
    patient_sex: str = ""
    patient_age: str = ""  # DICOM AS string, e.g. "004Y"
    patient_birth_date: str = ""  # YYYYMMDD; with a study or acquisition date it gives the age
    study_date: str = ""  # YYYYMMDD
    acquisition_date: str = ""  # YYYYMMDD; stands in for a missing study date
    study_description: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    accession_number: str = ""
    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    institution: str = ""
    photometric_interpretation: str = ""
    rows: int = 0
    columns: int = 0
    bits_stored: int = 0
    transfer_syntax: str = ""  # UID name for DICOM, the format name for raster images
    source_format: str = ""  # "DICOM", "PNG", "JPEG", "BMP", "TIFF"


@dataclass
class Study:
    """A radiograph as LungLens sees it.

    ``pixels`` is float32, 2-D, in the modality's units after the Modality LUT, with
    MONOCHROME1 already inverted: bone is always bright. It is what the model is fed
    (through :mod:`inference.preprocess`) and what the viewer displays.
    ``window`` is the default display window (center, width) in those units.
    """

    path: Path
    pixels: np.ndarray
    window: tuple[float, float]
    metadata: StudyMetadata
    warnings: list[str] = field(default_factory=list)
    # Free-form (keyword, value) pairs of the DICOM header for the tags panel; empty for rasters.
    tags: list[tuple[str, str, str]] = field(default_factory=list)  # (tag "(0010,0010)", keyword, value)
    # A DICOM file's header as it was loaded, without its pixel data (None for rasters): what
    # the SR and the capture join (inference.source_header), never the file read again.
    header: Dataset | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])
