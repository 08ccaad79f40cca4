"""How the study on screen is displayed: window/level, inversion, the heat-map layer.

One observable object shared by the viewer (which renders it), the toolbar and overlay
controls (which change it) and the status bar. Changing it here is the only way the
display changes, so every control stays in step with the picture.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from inference.heatmap import DEFAULT_OPACITY


class DisplayState(QObject):
    window_changed = Signal(float, float)  # center, width
    # No bool argument: PySide6 6.12 loses a reference to True on every Python emit of a
    # bool (or object) True, which eventually crashes the interpreter; observers read .invert.
    invert_changed = Signal()
    overlay_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._center = 0.5
        self._width = 1.0
        self._default_window = (0.5, 1.0)
        self._invert = False
        self._overlay_visible = True
        self._opacity = DEFAULT_OPACITY

    # -- window / level ----------------------------------------------------------------------
    @property
    def window(self) -> tuple[float, float]:
        return self._center, self._width

    @property
    def default_window(self) -> tuple[float, float]:
        return self._default_window

    @property
    def levels(self) -> tuple[float, float]:
        """(low, high) display levels of the current window."""
        return self._center - self._width / 2.0, self._center + self._width / 2.0

    def set_window(self, center: float, width: float) -> None:
        width = max(float(width), 1e-6)
        if (center, width) != (self._center, self._width):
            self._center, self._width = float(center), width
            self.window_changed.emit(self._center, self._width)

    def set_default_window(self, center: float, width: float) -> None:
        """A new study: its DICOM default window becomes the current one."""
        self._default_window = (float(center), max(float(width), 1e-6))
        self.set_window(*self._default_window)

    def adjust_window(self, d_center: float, d_width: float) -> None:
        self.set_window(self._center + d_center, self._width + d_width)

    # -- inversion ---------------------------------------------------------------------------
    @property
    def invert(self) -> bool:
        return self._invert

    def set_invert(self, invert: bool) -> None:
        if invert != self._invert:
            self._invert = bool(invert)
            self.invert_changed.emit()

    def toggle_invert(self) -> None:
        self.set_invert(not self._invert)

    # -- overlay -----------------------------------------------------------------------------
    @property
    def overlay_visible(self) -> bool:
        return self._overlay_visible

    @property
    def opacity(self) -> float:
        return self._opacity

    def set_overlay_visible(self, visible: bool) -> None:
        if visible != self._overlay_visible:
            self._overlay_visible = bool(visible)
            self.overlay_changed.emit()

    def toggle_overlay(self) -> None:
        self.set_overlay_visible(not self._overlay_visible)

    def set_opacity(self, opacity: float) -> None:
        opacity = min(max(float(opacity), 0.0), 1.0)
        if opacity != self._opacity:
            self._opacity = opacity
            self.overlay_changed.emit()

    def reset(self) -> None:
        """Back to the study's default window, not inverted (zoom is the viewer's)."""
        self.set_invert(False)
        self.set_window(*self._default_window)
