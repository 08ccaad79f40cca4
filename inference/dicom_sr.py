"""The result as a DICOM Structured Report, for a PACS and the viewers that read SR.

A TID 1500 Measurement Report (Comprehensive SR, built with highdicom) in the source's study
(same Patient and Study, Study Instance UID included) and a new series, so that the PACS
files it with the film and a viewer lists it beside it. One measurement group holds:

- the calibrated probability of pneumonia and the review threshold (numbers, unit "no units");
- the result as a code: above or below the review threshold, or "not reliable" when the
  input gate says the film is outside the model's intended use -- worded by
  :mod:`inference.decision` / :mod:`inference.presentation`, never decided here;
- the scope verdict (yes/no) and each of its reasons (text); whether the patient is within
  the population the model was validated for (yes, no, or unknown when no age is recorded);
- what a reader must know beside the number, as the window, the PDF and the Secondary Capture
  say it (:mod:`inference.presentation`): the operating point with its measured figures and
  their source, the population the model is validated for, and every warning (an age not
  recorded, an adult, a film too small...), since the SR is what reaches the PACS;
- the model (name, version and SHA-256), the site profile (name and SHA-256) and the
  operating point, as the algorithm's identification and parameters (TID 4019);
- a reference to the source image (SOP Class and Instance UID).

A film that could not be analysed gets an SR too (:func:`build_failure_sr`): the result coded
"Not analysed" and the reason in words, with no number, so that the PACS shows the reader that
LungLens looked and could not rather than nothing at all.

Codes without a standard one are in the private scheme ``99LUNGLENS``. The report is built
only from a DICOM source: an SR must belong to a study, and a PNG has none.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from pathlib import Path

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian

from . import __version__
from .dicom_sc import DISCLAIMER, MANUFACTURER, dataset_bytes
from .derived_uids import DerivedUids, derived_uids, device_uid, result_content
from .population import in_population
from .prediction import ModelInfo, Prediction
from .presentation import present
from .source_header import UTF8, SourceNotDicomError, read_header, study_header
from .study import Study
from .userdirs import write_private

SERIES_DESCRIPTION = "AI-generated pneumonia triage result (LungLens)"  # LO: at most 64 characters
SERIES_NUMBER = 9902  # after the Secondary Capture's 9901
SCHEME = "99LUNGLENS"

PROCEDURE = CodedConcept("399208008", "SCT", "Plain X-ray of chest")
# What the group is about: neutral, as a PACS may show only this line ("Finding: Pneumonia" read
# as a diagnosis on a film far below the threshold).
FINDING = CodedConcept("LL0012", SCHEME, "Pneumonia triage")
PROBABILITY = CodedConcept("LL0001", SCHEME, "Probability of pneumonia")
THRESHOLD = CodedConcept("LL0002", SCHEME, "Review threshold")
RESULT = CodedConcept("LL0003", SCHEME, "Triage result")
IN_SCOPE = CodedConcept("LL0004", SCHEME, "Within the model's intended use")
SCOPE_REASON = CodedConcept("LL0005", SCHEME, "Reason outside intended use")
SUMMARY = CodedConcept("LL0006", SCHEME, "Result summary")
NOTICE = CodedConcept("LL0007", SCHEME, "Notice")
WARNING = CodedConcept("LL0008", SCHEME, "Warning")
POPULATION = CodedConcept("LL0009", SCHEME, "Validated population")
OPERATING_POINT = CodedConcept("LL0010", SCHEME, "Operating point")
IN_POPULATION = CodedConcept("LL0011", SCHEME, "Patient within the validated population")
ABOVE = CodedConcept("LL0101", SCHEME, "Above the review threshold")
BELOW = CodedConcept("LL0102", SCHEME, "Below the review threshold")
NOT_RELIABLE = CodedConcept("LL0103", SCHEME, "Not reliable: outside the model's intended use")
NOT_ANALYSED = CodedConcept("LL0104", SCHEME, "Not analysed")
TRACKING = "LungLens pneumonia triage"
YES = CodedConcept("373066001", "SCT", "Yes")
NO = CodedConcept("373067005", "SCT", "No")
UNKNOWN = CodedConcept("261665006", "SCT", "Unknown")
NO_UNITS = CodedConcept("1", "UCUM", "no units")


def result_code(prediction: Prediction) -> CodedConcept:
    """The coded result: the decision module's label, or not reliable when out of scope."""
    if not prediction.in_scope:
        return NOT_RELIABLE
    return ABOVE if prediction.is_positive else BELOW


def algorithm_parameters(prediction: Prediction) -> list[str]:
    """What else produced the number: the model's hash, the profile and the operating point."""
    p = prediction
    params = [f"model sha256 {p.model.sha256}"]
    if p.profile is not None:
        params.append(f"site profile {p.profile.name} sha256 {p.profile.sha256}")
    params.append(f"operating point {p.operating_point} threshold {p.threshold:.6g}")
    # An out-of-scope film has a label by the threshold, which must not reach the PACS as a result.
    params.append(f"label {p.label}" if p.in_scope else "label: does not apply (outside the model's intended use)")
    return params


def build_sr(study: Study, prediction: Prediction, source: Dataset | None = None) -> Dataset:
    """The SR dataset of ``prediction`` for ``study`` (``source``: its header, read if None)."""
    if source is None:
        source = source_header(study)
    words = present(prediction)
    uids = derived_uids("SR", source, result_content(prediction))
    algorithm = hd.sr.AlgorithmIdentification(name=prediction.model.name, version=prediction.model.version,
                                              parameters=algorithm_parameters(prediction))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uids.tracking, identifier=TRACKING),
        finding_type=FINDING,
        algorithm_id=algorithm,
        measurements=[
            hd.sr.Measurement(name=PROBABILITY, value=float(prediction.probability), unit=NO_UNITS,
                              algorithm_id=algorithm),
            hd.sr.Measurement(name=THRESHOLD, value=float(prediction.threshold), unit=NO_UNITS),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=RESULT, value=result_code(prediction)),
            hd.sr.QualitativeEvaluation(name=IN_SCOPE, value=YES if prediction.in_scope else NO),
            # The image may be in scope while the patient is not (an adult) or not known to be:
            # coded apart, so that a rule reading codes does not take an adult's result as validated.
            hd.sr.QualitativeEvaluation(name=IN_POPULATION,
                                        value={True: YES, False: NO, None: UNKNOWN}[in_population(study.metadata)]),
        ],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    reasons = {r.casefold() for r in prediction.scope_reasons}  # already there as reasons
    texts = [(SUMMARY, words.summary), *((SCOPE_REASON, r) for r in prediction.scope_reasons),
             *((WARNING, w) for w in words.warnings if w.casefold() not in reasons),
             (OPERATING_POINT, words.operating_point), (POPULATION, words.population), (NOTICE, DISCLAIMER)]
    return _report(source, group, texts, uids, prediction.model)


def build_failure_sr(path: Path, reason: str, model: ModelInfo) -> Dataset:
    """An SR in the film's study saying that it could not be analysed, and why.

    Without it the PACS held nothing for the film, which a reader cannot tell from a result
    still on its way (the node's log said why, and nobody reading films sees that). A file
    whose header cannot be read has no study to join: :func:`header_of` refuses it; nor is a
    report that is no image (an SR, a key object) answered: the SR refers to its source as an image."""
    source = header_of(path)
    if "Rows" not in source or "Columns" not in source:
        raise SourceNotDicomError(f"{path.name}: not an image ({source.get('SOPClassUID', 'no SOP class')})")
    uids = derived_uids("SR not analysed", source, [model.sha256, reason])
    algorithm = hd.sr.AlgorithmIdentification(name=model.name, version=model.version,
                                              parameters=[f"model sha256 {model.sha256}"])
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uids.tracking, identifier=TRACKING),
        finding_type=FINDING,
        algorithm_id=algorithm,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=RESULT, value=NOT_ANALYSED)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    texts = [(SUMMARY, f"Not analysed: {reason}"), (NOTICE, DISCLAIMER)]
    return _report(source, group, texts, uids, model)


def _report(source: Dataset, group: hd.sr.MeasurementsAndQualitativeEvaluations,
            texts: list[tuple[CodedConcept, str]], uids: DerivedUids, model: ModelInfo) -> Dataset:
    """The Comprehensive SR of one measurement group, with ``texts`` added to it."""
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(model), manufacturer_name=MANUFACTURER, model_name=model.name),
    )
    container = group[0]
    for name, value in texts:
        container.ContentSequence.append(
            hd.sr.TextContentItem(name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=PROCEDURE,
        imaging_measurements=[group],
    )
    with warnings.catch_warnings():
        # The patient's name is copied exactly as the source has it, odd form or not.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        sr = _comprehensive_sr(source, report, uids)
    sr.SpecificCharacterSet = UTF8  # the summary's dash and any accented name
    sr.SoftwareVersions = __version__
    sr.ManufacturerModelName = "LungLens"
    now = _dt.datetime.now()
    sr.ContentDate, sr.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    return sr


def _comprehensive_sr(source: Dataset, report: hd.sr.MeasurementReport, uids: DerivedUids) -> hd.sr.ComprehensiveSR:
    return hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=uids.series,
        series_number=SERIES_NUMBER,
        sop_instance_uid=uids.instance,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=SERIES_DESCRIPTION,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )


def write_sr(study: Study, prediction: Prediction, out: str | Path) -> Path:
    """Write the SR of ``study``'s result to ``out`` (a DICOM file, 0600: it carries the
    patient's identifiers); returns the path."""
    return write_private(Path(out), dataset_bytes(build_sr(study, prediction)))


def source_header(study: Study) -> Dataset:
    """The header ``study`` was loaded with, made harmless for an SR that joins its study;
    refused for a study that is not DICOM or lacks what the SR must refer to."""
    return _joinable(study_header(study), study.path)


def header_of(path: Path) -> Dataset:
    """A DICOM file's header, without pixels, made harmless for an SR that joins its study
    (:class:`SourceNotDicomError` when it cannot be read or lacks what the SR must refer to)."""
    return _joinable(read_header(path), path)


def _joinable(ds: Dataset, path: Path) -> Dataset:
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not ds.get(keyword):
            raise SourceNotDicomError(f"{path.name}: the DICOM header has no {keyword}; the SR could not "
                                      "refer to it")
    return _harmless(ds)


def _harmless(ds: Dataset) -> Dataset:
    """The source's header with what would make the SR invalid or unbuildable made empty:
    the report must reach the PACS even when the modality wrote a sloppy header. Missing type-2
    Patient and Study attributes become empty (highdicom copies them), malformed ones too."""
    for keyword in _TYPE2_COPIED:
        if keyword not in ds:
            setattr(ds, keyword, "")
    for keyword, pattern in _PATTERNS.items():
        value = ds.get(keyword)
        if value not in (None, "") and not re.fullmatch(pattern, str(value)):
            if keyword in _OPTIONAL:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, "")
    return ds


# Type-2 attributes highdicom copies from the evidence into the SR.
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "AccessionNumber")
_PATTERNS = {
    "PatientSex": r"[MFO]",
    "PatientAge": r"\d{3}[DWMY]",
    "PatientBirthDate": r"\d{8}",
    "StudyDate": r"\d{8}",
    "StudyTime": r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?",
}
_OPTIONAL = ("PatientAge",)
