"""Where results are kept and found again: the worklist and the audit log, for the app and the CLI.

It runs where the results are made (the app's analysis process, on its writer thread so that
inference never waits for the disk; ``lunglens classify``), and each result is on disk --
appended to the audit log and committed to the worklist -- before anyone is shown it:
killing the app or the command mid-batch loses nothing that was shown. It is also the
pipeline's :class:`~inference.pipeline.ResultMemory`: a study whose pixels this model has
already analysed is answered from the worklist.

Cached answers are audited too (``"cached": true``): the log then says every time a result
was put in front of a user, and which of those needed no new inference. Only a result of the
model *and* the site profile in use is answered from the worklist: another profile's
probability is on another scale, so that study is analysed again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .audit import AuditLog
from .decision import OperatingPoint
from .hashing import earlier_pixel_sha256, pixel_sha256
from .prediction import Prediction
from .study import Study, StudyMetadata
from .worklist import Worklist, WorklistError, WorklistLocked, WorklistRecord

log = logging.getLogger(__name__)


def judge(record: WorklistRecord, operating: OperatingPoint) -> Prediction:
    """A stored result read at the operating point in use: a cached answer obeys the settings
    exactly like a fresh one. The returned prediction carries the stored attribution grid."""
    return record.to_prediction().at(operating)


class ResultStore:
    """Stores and looks up results for the pipeline; thread-safe (Worklist and AuditLog are).

    Keeping never raises: what cannot be kept is told through ``report`` (to the window) and
    the result is shown anyway. Without a worklist -- none given, or it could not be opened --
    results are still audited. A worklist another program keeps locked past the busy timeout
    is given up for the rest of the session rather than waited for at every result; it is
    never changed, moved or replaced.
    """

    def __init__(self, worklist_path: str | Path | None, audit_path: str | Path | None,
                 report: Callable[[str], None], open_timeout: float | None = None) -> None:
        """``audit_path`` None: the default audit log. ``open_timeout``: how long a worklist
        another process keeps locked is waited for at opening (default
        :data:`inference.worklist.BUSY_TIMEOUT_S`)."""
        self.audit = AuditLog(audit_path)
        self._report = report
        self.worklist: Worklist | None = None
        if worklist_path is not None:
            try:
                self.worklist = Worklist(worklist_path, open_timeout=open_timeout)
            except WorklistError as err:
                report(f"Results are not being saved in the worklist: {err}")
            else:
                if self.worklist.set_aside is not None:
                    report(self.worklist.set_aside.message())

    # -- ResultMemory ---------------------------------------------------------------------------
    def fingerprint(self, study: Study) -> str:
        return pixel_sha256(study)

    def recall(self, study: Study, fingerprint: str, engine: Any) -> WorklistRecord | None:
        """The stored result of this model and profile for these pixels and this header, or None. A file the
        worklist knows under another fingerprint may have been stored under an earlier
        fingerprint version: if so, its row is re-keyed to today's and answers."""
        worklist = self.worklist
        if worklist is None:
            return None
        stored = worklist.recall(fingerprint, engine.profile, study.metadata)
        if stored is not None:
            return stored
        known = worklist.fingerprints_of(study.path, engine.profile.model.sha256) - {fingerprint}
        for earlier in earlier_pixel_sha256(study) if known else []:
            if earlier in known and worklist.recall(earlier, engine.profile, study.metadata) is not None:
                worklist.rekey(earlier, fingerprint)
                return worklist.recall(fingerprint, engine.profile, study.metadata)
        return None

    # -- keeping results ------------------------------------------------------------------------
    def keep(self, record: WorklistRecord) -> WorklistRecord:
        """Audit and commit a new result; returns the record as stored (without its images)."""
        # The audit line first: an analysis that ran is logged even if the commit is cut short.
        self._audit(record, cached=False)
        return replace(self._store(record), thumbnail=None)

    def reuse(self, study_path: Path, metadata: StudyMetadata, stored: WorklistRecord, prediction: Prediction,
              thumbnail: np.ndarray | None) -> WorklistRecord:
        """A result answered from the worklist for the file ``study_path``: audited as cached;
        the same pixels under another file name get a row of their own, so that file is restored too."""
        self._audit(stored.at(prediction.operating), cached=True)
        if stored.study_path != str(study_path):
            moved = replace(stored, study_path=str(study_path), id=None, metadata=asdict(metadata),
                            thumbnail=thumbnail if thumbnail is not None else stored.thumbnail)
            stored = self._store(moved)
        return replace(stored, thumbnail=None)

    def _audit(self, record: WorklistRecord, cached: bool) -> None:
        try:
            self.audit.log_analysis(record, cached=cached)
        except OSError as err:
            self._report(f"Analyses are not being written to the audit log {self.audit.path} "
                         f"({err.strerror or err}).")

    def _store(self, record: WorklistRecord) -> WorklistRecord:
        """``record`` as committed to the worklist, or as it is when it could not be."""
        worklist = self.worklist
        if worklist is None:
            return record
        try:
            return worklist.add(record)
        except WorklistLocked as err:
            self.worklist = None
            self._report(err.carrying_on())
        except (WorklistError, sqlite3.Error) as err:
            log.warning("could not store the result of %s", record.study_path, exc_info=True)
            self._report(f"{Path(record.study_path).name}: the result could not be saved in the worklist "
                         f"({type(err).__name__}: {err}).")
        return record

    def close(self) -> None:
        if self.worklist is not None:
            self.worklist.close()
