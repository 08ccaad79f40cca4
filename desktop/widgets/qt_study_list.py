"""The study list: thumbnail, file name, patient/study line, result chip, status.

A delegate paints each row from the model's :class:`StudyItem`; the widget itself keeps
no state beyond the selection, which it reports as a study key.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from inference.presentation import present

from .. import theme
from ..models.study_item import SUSPICION_RULE, Status, StudyItem
from ..models.study_list import ItemRole, KeyRole, MetaLineRole, ReaderRole, StudyListModel, StudySortProxy

ROW_HEIGHT = 66
THUMB = 54

_STATUS_TEXT = {
    Status.QUEUED: "queued",
    Status.LOADING: "loading…",
    Status.RUNNING: "analysing…",
    Status.DONE: "",
    Status.ERROR: "failed",
    Status.CANCELLED: "cancelled",
}


def chip_text_and_colour(item: StudyItem, elsewhere: bool = False) -> tuple[str, str]:
    """What the result chip says and its colour (the presentation's words and tone); a result
    read at another profile's threshold than the one in use (``elsewhere``) names it."""
    if item.status is Status.ERROR:
        return "failed", theme.ERROR
    if item.prediction is None:
        return "", theme.TEXT_DIM
    text = present(item.prediction)
    return text.chip_with_threshold if elsewhere else text.chip, theme.TONE[text.tone]


class StudyDelegate(QStyledItemDelegate):
    """Paints rows; each rendered row is cached until the row, its size or its state changes.

    Re-sorting as results arrive repaints every visible row; from the cache that costs a
    pixmap copy per row instead of a full Python paint, which keeps the GUI thread free."""

    CACHE_ROWS = 256

    def __init__(self, model: StudyListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._cache: dict[tuple, QPixmap] = {}

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        key = index.data(KeyRole)
        r = option.rect
        state = option.state & (QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_MouseOver
                                | QStyle.StateFlag.State_HasFocus)
        dpr = p.device().devicePixelRatioF() if p.device() is not None else 1.0
        cache_key = (key, self._model.version(key), r.width(), r.height(), int(state.value), dpr)
        pix = self._cache.get(cache_key)
        if pix is None:
            pix = QPixmap(int(r.width() * dpr), int(r.height() * dpr))
            pix.setDevicePixelRatio(dpr)
            pix.fill(QColor(theme.BASE))
            painter = QPainter(pix)
            local = QStyleOptionViewItem(option)
            local.rect = QRect(0, 0, r.width(), r.height())
            self._paint_row(painter, local, index)
            painter.end()
            if len(self._cache) >= self.CACHE_ROWS:
                self._cache.clear()
            self._cache[cache_key] = pix
        p.drawPixmap(r.topLeft(), pix)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: ARG002
        return QSize(260, ROW_HEIGHT)

    def _paint_row(self, p: QPainter, option: QStyleOptionViewItem,
                   index: QModelIndex | QPersistentModelIndex) -> None:
        item: StudyItem = index.data(ItemRole)
        if item is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            p.fillRect(r, QColor("#263647"))
            p.fillRect(QRect(r.left(), r.top(), 3, r.height()), theme.color(theme.ACCENT))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            p.fillRect(r, QColor("#1f242b"))
        p.setPen(QPen(QColor(theme.BORDER), 1))
        p.drawLine(r.left(), r.bottom(), r.right(), r.bottom())
        if option.state & QStyle.StateFlag.State_HasFocus:  # the row the keys act on, when the list has them
            p.setPen(QPen(theme.color(theme.FOCUS), 2))
            p.drawRect(r.adjusted(1, 1, -1, -1))

        # Thumbnail, letter-boxed in a square.
        box = QRect(r.left() + 8, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        p.fillRect(box, QColor("#0d0f12"))
        thumb: QImage | None = self._model.thumbnail(index.data(KeyRole))
        if thumb is not None and not thumb.isNull():
            scaled = thumb.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(box.center())
            p.drawImage(target, thumb)

        # Line 1: file name, with the status (queued / analysing...) on the right.
        font = QFont(option.font)
        small = QFont(option.font)
        small.setPointSizeF(max(7.5, option.font.pointSizeF() * 0.88))
        fm = QFontMetrics(font)
        fm_s = QFontMetrics(small)
        left = box.right() + 10
        right = r.right() - 8
        line1 = QRect(left, r.top() + 9, right - left, fm.height() + 4)
        line2 = QRect(left, r.top() + 35, right - left, max(fm_s.height() + 8, 22))
        status = _STATUS_TEXT[item.status]
        name_right = right
        if status:
            p.setFont(small)
            p.setPen(theme.color(theme.ERROR if item.status is Status.ERROR else theme.TEXT_DIM))
            sw = fm_s.horizontalAdvance(status)
            p.drawText(QRect(right - sw, line1.top(), sw, line1.height()), Qt.AlignmentFlag.AlignVCenter, status)
            name_right = right - sw - 10
        p.setFont(font)
        p.setPen(theme.color(theme.TEXT))
        name = fm.elidedText(item.name, Qt.TextElideMode.ElideMiddle, max(10, name_right - left))
        p.drawText(QRect(left, line1.top(), name_right - left, line1.height()), Qt.AlignmentFlag.AlignVCenter, name)

        # Line 2: the result chip on the right; the patient/study line (or the error) on the left.
        chip_text, chip_colour = chip_text_and_colour(item, self._model.reads_elsewhere(item))
        text_right = right
        if chip_text and item.status is not Status.ERROR:
            bold = QFont(small)
            bold.setWeight(QFont.Weight.DemiBold)
            fm_b = QFontMetrics(bold)
            cw = fm_b.horizontalAdvance(chip_text) + 16
            chip = QRectF(right - cw, line2.top(), cw, fm_b.height() + 6)
            c = QColor(chip_colour)
            fill = QColor(c)
            fill.setAlpha(48)
            p.setPen(QPen(c, 1.2))
            p.setBrush(fill)
            p.drawRoundedRect(chip, chip.height() / 2, chip.height() / 2)
            p.setFont(bold)
            p.setPen(c.lighter(115))
            p.drawText(chip, Qt.AlignmentFlag.AlignCenter, chip_text)
            text_right = int(chip.left()) - 8
        p.setFont(small)
        if item.status is Status.ERROR:  # the row already names the file: the reason, in the room there is
            line, colour = item.error.removeprefix(f"{item.name}: "), theme.ERROR
        else:
            colour = theme.TEXT_DIM
            reader, line = second_line(fm_s, index.data(ReaderRole) or "", index.data(MetaLineRole) or "",
                                       text_right - left)
            if reader:
                p.setPen(theme.color(theme.TEXT))
                p.drawText(QRect(left, line2.top(), text_right - left, fm_s.height() + 6),
                           Qt.AlignmentFlag.AlignVCenter, reader)
                left += fm_s.horizontalAdvance(reader)
        p.setPen(theme.color(colour))
        line = fm_s.elidedText(line, Qt.TextElideMode.ElideRight, max(0, text_right - left))
        p.drawText(QRect(left, line2.top(), max(0, text_right - left), fm_s.height() + 6),
                   Qt.AlignmentFlag.AlignVCenter, line)
        p.restore()


def second_line(fm: QFontMetrics, verdict: str, line: str, width: int) -> tuple[str, str]:
    """A row's second line as its two parts: the reader's verdict, "read: no pneumonia" where it
    fits, else the verdict alone, cut at its end only where even that does not fit ("no pneu…");
    then the patient/study line for the room left, which the caller elides. Elided together,
    "read: no pneumonia" had become "read: no …" -- not read? -- in a narrow list."""
    if not verdict:
        return "", line
    read = f"read: {verdict}"
    shown = read if fm.horizontalAdvance(read) <= width else fm.elidedText(verdict, Qt.TextElideMode.ElideRight, width)
    return shown, f" · {line}" if line else ""


class StudyListWidget(QWidget):
    """The list with its sort control; emits the key of the study the user selects."""

    current_key_changed = Signal(int)  # 0 when nothing is selected

    SORT_LABELS = {"suspicion": "Most suspicious first", "opened": "Order opened", "name": "File name"}

    def __init__(self, model: StudyListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = StudySortProxy(self)
        self.proxy.setSourceModel(model)
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setItemDelegate(StudyDelegate(model, self.view))
        # Shift/Ctrl-click selects several studies, to remove them at once; the current one is shown.
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setUniformItemSizes(True)
        self.view.setMouseTracking(True)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setAccessibleName("Studies")
        self.count_label = QLabel()
        self.count_label.setObjectName("dim")
        self.sort_box = QComboBox()
        for mode, label in self.SORT_LABELS.items():
            self.sort_box.addItem(label, mode)
        self.sort_box.setItemData(0, SUSPICION_RULE, Qt.ItemDataRole.ToolTipRole)
        head = QHBoxLayout()
        head.setContentsMargins(8, 4, 8, 4)
        head.addWidget(self.count_label, 1)
        head.addWidget(self.sort_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(head)
        lay.addWidget(self.view, 1)

        self.sort_box.currentIndexChanged.connect(self._sort_changed)
        self._sort_changed()
        # The study on screen keeps a visible row while results re-sort the list, if it had one.
        self._current_shown = False
        self.proxy.layoutAboutToBeChanged.connect(self._note_current_shown)
        self.proxy.rowsAboutToBeInserted.connect(self._note_current_shown)
        self.proxy.layoutChanged.connect(self._keep_current_shown)
        self.proxy.rowsInserted.connect(self._keep_current_shown)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        model.progress_changed.connect(self._update_count)
        model.modelReset.connect(self._update_count)
        self._update_count()

    def current_key(self) -> int:
        idx = self.view.currentIndex()
        return int(idx.data(KeyRole)) if idx.isValid() else 0

    def selected_keys(self) -> list[int]:
        """The selected studies in the order shown (the current one when none is selected)."""
        rows = sorted(self.view.selectionModel().selectedRows(), key=lambda idx: idx.row())
        keys = [int(idx.data(KeyRole)) for idx in rows]
        current = self.current_key()
        return keys or ([current] if current else [])

    def select_key(self, key: int) -> None:
        row = self.model.row_of(key)
        if row is None:
            return
        self._show_only(self.proxy.mapFromSource(self.model.index(row)))

    def select_row(self, proxy_row: int) -> None:
        if 0 <= proxy_row < self.proxy.rowCount():
            self._show_only(self.proxy.index(proxy_row, 0))

    def _show_only(self, idx: QModelIndex) -> None:
        """Make ``idx`` the current and the only selected row: moving on (N, P, opening) must
        never leave earlier studies selected for a Del to take with it."""
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.view.selectionModel().setCurrentIndex(idx, flags)
        self.view.scrollTo(idx)

    def _note_current_shown(self, *_args: object) -> None:
        idx = self.view.currentIndex()
        self._current_shown = idx.isValid() and self.view.visualRect(idx).intersects(self.view.viewport().rect())

    def _keep_current_shown(self, *_args: object) -> None:
        """Scroll along with the study on screen when the sort moves its row: in a batch the
        first film opened sank to row 1,800 as results sorted in above it, and the reader saw
        a list of flagged films, none highlighted, beside a normal one. A reader who scrolled
        away from it is not pulled back."""
        if self._current_shown:
            self.view.scrollTo(self.view.currentIndex(), QAbstractItemView.ScrollHint.EnsureVisible)

    def key_after(self, key: int) -> int:
        """The study after ``key`` in the order shown (the one N opens), 0 at the end."""
        row = self.model.row_of(key)
        if row is None:
            return 0
        after = self.proxy.index(self.proxy.mapFromSource(self.model.index(row)).row() + 1, 0)
        return int(after.data(KeyRole)) if after.isValid() else 0

    def step(self, delta: int) -> bool:
        """Next (+1) / previous (-1) study in the order shown; False when there is none."""
        n = self.proxy.rowCount()
        if n == 0:
            return False
        cur = self.view.currentIndex()
        row = min(max(cur.row() + delta if cur.isValid() else 0, 0), n - 1)
        if cur.isValid() and row == cur.row():
            return False
        self.select_row(row)
        return True

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.current_key_changed.emit(int(current.data(KeyRole)) if current.isValid() else 0)

    def _sort_changed(self) -> None:
        """Sort, and state the rule of the order shown where the order is chosen."""
        mode = self.sort_box.currentData()
        self.proxy.set_mode(mode)
        self.sort_box.setToolTip(SUSPICION_RULE if mode == "suspicion" else "The order of the list")

    def _update_count(self) -> None:
        c = self.model.counts()
        total = self.model.rowCount()
        done = c[Status.DONE]
        parts = [f"{total} studies" if total != 1 else "1 study"]
        if total:
            parts.append(f"{done} analysed")
        if c[Status.ERROR]:
            parts.append(f"{c[Status.ERROR]} failed")
        self.count_label.setText(" · ".join(parts))
