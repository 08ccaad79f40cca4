"""Batch analysis in a child process, so the window's GIL stays free.

The child runs the batch pipeline (:class:`inference.pipeline.BatchPipeline`) and sends
back only what the list needs: a thumbnail, the metadata, the prediction's numbers and its
attribution grid (a few hundred numbers). It also decodes the study on screen
(:class:`View`), from the same :class:`inference.decoded.DecodedStudies` as the pipeline,
so a file is decoded once whether the batch or the reader reaches it first, and only in
this process. A decoder that crashes on a hostile file takes down the child, not the
window: the studies in flight (and the view asked for) are reported failed and the next
request starts a new child.

Given an audit log (and a worklist, when the window has one), the child commits each result
to them before reporting it, and answers a study already analysed by this model from the
worklist without running it (see :mod:`inference.result_store`).

The messages both ways are the typed dataclasses of :mod:`desktop.analysis_messages`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.decision import OperatingPoint
from inference.pipeline import Analysed
from inference.prediction import Prediction
from inference.profile import SiteProfile
from inference.study import Study, StudyMetadata
from inference.thumbnail import make_thumbnail
from inference.worklist import WorklistRecord

from .analysis_messages import (
    SETTLES,
    Bye,
    Cancel,
    Cancelled,
    EngineFailed,
    EngineInfo,
    EngineReady,
    Failed,
    Finished,
    Jobs,
    Loaded,
    Outcome,
    Report,
    SetOperating,
    Started,
    Stop,
    StorageFailed,
    StorageRecovered,
    View,
    Viewed,
    ViewFailed,
)

log = logging.getLogger(__name__)

# The analysis process yields the CPU to the window when both want it.
CHILD_NICENESS = 3


@dataclass(eq=False)
class _Child:
    """One analysis process, its queues, the reader thread that dispatches its reports, and
    the studies it was given and has not yet reported. Each child's keys are its own: when a
    child dies, exactly its studies are failed -- never those already sent to its successor."""

    generation: int
    proc: Any
    commands: Any
    events: Any
    reader: threading.Thread | None = None
    in_flight: set[int] = field(default_factory=set)  # guarded by AnalysisProcess._lock
    viewing: View | None = None  # the view asked for and not yet answered (same lock)


class AnalysisProcess:
    """Parent side: starts the child, forwards commands, hands its reports to ``on_report``.

    A child that dies (a decoder crashing on a hostile file) has its studies reported failed
    by its own reader thread; the next submit starts a new child only after that reader has
    finished (it is joined), so every report of the old child is handed on before any
    of the new one's, and nothing the new child is doing is ever reported failed.
    """

    def __init__(self, on_report: Callable[[Report], None], provider: str = "auto", threads: int | None = None,
                 profile: SiteProfile | None = None, loader_threads: int | None = None,
                 worklist_path: Path | None = None,
                 audit_path: Path | None = None) -> None:
        """``profile``: the site profile the child's engine uses (None: the shipped one).
        ``audit_path``: where every analysis is audited, and ``worklist_path`` (with it) where
        results are kept and looked up -- without a worklist results are still audited;
        without either nothing is stored or looked up (benchmarks, tests of the pipeline)."""
        self._report = on_report  # called on a reader thread
        storage = (str(worklist_path) if worklist_path else None, str(audit_path)) if audit_path else None
        self._args = (provider, threads, profile, loader_threads, storage)
        self._ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._lock = threading.Lock()
        self._operating: OperatingPoint | None = None
        self._stopping = False
        self._generation = 0
        self._child = self._start()

    def _start(self) -> _Child:
        """A new child and its reader (called with the previous child's reader finished)."""
        self._generation += 1
        commands, events = self._ctx.Queue(), self._ctx.Queue()
        proc = self._ctx.Process(target=_child_main, args=(commands, events, *self._args),
                                 name="lunglens-analysis", daemon=True)
        proc.start()
        child = _Child(self._generation, proc, commands, events)
        if self._operating is not None:
            commands.put(SetOperating(self._operating))
        child.reader = threading.Thread(target=self._read, args=(child,), name=f"lunglens-results-{child.generation}",
                                        daemon=True)
        child.reader.start()
        return child

    # -- commands --------------------------------------------------------------------------------
    def submit(self, jobs: Iterable[tuple[int, Path]]) -> None:
        jobs = [(k, Path(p)) for k, p in jobs]
        if not jobs:
            return
        with self._live_child() as child:
            if child is not None:
                child.in_flight.update(k for k, _ in jobs)
                child.commands.put(Jobs(jobs))

    def view(self, token: int, path: Path, fingerprint: str | None = None, ahead: Path | None = None) -> None:
        """Decode ``path`` for the screen, then ``ahead`` into the cache; answered by a Viewed
        or ViewFailed report."""
        with self._live_child() as child:
            if child is not None:
                child.viewing = View(token, Path(path), fingerprint, ahead)
                child.commands.put(child.viewing)

    @contextmanager
    def _live_child(self) -> Iterator[_Child | None]:
        """The running child, under the lock (None once stopping); a new one if it died."""
        with self._lock:
            dead = None if self._stopping or self._child.proc.is_alive() else self._child
        if dead is not None:
            # Fence: the dead child's reader reports its studies failed and ends before a new
            # child exists (joined outside the lock, which the reader takes).
            assert dead.reader is not None
            dead.reader.join()
        with self._lock:
            if self._stopping:
                yield None
                return
            if self._child is dead:
                self._child = self._start()  # the previous child died: a fresh one for the new work
            yield self._child

    def cancel(self) -> None:
        with self._lock:
            if self._child.proc.is_alive():
                self._child.commands.put(Cancel())

    def set_operating_point(self, operating: OperatingPoint | None) -> None:
        """Results from now on, fresh or from the worklist, are read at ``operating``."""
        with self._lock:
            self._operating = operating
            if self._child.proc.is_alive():
                self._child.commands.put(SetOperating(operating))

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the child (cancelling its work) and the reader; True when both ended."""
        with self._lock:
            self._stopping = True
            child = self._child
            if child.proc.is_alive():
                child.commands.put(Stop())
        child.proc.join(timeout)
        if child.proc.is_alive():
            log.warning("analysis process did not stop in %.0f s; terminating it", timeout)
            child.proc.terminate()
            child.proc.join(2.0)
        if child.reader is not None:
            child.reader.join(timeout)
        child.commands.close()
        child.commands.join_thread()
        return not child.proc.is_alive() and not (child.reader and child.reader.is_alive())

    @property
    def alive(self) -> bool:
        child = self._child
        return child.proc.is_alive() or bool(child.reader and child.reader.is_alive())

    # -- reports ---------------------------------------------------------------------------------
    def _read(self, child: _Child) -> None:
        """Dispatch one child's reports until it says goodbye or dies."""
        while True:
            try:
                msg = child.events.get(timeout=0.2)
            except queue.Empty:
                if child.proc.is_alive():
                    continue
                self._child_died(child)
                return
            except (EOFError, OSError):
                self._child_died(child)
                return
            if isinstance(msg, Bye):
                self._abandon(child, "cancelled")
                return
            if isinstance(msg, SETTLES):
                with self._lock:
                    child.in_flight.discard(msg.key)
            elif isinstance(msg, (Viewed, ViewFailed)):
                with self._lock:
                    if child.viewing is not None and child.viewing.token == msg.token:
                        child.viewing = None
            self._report(msg)

    def _child_died(self, child: _Child) -> None:
        code = child.proc.exitcode
        if self._stopping:
            self._abandon(child, "cancelled")
            return
        log.warning("analysis process stopped unexpectedly (exit code %s)", code)
        self._abandon(child, "failed", f"the analysis process stopped unexpectedly (exit code {code}) "
                                       "while this file was queued or being read")

    def _abandon(self, child: _Child, how: str, reason: str = "") -> None:
        """Report every study ``child`` still had as failed or cancelled -- its own, no other's --
        and the view it was asked for as failed (a cancelled view is not reported: the window
        that stopped the child asks its successor again)."""
        with self._lock:
            keys = sorted(child.in_flight)
            child.in_flight.clear()
            viewing, child.viewing = child.viewing, None
        for key in keys:
            if how == "failed":
                self._report(Failed(key, reason))
            else:
                self._report(Cancelled(key))
        if viewing is not None and how == "failed":
            self._report(ViewFailed(viewing.token, reason))


# -- the child ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Keep:
    """A fresh result for the writer thread to keep, then report."""

    key: int
    prediction: Prediction
    record: WorklistRecord


@dataclass(frozen=True)
class _Reuse:
    """A result answered from the worklist, for the writer thread to record as reused, then report."""

    key: int
    prediction: Prediction  # the stored result read at the current operating point
    stored: WorklistRecord
    path: Path
    metadata: StudyMetadata
    thumbnail: np.ndarray | None


@dataclass(frozen=True)
class _KeepFailure:
    """A file that could not be read, for the writer thread to keep in the worklist, then
    report (a removal at once would come before the failure is kept, and not remove it)."""

    key: int
    path: Path
    reason: str


class _QueueSink:
    """PipelineSink in the child: shrink what the parent needs and send it.

    With a store, results go through a writer thread that commits each one (audit log, then
    worklist) before sending it, so the inference thread never waits for the disk and the
    window never shows a result that a crash could lose."""

    def __init__(self, events: Any, store: Any = None) -> None:
        self._events = events
        self._store = store  # an inference.result_store.ResultStore, or None
        self._lock = threading.Lock()
        self._thumbs: dict[int, np.ndarray] = {}  # key -> thumbnail, until its result is kept
        self._writes: queue.Queue[_Keep | _Reuse | _KeepFailure | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        if store is not None:
            self._writer = threading.Thread(target=self._write_loop, name="lunglens-writer", daemon=True)
            self._writer.start()

    def engine_ready(self, engine: Any) -> None:
        self._events.put(EngineReady(EngineInfo(engine.provider, engine.manifest, engine.profile,
                                                list(engine.warnings), engine.load_ms)))

    def engine_failed(self, reason: str) -> None:
        self._events.put(EngineFailed(reason))

    def started(self, key: int, stage: str) -> None:
        self._events.put(Started(key, stage))

    def loaded(self, key: int, study: Study) -> None:
        thumb = make_thumbnail(study)
        with self._lock:
            self._thumbs[key] = thumb
        self._events.put(Loaded(key, thumb, study.metadata, list(study.warnings)))

    def _thumb(self, key: int) -> np.ndarray | None:
        with self._lock:
            return self._thumbs.pop(key, None)

    def analysed(self, result: Analysed) -> None:
        key, study, thumb = result.key, result.study, self._thumb(result.key)
        if result.cached:  # only with a store: the pipeline's memory is the store
            self._writes.put(_Reuse(key, result.prediction, result.stored, study.path, study.metadata, thumb))
            return
        compact = replace(result.prediction, embedding=None)  # the gate's features are of no use to the window
        # Without a store the pixels are not hashed ("" -- nothing to look up, nothing to audit).
        record = WorklistRecord.from_prediction(study, result.prediction, result.fingerprint, thumb)
        if self._writer is not None:
            self._writes.put(_Keep(key, compact, record))
        else:
            self._send(key, compact, record, cached=False)

    def failed(self, key: int, reason: str, unreadable: Path | None = None) -> None:
        self._thumb(key)
        if unreadable is not None and self._writer is not None:
            self._writes.put(_KeepFailure(key, unreadable, reason))
        else:
            self._events.put(Failed(key, reason))

    def cancelled(self, key: int) -> None:
        self._thumb(key)
        self._events.put(Cancelled(key))

    def _send(self, key: int, prediction: Prediction, record: WorklistRecord, cached: bool) -> None:
        self._events.put(Finished(key, prediction, Outcome(replace(record, thumbnail=None), cached=cached)))

    def _write_loop(self) -> None:
        # The store reports what it could not keep itself (storage_failed) and returns the
        # record either way: the result is shown whether or not it was kept.
        while (job := self._writes.get()) is not None:
            try:
                if isinstance(job, _KeepFailure):
                    self._store.keep_failure(job.path, job.reason)
                    self._events.put(Failed(job.key, job.reason))
                elif isinstance(job, _Keep):
                    self._send(job.key, job.prediction, self._store.keep(job.record), cached=False)
                else:
                    record = self._store.reuse(job.path, job.metadata, job.stored, job.prediction, job.thumbnail)
                    self._send(job.key, job.prediction, record, cached=True)
            except Exception:  # noqa: BLE001 -- never lose the writer: the next results still need it
                log.warning("could not report the result for study %s", job.key, exc_info=True)
                self._events.put(Failed(job.key, job.reason if isinstance(job, _KeepFailure)
                                        else "the result could not be reported (see the log)"))

    def close(self, timeout: float = 10.0) -> None:
        """Write and send what is queued, then stop the writer."""
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join(timeout)


def _open_store(storage: tuple[str | None, str] | None, events: Any) -> Any:
    """The ResultStore (it tells the window itself what it cannot keep), or None without storage."""
    if storage is None:
        return None
    from inference.result_store import ResultStore

    return ResultStore(*storage, report=lambda reason: events.put(StorageFailed(reason)),
                       audit_report=lambda reason: events.put(StorageFailed(reason, what="audit")),
                       recovered=lambda message, saved: events.put(StorageRecovered(message, tuple(saved))))


def _child_main(commands: Any, events: Any, provider: str, threads: int | None, profile: SiteProfile | None,
                loader_threads: int | None, storage: tuple[str | None, str] | None = None) -> None:
    """Entry point of the analysis process: no Qt here, ever."""
    # Ctrl+C in a terminal signals the whole process group: the window decides when this
    # process stops (Stop, after finishing what is done), not a KeyboardInterrupt mid-result.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICENESS)
        except OSError:
            pass
    from inference.decoded import DecodedStudies
    from inference.engine import Engine
    from inference.hashing import holds_pixels
    from inference.loaders import load_study
    from inference.loaders.pixels import for_display
    from inference.pipeline import BatchPipeline, LatestOnlyLoader

    store = _open_store(storage, events)
    sink = _QueueSink(events, store)
    decoded = DecodedStudies(load_study)
    pipeline = BatchPipeline(lambda: Engine.load(provider=provider, threads=threads, profile=profile), sink,
                             decoded.load, loader_threads=loader_threads, memory=store)
    # The study after the one on screen is decoded once that one is served, on a thread of
    # its own: N then finds it in ``decoded``, and P (or a click elsewhere) never waits behind it.
    read_ahead = LatestOnlyLoader(decoded.load, lambda *_: None, lambda *_: None)
    ahead_of: dict[int, Path] = {}  # the newest View's token -> its ahead (replaced whole)

    def viewed(token: int, study: Study, fingerprint: str | None) -> None:
        events.put(Viewed(token, for_display(study), fingerprint is None or holds_pixels(study, fingerprint)))
        ahead = ahead_of.get(token)
        if ahead is not None:
            read_ahead.request(token, ahead)

    view = LatestOnlyLoader(decoded.load, viewed, lambda token, reason: events.put(ViewFailed(token, reason)))
    parent = mp.parent_process()
    while True:
        try:
            msg = commands.get(timeout=0.2)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                # The window was killed: do not linger as an orphan. Nobody reads the
                # events pipe any more, so its feeder thread could block a normal exit.
                events.cancel_join_thread()
                read_ahead.shutdown(0.0)  # told, not waited for: see Stop
                view.shutdown(2.0)
                pipeline.shutdown(2.0)
                sink.close(2.0)  # commit finished results: the next window restores them
                os._exit(0)
            continue
        if isinstance(msg, Jobs):
            pipeline.submit(msg.jobs)
        elif isinstance(msg, Cancel):
            pipeline.cancel()
        elif isinstance(msg, SetOperating):
            pipeline.operating = msg.operating
        elif isinstance(msg, View):
            ahead_of = {msg.token: msg.ahead} if msg.ahead is not None else {}
            view.request(msg.token, msg.path, msg.fingerprint)
        elif isinstance(msg, Stop):
            # A decode ahead is not waited for (its thread is a daemon): the window gives this
            # process 10 s in all, which the results still to be saved need.
            read_ahead.shutdown(0.0)
            view.shutdown()
            pipeline.shutdown()
            sink.close()
            if store is not None:
                store.close()
            events.put(Bye())
            events.close()
            events.join_thread()
            return
