"""Batch analysis in a child process, so the window's GIL stays free.

The child runs the thread pipeline (:class:`desktop.pipeline.BatchPipeline`) and sends
back only what the list needs: a thumbnail, the metadata, the prediction's numbers and a
128-pixel Grad-CAM. A decoder that crashes on a hostile file takes down the child, not
the window: the studies in flight are reported failed and the next batch starts a new one.

Messages, parent -> child: ("jobs", [(key, path)...]), ("cancel",), ("options", kwargs),
("stop",). Child -> parent: ("engine_ready", EngineInfo), ("engine_failed", reason),
("started", key, stage), ("loaded", key, thumb, metadata, warnings),
("finished", key, prediction_without_cam, cam_small), ("failed", key, reason),
("cancelled", key), ("bye",).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.manifest import ModelManifest
from inference.prediction import Prediction
from inference.study import Study, StudyMetadata

log = logging.getLogger(__name__)

# The analysis process yields the CPU to the window when both want it.
CHILD_NICENESS = 3


@dataclass(frozen=True)
class EngineInfo:
    """What the window needs to know about the engine running in the child."""

    provider: str
    manifest: ModelManifest
    warnings: list[str] = field(default_factory=list)
    load_ms: float = 0.0


class ResultSink(Protocol):
    """Where the parent reports; called from its reader thread."""

    def engine_ready(self, info: EngineInfo) -> None: ...
    def engine_failed(self, reason: str) -> None: ...
    def started(self, key: int, stage: str) -> None: ...
    def loaded(self, key: int, thumbnail: np.ndarray, metadata: StudyMetadata, warnings: list[str]) -> None: ...
    def finished(self, key: int, prediction: Prediction, cam_small: np.ndarray) -> None: ...
    def failed(self, key: int, reason: str) -> None: ...
    def cancelled(self, key: int) -> None: ...


class AnalysisProcess:
    """Parent side: starts the child, forwards commands, dispatches its reports to a sink."""

    def __init__(self, sink: ResultSink, provider: str = "auto", threads: int | None = None,
                 loader_threads: int = 2) -> None:
        self._sink = sink
        self._args = (provider, threads, loader_threads)
        self._ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()  # submitted, not yet reported finished/failed/cancelled
        self._options: dict[str, Any] = {}
        self._stopping = False
        self._proc: Any = None
        self._reader: threading.Thread | None = None
        self._start()

    def _start(self) -> None:
        self._commands = self._ctx.Queue()
        self._events = self._ctx.Queue()
        self._proc = self._ctx.Process(target=_child_main, args=(self._commands, self._events, *self._args),
                                       name="lunglens-analysis", daemon=True)
        self._proc.start()
        if self._options:
            self._commands.put(("options", self._options))
        self._reader = threading.Thread(target=self._read, args=(self._proc, self._events),
                                        name="lunglens-results", daemon=True)
        self._reader.start()

    # -- commands --------------------------------------------------------------------------------
    def submit(self, jobs: Iterable[tuple[int, Path]]) -> None:
        jobs = [(k, str(p)) for k, p in jobs]
        if not jobs:
            return
        with self._lock:
            if self._stopping:
                return
            if not self._proc.is_alive():
                self._start()  # the previous child died: a fresh one for the new work
            self._in_flight.update(k for k, _ in jobs)
            self._commands.put(("jobs", jobs))

    def cancel(self) -> None:
        with self._lock:
            if self._proc.is_alive():
                self._commands.put(("cancel",))

    def set_options(self, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self._options = dict(kwargs)
            if self._proc.is_alive():
                self._commands.put(("options", self._options))

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the child (cancelling its work) and the reader; True when both ended."""
        with self._lock:
            self._stopping = True
            proc, reader = self._proc, self._reader
            if proc.is_alive():
                self._commands.put(("stop",))
        proc.join(timeout)
        if proc.is_alive():
            log.warning("analysis process did not stop in %.0f s; terminating it", timeout)
            proc.terminate()
            proc.join(2.0)
        if reader is not None:
            reader.join(timeout)
        self._commands.close()
        self._commands.join_thread()
        return not proc.is_alive() and not (reader and reader.is_alive())

    @property
    def alive(self) -> bool:
        return bool(self._proc and self._proc.is_alive()) or bool(self._reader and self._reader.is_alive())

    # -- reports ---------------------------------------------------------------------------------
    def _read(self, proc: Any, events: Any) -> None:
        while True:
            try:
                msg = events.get(timeout=0.2)
            except queue.Empty:
                if proc.is_alive():
                    continue
                self._child_died(proc)
                return
            except (EOFError, OSError):
                self._child_died(proc)
                return
            kind = msg[0]
            if kind == "bye":
                self._abandon("cancelled")
                return
            if kind in ("finished", "failed", "cancelled"):
                with self._lock:
                    self._in_flight.discard(msg[1])
            getattr(self._sink, kind)(*msg[1:])

    def _child_died(self, proc: Any) -> None:
        code = proc.exitcode
        if self._stopping:
            self._abandon("cancelled")
            return
        log.warning("analysis process stopped unexpectedly (exit code %s)", code)
        self._abandon("failed", f"the analysis process stopped unexpectedly (exit code {code}) "
                                "while this study was queued or being read")

    def _abandon(self, how: str, reason: str = "") -> None:
        with self._lock:
            keys = sorted(self._in_flight)
            self._in_flight.clear()
        for key in keys:
            if how == "failed":
                self._sink.failed(key, reason)
            else:
                self._sink.cancelled(key)


# -- the child ------------------------------------------------------------------------------------
class _QueueSink:
    """PipelineSink in the child: shrink what the parent needs and send it."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def engine_ready(self, engine: Any) -> None:
        self._events.put(("engine_ready", EngineInfo(engine.provider, engine.manifest,
                                                     list(engine.warnings), engine.load_ms)))

    def engine_failed(self, reason: str) -> None:
        self._events.put(("engine_failed", reason))

    def started(self, key: int, stage: str) -> None:
        self._events.put(("started", key, stage))

    def loaded(self, key: int, study: Study) -> None:
        from .models.study_item import make_thumbnail

        self._events.put(("loaded", key, make_thumbnail(study), study.metadata, list(study.warnings)))

    def finished(self, key: int, study: Study, prediction: Prediction) -> None:
        from .models.study_item import compact_prediction

        self._events.put(("finished", key, *compact_prediction(prediction)))

    def failed(self, key: int, reason: str) -> None:
        self._events.put(("failed", key, reason))

    def cancelled(self, key: int) -> None:
        self._events.put(("cancelled", key))


def _child_main(commands: Any, events: Any, provider: str, threads: int | None, loader_threads: int) -> None:
    """Entry point of the analysis process: no Qt here, ever."""
    if hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICENESS)
        except OSError:
            pass
    from inference.engine import Engine
    from inference.loaders import load_study

    from .pipeline import BatchPipeline

    pipeline = BatchPipeline(lambda: Engine.load(provider=provider, threads=threads), _QueueSink(events),
                             load_study, loader_threads=loader_threads)
    parent = mp.parent_process()
    while True:
        try:
            msg = commands.get(timeout=0.5)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                # The window was killed: do not linger as an orphan. Nobody reads the
                # events pipe any more, so its feeder thread could block a normal exit.
                events.cancel_join_thread()
                pipeline.shutdown(2.0)
                os._exit(0)
            continue
        if msg[0] == "jobs":
            pipeline.submit((k, Path(p)) for k, p in msg[1])
        elif msg[0] == "cancel":
            pipeline.cancel()
        elif msg[0] == "options":
            pipeline.predict_kwargs = dict(msg[1])
        elif msg[0] == "stop":
            pipeline.shutdown()
            events.put(("bye",))
            events.close()
            events.join_thread()
            return
