"""The UIDs of what LungLens derives from a DICOM film: the same result gives the same UIDs.

Modalities and routers send a study again (a retry after a timeout, a technologist's
"send again", a router replaying its queue), and the DICOM node answers each film with a
Secondary Capture and an SR. With new UIDs every time, each re-send added another copy of
the result to the patient's study in the PACS. A PACS keeps one instance per SOP Instance
UID, so UIDs derived from the source film and from everything that makes the result -- the
model, the site profile, the operating point and LungLens's version -- file a re-sent film's
result once, while a result that differs in any of those gets UIDs of its own.

Only a film with its own SOP Instance UID gets derived UIDs; an anonymized capture keeps
random ones, so that nothing in it can be matched to the source film.
"""

from __future__ import annotations

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


def derived_uids(kind: str, source: Dataset | None, made_of: Sequence[str]) -> DerivedUids:
    """UIDs for the ``kind`` ("SC", "SR") object on ``source``, fixed by the source's SOP
    Instance UID, ``made_of`` (:func:`provenance`) and LungLens's version; random without a
    source UID."""
    source_uid = str(source.get("SOPInstanceUID") or "") if source is not None else ""
    if not source_uid:
        return DerivedUids(generate_uid(), generate_uid(), generate_uid())
    parts = [kind, source_uid, *made_of, __version__]
    return DerivedUids(*(generate_uid(entropy_srcs=[part, *parts]) for part in ("series", "instance", "tracking")))


def provenance(prediction: Prediction) -> list[str]:
    """What makes a result what it is, beside the film: the model, the profile, the operating point."""
    profile = prediction.profile.sha256 if prediction.profile is not None else ""
    return [prediction.model.sha256, profile, prediction.operating_point, repr(float(prediction.threshold))]


def device_uid(model: ModelInfo) -> str:
    """The SR's observer device: the same for every report of one model, as a device's UID is."""
    return generate_uid(entropy_srcs=["LungLens device", model.sha256])
