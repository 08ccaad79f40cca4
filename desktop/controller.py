"""The application's logic between the worker and the views.

Routes worker signals into the study list model, tracks the batch (progress, ETA,
cancel), loads the selected study at full resolution and publishes it as a
:class:`ViewContext`. Widgets observe this object; none of this lives in a widget.

It also owns the persistent side: on start the list is restored from the worklist (the
analysis process stores each result as it arrives); removing, clearing and exporting go
through here (exports: :mod:`desktop.exports`). A worklist that cannot be used never stops
the app: a locked one is waited for with the window up, and then done without -- results
are still shown, exported and audited -- and the banner says why (``storage_problem``).

And the decision: the site profile in use (the one chosen in Settings, else the shipped one)
is read here and handed to the analysis process, so the engine there calibrates with exactly
the profile whose operating points the window offers; the operating point chosen in the
settings is applied to fresh results, cached ones and every listed one alike (``prediction.at``).
The reader's verdicts on results are stored in the worklist from here too.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from inference import worklist as worklist_module
from inference.audit import AuditLog
from inference.decision import CUSTOM, OperatingPoint, custom_point
from inference.manifest import ModelManifest
from inference.prediction import ModelInfo, Prediction
from inference.profile import SiteProfile
from inference.profile_library import load_active
from inference.study import Study
from inference.userdirs import audit_log_path, data_dir, worklist_path
from inference.worklist import Failure, Worklist, WorklistError, WorklistLocked, WorklistRecord

from .analysis_messages import (
    Cancelled,
    EngineFailed,
    EngineInfo,
    EngineReady,
    Failed,
    Finished,
    Loaded,
    Outcome,
    Report,
    Started,
    StorageFailed,
    StorageRecovered,
)
from .background import BackgroundTask, TaskControl
from .models.batch_clock import BatchClock
from .models.display import DisplayState
from .models.study_item import Status, StudyItem
from .models.study_list import StudyListModel
from .settings import AppSettings
from .worker import StudyWorker

log = logging.getLogger(__name__)

FLUSH_MS = 100
# A worklist another program holds locked: the window waits this long before it opens (long
# enough for another LungLens's commit), then polls with the window up until the busy timeout.
LOCK_FIRST_WAIT_S = 1.0
LOCK_POLL_MS = 250
# Past the busy timeout a locked worklist is tried this often for the rest of the session; the
# results made meanwhile are saved in it once it is free (a 15 s lock cost a whole session).
LOCK_RETRY_MS = 5000
# A worklist with more rows than this to list is read on a thread of its own and listed in
# steps of RESTORE_STEP with the window up: 10,000 rows took 3-4 s to read and decode and 1 s
# more to list, all before the window showed (bench/README.md, "A long worklist").
RESTORE_AT_ONCE_UP_TO = 1000
RESTORE_STEP = 100
SAVE_WAIT_S = 10.0  # how long a removal, a clear or closing waits for held results being saved
# What the window's own changes to an open worklist (a verdict, a removal) wait for another
# program's lock: another LungLens's commit takes milliseconds; a lock held longer is told, and
# tried again, rather than waited for with the window frozen (it waited the whole busy timeout).
GUI_LOCK_WAIT_S = 0.25


@dataclass(frozen=True)
class Removal:
    """Studies taken out of the list, with the worklist rows taken with them (for undo)."""

    items: tuple[StudyItem, ...]
    records: tuple[WorklistRecord, ...]
    busy: tuple[StudyItem, ...] = ()  # not removed: still being analysed


@dataclass(frozen=True)
class VerdictChange:
    """A verdict given, with what it replaced (for undo: the verdict before, and its first time).
    The study by its file: a removal undone meanwhile lists it again under a new key."""

    path: Path
    before: str | None
    before_at: str | None


@dataclass
class ViewContext:
    """The study on screen: full-resolution pixels and, once known, its full-size prediction."""

    key: int
    item: StudyItem
    study: Study | None  # None when the file could not be read
    prediction: Prediction | None
    problem: str = ""  # why ``study`` is None although the item has a result (e.g. the file is gone)


def read_model() -> tuple[ModelManifest | None, SiteProfile | None, str]:
    """The bundled model's manifest and its shipped site profile (cheap JSON), or None and why."""
    from inference.engine import find_manifest

    try:
        path = find_manifest()
        manifest = ModelManifest.load(path)
    except Exception as err:  # noqa: BLE001 -- the window shows it; the app still opens images
        return None, None, str(err)
    try:
        model = ModelInfo(manifest.name, manifest.version, manifest.sha256)
        return manifest, SiteProfile.load(path.parent / manifest.default_profile, model), ""
    except Exception as err:  # noqa: BLE001 -- as above: no decision without a profile
        return manifest, None, f"the shipped site profile is unusable (the installation is incomplete): {err}"


def _model_info(manifest: ModelManifest | None) -> ModelInfo | None:
    """The bundled model as a profile names it (None when it is missing)."""
    return ModelInfo(manifest.name, manifest.version, manifest.sha256) if manifest is not None else None


def _preload_modules() -> None:
    """Import the decoders now, on the GUI thread at start-up, rather than in a background
    task (the calibration wizard's) where the import lock would stall the GUI on its next
    import. (Studies opened for reading are decoded in the analysis process.)"""
    import inference.loaders  # noqa: F401


def _storage_paths() -> tuple[Path, Path, str]:
    """(worklist, audit log, problem): the files in the user data directory, and why that
    directory cannot be used when it cannot (the app then runs without keeping results)."""
    try:
        return worklist_path(), audit_log_path(), ""
    except OSError as err:
        return (worklist_path(create=False), audit_log_path(create=False),
                f"Results are not being saved: the data folder {data_dir(create=False)} cannot be used "
                f"({err.strerror or err})")


@dataclass(frozen=True)
class Stored:
    """What :func:`_store_all` saved (rows without images) and the error that stopped it, if any."""

    saved: tuple[WorklistRecord, ...]
    error: Exception | None = None


def _store_all(path: Path, records: list[WorklistRecord], wait: float) -> Stored:
    """Save ``records`` in the worklist at ``path`` through a connection of their own, which
    waits ``wait`` seconds for another program's lock."""
    saved: list[WorklistRecord] = []
    try:
        with Worklist(path, open_timeout=wait, wait=wait) as worklist:
            for record in records:
                saved.append(replace(worklist.add(record), thumbnail=None))
    except (WorklistError, sqlite3.Error) as err:
        return Stored(tuple(saved), err)
    return Stored(tuple(saved))


def _read_latest(path: Path, after_id: int, up_to_id: int, control: TaskControl, batch: int = 200) -> None:
    """Hand over each file's newest row among ``after_id`` < id <= ``up_to_id``, the most
    probable first (:meth:`Worklist.latest_ids`), in batches read through a read-only
    connection of its own, until cancelled. Between batches the GIL goes to the window's
    thread (a batch holds it for about 60 ms; see inference.metrics.YIELD_EVERY for why it
    must be handed over)."""
    with Worklist(path, read_only=True) as worklist:
        ids = worklist.latest_ids(after_id, up_to_id)
        for start in range(0, len(ids), batch):
            if control.cancelled():
                return
            control.deliver(worklist.records_by_id(ids[start:start + batch], decode_thumbnails=False))
            control.progress(min(start + batch, len(ids)), len(ids))
            time.sleep(0)


def _holds(item: StudyItem, record: WorklistRecord) -> bool:
    """Whether ``record``, just saved, is the unsaved result the study shows (not an older one
    of a study analysed again meanwhile)."""
    return (item.record is not None and item.record.id is None and item.record.pixel_sha256 == record.pixel_sha256
            and item.record.analysed_at == record.analysed_at)


def _saved_text(n: int) -> str:
    return (f"The worklist is free again: the {n} result{'' if n == 1 else 's'} made while it was locked "
            f"{'is' if n == 1 else 'are'} saved in it.")


class StudyController(QObject):
    progress = Signal(int, int, float)  # done, total, ETA seconds (-1 unknown)
    batch_finished = Signal()
    batch_started = Signal(int)  # the key of the first study of a new batch
    engine_status = Signal(str, str)  # provider in use ("" if none), problem ("" if none)
    view_image = Signal(object)  # ViewContext: a new study on screen
    view_result = Signal(object)  # ViewContext: the on-screen study's result arrived or changed
    result_ready = Signal(int)  # key of a study that just finished
    storage_problem = Signal(str)  # results are not being kept (worklist unavailable), and why
    storage_recovered = Signal(str)  # the worklist is free again: what was saved in it
    restoring_changed = Signal(bool)  # a long worklist began (True) or ended (False) being listed in the background
    restoring_read = Signal(int, int)  # how many of its studies have been read so far, of how many
    operating_changed = Signal(object)  # the OperatingPoint results are now read at (or None)
    profile_changed = Signal(object)  # the SiteProfile now in use (Settings -> Site calibration, the wizard)

    def __init__(self, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = StudyListModel(self)
        self.display = DisplayState(self)
        _preload_modules()
        self.manifest, self.profile, self.manifest_error = read_model()
        # The profile chosen in Settings, else the shipped one -- with a warning when the
        # chosen one is gone or refused: nobody may think their own profile is in use when it is not.
        self.shipped_profile = self.profile
        self.profile, self.profile_warning = load_active(settings.site_profile, self.shipped_profile,
                                                         _model_info(self.manifest))
        self.engine: EngineInfo | None = None  # the engine running in the analysis process
        self.engine_error = ""
        self._pending: set[int] = set()
        self._total = 0
        self._batch: list[int] = []  # the keys of the current (or last) batch, in the order opened
        self._clock = BatchClock()
        self._discovering = 0
        self._drop_discovered = False  # the batch was cancelled while its folders were still being listed
        self._view_token = 0
        self._view_key = 0
        self._view_loading = False
        self.read_ahead = True  # decode the study after the one on screen (bench/stepping.py turns it off to compare)
        self._context: ViewContext | None = None
        self._restart_pending = False
        self._closed = False
        # Worker reports are applied in batches, at most every FLUSH_MS: at 100 studies a
        # second, one list update and repaint per report would keep the GUI thread busy.
        self._updates: list[tuple[Any, tuple[Any, ...]]] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._apply_display_defaults()
        self.model.set_show_identifiers(settings.show_identifiers)
        self.worklist_path, audit_path, problem = _storage_paths()
        self.audit: AuditLog | None = None if problem else AuditLog(audit_path)
        self.audit_path = audit_path
        self.worklist: Worklist | None = None
        self._restored_up_to = 0  # the last worklist row id restore() has read
        self._failures_up_to = 0  # and the last failure's
        self._restoring: BackgroundTask | None = None  # a long worklist being read (_restore_in_background)
        self._restore_queue: list[WorklistRecord] = []  # read, not listed yet
        self._restore_done_reading = False  # its thread has handed over every row
        self._restore_order_offset = 0  # a row's place in the opening order is its id plus this
        self._removed_while_restoring: set[Path] = set()
        self._restore_failures: list[Failure] = []  # read with it, listed once its results are
        self._restore_again = False
        self._storage: dict[str, str] = {"worklist": problem} if problem else {}  # what -> why not kept
        self._lock_deadline = 0.0
        self._lock_timer = QTimer(self)
        self._lock_timer.setInterval(LOCK_POLL_MS)
        self._lock_timer.timeout.connect(self._wait_for_worklist)
        self._saving: BackgroundTask | None = None  # held results being saved (_save_in_background)
        self._saving_done: list[Stored] = []  # what it returned, once it has
        if not problem:
            self._open_worklist()
        self.worker = self._make_worker()
        self._read_at_operating_point()  # what the list then shows is read at it as it is listed
        self.restore()

    # -- the worklist ---------------------------------------------------------------------------
    def _open_worklist(self) -> None:
        """Open the worklist, or say in :attr:`storage_error` why results are not being kept
        (the app still analyses, shows, exports and audits). A list another program keeps
        locked is waited for with the window up and a message (:meth:`_wait_for_worklist`)."""
        try:
            first_wait = min(LOCK_FIRST_WAIT_S, worklist_module.BUSY_TIMEOUT_S)
            self._use_worklist(Worklist(self.worklist_path, open_timeout=first_wait, wait=GUI_LOCK_WAIT_S))
        except WorklistLocked:
            self._lock_deadline = time.monotonic() + worklist_module.BUSY_TIMEOUT_S
            self._storage["worklist"] = (f"The worklist {self.worklist_path} is locked by another program; waiting "
                                         f"up to {worklist_module.BUSY_TIMEOUT_S:g} s for it…")
            self._lock_timer.start()
        except WorklistError as err:
            self._storage["worklist"] = f"Results are not being saved in the worklist: {err}"

    @property
    def storage_error(self) -> str:
        """Why results are not being kept (the worklist's reason, then the audit log's), or ""."""
        return " ".join(self._storage[what] for what in ("worklist", "audit") if self._storage.get(what))

    def _use_worklist(self, wl: Worklist) -> None:
        self.worklist = wl
        self._storage.pop("worklist", None)
        if wl.set_aside is not None:
            self._restored_up_to = self._failures_up_to = 0  # a new file: none of its rows have been read
            self._storage["worklist"] = wl.set_aside.message()

    def _wait_for_worklist(self) -> None:
        """One more try at a locked worklist. Once open, the results made meanwhile are saved in
        it, its results are listed and the analysis process restarted to keep new ones. Past
        the busy timeout LungLens carries on without it and tries every few seconds."""
        try:
            wl = Worklist(self.worklist_path, open_timeout=0, wait=GUI_LOCK_WAIT_S)
        except WorklistLocked:
            if time.monotonic() < self._lock_deadline or self._lock_timer.interval() == LOCK_RETRY_MS:
                return
            self._lock_timer.setInterval(LOCK_RETRY_MS)
            locked = WorklistLocked(worklist_module.locked_text(self.worklist_path, worklist_module.BUSY_TIMEOUT_S))
            self._storage_failed(locked.carrying_on())
            return
        except WorklistError as err:
            self._lock_timer.stop()
            self._storage_failed(f"Results are not being saved in the worklist: {err}")
            return
        self._lock_timer.stop()
        self._lock_timer.setInterval(LOCK_POLL_MS)
        self._use_worklist(wl)
        self._save_in_background()
        self.storage_problem.emit(self.storage_error)
        self.restore()
        if self._worker_keeps:
            return  # the analysis process has its own connection and kept (or held) its results
        if self.busy:
            self._restart_pending = True  # this batch is audited; the next one is kept as well
        else:
            self._restart_worker()

    def _save_in_background(self, wait: float = GUI_LOCK_WAIT_S) -> None:
        """Save in the worklist, now open, the results of this session it does not hold yet
        (made while it was locked) on a thread of its own, with a connection of its own that
        waits for a lock as briefly as the window's changes do (a lock back at once: tried
        again with the rest every few seconds) -- 300 take 0.66 s, which the GUI thread must
        not wait for -- then list them by their rows and say so. A removal, a clear, a verdict
        or closing the window waits for it first (:meth:`_finish_saving`)."""
        records = self._unsaved_records()
        if self.worklist is None or not records or self._saving is not None:
            return
        path, done = self.worklist_path, []
        task = BackgroundTask(lambda _control: done.append(_store_all(path, records, wait)) or done[0],
                              "lunglens-save-held")
        task.succeeded.connect(lambda stored: self._saved(task, stored))
        task.failed.connect(lambda why: self._saved(task, Stored((), WorklistError(why))))
        self._saving, self._saving_done = task, done
        task.start()

    def _finish_saving(self) -> None:
        """Wait for the held results being saved, and list them by their rows now: what comes
        next (a removal, a clear, a verdict, closing) must find them in the worklist."""
        task = self._saving
        if task is not None and task.wait(SAVE_WAIT_S) and self._saving_done:
            self._saved(task, self._saving_done[0])

    def _saved(self, task: BackgroundTask, stored: Stored) -> None:
        if task is not self._saving:
            return  # applied already (by _finish_saving)
        self._saving = None
        for record in stored.saved:
            key = self.model.key_of_path(Path(record.study_path))
            item = self.model.item(key) if key is not None else None
            if item is not None and _holds(item, record):
                self.model.set_record(key, record)
        if stored.saved:
            self.storage_recovered.emit(_saved_text(len(stored.saved)))
        if self._closed:
            return  # nothing is tried again after closing
        if isinstance(stored.error, WorklistLocked):
            self._worklist_failed(stored.error)  # tried again every few seconds
        elif stored.error is not None:
            self._storage_failed(f"The worklist could not be changed ({stored.error})")

    def _unsaved_records(self) -> list[WorklistRecord]:
        """The results to save, with the thumbnails the window keeps beside them."""
        return [replace(item.record, thumbnail=item.thumbnail) for item in self._unsaved_items()
                if item.record is not None]

    def _unsaved_items(self) -> list[StudyItem]:
        """The studies whose result this session the worklist does not hold (made while it was locked)."""
        return [item for item in self.model.items()
                if item.status is Status.DONE and item.record is not None and item.record.id is None]

    def _worklist_failed(self, err: Exception) -> None:
        """A worklist operation from the window failed: say so. A list locked past the busy
        timeout is left as it is and tried again every few seconds."""
        if isinstance(err, WorklistLocked) and self.worklist is not None:
            self.worklist.close()
            self.worklist = None
            self._storage_failed(err.carrying_on())
            self._lock_deadline = 0.0
            self._lock_timer.setInterval(LOCK_RETRY_MS)
            self._lock_timer.start()
        else:
            self._storage_failed(f"The worklist could not be changed ({err})")

    def restore(self) -> int:
        """List every study stored in the worklist (the latest result per file), and every file
        kept as failed, that is not listed already; returns how many. Only the rows added since
        the last call are read: the DICOM node's films join the list this way, and reading all
        10,000 rows of a long-used worklist for each of them held the window for 4 s a film."""
        if self.worklist is None:
            return 0
        if self._restoring is not None:
            self._restore_again = True  # rows added meanwhile: read once this listing is done
            return 0
        records: list[WorklistRecord] = []
        try:
            failures = self.worklist.failures(after_id=self._failures_up_to)
            if self.worklist.count(after_id=self._restored_up_to) > RESTORE_AT_ONCE_UP_TO:
                self._restore_in_background(self.worklist.last_id())
            else:
                ids = sorted(self.worklist.latest_ids(after_id=self._restored_up_to))  # listed as first stored
                records = self.worklist.records_by_id(ids, decode_thumbnails=False)  # decoded when drawn
                self._restored_up_to = max(ids, default=self._restored_up_to)
        except (WorklistError, sqlite3.Error) as err:  # an unreadable list must not stop the app
            self._storage["worklist"] = f"The worklist could not be read ({err})"
            return 0
        self._failures_up_to = max((f.id or 0 for f in failures), default=self._failures_up_to)
        listed = self.model.add_restored(self._listable(records))
        if self._restoring is not None:  # listed after its results, as here: see _list_failures
            self._restore_failures = failures
            return 0
        return len(listed) + self._list_failures(failures)

    def _list_failures(self, failures: list[Failure]) -> int:
        """List the files kept as failed whose file is not listed: after the results read with
        them, so a file with a result and a failure shows its result (a failed row would give
        way to it under the reader's eyes)."""
        return len(self.model.add_failed([f for f in failures if self.model.key_of_path(Path(f.study_path)) is None
                                          and Path(f.study_path) not in self._removed_while_restoring]))

    def _listable(self, records: list[WorklistRecord]) -> list[WorklistRecord]:
        """Those of ``records`` to list: not a file listed already (a study opened since has
        its own result), nor one removed while a long worklist is listed (an older row must
        not bring it back). A file listed as failed from the worklist (by the DICOM node, say)
        takes its result in its own row, read after the failure: the node analysed it since."""
        listable = []
        for record in records:
            path = Path(record.study_path)
            key = self.model.key_of_path(path)
            if path in self._removed_while_restoring:
                continue
            if key is None:
                listable.append(record)
                continue
            item = self.model.item(key)
            if item is not None and item.restored and item.status is Status.ERROR:
                self.model.set_restored(key, record)
                if key == self._view_key:
                    self.select(key)  # the reader stays on it, now with its result
        return listable

    @property
    def restoring(self) -> bool:
        """Whether a long worklist is being listed in the background."""
        return self._restoring is not None

    def _restore_in_background(self, up_to_id: int) -> None:
        """List the rows up to ``up_to_id`` as a thread reads them (a read-only connection:
        the window's stays free), the most probable first, so the top of the list is there
        first; RESTORE_STEP rows per turn of the event loop (:meth:`_restore_step`)."""
        path, after = self.worklist_path, self._restored_up_to
        first = self.model.reserve_order(up_to_id - after)  # "as opened" follows the rows' ids
        task = BackgroundTask(lambda control: _read_latest(path, after, up_to_id, control), "lunglens-restore")
        task.delivered.connect(lambda records: self._restore_arrived(task, records))
        task.progress.connect(lambda n, total: self.restoring_read.emit(n, total) if task is self._restoring else None)
        task.succeeded.connect(lambda _: self._restore_read(task, up_to_id))
        task.failed.connect(lambda why: self._restore_read(task, problem=why))
        self._restoring, self._restore_order_offset = task, first - after - 1
        self.restoring_changed.emit(True)
        # Once the event loop runs: the window is shown first (reading beside its building
        # took the GIL from it and showed it 0.3 s later).
        QTimer.singleShot(0, lambda: task.start() if task is self._restoring and not self._closed else None)

    def _restore_arrived(self, task: BackgroundTask, records: list[WorklistRecord]) -> None:
        if task is not self._restoring or self._closed:
            return  # a clear or closing came first
        was_empty = not self._restore_queue  # then no step is waiting for it: start one
        self._restore_queue += records
        if was_empty and self._restore_queue:
            QTimer.singleShot(0, lambda: self._restore_step(task))

    def _restore_read(self, task: BackgroundTask, up_to_id: int = 0, problem: str = "") -> None:
        """The thread is done: every row is in the queue (or it failed, and the next restore()
        reads again what it did not list: a listed file is not listed twice)."""
        if task is not self._restoring or self._closed:
            return
        if problem:
            log.warning("the worklist could not be read to the end: %s", problem)
        else:
            self._restored_up_to = up_to_id
        self._restore_done_reading = True
        if not self._restore_queue:
            self._end_restoring()

    def _restore_step(self, task: BackgroundTask) -> None:
        """List the next RESTORE_STEP rows read, then give the event loop a turn."""
        if self._closed or task is not self._restoring:
            return  # a clear, closing, or a later restore took over
        step, self._restore_queue = self._restore_queue[:RESTORE_STEP], self._restore_queue[RESTORE_STEP:]
        try:
            listable = self._listable(step)
            self.model.add_restored(listable, [self._restore_order_offset + (r.id or 0) for r in listable])
            # The listed rows out of the collector's sight, as settle_memory did for the rest: the
            # full collections they would bring, over a growing heap, stalled the window 0.2-0.3 s.
            gc.freeze()
        finally:
            if self._restore_queue:
                QTimer.singleShot(0, lambda: self._restore_step(task))
            elif self._restore_done_reading:
                self._end_restoring()

    def _end_restoring(self, dropped: bool = False) -> None:
        """The listing is over, done or ``dropped`` (a clear, closing): what it still holds is not listed."""
        if self._restoring is not None:
            self._restoring.cancel()  # a clear: the thread stops reading what would be thrown away
        if not dropped:
            self._list_failures(self._restore_failures)
        self._restoring, self._restore_queue, self._restore_done_reading = None, [], False
        self._restore_failures = []
        self._removed_while_restoring.clear()
        self.restoring_changed.emit(False)
        if self._restore_again and not self._closed:
            self._restore_again = False
            self.restore()

    def _read_at_operating_point(self) -> None:
        """Read the listed results at the operating point in use (stored ones were read at theirs)."""
        operating = self.operating_point()
        if operating is not None:
            self.model.apply_operating_point(self.profile, operating)

    def remove(self, keys: Sequence[int]) -> Removal:
        """Take finished studies out of the list and their results out of the worklist file
        (the audit log keeps its history); studies still being analysed stay. The window keeps the
        removal returned, so that :meth:`undo_remove` can put it back."""
        self._finish_saving()
        removed: list[StudyItem] = []
        records: list[WorklistRecord] = []
        busy: list[StudyItem] = []
        for key in keys:
            item = self.model.item(key)
            if item is None:
                continue
            if not item.status.finished:
                busy.append(item)
                continue
            if self.worklist is not None:
                try:
                    records += self.worklist.take_path(item.path)
                except (WorklistError, sqlite3.Error) as err:
                    # Stop: a study gone from the list but not from the worklist came back at
                    # the next start. The banner says why; the rest stay listed.
                    self._worklist_failed(err)
                    break
            self.model.remove(key)
            if self._restoring is not None:  # an older row of it, still to be listed, must not bring it back
                self._removed_while_restoring.add(item.path)
            removed.append(item)
        if self._view_key and self.model.item(self._view_key) is None:
            self.select(0)
        return Removal(tuple(removed), tuple(records), tuple(busy))

    def undo_remove(self, removal: Removal) -> int:
        """Put removed studies back in the list and their results back in the worklist file,
        as they were; returns how many came back (a file opened again since is already
        listed, with its new result, and is not listed twice)."""
        self._finish_saving()
        back = [it for it in removal.items if self.model.key_of_path(it.path) is None]
        paths = {str(it.path) for it in back}
        if self.worklist is not None:
            try:
                self.worklist.put_back([r for r in removal.records if r.study_path in paths])
            except (WorklistError, sqlite3.Error) as err:
                self._worklist_failed(err)
        self.model.put_back(back)
        if self.worklist is not None:  # a file that had failed is kept as failed again
            try:
                for item in back:
                    if item.status is Status.ERROR:
                        self.worklist.add_failure(Failure(str(item.path), item.error))
            except (WorklistError, sqlite3.Error) as err:
                self._worklist_failed(err)
        return len(back)

    def clear_worklist(self) -> bool:
        """Empty the list and the worklist; refused (False) while a batch runs. A removal
        before it can no longer be undone."""
        if self.busy:
            return False
        self._finish_saving()
        if self.worklist is not None:
            try:
                self.worklist.clear()
            except (WorklistError, sqlite3.Error) as err:
                self._worklist_failed(err)
                return False
        if self._restoring is not None:
            self._restore_again = False
            self._end_restoring(dropped=True)
        self.model.clear()
        self.select(0)
        return True

    # -- worker lifecycle ----------------------------------------------------------------------
    def _make_worker(self) -> StudyWorker:
        # Results are audited whether or not the worklist is open; kept only when it is.
        storage: dict[str, Path] = {}
        if self.audit is not None:
            storage["audit_path"] = self.audit_path
            if self.worklist is not None:
                storage["worklist_path"] = self.worklist_path
        w = StudyWorker(provider=self.settings.provider, threads=self.settings.threads or None,
                        profile=self.profile, parent=self, **storage)
        w.report.connect(self._report)
        w.view_loaded.connect(self._view_loaded)
        w.view_failed.connect(self._view_failed)
        w.discovered.connect(self._discovered)
        w.discovery_done.connect(self._discovery_done)
        w.set_operating_point(self.operating_point())
        self._worker_profile = self.profile.sha256 if self.profile is not None else ""
        self._worker_keeps = "worklist_path" in storage  # its results go to the worklist itself
        return w

    def unsaved(self) -> int:
        """How many results of this session the worklist does not hold."""
        return len(self._unsaved_items())

    def save_before_closing(self, wait: float) -> int:
        """While a locked worklist is being waited for: one last try to save what it does not
        hold yet, waiting up to ``wait`` seconds for the lock; returns how many results are
        still not saved. Otherwise 0: a data folder that cannot be used or is read-only will
        not change by waiting, and the banner has said so all along."""
        self._finish_saving()
        if not self._lock_timer.isActive():
            return 0
        if self.unsaved() and self.worklist is None:
            try:
                self._use_worklist(Worklist(self.worklist_path, open_timeout=wait, wait=wait))
            except WorklistError:
                return self.unsaved()
        if self.worklist is not None:
            self._save_in_background(wait)
            self._finish_saving()  # closing: wait for them
        return self.unsaved()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel and stop every background thread; True when all ended (called on close)."""
        self._closed = True
        self._flush_timer.stop()
        self._lock_timer.stop()
        self._updates.clear()
        self._finish_saving()  # held results being saved: let them reach the worklist
        if self._restoring is not None:  # a long worklist still being read: stop the reading thread
            self._restoring.cancel()
            if self._restoring.running:
                self._restoring.wait(2.0)
        self.worker.cancel()
        stopped = self.worker.shutdown(timeout)
        if self.worklist is not None:
            self.worklist.close()
            self.worklist = None
        return stopped

    def _storage_failed(self, reason: str, what: str = "worklist") -> None:
        """``what`` (the worklist, the audit log) is not keeping results, and why: each is said
        apart (a read-only data folder fails both, and the second message hid the first)."""
        if reason != self._storage.get(what):
            self._storage[what] = reason
            self.storage_problem.emit(self.storage_error)

    def _storage_recovered(self, report: StorageRecovered) -> None:
        """The analysis process found the worklist free again and saved what it held: list
        those results by the rows it gives (queued behind the results they follow)."""
        log.info("%s", report.message)
        for record in report.saved:
            key = self.model.key_of_path(Path(record.study_path))
            item = self.model.item(key) if key is not None else None
            if item is not None and _holds(item, record):
                self.model.set_record(key, record)
        if self._storage.pop("worklist", None) is not None:
            self.storage_problem.emit(self.storage_error)
        self.storage_recovered.emit(_saved_text(len(report.saved)))

    # -- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Files and folders (recursively): listed at once as queued, analysed in the background.
        Absolute, as the worklist and Open Recent keep them (inference.loaders.files.iter_study_files)."""
        paths = [Path(os.path.abspath(p)) for p in paths]
        if not paths:
            return
        for p in paths:
            self.settings.add_recent(p)
        self._drop_discovered = False
        self._discovering += 1
        self.worker.discover(paths)

    def _discovered(self, paths: list[Path]) -> None:
        """New files get rows; a file already listed is analysed again in its row (the worklist
        answers at once if its pixels are unchanged), unless it is still in the queue. After a
        Cancel, what the listing still finds is not added: it went on and analysed all 2,000."""
        if self._drop_discovered:
            return
        new, again = [], []
        for path in dict.fromkeys(paths):  # a file named twice in one opening is listed once
            key = self.model.key_of_path(path)
            if key is None:
                new.append(path)
            elif key not in self._pending and self.model.reopen(key) is not None:
                again.append((key, path))
        self._submit(again + self.model.add_paths(new))

    def _discovery_done(self) -> None:
        self._discovering -= 1
        if self._discovering <= 0:
            self._drop_discovered = False
        self._check_finished()

    def _submit(self, jobs: list[tuple[int, Path]]) -> None:
        if not jobs:
            return
        new_batch = not self._pending
        if new_batch:
            self._total = 0
            self._batch = []
            self._clock.restart()
        self._pending.update(k for k, _ in jobs)
        self._batch.extend(k for k, _ in jobs)
        self._total += len(jobs)
        self.worker.submit(jobs)
        self._emit_progress()
        if new_batch:
            self.batch_started.emit(jobs[0][0])

    @property
    def batch(self) -> list[int]:
        """The studies of the current batch (the last one, once it has ended), in the order opened."""
        return list(self._batch)

    def retry(self, key: int) -> None:
        path = self.model.requeue(key)
        if path is not None:
            self._submit([(key, path)])

    def cancel(self) -> None:
        """Stop the batch: studies not finished are marked cancelled (their rows stay), and
        files a folder's listing finds after this are not added."""
        if self._discovering > 0:
            self._drop_discovered = True
        self.worker.cancel()

    # -- worker results --------------------------------------------------------------------------
    def _report(self, r: Report) -> None:
        """One report of the analysis process: the engine and storage ones at once, a study's
        own through the throttle (:meth:`_queue`)."""
        if isinstance(r, EngineReady):
            self._engine_ready(r.info)
        elif isinstance(r, EngineFailed):
            self._engine_failed(r.reason)
        elif isinstance(r, StorageFailed):
            self._storage_failed(r.reason, r.what)
        elif isinstance(r, StorageRecovered):
            self._queue(self._storage_recovered, r)
        elif isinstance(r, Started):
            self._queue(self.model.set_stage, r.key, r.stage)
        elif isinstance(r, Loaded):
            self._queue(self.model.set_loaded, r.key, r.thumbnail, r.metadata, r.warnings)
        elif isinstance(r, Finished):
            self._queue(self._result, r.key, r.prediction, r.outcome)
        elif isinstance(r, Failed):
            self._queue(self._failed, r.key, r.reason)
        elif isinstance(r, Cancelled):
            self._queue(self._cancelled, r.key)

    def _queue(self, handler: Any, *args: Any) -> None:
        if self._closed:
            return  # reports still in the event queue after shutdown: nobody is watching
        self._updates.append((handler, args))
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        updates, self._updates = self._updates, []
        settles = (self._result, self._failed, self._cancelled)
        finished = {args[0] for h, args in updates if h in settles}  # the keys of studies now settled
        for handler, args in updates:
            if handler == self.model.set_stage and args[0] in finished:
                continue  # it is already done: skip the intermediate "loading"/"running"
            handler(*args)

    def _engine_ready(self, engine: EngineInfo) -> None:
        self.engine = engine
        if self.profile is None or engine.profile.sha256 == self.profile.sha256:  # not a worker of the last profile
            self.manifest, self.profile = engine.manifest, engine.profile
        self.engine_error = ""
        self.engine_status.emit(engine.provider, "")
        self.operating_changed.emit(self.operating_point())

    def _engine_failed(self, reason: str) -> None:
        self.engine = None
        self.engine_error = reason
        self.engine_status.emit("", reason)

    def _result(self, key: int, prediction: Prediction, outcome: Outcome) -> None:
        self.model.set_result(key, prediction, outcome.record, outcome.cached)
        self._finish(key)
        self.result_ready.emit(key)
        if key == self._view_key and self._context is not None and self._context.study is not None:
            self._context.prediction = self._context.item.prediction
            self.view_result.emit(self._context)

    def _failed(self, key: int, reason: str) -> None:
        self.model.set_failed(key, reason)
        self._finish(key)
        if key == self._view_key and self._context is not None:
            self.view_result.emit(self._context)

    def _cancelled(self, key: int) -> None:
        self.model.set_cancelled(key)
        self._finish(key)

    def _finish(self, key: int) -> None:
        self._pending.discard(key)
        self._clock.finished(time.monotonic())
        self._emit_progress()
        self._check_finished()

    def _emit_progress(self) -> None:
        self.progress.emit(self._total - len(self._pending), self._total, self._clock.eta(len(self._pending)))

    def _check_finished(self) -> None:
        if not self._pending and self._discovering <= 0:
            self.batch_finished.emit()
            if self._restart_pending:
                self._restart_pending = False
                self._restart_worker()

    @property
    def busy(self) -> bool:
        return bool(self._pending) or self._discovering > 0 or bool(self._updates)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing being listed (files or the worklist's rows), and the study
        on screen fully shown."""
        return not self.busy and not self._view_loading and self._restoring is None

    # -- the study on screen ---------------------------------------------------------------------
    def select(self, key: int, ahead: int = 0) -> None:
        """Show a study: the analysis process decodes it (or has it from the batch) in the
        background, and then the study ``ahead`` (the one the reader is likely to open next)."""
        item = self.model.item(key)
        self._view_key = key
        self._view_token += 1
        if item is None:
            self._view_loading = False
            self._context = None
            self.view_image.emit(None)
            return
        self._view_loading = True
        # A result from an earlier session is checked to be of the pixels its file holds now: a
        # file replaced since (a new CD's IM000001 is another patient) showed under the stored
        # result, and exported so. (This session's were hashed when analysed; hashing costs a
        # large film 100 ms or more at every N.)
        stored = (item.record.pixel_sha256 or None) if item.restored and item.record is not None else None
        next_item = self.model.item(ahead) if ahead and self.read_ahead else None
        self.worker.load_for_view(self._view_token, item.path, stored, next_item.path if next_item else None)

    @property
    def context(self) -> ViewContext | None:
        return self._context

    def _view_loaded(self, token: int, study: Study, same_pixels: bool) -> None:
        if token != self._view_token:
            return  # the user has moved on
        self._view_loading = False
        item = self.model.item(self._view_key)
        if item is None:
            return
        if not same_pixels:  # never another image under this result, nor exported with it
            problem = ("This file has been replaced by another image since it was analysed. The stored result is "
                       "shown without an image, and cannot be exported; open the file again to analyse the new image.")
            self._context = ViewContext(self._view_key, item, None, None, problem)
        else:
            self._context = ViewContext(self._view_key, item, study, item.prediction)
        self.view_image.emit(self._context)

    def _view_failed(self, token: int, reason: str) -> None:
        if token != self._view_token:
            return
        self._view_loading = False
        item = self.model.item(self._view_key)
        if item is None:
            return
        problem = ""
        if item.status is Status.DONE:
            # The result stands (e.g. restored from the worklist); only the image is unavailable.
            problem = (f"The file is no longer available ({reason}). The stored result is shown; "
                       "the image cannot be displayed or exported.")
        elif item.status is not Status.ERROR:
            self.model.set_failed(self._view_key, reason)
        self._context = ViewContext(self._view_key, item, None, None, problem)
        self.view_image.emit(self._context)

    # -- settings ----------------------------------------------------------------------------------
    def _apply_display_defaults(self) -> None:
        s, d = self.settings, self.display
        d.set_overlay_visible(s.overlay_visible)
        d.set_opacity(s.overlay_opacity)

    def operating_point(self) -> OperatingPoint | None:
        """The operating point of the settings in the profile in use (its default when the
        settings name one it does not have); None without a profile, when nothing is analysed."""
        s = self.settings
        if self.profile is None:
            return None
        if s.operating_point == CUSTOM:
            return custom_point(s.custom_threshold)
        known = s.operating_point in self.profile.operating_points
        return self.profile.operating_point(s.operating_point if known else None)

    def node_arguments(self) -> list[str]:
        """``lunglens serve``'s arguments that make the DICOM node decide as this window does:
        the site profile in use (none for the shipped one, or when the chosen one could not be
        used and the shipped one stands in) and the operating point of the settings."""
        args: list[str] = []
        if self.profile is not None and self.profile is not self.shipped_profile and self.settings.site_profile:
            args += ["--profile", self.settings.site_profile]
        operating = self.operating_point()
        if operating is not None:
            args += (["--threshold", repr(operating.threshold)] if operating.name == CUSTOM
                     else ["--operating-point", operating.name])
        return args

    def apply_settings(self, changed: set[str]) -> None:
        """React to the settings dialog: re-judge results, refresh masks, restart the engine."""
        restarting = False
        if "profile" in changed:
            restarting = self._use_profile()
            changed = changed | {"decision"}  # the operating points are the new profile's
        if "overlay" in changed:
            self._apply_display_defaults()
        if "privacy" in changed:
            self.model.set_show_identifiers(self.settings.show_identifiers)
        if "decision" in changed:
            operating = self.operating_point()
            if operating is not None and self.profile is not None:
                self._audit(lambda log: log.log_decision_rule(self.profile.info, operating))
            if self._worker_profile == (self.profile.sha256 if self.profile is not None else ""):
                self.worker.set_operating_point(operating)  # else its successor starts with it
            self.operating_changed.emit(operating)
            if operating is not None:
                self.model.apply_operating_point(self.profile, operating)
                if self._context is not None and self._context.prediction is not None:
                    item = self._context.item
                    if item.prediction is not None:
                        self._context.prediction = item.prediction
                    self.view_result.emit(self._context)
        if "engine" in changed and not restarting:
            if self.busy:
                self._restart_pending = True
            else:
                self._restart_worker()

    def _use_profile(self) -> bool:
        """Make the profile the settings name the one in use; True when the analysis engine is
        restarted for it (after the batch, if one runs: its results are then of the previous
        profile). Results made under the previous profile keep their own reading and are
        marked as such (``follows``); a profile that cannot be used leaves the shipped one in
        use and says why in :attr:`profile_warning`."""
        profile, self.profile_warning = load_active(self.settings.site_profile, self.shipped_profile,
                                                    _model_info(self.manifest))
        restart = profile is not None and (self.profile is None or profile.sha256 != self.profile.sha256)
        if restart:
            self.profile = profile
            if self.busy:
                self._restart_pending = True
            else:
                self._restart_worker()
        self.profile_changed.emit(self.profile)
        return restart

    # -- reader verdicts ---------------------------------------------------------------------------
    def set_verdict(self, key: int, verdict: str | None, at: str | None = None) -> str:
        """Store the reader's verdict on a study's result in the worklist, with the time (now, or
        ``at``; None withdraws it); returns "" or why it cannot be stored."""
        self._finish_saving()  # a result being saved gets its row, which the verdict is stored on
        item = self.model.item(key)
        if item is None:
            return "Select a study first"
        if not item.status.finished:
            return f"{item.name} is still being analysed: give the verdict once its result is shown"
        if item.status is not Status.DONE or item.record is None or item.record.id is None:
            return f"{item.name} has no stored result to give a verdict on"
        if self.worklist is None:  # its own words say results are saved later; a verdict is not
            return ("Verdict not saved: the worklist cannot be written just now (the banner says why). "
                    "Give the verdict again once it is back.")
        try:
            record = self.worklist.set_verdict(item.record.id, verdict, at)
        except (WorklistError, sqlite3.Error) as err:  # locked, read-only...: say it, carry on
            self._worklist_failed(err)
            return f"The verdict could not be saved ({err})"
        if record is None:
            return f"{item.name} is no longer in the worklist"
        self.model.set_record(key, replace(record, thumbnail=None))
        self._audit(lambda log: log.log_verdict(record))
        return ""

    def _audit(self, write: Callable[[AuditLog], object]) -> None:
        """One audit entry; a log that cannot be written is said in the banner, and nothing else
        stops (what the entry records has already happened)."""
        if self.audit is None:
            return
        try:
            write(self.audit)
        except OSError as err:
            self._storage_failed(f"Verdicts and changes of the decision rule are not being written to the audit "
                                 f"log {self.audit.path} ({err.strerror or err}).", what="audit")

    def _restart_worker(self) -> None:
        old = self.worker
        old.shutdown()
        old.deleteLater()
        self.engine = None
        self.worker = self._make_worker()
        if self._view_loading:  # the old process was stopped before it answered: ask the new one
            self.select(self._view_key)
