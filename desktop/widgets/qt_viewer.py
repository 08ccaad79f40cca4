"""The radiograph viewer: full-resolution image plus the heat-map layer, pixel-aligned.

pyqtgraph gives fast level changes on large float images. Both layers are ImageItems in
the same ViewBox; the heat-map is the RGBA layer :func:`inference.heatmap.layer` draws (the
one the exports use), at most 768 pixels a side, stretched over exactly the image's
rectangle, so a cell lies over the pixels it came from at every zoom.

Mouse: left-drag pans, wheel zooms about the cursor, right-drag (or left-drag in W/L mode)
changes the window: horizontal = width, vertical = level.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from inference import heatmap
from inference.attribution import Attribution
from inference.prediction import Prediction

from .. import pgsetup  # noqa: F401 -- row-major image axis order, set once
from .. import theme
from ..models.display import DisplayState
from .qt_heatmap_legend import HeatmapLegend

_GRAY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


class _ViewBox(pg.ViewBox):
    """A ViewBox whose right button (or left in W/L mode) adjusts the window instead of zooming."""

    def __init__(self, viewer: ViewerWidget) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._viewer = viewer
        self.wl_mode = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001 -- pyqtgraph signature
        """Right-drag always changes the window, W/L mode or not: a hand used to it must never
        zoom instead. W/L mode adds the left button; otherwise the left button pans."""
        button = ev.button()
        if button == Qt.MouseButton.RightButton or (self.wl_mode and button == Qt.MouseButton.LeftButton):
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self._viewer.drag_window(delta.x(), delta.y())
            return
        super().mouseDragEvent(ev, axis)


class ViewerWidget(pg.GraphicsView):
    """Displays the study on screen according to a :class:`DisplayState`."""

    cursor_info = Signal(str)  # "x 512, y 300: 1234" or "" when outside the image

    def __init__(self, state: DisplayState, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=theme.BASE)
        self.state = state
        self.vb = _ViewBox(self)
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(10)
        self.vb.addItem(self.image_item)
        self.vb.addItem(self.overlay_item)
        self._pixels: np.ndarray | None = None
        self._fitted = True  # the film is shown whole (not zoomed or panned by the reader)
        self.vb.sigRangeChangedManually.connect(self._zoomed_by_hand)
        self._prediction: Prediction | None = None
        self._attribution: Attribution | None = None
        self._muted = False
        self.image_item.setLookupTable(_GRAY)
        state.window_changed.connect(self._apply_window)
        state.invert_changed.connect(self._apply_invert)
        state.overlay_changed.connect(self._apply_overlay)
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.setAccessibleName("Radiograph viewer")
        # Said in the picture's place when there is no picture to show (e.g. the file is gone).
        self.message = QLabel(self)
        self.message.setObjectName("viewerMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet(f"color: {theme.WARNING}; font-size: 11pt; padding: 40px;")
        self.message.hide()
        self.legend = HeatmapLegend(self)

    # -- content -------------------------------------------------------------------------------
    def set_image(self, pixels: np.ndarray, window: tuple[float, float]) -> None:
        """Show a new study: its default window, fitted, no overlay yet."""
        self.message.hide()
        self._pixels = pixels
        self._prediction = self._attribution = None
        self.overlay_item.clear()
        self.legend.hide()
        self.image_item.setImage(pixels, autoLevels=False, levels=self._levels_for(window))
        self.state.set_default_window(*window)
        self._apply_window()
        self._apply_invert()
        self.fit()

    def set_result(self, prediction: Prediction | None) -> None:
        """The result of the film on screen (None: none yet): its heat-map layer, muted where the
        map does not apply by default (:func:`inference.heatmap.applies`), and the legend.

        The layer is drawn once at full opacity: the opacity slider then only changes the
        item's opacity, which composes the same way as drawing it fainter."""
        self._prediction = prediction
        attribution = prediction.attribution if prediction is not None else None
        self._attribution = attribution
        self._muted = prediction is not None and not heatmap.applies(prediction)
        if attribution is None or self._pixels is None:
            self.overlay_item.clear()
        else:
            rows, cols = self._pixels.shape
            rgba = heatmap.layer(attribution, heatmap.layer_shape((rows, cols), heatmap.VIEW_LAYER_SIDE),
                                 heatmap.HeatmapStyle(opacity=1.0))
            self.overlay_item.setImage(rgba, autoLevels=False)
            self.overlay_item.setRect(QRectF(0, 0, cols, rows))
        self._apply_overlay()

    def clear(self, message: str = "") -> None:
        """No image; ``message`` (if any) says why in its place."""
        self._pixels = None
        self._prediction = self._attribution = None
        self.image_item.clear()
        self.overlay_item.clear()
        self.legend.hide()
        self.message.setText(message)
        self.message.setVisible(bool(message))
        self.message.raise_()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # pyqtgraph sizes its scene to the whole widget; with the legend's margin the picture
        # is the viewport only, or a fitted film would run under the legend.
        vp = self.viewport().size()
        self.range = QRectF(0, 0, vp.width(), vp.height())
        pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)
        self.updateMatrix()
        message = getattr(self, "message", None)  # pyqtgraph resizes once before __init__ ends
        if message is not None:
            message.setGeometry(self.rect())
            self._place_legend()
            QTimer.singleShot(0, self, self._refit)  # a fitted film stays whole when the size changes

    def _place_legend(self) -> None:
        """The legend sits in a margin of its own under the picture, so it never hides the film."""
        margin = 6
        width = max(self.width() - 2 * margin, 0)
        self.legend.setFixedWidth(width)
        height = self.legend.sizeHint().height() if self.legend.isVisibleTo(self) else 0
        bottom = height + 2 * margin if height else 0
        if bottom != self.viewportMargins().bottom():
            self.setViewportMargins(0, 0, 0, bottom)
            QTimer.singleShot(0, self, self._refit)  # once the view has its new size
        self.legend.setGeometry(margin, self.height() - height - margin, width, height)

    @property
    def pixels(self) -> np.ndarray | None:
        return self._pixels

    @property
    def attribution(self) -> Attribution | None:
        return self._attribution

    # -- navigation ----------------------------------------------------------------------------
    def fit(self) -> None:
        """The whole film in view; it stays fitted through resizes until the reader zooms or pans."""
        self._fitted = True
        if self._pixels is not None:
            h, w = self._pixels.shape
            self.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def one_to_one(self) -> None:
        """One image pixel per physical screen pixel, centred where the view is centred."""
        if self._pixels is None:
            return
        self._fitted = False
        dpr = self.devicePixelRatioF()
        rect = self.vb.viewRect()
        c = rect.center()
        w = self.vb.width() * dpr
        h = self.vb.height() * dpr
        self.vb.setRange(xRange=(c.x() - w / 2, c.x() + w / 2), yRange=(c.y() - h / 2, c.y() + h / 2), padding=0)

    def _refit(self) -> None:
        if self._fitted and not self.closed:  # pyqtgraph deletes the ViewBox when the view closes
            self.fit()

    def _zoomed_by_hand(self, *_: object) -> None:
        self._fitted = False

    def reset(self) -> None:
        self.state.reset()
        self.fit()

    def set_wl_mode(self, on: bool) -> None:
        self.vb.wl_mode = bool(on)

    def drag_window(self, dx: float, dy: float) -> None:
        """Mouse drag in screen pixels -> window change proportional to the current width."""
        center, width = self.state.window
        step = max(width, 1e-3) / 300.0
        self.state.set_window(center + dy * step, width + dx * step * 2)

    # -- rendering from state ------------------------------------------------------------------
    def _levels_for(self, window: tuple[float, float]) -> tuple[float, float]:
        c, w = window
        return c - w / 2.0, c + w / 2.0

    def _apply_window(self, *_: float) -> None:
        if self._pixels is not None:
            self.image_item.setLevels(self.state.levels)

    def _apply_invert(self) -> None:
        self.image_item.setLookupTable(_GRAY[::-1].copy() if self.state.invert else _GRAY)

    def _apply_overlay(self) -> None:
        s = self.state
        self.overlay_item.setOpacity(heatmap.HeatmapStyle(s.opacity, self._muted).peak_alpha)
        self.overlay_item.setVisible(s.overlay_visible and self._attribution is not None)
        self.legend.show_for(self._prediction, s.overlay_visible)
        self._place_legend()

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self._pixels is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            self.cursor_info.emit("")
            return
        pt = self.vb.mapSceneToView(scene_pos)
        x, y = int(np.floor(pt.x())), int(np.floor(pt.y()))
        h, w = self._pixels.shape
        if 0 <= x < w and 0 <= y < h:
            text = f"x {x}, y {y}   value {self._pixels[y, x]:.6g}"
            if self._attribution is not None and self.overlay_item.isVisible():
                grid = self._attribution.grid
                cell = grid[y * grid.shape[0] // h, x * grid.shape[1] // w]
                text += f"   heat-map cell {cell:+.3f} logit"
            self.cursor_info.emit(text)
        else:
            self.cursor_info.emit("")
