"""The DICOM header, searchable; patient-identifying values masked unless allowed.

Values are read in full: the value column gets the room, a long value wraps at its spaces
onto more lines, one without spaces (a UID) is elided, and the row's tooltip shows it whole.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..models.study_item import masked_value


NAME, VALUE = 1, 2
NAME_WIDTH = 150  # px: most keywords fit; a longer one is elided, whole in the tooltip


class _WrappingDelegate(QStyledItemDelegate):
    """Wraps values, and sizes a row for its value wrapped at the value column's width (a
    QTreeView asks its delegate for sizes without the column width, so word wrap alone never
    wraps a row). Tags and names stay on one line."""

    def __init__(self, tree: QTreeWidget) -> None:
        super().__init__(tree)
        self._tree = tree

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        if index.column() != VALUE:
            option.features &= ~QStyleOptionViewItem.ViewItemFeature.WrapText

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        if index.column() != VALUE:
            return super().sizeHint(option, index)
        wrapped = QStyleOptionViewItem(option)
        wrapped.rect = QRect(0, 0, self._tree.columnWidth(index.column()), max(option.rect.height(), 1))
        return super().sizeHint(wrapped, index)


class TagsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter tags (name, number or value)…")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Tag", "Name", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)  # rows grow to show a long value: no uniform row height
        self.tree.setItemDelegate(_WrappingDelegate(self.tree))
        # Narrower or wider columns wrap differently: lay the rows out again, once per burst of resizes.
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(0)
        self._relayout.timeout.connect(self.tree.doItemsLayout)
        self.tree.header().sectionResized.connect(self._relayout.start)
        self.tree.setAlternatingRowColors(True)
        # The value column gets the room: names fitted to their contents used to push it out of a narrow dock.
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().resizeSection(NAME, NAME_WIDTH)
        self.tree.header().setStretchLastSection(True)
        self.note = QLabel()
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.note)
        self._tags: list[tuple[str, str, str]] = []
        self._show_identifiers = False
        self.filter.textChanged.connect(self._apply_filter)
        self.set_tags([], False)

    def set_reachable(self, reachable: bool) -> None:
        """Whether Tab may stop here: not while the panel lies under another tab of its dock
        area, where keys typed into the unseen filter vanished ("n ph1")."""
        policy = Qt.FocusPolicy.StrongFocus if reachable else Qt.FocusPolicy.NoFocus
        for widget in (self.filter, self.tree):
            widget.setFocusPolicy(policy)
            if not reachable and widget.hasFocus():
                widget.clearFocus()

    def set_tags(self, tags: list[tuple[str, str, str]], show_identifiers: bool) -> None:
        self._tags = list(tags)
        self._show_identifiers = show_identifiers
        self.tree.clear()
        rows = [QTreeWidgetItem([tag, keyword, masked_value(keyword, value, show_identifiers)])
                for tag, keyword, value in self._tags]
        for row in rows:
            for column in range(3):
                row.setToolTip(column, f"{row.text(1)}: {row.text(VALUE)}")
        self.tree.addTopLevelItems(rows)
        if not tags:
            self.note.setText("No DICOM header (raster image) or no study selected.")
        elif show_identifiers:
            self.note.setText("Patient identifiers are shown (Settings).")
        else:
            self.note.setText("Patient identifiers are masked; enable them in Settings.")
        self._apply_filter(self.filter.text())

    def set_show_identifiers(self, show: bool) -> None:
        self.set_tags(self._tags, show)

    def visible_rows(self) -> list[tuple[str, str, str]]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if not it.isHidden():
                out.append((it.text(0), it.text(1), it.text(2)))
        return out

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            hay = " ".join(it.text(c) for c in range(3)).lower()
            it.setHidden(bool(needle) and needle not in hay)
