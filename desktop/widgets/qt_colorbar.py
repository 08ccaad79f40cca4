"""The heat-map legend: its colours and opacity from 0 to full scale, in logit units."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from inference import heatmap

from .. import theme


class ColorBarWidget(QWidget):
    """A horizontal bar drawn with the renderer's own colours over a grey ramp, so what it
    shows is what the film shows; labelled "0" and "+<full scale> logit per cell"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full_scale: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(38)

    def set_full_scale(self, full_scale: float | None) -> None:
        """The logit contribution drawn at full colour (None: no map, no numbers)."""
        self._full_scale = full_scale
        self.setToolTip("" if full_scale is None else
                        f"Heat-map: {heatmap.MEANING}; {heatmap.legend_text(full_scale)}.")
        self.update()

    @property
    def right_label(self) -> str:
        return "" if self._full_scale is None else f"+{self._full_scale:.3g} logit / cell"

    def sizeHint(self) -> QSize:
        return QSize(220, 38)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        bar = QRectF(4, 4, self.width() - 8, 12)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(128, 128, 128))  # a mid-grey film under the colours, as on screen
        p.drawRoundedRect(bar, 3, 3)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(11):
            r, g, b = (int(c) for c in heatmap.COLOURS[round(i * 25.5)])
            grad.setColorAt(i / 10, QColor(r, g, b, round(255 * heatmap.DEFAULT_OPACITY * i / 10)))
        p.setBrush(grad)
        p.drawRoundedRect(bar, 3, 3)
        p.setPen(theme.color(theme.TEXT_DIM))
        text_rect = QRectF(4, 18, self.width() - 8, 18)
        p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "0")
        p.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.right_label)
        p.end()
