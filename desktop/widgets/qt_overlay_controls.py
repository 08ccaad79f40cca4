"""Heat-map controls: show/hide and opacity, bound to the DisplayState. What the map means
and its scale are said under the film (:mod:`desktop.widgets.qt_heatmap_legend`)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QSlider, QVBoxLayout, QWidget
from superqt import QLabeledSlider

from ..models.display import DisplayState


class OverlayControls(QGroupBox):
    """Edits the overlay part of a :class:`DisplayState` and follows it when others change it."""

    def __init__(self, state: DisplayState, parent: QWidget | None = None) -> None:
        super().__init__("Heat-map", parent)
        self.state = state
        self.visible_box = QCheckBox("Show heat-map for this study  (H)")
        self.opacity = QLabeledSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the heat-map at full colour, %")
        # One Tab stop, the slider itself (which draws the focus ring): the labelled slider's
        # container took focus too, showed nothing, and Right set its own value, 1 %.
        self.opacity.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity.setFocusProxy(self.opacity.findChild(QSlider))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Opacity %", self.opacity)
        lay = QVBoxLayout(self)
        lay.addWidget(self.visible_box)
        lay.addLayout(form)

        self.visible_box.toggled.connect(state.set_overlay_visible)
        self.opacity.valueChanged.connect(lambda v: state.set_opacity(v / 100.0))
        state.overlay_changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        s = self.state
        if self.opacity.value() != round(s.opacity * 100):
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(s.opacity * 100))
            self.opacity.blockSignals(False)
        if self.visible_box.isChecked() != s.overlay_visible:
            self.visible_box.blockSignals(True)
            self.visible_box.setChecked(s.overlay_visible)
            self.visible_box.blockSignals(False)
