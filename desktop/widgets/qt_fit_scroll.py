"""Scroll areas that fit, and sizes that fit the screen.

Qt's QScrollArea sizes its widget by ``minimumSizeHint``, which ignores height-for-width: a
column of word-wrapped labels (the result panel's warnings) was squeezed until warnings were
cut off, with a scroll bar beside them. In :class:`FitWidthScrollArea` the widget's minimum
height follows ``heightForWidth`` of the visible width, whenever the width or the content changes.

:func:`scrolling` and :func:`within_screen` keep a window on a small screen: Settings (1250 x 900)
and About (720 x 780) opened taller than a 1024 x 600 netbook's screen, their buttons out of reach.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


def scrolling(page: QWidget) -> QScrollArea:
    """``page`` in a frameless scroll area: it takes the room it has and scrolls beyond that."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def within_screen(widget: QWidget, preferred: QSize) -> QSize:
    """``preferred``, or what the screen ``widget`` is on has room for (with its window frame)."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return preferred
    room = screen.availableGeometry()
    return QSize(min(preferred.width(), room.width() * 95 // 100), min(preferred.height(), room.height() * 92 // 100))


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
