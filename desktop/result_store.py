"""The analysis process's link to the worklist and the audit log (no Qt).

It runs where the results are made (on the analysis process's writer thread, so inference
never waits for the disk), and each result is on disk -- appended to the audit log and
committed to the worklist -- before the window hears of it: killing the app mid-batch loses
nothing that was shown. It is also the pipeline's :class:`~desktop.pipeline.ResultMemory`:
a study whose pixels this model has already analysed is answered from the worklist.

Cached answers are audited too (``"cached": true``): the log then says every time a result
was put in front of a user, and which of those needed no new inference.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.audit import AuditLog
from inference.hashing import pixel_sha256
from inference.manifest import ModelManifest
from inference.prediction import Prediction
from inference.study import Study, StudyMetadata
from inference.worklist import Worklist, WorklistRecord

from .models.study_item import relabel


def judge(record: WorklistRecord, manifest: ModelManifest, predict_kwargs: dict[str, Any]) -> Prediction:
    """A stored result read at the decision the engine would apply now (``threshold`` or
    ``operating_point`` as given to ``Engine.predict``): a cached answer obeys the settings
    exactly like a fresh one. The returned prediction has no Grad-CAM (an empty map)."""
    prediction = record.to_prediction()
    if predict_kwargs.get("threshold") is not None:
        return relabel(prediction, float(predict_kwargs["threshold"]), "custom", None, None)
    name = predict_kwargs.get("operating_point") or manifest.default_operating_point
    op = manifest.operating_points.get(name)
    if op is None:
        return prediction
    return relabel(prediction, op.threshold, name, op.sensitivity, op.specificity)


class ResultStore:
    """Stores and looks up results for the pipeline; thread-safe (Worklist and AuditLog are)."""

    def __init__(self, worklist_path: str | Path, audit_path: str | Path) -> None:
        self.worklist = Worklist(worklist_path)
        self.audit = AuditLog(audit_path)

    # -- ResultMemory ---------------------------------------------------------------------------
    def fingerprint(self, study: Study) -> str:
        return pixel_sha256(study)

    def recall(self, fingerprint: str, engine: Any) -> WorklistRecord | None:
        return self.worklist.lookup(fingerprint, engine.model_info.sha256)

    # -- keeping results ------------------------------------------------------------------------
    def keep(self, record: WorklistRecord) -> WorklistRecord:
        """Audit and commit a new result; returns the stored record (without its images)."""
        # The audit line first: an analysis that ran is logged even if the commit is cut short.
        self.audit.log_analysis(record, cached=False)
        stored = self.worklist.add(record)
        return replace(stored, thumbnail=None, cam_small=None)

    def reuse(self, study_path: Path, metadata: StudyMetadata, stored: WorklistRecord, prediction: Prediction,
              thumbnail: np.ndarray | None) -> WorklistRecord:
        """A result answered from the worklist for the file ``study_path``: audited as cached;
        the same pixels under another file name get a row of their own, so that file is restored too."""
        record = replace(stored, threshold=prediction.threshold, operating_point=prediction.operating_point,
                         sensitivity=prediction.sensitivity, specificity=prediction.specificity,
                         label=prediction.label)
        self.audit.log_analysis(record, cached=True)
        if stored.study_path != str(study_path):
            moved = replace(stored, study_path=str(study_path), id=None, metadata=asdict(metadata),
                            thumbnail=thumbnail if thumbnail is not None else stored.thumbnail)
            stored = self.worklist.add(moved)
        return replace(stored, thumbnail=None, cam_small=None)

    def close(self) -> None:
        self.worklist.close()
