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
import time
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
from .worklist import BUSY_TIMEOUT_S, Failure, Worklist, WorklistError, WorklistLocked, WorklistRecord

log = logging.getLogger(__name__)
RETRY_LOCKED_S = 5.0  # how often a worklist another program keeps locked is tried again


def judge(record: WorklistRecord, operating: OperatingPoint) -> Prediction:
    """A stored result read at the operating point in use: a cached answer obeys the settings
    exactly like a fresh one. The returned prediction carries the stored attribution grid."""
    return record.to_prediction().at(operating)


class ResultStore:
    """Stores and looks up results for the pipeline; thread-safe (Worklist and AuditLog are).

    Keeping never raises: what cannot be kept is told through ``report`` (to the window) and
    the result is shown anyway. Without a worklist -- none given, or it could not be opened --
    results are still audited. A worklist another program keeps locked past the busy timeout
    is not waited for at every result: the results are held here and the list is tried again
    every :data:`RETRY_LOCKED_S` seconds, at the next result, and once more on :meth:`close`;
    once it is free they are saved in it. (It was given up for the session: a lock of 15 s
    cost the window every one of 5,961 results.) It is never changed, moved or replaced.
    """

    def __init__(self, worklist_path: str | Path | None, audit_path: str | Path | None,
                 report: Callable[[str], None], open_timeout: float | None = None,
                 audit_report: Callable[[str], None] | None = None,
                 recovered: Callable[[str, list[WorklistRecord]], None] | None = None) -> None:
        """``audit_path`` None: the default audit log. ``open_timeout``: how long a worklist
        another process keeps locked is waited for at opening (default
        :data:`inference.worklist.BUSY_TIMEOUT_S`). ``report`` is told what the worklist
        cannot keep, ``audit_report`` what the audit log cannot (default ``report``: the window
        shows both), ``recovered`` that a locked worklist is free again, with the results held
        meanwhile as saved (their row ids, without images; default: ``report`` is told)."""
        self.audit = AuditLog(audit_path)
        self._report = report
        self._open_timeout = BUSY_TIMEOUT_S if open_timeout is None else open_timeout
        self._audit_report = audit_report or report
        self._recovered = recovered or (lambda message, _saved: report(message))
        self._path = worklist_path
        self.worklist: Worklist | None = None
        self.held: list[WorklistRecord] = []  # results made while the worklist was locked
        self._saved_held: list[WorklistRecord] = []  # held ones saved, not yet told (the lock came back)
        self._retry_at: float | None = None  # when to try the locked worklist again; None: not locked
        if worklist_path is not None:
            try:
                self.worklist = Worklist(worklist_path, open_timeout=open_timeout)
            except WorklistLocked as err:
                self._locked(err)
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
        for earlier in earlier_pixel_sha256(study, fingerprint) if known else []:
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
            self._audit_report(f"Analyses are not being written to the audit log {self.audit.path} "
                         f"({err.strerror or err}).")

    def _store(self, record: WorklistRecord) -> WorklistRecord:
        """``record`` as committed to the worklist, or as it is when it could not be (held,
        while the list is locked)."""
        worklist = self._reopened()
        if worklist is None:
            if self._retry_at is not None:
                self.held.append(record)
            return record
        try:
            return worklist.add(record)
        except WorklistLocked as err:
            self._lost_to_lock(worklist, err)
            self.held.append(record)
        except (WorklistError, sqlite3.Error) as err:
            log.warning("could not store the result of %s", record.study_path, exc_info=True)
            self._report(f"{Path(record.study_path).name}: the result could not be saved in the worklist "
                         f"({type(err).__name__}: {err}).")
        return record

    def retry_held(self) -> None:
        """Save the results held while the worklist was locked, if it is time to try it again
        (the DICOM node calls this while idle: they had waited for the next film, and a node
        killed meanwhile lost them)."""
        if self.held:
            self._reopened()

    def keep_failure(self, study_path: Path, reason: str) -> None:
        """Keep that ``study_path`` could not be analysed: the window lists it after a restart,
        and lists the DICOM node's at all. Best effort: unlike a result it is not held while
        the worklist is locked (the batch says it anyway)."""
        worklist = self._reopened()
        if worklist is None:
            return
        try:
            worklist.add_failure(Failure(str(study_path), reason))
        except WorklistLocked as err:
            self._lost_to_lock(worklist, err)
        except (WorklistError, sqlite3.Error):
            log.warning("could not keep that %s could not be analysed", study_path, exc_info=True)

    def _lost_to_lock(self, worklist: Worklist, err: WorklistLocked) -> None:
        """A lock held past the busy timeout: the list is let go and tried again later."""
        self.worklist = None
        worklist.close()
        self._locked(err)

    def _locked(self, err: WorklistLocked) -> None:
        self._retry_at = time.monotonic() + RETRY_LOCKED_S
        self._report(err.carrying_on())

    def _reopened(self, wait: float = 0.0) -> Worklist | None:
        """The worklist; a locked one tried again when it is time (waiting ``wait`` seconds for
        the lock), and the results held meanwhile saved in it once it opens."""
        if self.worklist is not None or self._retry_at is None or time.monotonic() < self._retry_at:
            return self.worklist
        try:
            worklist = Worklist(self._path, open_timeout=wait)
        except WorklistLocked:
            self._retry_at = time.monotonic() + RETRY_LOCKED_S
            return None
        except WorklistError as err:
            self._retry_at = None
            self._report(f"Results are not being saved in the worklist: {err}")
            return None
        self.worklist, self._retry_at = worklist, None
        held, self.held = self.held, []
        saved = self._saved_held  # those saved at an earlier try that was cut short by the lock
        for i, record in enumerate(held):
            try:
                saved.append(replace(worklist.add(record), thumbnail=None))
            except WorklistLocked as err:  # locked again at once: hold the rest
                self._lost_to_lock(worklist, err)
                self.held = held[i:]
                return None
            except (WorklistError, sqlite3.Error) as err:
                log.warning("could not store the result of %s", record.study_path, exc_info=True)
                self._report(f"{Path(record.study_path).name}: the result could not be saved in the worklist "
                             f"({type(err).__name__}: {err}).")
        self._saved_held = []
        n = len(saved)
        self._recovered(f"The worklist {self._path} is free again: the {n} result{'' if n == 1 else 's'} "
                        "made while it was locked are saved in it now.", saved)
        return worklist

    def close(self) -> None:
        """Close the worklist, after a last try (waiting as long as at opening) to save what is held."""
        if self.held:
            self._retry_at = 0.0
            self._reopened(wait=self._open_timeout)
            if self.held:
                self._report(f"{len(self.held)} result{'' if len(self.held) == 1 else 's'} could not be saved in "
                             f"the worklist {self._path}, which another program kept locked to the end; they were "
                             "shown and audited.")
        if self.worklist is not None:
            self.worklist.close()
