"""Heat-map controls: show/hide, opacity, floor, colour map -- all bound to the DisplayState."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QVBoxLayout, QWidget
from superqt import QLabeledSlider

from ..models.display import COLORMAPS, DisplayState
from .qt_colorbar import ColorBarWidget


class OverlayControls(QGroupBox):
    """Edits the overlay part of a :class:`DisplayState` and follows it when others change it."""

    def __init__(self, state: DisplayState, parent: QWidget | None = None) -> None:
        super().__init__("Heat-map (Grad-CAM)", parent)
        self.state = state
        self.visible_box = QCheckBox("Show heat-map  (H)")
        self.opacity = QLabeledSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the heat-map, %")
        self.floor = QLabeledSlider(Qt.Orientation.Horizontal)
        self.floor.setRange(0, 95)
        self.floor.setToolTip("Hide activation weaker than this, % of the strongest")
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.legend = ColorBarWidget()

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Opacity %", self.opacity)
        form.addRow("Hide below %", self.floor)
        form.addRow("Colours", self.colormap)
        lay = QVBoxLayout(self)
        lay.addWidget(self.visible_box)
        lay.addLayout(form)
        lay.addWidget(self.legend)

        self.visible_box.toggled.connect(state.set_overlay_visible)
        self.opacity.valueChanged.connect(lambda v: state.set_opacity(v / 100.0))
        self.floor.valueChanged.connect(lambda v: state.set_floor(v / 100.0))
        self.colormap.currentTextChanged.connect(state.set_colormap)
        state.overlay_changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        s = self.state
        for w, v in ((self.opacity, round(s.opacity * 100)), (self.floor, round(s.floor * 100))):
            if w.value() != v:
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)
        if self.visible_box.isChecked() != s.overlay_visible:
            self.visible_box.blockSignals(True)
            self.visible_box.setChecked(s.overlay_visible)
            self.visible_box.blockSignals(False)
        if self.colormap.currentText() != s.colormap:
            self.colormap.blockSignals(True)
            self.colormap.setCurrentText(s.colormap)
            self.colormap.blockSignals(False)
        self.legend.set_colormap(s.colormap, s.floor)
