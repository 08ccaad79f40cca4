"""DisplayState -> viewer and controls: changing the state changes what is shown."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.models.display import DisplayState
from desktop.widgets.qt_overlay_controls import OverlayControls
from desktop.widgets.qt_viewer import ViewerWidget, overlay_lut


@pytest.fixture
def viewer(qtbot):
    state = DisplayState()
    v = ViewerWidget(state)
    qtbot.addWidget(v)
    v.resize(400, 400)
    v.show()
    img = np.linspace(0, 4095, 300 * 200, dtype=np.float32).reshape(300, 200)
    v.set_image(img, (2048.0, 4096.0))
    return v


def test_window_state_drives_image_levels(viewer):
    assert viewer.image_item.getLevels() == pytest.approx((0.0, 4096.0))
    viewer.state.set_window(1000.0, 500.0)
    assert viewer.image_item.getLevels() == pytest.approx((750.0, 1250.0))
    viewer.drag_window(30, -20)  # what a right-drag does
    lo, hi = viewer.image_item.getLevels()
    assert hi - lo > 500.0 and (lo + hi) / 2 < 1000.0
    viewer.reset()
    assert viewer.image_item.getLevels() == pytest.approx((0.0, 4096.0))


def test_invert_flips_the_lookup_table(viewer):
    assert viewer.image_item.lut[0, 0] == 0
    viewer.state.toggle_invert()
    assert viewer.image_item.lut[0, 0] == 255 and viewer.image_item.lut[-1, 0] == 0


def test_overlay_is_aligned_and_follows_state(viewer):
    cam = np.zeros((300, 200), np.float32)
    cam[100:200, 50:150] = 1.0
    viewer.set_overlay(cam)
    assert viewer.overlay_item.image.shape == viewer.image_item.image.shape
    assert viewer.overlay_item.mapRectToParent(viewer.overlay_item.boundingRect()) == \
        viewer.image_item.mapRectToParent(viewer.image_item.boundingRect())
    assert viewer.overlay_item.isVisible()
    viewer.state.set_overlay_visible(False)
    assert not viewer.overlay_item.isVisible()
    viewer.state.set_overlay_visible(True)
    viewer.state.set_opacity(0.8)
    assert viewer.overlay_item.opacity() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="does not match"):
        viewer.set_overlay(np.zeros((10, 10), np.float32))


def test_floor_makes_weak_activation_transparent():
    lut = overlay_lut("inferno", 0.5)
    assert lut[:127, 3].max() == 0  # below the floor: invisible
    assert lut[-1, 3] == 255


def test_controls_and_state_stay_in_step(qtbot):
    state = DisplayState()
    controls = OverlayControls(state)
    qtbot.addWidget(controls)
    state.set_opacity(0.7)
    state.set_floor(0.2)
    state.set_colormap("viridis")
    state.set_overlay_visible(False)
    assert controls.opacity.value() == 70 and controls.floor.value() == 20
    assert controls.colormap.currentText() == "viridis" and not controls.visible_box.isChecked()
    assert (controls.legend.colormap, controls.legend.floor) == ("viridis", 0.2)
    controls.floor.setValue(60)
    controls.visible_box.setChecked(True)
    assert state.floor == pytest.approx(0.6) and state.overlay_visible


def test_cursor_reports_pixel_value(viewer, qtbot):
    from PySide6.QtCore import QPointF

    viewer.fit()
    scene_pt = viewer.vb.mapViewToScene(QPointF(100.5, 150.5))
    with qtbot.waitSignal(viewer.cursor_info) as blocker:
        viewer.scene().sigMouseMoved.emit(scene_pt)
    expected = viewer.pixels[150, 100]
    assert blocker.args[0].startswith("x 100, y 150") and f"{expected:.6g}" in blocker.args[0]
