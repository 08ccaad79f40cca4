"""A vertical scroll area whose content is never squeezed below the height its width needs.

Qt's QScrollArea sizes its widget by ``minimumSizeHint``, which ignores height-for-width: a
column of word-wrapped labels (the result panel's warnings) was squeezed until warnings were
cut off, with a scroll bar beside them. Here the widget's minimum height follows
``heightForWidth`` of the visible width, whenever the width or the content changes.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QScrollArea, QWidget


class FitWidthScrollArea(QScrollArea):
    """Scrolls vertically only; the content takes the viewport's width and all the height it needs."""

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidget(content)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content.installEventFilter(self)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def _fit(self) -> None:
        content = self.widget()
        if content is not None and content.hasHeightForWidth():
            content.setMinimumHeight(content.heightForWidth(self.viewport().width()))
