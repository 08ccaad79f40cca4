"""The batch pipeline of ``lunglens classify`` and the app: decode ahead, analyse in order.

Plain Python threads and queues (no Qt). A few loader threads decode studies (and, with a
:class:`ResultMemory`, fingerprint them and look them up) ahead of one inference thread. At
most ``lookahead`` studies are taken ahead of inference, so memory does not grow with the
length of the batch, and each full-resolution study is dropped as soon as it is reported
(the app's loader, :class:`inference.decoded.DecodedStudies`, keeps its own last few).
Every study submitted is settled exactly once -- :meth:`PipelineSink.analysed`, ``failed`` or
``cancelled`` -- by the inference thread, **in the order submitted**, whatever order the
loaders finish in; ``started("loading")`` and ``loaded`` come earlier, from the loaders.

The CLI runs it in its own process and prints each settled study as it comes; the app runs
it inside its analysis process (``desktop.analysis_process``), because decoding runs a lot
of Python and in the window's process its threads would hold the GIL often enough to stall
the window.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .decision import OperatingPoint
from .errors import LungLensError, StudyLoadError
from .prediction import Prediction
from .result_store import judge
from .study import Study
from .threads import policy as thread_policy

log = logging.getLogger(__name__)

Key = int  # the caller's identifier for a job (the study list's row id, the CLI's input index)


@dataclass(frozen=True)
class Analysed:
    """A study with its result, read at the pipeline's operating point."""

    key: Key
    study: Study
    prediction: Prediction
    fingerprint: str  # ResultMemory.fingerprint ("" without a memory)
    read_ms: float  # decoding time
    stored: Any | None = None  # the memory's record it was answered from: no inference ran

    @property
    def cached(self) -> bool:
        return self.stored is not None


class PipelineSink(Protocol):
    """Where the pipeline reports. Called from worker threads: implementations must be thread-safe."""

    def engine_ready(self, engine: Any) -> None: ...
    def engine_failed(self, reason: str) -> None: ...
    def started(self, key: Key, stage: str) -> None: ...  # stage: "loading" | "running"
    def loaded(self, key: Key, study: Study) -> None: ...
    def analysed(self, result: Analysed) -> None: ...
    # ``unreadable``: the file, when the failure is the file's (it could not be read), not the model's.
    def failed(self, key: Key, reason: str, unreadable: Path | None = None) -> None: ...
    def cancelled(self, key: Key) -> None: ...


class ResultMemory(Protocol):
    """Results already known, so a study seen before is not analysed again (thread-safe)."""

    def fingerprint(self, study: Study) -> str: ...
    def recall(self, study: Study, fingerprint: str, engine: Any) -> Any | None: ...  # a stored result, or None


def describe_error(path: Path, err: BaseException) -> str:
    """A message naming the file and the reason, never a traceback."""
    if isinstance(err, LungLensError):
        return str(err)
    if isinstance(err, MemoryError):
        return f"{path.name}: not enough memory to open this image"
    return f"{path.name}: could not be read ({type(err).__name__}: {err})"


@dataclass(frozen=True)
class _Job:
    seq: int  # submission order, across every submit()
    generation: int  # cancel() starts a new one
    key: Key
    path: Path


@dataclass(frozen=True)
class _Decoded:
    """What a loader hands the inference thread for one job: a study to analyse or recall, or
    the reason it is settled already (``failure``; ``study`` None and no failure: cancelled)."""

    job: _Job
    study: Study | None = None
    read_ms: float = 0.0
    fingerprint: str = ""
    stored: Any | None = None
    failure: str = ""


class BatchPipeline:
    """Loads and classifies studies in the background; see the module docstring."""

    def __init__(
        self,
        engine_factory: Callable[[], Any],
        sink: PipelineSink,
        loader: Callable[[Path], Study],
        loader_threads: int | None = None,
        lookahead: int = 4,
        memory: ResultMemory | None = None,
    ) -> None:
        """``loader_threads`` decode ahead (None: the thread policy's decoders,
        :func:`inference.threads.policy`); at most ``lookahead`` jobs are taken ahead of inference."""
        self._engine_factory = engine_factory
        self._sink = sink
        self._load = loader
        self._memory = memory
        n_loaders = max(1, loader_threads or thread_policy().decoders)
        # A loader holds a slot from taking a job until inference settles it; jobs are taken in
        # order, so the one inference waits for always holds a slot and the bound cannot deadlock.
        self._slots = threading.Semaphore(max(lookahead, n_loaders))
        self._engine_settled = threading.Event()  # the engine loaded or failed to
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._decoded: queue.Queue[_Decoded | None] = queue.Queue()
        self._seq = itertools.count()
        self._generation = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # The operating point results are read at (None: the engine's profile's default);
        # replaced whole, so a result is never read at half a change.
        self.operating: OperatingPoint | None = None
        self.engine: Any = None
        self._engine_error = ""
        self._loaders = [
            threading.Thread(target=self._loader_loop, name=f"lunglens-loader-{i}", daemon=True)
            for i in range(n_loaders)
        ]
        self._inference = threading.Thread(target=self._inference_loop, name="lunglens-inference", daemon=True)
        for t in (*self._loaders, self._inference):
            t.start()

    # -- control (any thread) -------------------------------------------------------------
    def submit(self, jobs: Iterable[tuple[Key, Path]]) -> None:
        """Queue studies; they are settled in this order, after any submitted before."""
        with self._lock:  # one submit's jobs stay together and in order
            gen = self._generation
            for key, path in jobs:
                self._jobs.put(_Job(next(self._seq), gen, key, Path(path)))

    def cancel(self) -> None:
        """Drop every job not yet settled; each is reported ``cancelled``. The pipeline stays usable."""
        with self._lock:
            self._generation += 1

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop every thread; True when all of them ended within ``timeout`` seconds."""
        self.cancel()
        self._stopping.set()
        for _ in self._loaders:
            self._jobs.put(None)
        for t in self._loaders:
            t.join(timeout)
        self._decoded.put(None)
        self._inference.join(timeout)
        return not any(t.is_alive() for t in (*self._loaders, self._inference))

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in (*self._loaders, self._inference))

    # -- threads ---------------------------------------------------------------------------
    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._generation and not self._stopping.is_set()

    def _loader_loop(self) -> None:
        while True:
            while not self._slots.acquire(timeout=0.1):
                if self._stopping.is_set():
                    return
            job = self._jobs.get()
            if job is None:
                return
            self._decoded.put(self._decode(job))

    def _decode(self, job: _Job) -> _Decoded:
        if not self._current(job.generation):
            return _Decoded(job)
        self._sink.started(job.key, "loading")
        t0 = time.perf_counter()
        try:
            study = self._load(job.path)
        except Exception as err:  # noqa: BLE001 -- any bad file becomes a failed row, never a crash
            if not isinstance(err, StudyLoadError):
                log.warning("unexpected error loading %s", job.path, exc_info=True)
            return _Decoded(job, failure=describe_error(job.path, err))
        read_ms = (time.perf_counter() - t0) * 1000.0
        self._sink.loaded(job.key, study)
        try:
            fingerprint, stored = self._recall(study)
        except Exception:  # noqa: BLE001 -- a memory that fails costs a recompute, never the study
            log.warning("could not look up %s in the worklist", job.path, exc_info=True)
            fingerprint, stored = "", None
        return _Decoded(job, study, read_ms, fingerprint, stored)

    def _recall(self, study: Study) -> tuple[str, Any | None]:
        """(fingerprint, stored result or None); waits for the engine, whose model the result must match."""
        if self._memory is None:
            return "", None
        fingerprint = self._memory.fingerprint(study)
        while not self._engine_settled.wait(0.1):
            if self._stopping.is_set():
                return fingerprint, None
        if self.engine is None:
            return fingerprint, None
        return fingerprint, self._memory.recall(study, fingerprint, self.engine)

    def _inference_loop(self) -> None:
        try:
            self.engine = self._engine_factory()
        except Exception as err:  # noqa: BLE001 -- reported in the window, the app keeps running
            self._engine_error = str(err) if isinstance(err, LungLensError) else f"{type(err).__name__}: {err}"
            self._sink.engine_failed(self._engine_error)
        else:
            self._sink.engine_ready(self.engine)
        finally:
            self._engine_settled.set()
        waiting: dict[int, _Decoded] = {}  # decoded ahead of their turn
        turn = 0
        while True:
            item = self._decoded.get()
            if item is None:
                return
            waiting[item.job.seq] = item
            while turn in waiting:
                item = waiting.pop(turn)
                turn += 1
                try:
                    self._settle(item)
                finally:
                    self._slots.release()
                del item  # full-resolution pixels and the map go now

    def _settle(self, item: _Decoded) -> None:
        job, study = item.job, item.study
        if item.failure:
            self._sink.failed(job.key, item.failure, job.path)
            return
        if study is None or not self._current(job.generation):
            self._sink.cancelled(job.key)
            return
        if self.engine is None:
            self._sink.failed(job.key, f"{job.path.name}: model unavailable ({self._engine_error})")
            return
        operating = self.operating or self.engine.profile.operating_point()
        if item.stored is not None:
            prediction = judge(item.stored, operating)
        else:
            self._sink.started(job.key, "running")
            try:
                prediction = self.engine.predict(study).at(operating)
            except Exception as err:  # noqa: BLE001 -- one study's failure never stops the batch
                log.warning("inference failed for %s", job.path, exc_info=True)
                reason = str(err) if isinstance(err, LungLensError) else (
                    f"{job.path.name}: could not be analysed ({type(err).__name__}: {err})")
                self._sink.failed(job.key, reason)
                return
        self._sink.analysed(Analysed(job.key, study, prediction, item.fingerprint, item.read_ms, item.stored))


class LatestOnlyLoader:
    """Loads the study on screen, in the background; only the newest request matters.

    Holding N to step through a list queues nothing: a request made while another is
    loading replaces the waiting one. A request may carry the fingerprint of the pixels the
    caller holds a result for; ``done`` gets it back with the study, on the loader's thread,
    to tell whether the file still holds those pixels.
    """

    def __init__(self, loader: Callable[[Path], Study],
                 done: Callable[[int, Study, str | None], None], failed: Callable[[int, str], None]) -> None:
        self._load = loader
        self._done = done
        self._failed = failed
        self._cond = threading.Condition()
        self._request: tuple[int, Path, str | None] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="lunglens-view-loader", daemon=True)
        self._thread.start()

    def request(self, token: int, path: Path, fingerprint: str | None = None) -> None:
        with self._cond:
            self._request = (token, Path(path), fingerprint)
            self._cond.notify()

    def shutdown(self, timeout: float = 10.0) -> bool:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                token, path, fingerprint = self._request
                self._request = None
            try:
                self._done(token, self._load(path), fingerprint)
            except Exception as err:  # noqa: BLE001 -- said, and the next request is served
                self._failed(token, describe_error(path, err))
