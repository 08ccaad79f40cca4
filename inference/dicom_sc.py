"""A DICOM Secondary Capture of the overlay with the result burned in, for the PACS.

The capture joins the source's Patient and Study (same StudyInstanceUID), in a new series
whose description says it is AI-generated, so a reader scrolling the study in any viewer
sees the heat-map and the result beside the original -- and cannot mistake it for it. The
text is burned into a band below the image, never over the anatomy; it is the story
:mod:`inference.presentation` tells in the window and the PDF, word for word.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import re
import warnings
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from . import __version__
from .derived_uids import derived_uids, result_content, study_uid_for
from .overlay import Picture, ascii_text, burn_in, render_picture
from .prediction import Prediction
from .presentation import NOT_RELIABLE, present
from .source_header import UTF8, study_header
from .study import Study
from .userdirs import write_private

MANUFACTURER = "LungLens"
DISCLAIMER = "AI-generated - decision support, not a diagnosis"
SERIES_DESCRIPTION = "AI-generated pneumonia heat-map (LungLens)"  # LO: at most 64 characters
SERIES_NUMBER = 9901  # high, so the capture sorts after the acquired series
ANONYMIZED = "LungLens --anonymize: new UIDs, only sex and age kept"  # LO: at most 64 characters

_DATE_TIME_PATTERNS = {
    "PatientBirthDate": r"\d{8}",
    "StudyDate": r"\d{8}",
    "StudyTime": r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?",
}
# Patient-module attributes copied from the source besides the ones highdicom takes.
_EXTRA_PATIENT = ("IssuerOfPatientID", "PatientBirthTime", "OtherPatientIDsSequence", "PatientComments")


def _copy_age(source: Dataset | None, sc: Dataset) -> None:
    """The source's PatientAge, when it is a valid one ("004Y"; a bare "62" would make the SC invalid)."""
    age = source.get("PatientAge") if source is not None else None
    if age and re.fullmatch(r"\d{3}[DWMY]", str(age)):
        sc.PatientAge = age


def result_lines(prediction: Prediction, caption: str) -> list[str]:
    """The burned-in text: the presentation's story (:mod:`inference.presentation`), as the
    window and the PDF tell it, with the heat-map's ``caption``, in plain ASCII (all that the
    built-in font is sure to draw)."""
    words = present(prediction)
    m = prediction.model
    lines = [
        DISCLAIMER,
        words.summary,
        caption,
        f"Operating point: {words.operating_point}",
        f"Site profile: {words.profile}",
        words.population,
        *(f"Warning: {w}" for w in words.warnings),
        f"Model {m.name} {m.version} (sha256 {m.sha256[:12]}), LungLens {__version__}",
    ]
    return [ascii_text(line) for line in lines]


def _is_caution(line: str) -> bool:
    """Amber for the disclaimer and every caution, white for the rest."""
    return line == DISCLAIMER or line.startswith((NOT_RELIABLE, "Warning"))


def build_secondary_capture(study: Study, prediction: Prediction, picture: Picture | None = None,
                            anonymize: bool = False) -> Dataset:
    """The Secondary Capture dataset for ``study``'s result.

    ``picture`` (what the window showed) defaults to :func:`inference.overlay.render_picture`.
    A DICOM source lends its Patient and Study -- name, ID, birth date, accession number and
    the rest go with it, so the PACS files the capture with the films -- and a raster source
    gets a new study with empty patient fields. ``anonymize`` (teaching, demonstrations) gives
    a DICOM source's capture a new study too, with only the patient's sex and age, no dates,
    no reference to the source image, and PatientIdentityRemoved YES. Text the modality burned
    into the pixels stays: anonymizing cannot see it.
    """
    if picture is None:
        picture = render_picture(study, prediction)
    pixels = burn_in(picture.rgb, result_lines(prediction, picture.caption), caution=_is_caution)
    source = _source_dataset(study)
    joins_source = source is not None and not anonymize
    uids = derived_uids("SC", source if joins_source else None,
                        [*result_content(prediction), hashlib.sha256(pixels.tobytes()).hexdigest()])
    common = dict(
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=uids.series,
        series_number=SERIES_NUMBER,
        sop_instance_uid=uids.instance,
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),  # highdicom wants one; replaced below
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    if joins_source:
        with warnings.catch_warnings():
            # The patient's name is copied exactly as the source has it, odd form or not.
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            sc = hd.sc.SCImage.from_ref_dataset(source, **common)
        for keyword in _EXTRA_PATIENT:
            if keyword in source:
                setattr(sc, keyword, source[keyword].value)
        _copy_age(source, sc)  # the SR carried it and the SC did not; the validated population is an age
        if "StudyDescription" in source:
            sc.StudyDescription = source.StudyDescription
        if source.get("SOPClassUID") and source.get("SOPInstanceUID"):
            ref = Dataset()
            ref.ReferencedSOPClassUID = source.SOPClassUID
            ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
            sc.SourceImageSequence = [ref]
        sc.SpecificCharacterSet = UTF8  # the source's names, decoded by its own set (inference.source_header)
    else:
        sex = source.get("PatientSex") if source is not None else None
        sc = hd.sc.SCImage(study_instance_uid=generate_uid(), specific_character_set=UTF8,
                           patient_sex=sex or None, **common)
        if anonymize:
            _copy_age(source, sc)
            sc.PatientIdentityRemoved = "YES"
            sc.DeidentificationMethod = ANONYMIZED
    # The picture has the source's proportions, so it has the source's orientation; unknown
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
        f"Attribution heat-map and result of the LungLens pneumonia triage model {prediction.model.name} "
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
    study: Study, prediction: Prediction, out: str | Path, picture: Picture | None = None, anonymize: bool = False
) -> Path:
    """Write the Secondary Capture of ``study``'s result to ``out`` (0600: it carries the
    patient's identifiers); returns the path."""
    out = Path(out)
    sc = build_secondary_capture(study, prediction, picture, anonymize)
    return write_private(out, dataset_bytes(sc))


def dataset_bytes(ds: Dataset) -> bytes:
    """A DICOM file's bytes (preamble and file meta included)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _source_dataset(study: Study) -> Dataset | None:
    """The source's header, with values highdicom would refuse made harmless.

    A capture must be written even when the source's header is sloppy: an invalid sex is
    dropped, a malformed date or time emptied (all type 2), a missing Study Instance UID
    replaced by a new one (the capture then starts its own study).
    """
    if study.metadata.source_format != "DICOM":
        return None
    ds = study_header(study)
    if ds.get("PatientSex") not in (None, "", "M", "F", "O"):
        ds.PatientSex = ""
    for keyword, pattern in _DATE_TIME_PATTERNS.items():
        value = ds.get(keyword)
        if value not in (None, "") and not re.fullmatch(pattern, str(value)):
            setattr(ds, keyword, "")
    if not ds.get("StudyInstanceUID"):
        ds.StudyInstanceUID = study_uid_for(str(ds.SOPInstanceUID)) if ds.get("SOPInstanceUID") else generate_uid()
    return ds
