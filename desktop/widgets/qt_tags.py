"""The DICOM header, searchable; patient-identifying values masked unless allowed."""

from __future__ import annotations

from PySide6.QtWidgets import QHeaderView, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..models.study_item import masked_value


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
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
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

    def set_tags(self, tags: list[tuple[str, str, str]], show_identifiers: bool) -> None:
        self._tags = list(tags)
        self._show_identifiers = show_identifiers
        self.tree.clear()
        rows = [QTreeWidgetItem([tag, keyword, masked_value(keyword, value, show_identifiers)])
                for tag, keyword, value in self._tags]
        for row in rows:
            row.setToolTip(2, row.text(2))
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
