"""The Grad-CAM legend: the colour map as a bar, with the floor below which nothing is drawn."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .. import theme


class ColorBarWidget(QWidget):
    """A horizontal legend: "weak" .. "strong" model attention, hatched under the floor."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = "inferno"
        self._floor = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(38)
        self.setToolTip("Grad-CAM: where the model's evidence for pneumonia is strongest. "
                        "It shows what the model looked at, not where disease is.")

    def set_colormap(self, name: str, floor: float) -> None:
        self._colormap, self._floor = name, float(floor)
        self.update()

    @property
    def colormap(self) -> str:
        return self._colormap

    @property
    def floor(self) -> float:
        return self._floor

    def sizeHint(self) -> QSize:
        return QSize(220, 38)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        bar = QRectF(4, 4, self.width() - 8, 12)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        cmap = pg.colormap.get(self._colormap)
        for i in range(11):
            grad.setColorAt(i / 10, cmap.map(i / 10, mode="qcolor"))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(grad)
        p.drawRoundedRect(bar, 3, 3)
        if self._floor > 0:
            hidden = QRectF(bar.left(), bar.top(), bar.width() * self._floor, bar.height())
            p.setBrush(QColor(22, 24, 28, 200))
            p.drawRect(hidden)
            p.setPen(QPen(theme.color(theme.TEXT), 1.5))
            x = hidden.right()
            p.drawLine(int(x), int(bar.top()) - 2, int(x), int(bar.bottom()) + 2)
        p.setPen(theme.color(theme.TEXT_DIM))
        text_rect = QRectF(4, 18, self.width() - 8, 18)
        p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "weak")
        p.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, "model attention")
        p.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "strong")
        p.end()
