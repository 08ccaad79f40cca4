"""The batch pipeline: a few loader threads decode ahead of one inference thread.

Plain Python threads and queues (no Qt). The app runs it inside a separate analysis
process (``desktop.analysis_process``): decoding runs a lot of Python (pydicom, numpy
glue) and in the GUI's own process its threads would hold the GIL often enough to stall
the window for 100-250 ms at a time. Benchmarks and tests can run it in-process.

Results leave through a :class:`PipelineSink`; the Qt adapter (``desktop.worker``) turns
those calls into signals. Loaders run at most ``lookahead`` studies ahead of inference, and
the inference thread drops each full-resolution study as soon as it has its prediction, so
memory does not grow with the length of the batch.

With a :class:`ResultMemory` (the app passes its worklist), each study is fingerprinted as
soon as it is decoded; one the model has already analysed is reported ``recalled`` by the
loader thread and never reaches the inference queue.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from inference.decision import OperatingPoint
from inference.errors import LungLensError, StudyLoadError
from inference.prediction import Prediction
from inference.study import Study
from inference.threads import policy as thread_policy

log = logging.getLogger(__name__)

Key = int  # the caller's identifier for a job (the study list's row id)


class PipelineSink(Protocol):
    """Where the pipeline reports. Called from worker threads: implementations must be thread-safe.

    ``fingerprint`` is the study's :meth:`ResultMemory.fingerprint` ("" without a memory)."""

    def engine_ready(self, engine: Any) -> None: ...
    def engine_failed(self, reason: str) -> None: ...
    def started(self, key: Key, stage: str) -> None: ...  # stage: "loading" | "running"
    def loaded(self, key: Key, study: Study) -> None: ...
    def finished(self, key: Key, study: Study, prediction: Prediction, fingerprint: str) -> None: ...
    def recalled(self, key: Key, study: Study, stored: Any, fingerprint: str) -> None: ...
    def failed(self, key: Key, reason: str) -> None: ...
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
        :func:`inference.threads.policy`); at most ``lookahead`` decoded studies wait for inference."""
        self._engine_factory = engine_factory
        self._sink = sink
        self._load = loader
        self._memory = memory
        self._engine_settled = threading.Event()  # the engine loaded or failed to
        self._jobs: queue.Queue[tuple[int, Key, Path] | None] = queue.Queue()
        self._ready: queue.Queue[tuple[int, Key, Study, str] | None] = queue.Queue(maxsize=max(1, lookahead))
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
            for i in range(max(1, loader_threads or thread_policy().decoders))
        ]
        self._inference = threading.Thread(target=self._inference_loop, name="lunglens-inference", daemon=True)
        for t in (*self._loaders, self._inference):
            t.start()

    # -- control (any thread) -------------------------------------------------------------
    def submit(self, jobs: Iterable[tuple[Key, Path]]) -> None:
        """Queue studies; they keep the order given."""
        with self._lock:
            gen = self._generation
        for key, path in jobs:
            self._jobs.put((gen, key, Path(path)))

    def cancel(self) -> None:
        """Drop every job not yet finished; each is reported ``cancelled``. The pipeline stays usable."""
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
        try:
            self._ready.put_nowait(None)
        except queue.Full:
            pass  # the inference thread polls _stopping as well
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
            job = self._jobs.get()
            if job is None:
                return
            gen, key, path = job
            if not self._current(gen):
                self._sink.cancelled(key)
                continue
            self._sink.started(key, "loading")
            try:
                study = self._load(path)
            except Exception as err:  # noqa: BLE001 -- any bad file becomes a failed row, never a crash
                if not isinstance(err, StudyLoadError):
                    log.warning("unexpected error loading %s", path, exc_info=True)
                self._sink.failed(key, describe_error(path, err))
                continue
            self._sink.loaded(key, study)
            try:
                fingerprint, stored = self._recall(study)
            except Exception:  # noqa: BLE001 -- a memory that fails costs a recompute, never the study
                log.warning("could not look up %s in the worklist", path, exc_info=True)
                fingerprint, stored = "", None
            if stored is not None:
                if self._current(gen):
                    self._sink.recalled(key, study, stored, fingerprint)
                else:
                    self._sink.cancelled(key)
                continue
            while True:
                if not self._current(gen):
                    self._sink.cancelled(key)
                    break
                try:
                    self._ready.put((gen, key, study, fingerprint), timeout=0.05)
                    break
                except queue.Full:
                    continue

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
        while True:
            try:
                job = self._ready.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if job is None:
                return
            gen, key, study, fingerprint = job
            if not self._current(gen):
                self._sink.cancelled(key)
                continue
            if self.engine is None:
                self._sink.failed(key, f"{study.path.name}: model unavailable ({self._engine_error})")
                continue
            self._sink.started(key, "running")
            try:
                prediction = self.engine.predict(study)
                operating = self.operating
                if operating is not None:
                    prediction = prediction.at(operating)
            except Exception as err:  # noqa: BLE001
                log.warning("inference failed for %s", study.path, exc_info=True)
                self._sink.failed(key, describe_error(study.path, err))
                continue
            self._sink.finished(key, study, prediction, fingerprint)
            del study, prediction  # full-resolution pixels and CAM go now


class LatestOnlyLoader:
    """Loads the study on screen, in the background; only the newest request matters.

    Holding N to step through a list queues nothing: a request made while another is
    loading replaces the waiting one.
    """

    def __init__(self, loader: Callable[[Path], Study],
                 done: Callable[[int, Study], None], failed: Callable[[int, str], None]) -> None:
        self._load = loader
        self._done = done
        self._failed = failed
        self._cond = threading.Condition()
        self._request: tuple[int, Path] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="lunglens-view-loader", daemon=True)
        self._thread.start()

    def request(self, token: int, path: Path) -> None:
        with self._cond:
            self._request = (token, Path(path))
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
                token, path = self._request
                self._request = None
            try:
                study = self._load(path)
            except Exception as err:  # noqa: BLE001
                self._failed(token, describe_error(path, err))
            else:
                self._done(token, study)
