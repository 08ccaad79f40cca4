"""The analysis process's link to the worklist and the audit log (no Qt).

It runs where the results are made (on the analysis process's writer thread, so inference
never waits for the disk), and each result is on disk -- appended to the audit log and
committed to the worklist -- before the window hears of it: killing the app mid-batch loses
nothing that was shown. It is also the pipeline's :class:`~desktop.pipeline.ResultMemory`:
a study whose pixels this model has already analysed is answered from the worklist.

Cached answers are audited too (``"cached": true``): the log then says every time a result
was put in front of a user, and which of those needed no new inference. Only a result of the
model *and* the site profile in use is answered from the worklist: another profile's
probability is on another scale, so that study is analysed again.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.audit import AuditLog
from inference.decision import OperatingPoint
from inference.hashing import pixel_sha256
from inference.prediction import Prediction
from inference.study import Study, StudyMetadata
from inference.worklist import Worklist, WorklistRecord

from .models.study_item import follows


def judge(record: WorklistRecord, operating: OperatingPoint) -> Prediction:
    """A stored result read at the operating point in use: a cached answer obeys the settings
    exactly like a fresh one. The returned prediction carries the stored attribution grid."""
    return record.to_prediction().at(operating)


class ResultStore:
    """Stores and looks up results for the pipeline; thread-safe (Worklist and AuditLog are)."""

    def __init__(self, worklist_path: str | Path, audit_path: str | Path) -> None:
        self.worklist = Worklist(worklist_path)
        self.audit = AuditLog(audit_path)

    # -- ResultMemory ---------------------------------------------------------------------------
    def fingerprint(self, study: Study) -> str:
        return pixel_sha256(study)

    def recall(self, fingerprint: str, engine: Any) -> WorklistRecord | None:
        stored = self.worklist.lookup(fingerprint, engine.model_info.sha256)
        if stored is None or not follows(stored.to_prediction(), engine.profile):
            return None
        return stored

    # -- keeping results ------------------------------------------------------------------------
    def keep(self, record: WorklistRecord) -> WorklistRecord:
        """Audit and commit a new result; returns the stored record (without its images)."""
        # The audit line first: an analysis that ran is logged even if the commit is cut short.
        self.audit.log_analysis(record, cached=False)
        stored = self.worklist.add(record)
        return replace(stored, thumbnail=None)

    def reuse(self, study_path: Path, metadata: StudyMetadata, stored: WorklistRecord, prediction: Prediction,
              thumbnail: np.ndarray | None) -> WorklistRecord:
        """A result answered from the worklist for the file ``study_path``: audited as cached;
        the same pixels under another file name get a row of their own, so that file is restored too."""
        record = stored.at(prediction.operating)
        self.audit.log_analysis(record, cached=True)
        if stored.study_path != str(study_path):
            moved = replace(stored, study_path=str(study_path), id=None, metadata=asdict(metadata),
                            thumbnail=thumbnail if thumbnail is not None else stored.thumbnail)
            stored = self.worklist.add(moved)
        return replace(stored, thumbnail=None)

    def close(self) -> None:
        self.worklist.close()
