"""The study list as a Qt model: rows of :class:`StudyItem`, updated by worker signals.

Views (the list widget, the status bar, the result panel) observe it; they never change
an item themselves. Rows are addressed by a key that never repeats, so a late result from
a cancelled batch can never land on a newer row.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage

from inference.decision import OperatingPoint
from inference.prediction import Prediction
from inference.presentation import present
from inference.profile import SiteProfile
from inference.study import StudyMetadata
from inference.worklist import Failure, WorklistRecord

from .study_item import Status, StudyItem, follows, metadata_line, suspicion_key

ItemRole = Qt.ItemDataRole.UserRole + 1
KeyRole = Qt.ItemDataRole.UserRole + 2
MetaLineRole = Qt.ItemDataRole.UserRole + 3
SentenceRole = Qt.ItemDataRole.UserRole + 4
ReaderRole = Qt.ItemDataRole.UserRole + 5

AnyIndex = QModelIndex | QPersistentModelIndex
THUMBNAILS_DECODED = 500  # a few screens of the list


def reader_verdict(item: StudyItem) -> str:
    """The reader's verdict on a study as the worklist keeps it ("" when none is given)."""
    return (item.record.verdict if item.record is not None else None) or ""


def gray_qimage(pixels: np.ndarray) -> QImage:
    """uint8 [h, w] -> an independent QImage (copied: the array may go away)."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = arr.shape
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


class StudyListModel(QAbstractListModel):
    """Every opened study, in the order opened."""

    progress_changed = Signal()  # a study finished (done, failed or cancelled) or was added

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[StudyItem] = []
        self._keys: list[int] = []
        self._row_of: dict[int, int] = {}
        self._key_of_path: dict[Path, int] = {}  # the latest row listing each file
        self._thumbs: dict[int, QImage] = {}
        # Restored rows' thumbnails stay PNG until drawn; the last THUMBNAILS_DECODED drawn are
        # kept decoded (10,000 decoded thumbnails held 120 MB more, and took 4 s to decode).
        self._thumb_pngs: dict[int, bytes] = {}
        self._decoded: OrderedDict[int, QImage] = OrderedDict()
        self._next_key = 1
        self._next_order = 0  # never reused: "as opened" stays a strict order after removals
        self._show_identifiers = False
        self._active_profile: SiteProfile | None = None  # the one apply_operating_point last read with
        self._operating: OperatingPoint | None = None  # and the point it read at
        self._version = 0
        self._row_versions: dict[int, int] = {}

    # -- Qt model API ----------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 -- Qt signature
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Python callers must not read a role that can be None through QModelIndex.data():
        # PySide6 6.12 drops a reference to None on each such call (it crashes in the end).
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        key = self._keys[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == Qt.ItemDataRole.ToolTipRole:
            if item.status is Status.ERROR:
                return item.error
            # The row elides what does not fit (the patient/study line, the story behind the chip):
            # all of it on hover.
            verdict = reader_verdict(item)
            lines = [str(item.path), metadata_line(item.metadata, self._show_identifiers),
                     f"Reader's verdict: {verdict}" if verdict else ""]
            if item.prediction is not None:
                lines.append(present(item.prediction).summary)
            return "\n".join(filter(None, lines))
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(key)
        if role == ItemRole:
            return item
        if role == KeyRole:
            return key
        if role == MetaLineRole:
            return metadata_line(item.metadata, self._show_identifiers)
        if role == ReaderRole:  # drawn first and whole: which studies are read shows at a glance
            return reader_verdict(item)
        if role == SentenceRole:
            return "" if item.prediction is None else present(item.prediction).headline
        return None

    # -- reading -----------------------------------------------------------------------------
    def item(self, key: int) -> StudyItem | None:
        row = self._row_of.get(key)
        return None if row is None else self._items[row]

    def thumbnail(self, key: int) -> QImage | None:
        """The row's thumbnail as a QImage (for the delegate; see ``data``'s note on None)."""
        image = self._thumbs.get(key)
        if image is not None:
            return image
        image = self._decoded.get(key)
        if image is not None:
            self._decoded.move_to_end(key)
            return image
        png = self._thumb_pngs.get(key)
        if png is None:
            return None
        image = self._decoded[key] = QImage.fromData(png, "PNG")
        if len(self._decoded) > THUMBNAILS_DECODED:
            self._decoded.popitem(last=False)
        return image

    def item_at(self, row: int) -> StudyItem:
        return self._items[row]

    def key_at(self, row: int) -> int:
        return self._keys[row]

    def row_of(self, key: int) -> int | None:
        return self._row_of.get(key)

    def items(self) -> list[StudyItem]:
        return list(self._items)

    def counts(self) -> dict[Status, int]:
        out = {s: 0 for s in Status}
        for it in self._items:
            out[it.status] += 1
        return out

    @property
    def show_identifiers(self) -> bool:
        return self._show_identifiers

    # -- changes (from the controller, on the GUI thread) -------------------------------------
    def add_paths(self, paths: Iterable[Path]) -> list[tuple[int, Path]]:
        """Append studies as queued; returns the (key, path) jobs for the worker."""
        paths = [Path(p) for p in paths]
        keys = self._append([StudyItem(path=path, order=self._opened()) for path in paths])
        return list(zip(keys, paths))

    def add_restored(self, records: Sequence[WorklistRecord], orders: Sequence[int] | None = None) -> list[int]:
        """Append finished studies from the worklist (no work for the worker), at the next
        places in the opening order or at ``orders`` (see :meth:`reserve_order`); returns their keys."""
        orders = orders if orders is not None else [self._opened() for _ in records]
        return self._append([StudyItem.from_record(record, order) for record, order in zip(records, orders)])

    def set_restored(self, key: int, record: WorklistRecord) -> None:
        """A row listed from the worklist takes a newer result from it, in place (its key and
        its place in the opening order stay)."""
        row = self._row_of.get(key)
        if row is None:
            return
        item = self._items[row] = StudyItem.from_record(record, self._items[row].order)
        self._read(item)
        self._forget_thumbnail(key)
        if item.thumbnail_png is not None:
            self._thumb_pngs[key] = item.thumbnail_png
        self._changed(key)
        self.progress_changed.emit()

    def add_failed(self, failures: Sequence[Failure]) -> list[int]:
        """Append files the worklist keeps as failed (in an earlier session, or by the DICOM
        node), with their reasons; returns their keys."""
        return self._append([StudyItem(path=Path(f.study_path), status=Status.ERROR, error=f.reason,
                                       order=self._opened(), restored=True) for f in failures])

    def _opened(self) -> int:
        """The next place in the opening order (the row count would repeat one after a removal)."""
        self._next_order += 1
        return self._next_order

    def reserve_order(self, n: int) -> int:
        """Set ``n`` places in the opening order aside for studies listed later (a long worklist
        is listed the most probable first, and sorted "as opened" by its row ids); returns the first."""
        first = self._next_order + 1
        self._next_order += max(n, 0)
        return first

    def put_back(self, items: Iterable[StudyItem]) -> list[int]:
        """List removed studies again as they were (result, thumbnail, place in the opening
        order), under new keys; returns the keys."""
        return self._append(list(items))

    def _append(self, items: list[StudyItem]) -> list[int]:
        """Insert rows at the end, one key each, their results read at the operating point in
        use (before they are inserted: they go straight to their place); returns the keys."""
        if not items:
            return []
        for item in items:
            self._read(item)
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(items) - 1)
        keys = []
        for i, item in enumerate(items):
            key = self._next_key
            self._next_key += 1
            self._items.append(item)
            self._keys.append(key)
            self._row_of[key] = first + i
            self._key_of_path[item.path] = key
            if item.thumbnail is not None:
                self._thumbs[key] = gray_qimage(item.thumbnail)
            elif item.thumbnail_png is not None:
                self._thumb_pngs[key] = item.thumbnail_png
            keys.append(key)
        self.endInsertRows()
        self.progress_changed.emit()
        return keys

    def _forget_thumbnail(self, key: int) -> None:
        for thumbnails in (self._thumbs, self._thumb_pngs, self._decoded):
            thumbnails.pop(key, None)

    def key_of_path(self, path: Path) -> int | None:
        """The row already listing ``path`` (the latest one), or None."""
        return self._key_of_path.get(Path(path))

    def remove(self, key: int) -> StudyItem | None:
        """Take one row out of the list; returns its item."""
        row = self._row_of.get(key)
        if row is None:
            return None
        self.beginRemoveRows(QModelIndex(), row, row)
        item = self._items.pop(row)
        del self._keys[row]
        self._forget_thumbnail(key)
        self._row_versions.pop(key, None)
        self._row_of = {k: r for r, k in enumerate(self._keys)}
        if self._key_of_path.get(item.path) == key:
            del self._key_of_path[item.path]
        self.endRemoveRows()
        self.progress_changed.emit()
        return item

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._keys.clear()
        self._row_of.clear()
        self._key_of_path.clear()
        self._thumbs.clear()
        self._thumb_pngs.clear()
        self._decoded.clear()
        self.endResetModel()
        self.progress_changed.emit()

    def set_stage(self, key: int, stage: str) -> None:
        item = self.item(key)
        if item is None or item.status.finished:
            return
        item.status = Status.RUNNING if stage == "running" else Status.LOADING
        self._changed(key)

    def set_loaded(self, key: int, thumbnail: np.ndarray, metadata: StudyMetadata, warnings: list[str]) -> None:
        item = self.item(key)
        if item is None:
            return
        item.thumbnail, item.thumbnail_png = thumbnail, None
        item.metadata = metadata
        item.load_warnings = list(warnings)
        self._forget_thumbnail(key)
        self._thumbs[key] = gray_qimage(thumbnail)
        self._changed(key)

    def set_result(self, key: int, prediction: Prediction, record: WorklistRecord | None = None,
                   cached: bool = False) -> None:
        item = self.item(key)
        if item is None:
            return
        item.prediction = prediction
        item.record = record
        item.cached = cached
        item.restored = False  # a result of this session
        item.status = Status.DONE
        item.error = ""
        self._changed(key)
        self.progress_changed.emit()

    def set_record(self, key: int, record: WorklistRecord) -> None:
        """The study's row in the worklist changed (the reader gave a verdict): show it."""
        item = self.item(key)
        if item is None:
            return
        item.record = record
        self._changed(key)

    def set_failed(self, key: int, reason: str) -> None:
        item = self.item(key)
        if item is None:
            return
        item.status = Status.ERROR
        item.error = reason
        self._changed(key)
        self.progress_changed.emit()

    def set_cancelled(self, key: int) -> None:
        item = self.item(key)
        if item is None or item.status.finished:
            return
        item.status = Status.CANCELLED
        self._changed(key)
        self.progress_changed.emit()

    def reopen(self, key: int) -> Path | None:
        """Queue a finished study (done, failed or cancelled) again; returns its path for the worker."""
        return self._queue_again(key, lambda status: status.finished)

    def requeue(self, key: int) -> Path | None:
        """Mark a cancelled or failed study queued again; returns its path for the worker."""
        return self._queue_again(key, lambda status: status in (Status.CANCELLED, Status.ERROR))

    def _queue_again(self, key: int, allowed: Callable[[Status], bool]) -> Path | None:
        item = self.item(key)
        if item is None or not allowed(item.status):
            return None
        item.status = Status.QUEUED
        item.error = ""
        # Not shown with its new film meanwhile (its pixels may have changed: a new CD under the same names).
        item.prediction, item.record = None, None
        self._changed(key)
        self.progress_changed.emit()
        return item.path

    def set_show_identifiers(self, show: bool) -> None:
        if show != self._show_identifiers:
            self._show_identifiers = show
            self._all_changed()

    def apply_operating_point(self, profile: SiteProfile | None, operating: OperatingPoint) -> None:
        """Read every finished result of the active model and profile at ``operating`` (the
        probabilities do not change). Other results are read at their own point: see ``_read``."""
        self._active_profile, self._operating = profile, operating
        for item in self._items:
            self._read(item)
        self._all_changed()

    def _read(self, item: StudyItem) -> None:
        """Read ``item``'s result at the operating point in use if it follows it, else at the
        point stored with it (its own): what a row says never depends on which points were in
        use earlier in the session (a restart read such a row at its own point, the session at
        the last one its profile had been read at)."""
        if item.prediction is None or self._operating is None:
            return
        if follows(item.prediction, self._active_profile):
            item.prediction = item.prediction.at(self._operating)
        elif item.record is not None:
            item.prediction = item.prediction.at(item.record.operating)

    def reads_elsewhere(self, item: StudyItem) -> bool:
        """Whether a finished result keeps the reading of another model or site profile than the
        one in use (see ``follows``): its chip then names the threshold it is read at, or a
        list that mixes two thresholds could not be read."""
        return (item.prediction is not None and self._active_profile is not None
                and not follows(item.prediction, self._active_profile))

    def count_elsewhere(self) -> int:
        return sum(self.reads_elsewhere(item) for item in self._items)

    def version(self, key: int) -> int:
        """Changes whenever the row's display may change (lets views cache rendered rows)."""
        return self._version + self._row_versions.get(key, 0)

    def _changed(self, key: int) -> None:
        self._row_versions[key] = self._row_versions.get(key, 0) + 1
        idx = self.index(self._row_of[key])
        self.dataChanged.emit(idx, idx)

    def _all_changed(self) -> None:
        self._version += 1_000_000  # every row's version moves past all earlier ones
        if self._items:
            self.dataChanged.emit(self.index(0), self.index(len(self._items) - 1))


class StudySortProxy(QSortFilterProxyModel):
    """Sorts the list: most suspicious first (``study_item.SUSPICION_RULE``), as opened, or by name."""

    MODES = ("suspicion", "opened", "name")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._mode = "suspicion"
        self.setDynamicSortFilter(True)
        self.sort(0, Qt.SortOrder.AscendingOrder)

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown sort mode {mode!r}")
        self._mode = mode
        self.invalidate()
        self.sort(0, Qt.SortOrder.AscendingOrder)

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        # Straight to the Python items: a round trip through QVariant per comparison made
        # sorting 200 new rows cost the GUI thread ~150 ms.
        source: StudyListModel = self.sourceModel()  # type: ignore[assignment]
        a, b = source.item_at(left.row()), source.item_at(right.row())
        if self._mode == "suspicion":
            return suspicion_key(a) < suspicion_key(b)
        if self._mode == "name":
            return (a.name.lower(), a.order) < (b.name.lower(), b.order)
        return a.order < b.order
