"""The node's analysis thread: each film that arrives (over DICOM or in the hot folder) is
analysed once, stored in the worklist, audited, and its results put in the outbox; the audit
log records each result's export when the PACS has stored it (:func:`audit_delivery`).

The analysis is the one every other path uses -- :func:`inference.loaders.load_study`,
:meth:`inference.engine.Engine.predict` (its profile decides the label and the threshold,
:mod:`inference.decision` words it), :meth:`WorklistRecord.from_prediction` and
:meth:`inference.result_store.ResultStore.keep` (audit line, then worklist) -- so a film sent by the X-ray unit gets exactly the result
``lunglens classify`` and the window would give it. One thread owns the engine, as the CLI's
main loop does. Work that has not started when the node stops is *parked*: a received film's
pending marker stays in the data folder and the film is analysed at the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import heatmap
from .dicom_sc import build_secondary_capture
from .dicom_sr import build_failure_sr, build_sr, source_header
from .engine import Engine
from .errors import LungLensError, TruncatedFileError
from .hashing import pixel_sha256
from .loaders import load_study
from .loaders.files import sniff_file
from .audit import AuditLog
from .outbox import Destination, Outbox, OutboxItem
from .prediction import Prediction
from .presentation import present
from .result_store import ResultStore
from .study import Study
from .thumbnail import make_thumbnail
from .worklist import WorklistRecord

log = logging.getLogger("lunglens.serve")
EXPORTED_AS = {"sr": "structured_report", "sc": "secondary_capture"}  # outbox kind -> audit "what"


def audit_delivery(audit: AuditLog, destination: Destination) -> Callable[[OutboxItem], None]:
    """The outbox's ``on_sent``: one audit line per object the PACS has stored.

    Written at delivery, not when the result is queued: a PACS that is down for a day, or an
    outbox emptied by hand, must not leave the audit log saying that a result left the PC."""

    def delivered(item: OutboxItem) -> None:
        try:
            audit.log_export(EXPORTED_AS.get(item.what, item.what), "dicom", str(destination),
                             [item.pixel_sha256] if item.pixel_sha256 else [], with_identifiers=True)
        except OSError as exc:
            log.error("%s %s was stored by %s but the audit log could not record it: %s", item.what.upper(),
                      item.sop_instance_uid, destination, exc)

    return delivered


@dataclass(frozen=True)
class Job:
    """One film to analyse; ``done`` is called with its result (the hot folder remembers it,
    and moves it out if asked) -- once its outputs are in the outbox, not before: a hot-folder
    film whose outputs a full disk kept out is analysed again at the next start."""

    path: Path
    source: str  # "dicom" (received) or "hot-folder"
    pending_marker: Path | None = None  # removed once the film is analysed (received films)
    done: Callable[[JobResult], None] | None = None

    @property
    def shown(self) -> str:
        """How the node's log names the film: a received one by its file name (its SOP Instance
        UID), a hot-folder one by its whole path (children's folders often hold files of the
        same name, IM-0001-0001.dcm)."""
        return self.path.name if self.source == "dicom" else str(self.path)


@dataclass(frozen=True)
class JobResult:
    """What became of one film."""

    path: Path
    record: WorklistRecord | None = None  # None when it failed
    error: str = ""  # why it failed, without the file's name
    queued: list[str] = field(default_factory=list)  # "sr", "sc": what was put in the outbox
    waiting: bool = False  # outputs the outbox could not keep yet (a full disk): not done until they are

    @property
    def ok(self) -> bool:
        return self.record is not None


RETRY_OUTPUTS_S = 60.0  # how often outputs that could not be kept (a full disk) are tried again
HELD_FOR_RETRY = 20  # films whose outputs wait in memory for it; past that, their pending marker stays for the next start


@dataclass
class _Unqueued:
    """A film analysed whose outputs the outbox could not keep yet (``queued``: those it did)."""

    job: Job
    study: Study
    prediction: Prediction
    record: WorklistRecord
    queued: list[str]

    def done(self) -> None:
        """Tell the job's source (the hot folder) the film is done, now its outputs are queued."""
        if self.job.done is not None:
            self.job.done(JobResult(self.job.path, record=self.record, queued=self.queued))


class Analyser:
    """Analyses jobs one at a time on its own thread (:meth:`start`, :meth:`submit`, :meth:`stop`)."""

    def __init__(self, engine: Engine, results: ResultStore, outbox: Outbox | None = None,
                 threshold: float | None = None, operating_point: str | None = None) -> None:
        """``results`` keeps each result (audit log, worklist) as the CLI and the window do;
        ``threshold`` or ``operating_point`` decide as in :meth:`Engine.predict` (the window
        passes its own, so that the node decides as the reader set it)."""
        self.engine = engine
        self.threshold = threshold
        self.operating_point = operating_point
        self.results = results
        self.outbox = outbox
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unqueued: list[_Unqueued] = []  # only touched by the analysis thread
        self._retry_at = 0.0
        self.analysed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lunglens-analysis", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def pending(self) -> int:
        return self._jobs.qsize()

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the film in progress, park the rest; True when the thread ended in time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.results.close()
        return self._thread is None or not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                self._while_idle()
                continue
            try:
                self.run(job)
            except Exception:  # noqa: BLE001 -- the node's one analysis thread must outlive any film
                log.exception("the analysis of %s ended in an unexpected error; the node goes on", job.shown)

    def run(self, job: Job) -> JobResult:
        """Analyse ``job`` and tell its source, unless its outputs wait for room (then
        :meth:`retry_outputs` tells it once they are queued)."""
        result = self.analyse(job)
        if job.done is not None and not result.waiting:
            job.done(result)
        return result

    def _while_idle(self) -> None:
        """What waits for a quiet moment: results held while the worklist was locked (saved
        once it is free, not only when the next film comes), and outputs a full disk could not keep."""
        try:
            self.results.retry_held()
            if self._unqueued and time.monotonic() >= self._retry_at:
                self.retry_outputs()
        except Exception:  # noqa: BLE001 -- said; the node goes on
            log.exception("a retry while idle failed")

    def retry_outputs(self) -> None:
        """Put in the outbox what a full disk kept out of it, oldest first, until it fails again."""
        assert self.outbox is not None
        while self._unqueued:
            waiting = self._unqueued[0]
            queued, again = self._queue_outputs(waiting.study, waiting.prediction, waiting.record, waiting.queued)
            waiting.queued += queued
            if again:
                self._retry_at = time.monotonic() + RETRY_OUTPUTS_S
                return
            self._unqueued.pop(0)
            log.info("the results of %s are queued for %s now", waiting.job.shown, self.outbox.destination)
            if waiting.job.pending_marker is not None:
                waiting.job.pending_marker.unlink(missing_ok=True)
            waiting.done()

    # ------------------------------------------------------------------ one film
    def analyse(self, job: Job) -> JobResult:
        """Analyse one film: worklist, audit, outbox. Never raises for a bad film."""
        reason_for_pacs = ""  # why it failed, as the failure SR may say it
        still_copying = False  # a hot-folder file cut short: the folder takes it again once it changes
        unqueued = False
        try:
            study = load_study(job.path)
            prediction = self.engine.predict(study, threshold=self.threshold, operating_point=self.operating_point)
        except LungLensError as exc:
            result = JobResult(job.path, error=getattr(exc, "reason", str(exc)))
            reason_for_pacs = result.error
            still_copying = job.source == "hot-folder" and isinstance(exc, TruncatedFileError)
        except Exception as exc:  # one broken film must never stop the node
            log.debug("unexpected failure on %s", job.path, exc_info=True)
            result = JobResult(job.path, error=f"unexpected error ({type(exc).__name__}: {exc})")
            reason_for_pacs = "an unexpected error (the node's log has it)"  # its text may name local paths
        else:
            record = self.results.keep(WorklistRecord.from_prediction(study, prediction, pixel_sha256(study),
                                                                      make_thumbnail(study)))
            queued, unqueued = self._queue_outputs(study, prediction, record) if self.outbox is not None else ([], False)
            if unqueued:  # kept in memory, and its pending marker kept, until there is room
                if len(self._unqueued) < HELD_FOR_RETRY:
                    self._unqueued.append(_Unqueued(job, study, prediction, record, queued))
                    self._retry_at = time.monotonic() + RETRY_OUTPUTS_S
                    log.warning("the results of %s wait for room: tried again every %.0f s", job.shown,
                                RETRY_OUTPUTS_S)
                else:
                    log.warning("the results of %s are not kept (%d films already wait for room)%s", job.shown,
                                HELD_FOR_RETRY, "; it is analysed again at the next start"
                                if job.pending_marker is not None or job.done is not None else "")
            result = JobResult(job.path, record=record, queued=queued, waiting=unqueued)
            words = present(prediction)  # with its warnings: an adult's result must not read as validated
            log.info("analysed %s (%s): %s%s", job.shown, job.source, words.summary,
                     f" [{'; '.join(words.warnings)}]" if words.warnings else "")
        if result.error:
            # Kept before it is said: the window reads the worklist when its log says so.
            self.results.keep_failure(job.path, f"{job.path.name}: {result.error}")
            log.warning("could not analyse %s (%s): %s", job.shown, job.source, result.error)
            # Not for a hot-folder file cut short: it may still be being copied, and a "Not
            # analysed" SR sent now would stay in the PACS beside its result.
            if self.outbox is not None and not still_copying:
                result = replace(result, queued=self._queue_failure(job, reason_for_pacs))
        if job.pending_marker is not None and not unqueued:
            job.pending_marker.unlink(missing_ok=True)
        self.analysed += 1
        return result

    def _queue_failure(self, job: Job, reason: str) -> list[str]:
        """Put an SR saying the film could not be analysed, and why, in the outbox: the PACS
        then shows the reader that LungLens looked and could not, rather than nothing."""
        assert self.outbox is not None
        if sniff_file(job.path) != "DICOM":
            return []  # a PNG in the hot folder has no study to join
        try:
            self.outbox.put(build_failure_sr(job.path, reason, self.engine.model_info), "sr", "")
        except Exception as exc:  # noqa: BLE001 -- no header to join, a full disk: said, and the node goes on
            log.warning("no report that %s was not analysed could be queued for %s (%s)", job.shown,
                        self.outbox.destination, getattr(exc, "reason", None) or exc)
            return []
        return ["sr"]

    def _queue_outputs(self, study: Study, prediction: Prediction, record: WorklistRecord,
                       already: list[str] | None = None) -> tuple[list[str], bool]:
        """Put the SR (every DICOM film) and the overlay's Secondary Capture (in-scope films at
        or above the threshold: where the window shows the heat-map) in the outbox, but those
        ``already`` there; returns what it put, and whether to try again (the outbox could not
        keep one: a full disk, which a later try may find freed; a full disk had lost them)."""
        assert self.outbox is not None
        if study.metadata.source_format != "DICOM":
            return [], False
        kinds = ["sr", "sc"] if heatmap.applies(prediction) else ["sr"]
        queued: list[str] = []
        try:
            for kind in (k for k in kinds if k not in (already or [])):
                ds = (build_sr(study, prediction, source_header(study)) if kind == "sr"
                      else build_secondary_capture(study, prediction))
                self.outbox.put(ds, kind, record.pixel_sha256)
                queued.append(kind)
        except OSError as exc:
            log.warning("results of %s could not be kept for %s (%s)", study.path.name, self.outbox.destination,
                        exc.strerror or exc)
            return queued, True
        except Exception as exc:  # noqa: BLE001 -- one film's header must never stop the node (it had: see inference.source_header)
            log.warning("results of %s could not be queued for %s: %s", study.path.name, self.outbox.destination,
                        getattr(exc, "reason", None) or exc)
        return queued, False

