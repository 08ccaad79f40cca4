"""A thin batch progress bar that repaints lazily.

QProgressBar.setValue repaints synchronously; at a result every few milliseconds that
cost the GUI thread 10-30 ms per update. This one just schedules a paint.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from .. import theme


class ProgressLine(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._done = 0
        self._total = 0
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setFixedSize(QSize(140, 8))

    def set_progress(self, done: int, total: int) -> None:
        if (done, total) != (self._done, self._total):
            self._done, self._total = done, total
            self.update()

    @property
    def fraction(self) -> float:
        return self._done / self._total if self._total else 0.0

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QColor(theme.BORDER))
        p.setBrush(QColor(theme.BASE))
        r = QRectF(0.5, 0.5, self.width() - 1, self.height() - 1)
        p.drawRoundedRect(r, 3, 3)
        if self._total:
            p.setPen(QColor(theme.ACCENT))
            p.setBrush(QColor(theme.ACCENT))
            p.drawRoundedRect(QRectF(r.left(), r.top(), r.width() * self.fraction, r.height()), 3, 3)
        p.end()
