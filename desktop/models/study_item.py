"""One row of the study list, and the pure functions that shape what it shows.

Plain Python (no Qt) so the list's logic -- wording, sort order, what is kept in memory --
is testable without a display. A finished study keeps only a thumbnail, the prediction's
numbers and its attribution grid; the full-resolution pixels are reloaded when the
study is shown, so memory stays flat however long the list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from inference.prediction import Prediction
from inference.profile import SiteProfile
from inference.study import StudyMetadata
from inference.worklist import WorklistRecord


# DICOM keywords that identify a patient or can be traced back to one; masked by default.
IDENTIFYING_KEYWORDS = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientBirthTime",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "MedicalRecordLocator",
        "AccessionNumber",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "InstitutionName",
        "InstitutionAddress",
        "StationName",
        "StudyID",
        "IssuerOfPatientID",
    }
)
MASK = "••••••"


class Status(str, enum.Enum):
    QUEUED = "queued"
    LOADING = "loading"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Status.DONE, Status.ERROR, Status.CANCELLED)


@dataclass
class StudyItem:
    """What the app remembers about one opened file."""

    path: Path
    status: Status = Status.QUEUED
    error: str = ""  # the reason, ready to show, when status is ERROR
    thumbnail: np.ndarray | None = None  # uint8 [h, w]: inference.thumbnail.make_thumbnail
    thumbnail_png: bytes | None = None  # or, restored from the worklist, as stored there (see WorklistRecord)
    metadata: StudyMetadata | None = None
    prediction: Prediction | None = None  # with its attribution grid, without the gate's features
    load_warnings: list[str] = field(default_factory=list)
    order: int = 0  # position in which it was opened
    record: WorklistRecord | None = None  # the result as stored in the worklist (no images)
    cached: bool = False  # the result came from the worklist: no inference ran for it
    restored: bool = False  # listed from the worklist when the app started

    @classmethod
    def from_record(cls, record: WorklistRecord, order: int) -> StudyItem:
        """A finished study restored from the worklist: its file need not exist any more."""
        return cls(path=Path(record.study_path), status=Status.DONE, thumbnail=record.thumbnail,
                   thumbnail_png=record.thumbnail_png, metadata=record.study_metadata,
                   prediction=record.to_prediction(), order=order,
                   record=replace(record, thumbnail=None, thumbnail_png=None), cached=True, restored=True)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def probability(self) -> float | None:
        return None if self.prediction is None else self.prediction.probability

    @property
    def in_scope(self) -> bool:
        return self.prediction is None or self.prediction.in_scope


def metadata_line(meta: StudyMetadata | None, show_identifiers: bool) -> str:
    """The patient/study line under the file name; identifiers only when allowed."""
    if meta is None:
        return ""
    parts: list[str] = []
    if show_identifiers:
        if meta.patient_name:
            parts.append(meta.patient_name.replace("^", " ").strip())
        if meta.patient_id:
            parts.append(f"ID {meta.patient_id}")
    if meta.patient_age:
        parts.append(_age_text(meta.patient_age))
    if meta.patient_sex:
        parts.append(meta.patient_sex)
    if meta.study_date and len(meta.study_date) == 8:
        d = meta.study_date
        parts.append(f"{d[:4]}-{d[4:6]}-{d[6:]}")
    exam = " ".join(p for p in (meta.modality, meta.view_position) if p)
    if exam:
        parts.append(exam)
    if not parts:
        parts.append(f"{meta.source_format} {meta.columns}×{meta.rows}".strip())
    return " · ".join(parts)


def _age_text(age: str) -> str:
    """DICOM AS "004Y" -> "4 y"."""
    units = {"Y": "y", "M": "mo", "W": "wk", "D": "d"}
    if len(age) == 4 and age[:3].isdigit() and age[3] in units:
        return f"{int(age[:3])} {units[age[3]]}"
    return age


def masked_value(keyword: str, value: str, show_identifiers: bool) -> str:
    """A DICOM tag value as the tags panel shows it."""
    if not show_identifiers and keyword in IDENTIFYING_KEYWORDS and value:
        return MASK
    return value


def follows(prediction: Prediction, profile: SiteProfile | None) -> bool:
    """Whether a result is read at the active operating point: only one made by the model and
    the profile in use now. An earlier model's or another profile's probability is on another
    scale, so it keeps the threshold it was read at (and is marked as such)."""
    return (profile is not None and prediction.profile is not None
            and prediction.model.sha256 == profile.model.sha256 and prediction.profile.sha256 == profile.sha256)


# "Most suspicious first": what needs a person's look comes before everything below the
# review threshold, so a reader who stops early has missed no flagged, unreliable or failed
# study. In order: above the threshold, not reliable, failed or cancelled, still being
# analysed, below the threshold. Within a group the higher probability first, then as opened.
SUSPICION_RULE = ("Studies that need a look come first: above the review threshold (most probable "
                  "first), then not reliable, then failed or cancelled, then those still being analysed; "
                  "everything below the threshold comes last.")
_ABOVE, _UNRELIABLE, _FAILED, _PENDING, _BELOW = range(5)


def suspicion_key(item: StudyItem) -> tuple[int, float, int]:
    """Sort key for "most suspicious first" (see SUSPICION_RULE): smaller sorts first."""
    pred = item.prediction
    if item.status is Status.DONE and pred is not None:
        if not pred.in_scope:
            return (_UNRELIABLE, -pred.probability, item.order)
        return (_ABOVE if pred.is_positive else _BELOW, -pred.probability, item.order)
    if item.status in (Status.ERROR, Status.CANCELLED):
        return (_FAILED, 0.0, item.order)
    return (_PENDING, 0.0, item.order)
