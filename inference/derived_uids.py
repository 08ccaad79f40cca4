"""The UIDs of what LungLens derives from a DICOM film: the same object gives the same UIDs.

Modalities and routers send a study again (a retry after a timeout, a technologist's
"send again", a router replaying its queue), and the DICOM node answers each film with a
Secondary Capture and an SR. With new UIDs every time, each re-send added another copy of
the result to the patient's study in the PACS. A PACS keeps one instance per SOP Instance
UID, so the UIDs are derived from the source film (its SOP Instance UID and its whole
header: a corrected name or age is another SR) and from everything the object shows -- the
result and its provenance (model, site profile, operating point), a capture's very pixels
(the window's heat-map setting changes them), LungLens's version. A re-sent film's result is
filed once; an object that differs in anything gets UIDs of its own.

Only a film with its own SOP Instance UID gets derived UIDs; an anonymized capture keeps
random ones, so that nothing in it can be matched to the source film.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from . import __version__
from .prediction import ModelInfo, Prediction


@dataclass(frozen=True)
class DerivedUids:
    """The UIDs of one derived object (a Secondary Capture or an SR)."""

    series: str
    instance: str
    tracking: str  # an SR's finding, as TID 1500 tracks it from report to report


def derived_uids(kind: str, source: Dataset | None, content: Sequence[str]) -> DerivedUids:
    """UIDs for the ``kind`` ("SC", "SR") object on ``source`` showing ``content``
    (:func:`result_content`, ...): fixed by those and LungLens's version; random without a
    source SOP Instance UID."""
    source_uid = str(source.get("SOPInstanceUID") or "") if source is not None else ""
    if source is None or not source_uid:
        return DerivedUids(generate_uid(), generate_uid(), generate_uid())
    header = hashlib.sha256(str(_described(source)).encode("utf-8", "replace")).hexdigest()
    # One string with separators: pydicom joins a list of sources with nothing between them.
    made_of = "\0".join([kind, source_uid, header, *content, __version__])
    return DerivedUids(*(generate_uid(entropy_srcs=[f"{part}\0{made_of}"]) for part in ("series", "instance", "tracking")))


def _described(source: Dataset) -> Dataset:
    """The header as it describes the patient, study and film, not how it is encoded: the file
    meta and the Image Pixel group (0028) differ between one film sent as JPEG 2000 and sent
    again uncompressed, which had filed a second SR, and private elements read as UN from an
    implicit-VR copy and with their VR from an explicit one (group lengths too)."""
    return Dataset({tag: element for tag, element in source.items()
                    if tag.group not in (0x0002, 0x0028, 0x7FE0) and not tag.is_private and tag.element != 0})


def result_content(prediction: Prediction) -> list[str]:
    """What a result shows beside the film: the number, the scope verdict and warnings, and
    what made it (the model, the profile, the operating point)."""
    profile = prediction.profile.sha256 if prediction.profile is not None else ""
    return [prediction.model.sha256, profile, prediction.operating_point, repr(float(prediction.threshold)),
            repr(float(prediction.probability)), str(prediction.in_scope), *prediction.scope_reasons,
            *prediction.warnings]


def study_uid_for(source_sop_instance_uid: str) -> str:
    """A Study Instance UID for a film whose header has none, the same each time."""
    return generate_uid(entropy_srcs=[f"study\0{source_sop_instance_uid}"])


def device_uid(model: ModelInfo) -> str:
    """The SR's observer device: the same for every report of one model, as a device's UID is."""
    return generate_uid(entropy_srcs=["LungLens device", model.sha256])
