"""The strip under the film that says what the heat-map is, or why there is none, with its
colour scale in logit units: always in sight, never only in a panel the reader must scroll to."""

from __future__ import annotations

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QFrame, QLabel, QWidget

from inference import heatmap
from inference.prediction import Prediction

from .. import theme
from .qt_colorbar import ColorBarWidget


CAPTION_MIN_WIDTH = 260  # px: about six words a line of the caption's longest sentence


class HeatmapLegend(QFrame):
    """Caption (from :func:`inference.heatmap.caption`) and, while the map is shown, its colour bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmapLegend")
        self.setStyleSheet(f"#heatmapLegend {{ background: rgba(16, 18, 22, 210); border-radius: 4px; }}"
                           f"#heatmapLegend QLabel {{ color: {theme.TEXT_DIM}; }}")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.bar = ColorBarWidget()
        self.bar.setFixedWidth(200)
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(8, 4, 8, 4)
        self._layout.addWidget(self.caption, 1)
        self._layout.addWidget(self.bar)
        self.hide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Beside the bar while the caption has room for its words, else above it: on a small
        screen the caption ("not an outline of a lesion") must still be read whole."""
        narrow = event.size().width() < self.bar.width() + CAPTION_MIN_WIDTH
        direction = QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        if self._layout.direction() != direction:
            self._layout.setDirection(direction)
        super().resizeEvent(event)

    def show_for(self, prediction: Prediction | None, shown: bool) -> None:
        """What the film on screen carries: ``shown`` says whether its map is drawn now."""
        if prediction is None:
            self.hide()
            return
        attribution = prediction.attribution
        drawn = shown and attribution is not None
        self.caption.setText(heatmap.caption(prediction, drawn))
        self.bar.set_full_scale(attribution.full_scale if drawn else None)
        self.bar.setVisible(drawn)
        self.show()
