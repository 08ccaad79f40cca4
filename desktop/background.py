"""One job off the GUI thread, reporting through queued signals: the dialogs' worker.

The calibration wizard runs the model on a few hundred films, counts labelled folders on a
share, reads and bootstraps the worklist's verdicts; any of that on the GUI thread would
freeze the window. A :class:`BackgroundTask` runs one function on a Python thread (the model
releases the GIL while it runs; measured, the window keeps painting every ~20 ms) and tells
the GUI thread how far it got, what it returned or why it failed. Cancelling is cooperative:
the function asks :meth:`TaskControl.cancelled` between steps, and a cancelled task reports
nothing but that it was cancelled.

A task keeps itself alive until its thread has ended, so closing the dialog that started it
never deletes a Qt object a running thread still reports through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from inference.errors import LungLensError

log = logging.getLogger(__name__)

_running: set[BackgroundTask] = set()  # tasks whose thread has not reported its end yet


class TaskControl:
    """What the function running in the background sees of its task."""

    def __init__(self, task: BackgroundTask) -> None:
        self._task = task

    def cancelled(self) -> bool:
        return self._task.is_cancelled

    def progress(self, done: int, total: int) -> None:
        self._task.progress.emit(done, total)

    def deliver(self, part: Any) -> None:
        """Hand over part of the result now (a long worklist's rows, a batch at a time)."""
        self._task.delivered.emit(part)

    def stage(self, text: str) -> None:
        """What is being done now, in words ("Fitting the calibration…")."""
        self._task.stage.emit(text)


class BackgroundTask(QObject):
    """Runs ``job(control)`` once on its own thread; see the module docstring."""

    progress = Signal(int, int)  # done, total
    stage = Signal(str)
    delivered = Signal(object)  # part of the result, handed over before the job returns
    succeeded = Signal(object)  # what the job returned
    failed = Signal(str)  # why, in words (a LungLensError's message, or the exception named)
    cancelled = Signal()
    ended = Signal()  # after any of the three above

    def __init__(self, job: Callable[[TaskControl], Any], name: str = "lunglens-task") -> None:
        super().__init__()  # no parent: the task outlives the dialog if it must (see _running)
        self._job = job
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._done = threading.Event()
        self.ended.connect(self._forget)

    def start(self) -> BackgroundTask:
        _running.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop at its next check; it then reports ``cancelled`` and nothing else."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._done.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until the job has returned (tests, shutdown); True if it did."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            outcome: tuple[Signal, tuple[Any, ...]] = (self.succeeded, (self._job(TaskControl(self)),))
        except LungLensError as err:
            outcome = (self.failed, (str(err),))
        except Exception as err:  # noqa: BLE001 -- reported in words; the window must carry on
            log.warning("background task %s failed", self._thread.name, exc_info=True)
            outcome = (self.failed, (f"{type(err).__name__}: {err}",))
        if self.is_cancelled:
            outcome = (self.cancelled, ())
        self._done.set()
        signal, args = outcome
        signal.emit(*args)
        self.ended.emit()

    def _forget(self) -> None:
        _running.discard(self)
