"""A DICOM Secondary Capture of the overlay with the result burned in, for the PACS.

The capture joins the source's Patient and Study (same StudyInstanceUID), in a new series
whose description says it is AI-generated, so a reader scrolling the study in any viewer
sees the heat-map and the result beside the original -- and cannot mistake it for it. The
text is burned into a band below the image, never over the anatomy; it is the story
:mod:`inference.presentation` tells in the window and the PDF, word for word.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from . import __version__
from .prediction import Prediction
from .presentation import NOT_RELIABLE, present
from .study import Study

MANUFACTURER = "LungLens"
DISCLAIMER = "AI-generated - decision support, not a diagnosis"
SERIES_DESCRIPTION = "AI-generated pneumonia heat-map (LungLens)"  # LO: at most 64 characters
SERIES_NUMBER = 9901  # high, so the capture sorts after the acquired series

_DATE_TIME_PATTERNS = {
    "PatientBirthDate": r"\d{8}",
    "StudyDate": r"\d{8}",
    "StudyTime": r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?",
}
# Patient-module attributes copied from the source besides the ones highdicom takes.
_EXTRA_PATIENT = ("IssuerOfPatientID", "PatientBirthTime", "OtherPatientIDsSequence", "PatientComments")


def result_lines(prediction: Prediction) -> list[str]:
    """The burned-in text: the presentation's story (:mod:`inference.presentation`), as the
    window and the PDF tell it, in plain ASCII (all that the built-in font is sure to draw)."""
    words = present(prediction)
    m = prediction.model
    lines = [
        DISCLAIMER,
        words.summary,
        f"Operating point: {words.operating_point}",
        f"Site profile: {words.profile}",
        words.population,
        *(f"Warning: {w}" for w in words.warnings),
        f"Model {m.name} {m.version} (sha256 {m.sha256[:12]}), LungLens {__version__}",
    ]
    return [_ascii(line) for line in lines]


_ASCII = str.maketrans({"\u2014": "-", "\u2013": "-", "\u00b7": "-", "\u2265": ">=", "\u2264": "<=",
                        "\u00d7": "x", "\u2026": "...", "\u00a0": " "})


def _ascii(text: str) -> str:
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def burn_in(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """``image`` (RGB uint8) with a black band below it holding ``lines`` in white.

    The font scales with the image width and long lines wrap at word boundaries, so the
    text stays legible on a 224-pixel image and on a 3,000-pixel one.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
    width = image.shape[1]
    font = ImageFont.load_default(size=max(11.0, width / 56.0))
    margin = max(4, width // 100)
    rows = [(part, _colour(line)) for line in lines for part in _wrap(line, font, width - 2 * margin)]
    line_height = round(font.size * 1.45)
    band = Image.new("RGB", (width, line_height * len(rows) + 2 * margin))
    draw = ImageDraw.Draw(band)
    for i, (text, colour) in enumerate(rows):
        draw.text((margin, margin + i * line_height), text, fill=colour, font=font)
    return np.ascontiguousarray(np.vstack([image, np.asarray(band)]))


def _colour(line: str) -> tuple[int, int, int]:
    """Amber for the disclaimer and every caution, white for the rest."""
    caution = line == DISCLAIMER or line.startswith((NOT_RELIABLE, "Warning"))
    return (255, 210, 0) if caution else (255, 255, 255)


def _wrap(line: str, font: ImageFont.FreeTypeFont, room: float) -> list[str]:
    """Greedy word wrap to ``room`` pixels (a word longer than that gets a row of its own)."""
    rows: list[str] = []
    for word in line.split(" "):
        if rows and font.getlength(f"{rows[-1]} {word}") <= room:
            rows[-1] = f"{rows[-1]} {word}"
        else:
            rows.append(word)
    return rows or [""]


def build_secondary_capture(study: Study, prediction: Prediction, overlay: np.ndarray | None = None) -> Dataset:
    """The Secondary Capture dataset for ``study``'s result.

    ``overlay`` defaults to :func:`inference.overlay.render_overlay`. A DICOM source lends
    its Patient and Study; a raster source gets a new study with empty patient fields.
    """
    if overlay is None:
        from .overlay import render_overlay

        overlay = render_overlay(study, prediction)
    pixels = burn_in(np.asarray(overlay), result_lines(prediction))
    source = _source_dataset(study)
    common = dict(
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),  # highdicom wants one; replaced below
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    if source is not None:
        with warnings.catch_warnings():
            # The patient's name is copied exactly as the source has it, odd form or not.
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            sc = hd.sc.SCImage.from_ref_dataset(source, **common)
        for keyword in _EXTRA_PATIENT:
            if keyword in source:
                setattr(sc, keyword, source[keyword].value)
        if "StudyDescription" in source:
            sc.StudyDescription = source.StudyDescription
        if source.get("SOPClassUID") and source.get("SOPInstanceUID"):
            ref = Dataset()
            ref.ReferencedSOPClassUID = source.SOPClassUID
            ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
            sc.SourceImageSequence = [ref]
    else:
        sc = hd.sc.SCImage(study_instance_uid=generate_uid(), specific_character_set="ISO_IR 192", **common)
    # The overlay has the source's geometry, so it has the source's orientation; unknown
    # stays empty (type 2) rather than invented.
    orientation = source.get("PatientOrientation") if source is not None else None
    sc.PatientOrientation = list(orientation) if orientation and len(orientation) == 2 else ""
    now = _dt.datetime.now()
    # Laterality is needed for paired body parts only: say which part it is (a chest,
    # unless the source says otherwise) and keep the source's laterality if it has one.
    body_part = source.get("BodyPartExamined") if source is not None else None
    sc.BodyPartExamined = body_part or "CHEST"
    if source is not None and source.get("Laterality"):
        sc.Laterality = source.Laterality
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.SeriesDescription = SERIES_DESCRIPTION
    sc.BurnedInAnnotation = "YES"
    sc.DerivationDescription = (
        f"Grad-CAM heat-map and result of the LungLens pneumonia triage model {prediction.model.name} "
        f"{prediction.model.version}; {DISCLAIMER}"
    )
    sc.ContentDate = now.strftime("%Y%m%d")
    sc.ContentTime = now.strftime("%H%M%S")
    sc.SecondaryCaptureDeviceManufacturer = MANUFACTURER
    sc.SecondaryCaptureDeviceManufacturerModelName = "LungLens"
    sc.SecondaryCaptureDeviceSoftwareVersions = __version__
    sc.ManufacturerModelName = "LungLens"
    sc.SoftwareVersions = __version__
    sc.ConversionType = "WSD"  # made on a workstation, not digitized from an interface
    return sc


def write_secondary_capture(
    study: Study, prediction: Prediction, out: str | Path, overlay: np.ndarray | None = None
) -> Path:
    """Write the Secondary Capture of ``study``'s result to ``out``; returns the path."""
    out = Path(out)
    sc = build_secondary_capture(study, prediction, overlay)
    sc.save_as(out, enforce_file_format=True)
    return out


def _source_dataset(study: Study) -> Dataset | None:
    """The source's header, with values highdicom would refuse made harmless.

    A capture must be written even when the source's header is sloppy: an invalid sex is
    dropped, a malformed date or time emptied (all type 2), a missing Study Instance UID
    replaced by a new one (the capture then starts its own study).
    """
    if study.metadata.source_format != "DICOM":
        return None
    ds = pydicom.dcmread(study.path, stop_before_pixels=True)
    if ds.get("PatientSex") not in (None, "", "M", "F", "O"):
        ds.PatientSex = ""
    for keyword, pattern in _DATE_TIME_PATTERNS.items():
        value = ds.get(keyword)
        if value not in (None, "") and not re.fullmatch(pattern, str(value)):
            setattr(ds, keyword, "")
    if not ds.get("StudyInstanceUID"):
        ds.StudyInstanceUID = generate_uid()
    return ds
