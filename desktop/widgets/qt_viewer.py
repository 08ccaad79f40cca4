"""The radiograph viewer: full-resolution image plus a Grad-CAM layer, pixel-aligned.

pyqtgraph gives fast level changes on large float images. Both layers are ImageItems in
the same ViewBox with the same (identity) transform, and the overlay always has the
image's shape, so they match pixel for pixel at every zoom.

Mouse: left-drag pans, wheel zooms about the cursor, right-drag (or left-drag in W/L mode)
changes the window: horizontal = width, vertical = level.
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from .. import pgsetup  # noqa: F401 -- row-major image axis order, set once
from .. import theme
from ..models.display import DisplayState

_GRAY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


@functools.lru_cache(maxsize=32)
def overlay_lut(colormap: str, floor: float) -> np.ndarray:
    """RGBA lookup table for the Grad-CAM layer: transparent below ``floor``, then a short fade-in.

    Cached: building it reads the colour map from disk the first time."""
    cmap = pg.colormap.get(colormap)
    lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.uint8)
    v = np.linspace(0.0, 1.0, 256)
    ramp = np.clip((v - floor) / 0.08, 0.0, 1.0)
    lut[:, 3] = np.rint(255 * ramp).astype(np.uint8)
    return lut


class _ViewBox(pg.ViewBox):
    """A ViewBox whose right button (or left in W/L mode) adjusts the window instead of zooming."""

    def __init__(self, viewer: ViewerWidget) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._viewer = viewer
        self.wl_mode = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001 -- pyqtgraph signature
        wl_button = Qt.MouseButton.LeftButton if self.wl_mode else Qt.MouseButton.RightButton
        if ev.button() == wl_button:
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
        self._cam: np.ndarray | None = None
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
        self._apply_overlay()  # builds the colour table now rather than on the first result

    # -- content -------------------------------------------------------------------------------
    def set_image(self, pixels: np.ndarray, window: tuple[float, float]) -> None:
        """Show a new study: its default window, fitted, no overlay yet."""
        self.message.hide()
        self._pixels = pixels
        self._cam = None
        self.overlay_item.clear()
        self.image_item.setImage(pixels, autoLevels=False, levels=self._levels_for(window))
        self.state.set_default_window(*window)
        self._apply_window()
        self._apply_invert()
        self.fit()

    def set_overlay(self, cam: np.ndarray | None) -> None:
        """The Grad-CAM map, float 0..1, same shape as the image (None removes it)."""
        if cam is not None and self._pixels is not None and cam.shape != self._pixels.shape:
            raise ValueError(f"overlay shape {cam.shape} does not match image shape {self._pixels.shape}")
        self._cam = cam
        if cam is None:
            self.overlay_item.clear()
        else:
            self.overlay_item.setImage(cam, autoLevels=False, levels=(0.0, 1.0))
        self._apply_overlay()

    def clear(self, message: str = "") -> None:
        """No image; ``message`` (if any) says why in its place."""
        self._pixels = None
        self._cam = None
        self.image_item.clear()
        self.overlay_item.clear()
        self.message.setText(message)
        self.message.setVisible(bool(message))
        self.message.raise_()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        message = getattr(self, "message", None)  # pyqtgraph resizes once before __init__ ends
        if message is not None:
            message.setGeometry(self.rect())

    @property
    def pixels(self) -> np.ndarray | None:
        return self._pixels

    @property
    def cam(self) -> np.ndarray | None:
        return self._cam

    # -- navigation ----------------------------------------------------------------------------
    def fit(self) -> None:
        if self._pixels is not None:
            h, w = self._pixels.shape
            self.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def one_to_one(self) -> None:
        """One image pixel per physical screen pixel, centred where the view is centred."""
        if self._pixels is None:
            return
        dpr = self.devicePixelRatioF()
        rect = self.vb.viewRect()
        c = rect.center()
        w = self.vb.width() * dpr
        h = self.vb.height() * dpr
        self.vb.setRange(xRange=(c.x() - w / 2, c.x() + w / 2), yRange=(c.y() - h / 2, c.y() + h / 2), padding=0)

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
        self.overlay_item.setLookupTable(overlay_lut(s.colormap, s.floor))
        self.overlay_item.setOpacity(s.opacity)
        self.overlay_item.setVisible(s.overlay_visible and self._cam is not None)

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self._pixels is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            self.cursor_info.emit("")
            return
        pt = self.vb.mapSceneToView(scene_pos)
        x, y = int(np.floor(pt.x())), int(np.floor(pt.y()))
        h, w = self._pixels.shape
        if 0 <= x < w and 0 <= y < h:
            text = f"x {x}, y {y}   value {self._pixels[y, x]:.6g}"
            if self._cam is not None and self.overlay_item.isVisible():
                text += f"   activation {self._cam[y, x]:.2f}"
            self.cursor_info.emit(text)
        else:
            self.cursor_info.emit("")
