"""DisplayState -> viewer and controls: changing the state changes what is shown."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.models.display import DisplayState
from desktop.widgets.qt_overlay_controls import OverlayControls
from desktop.widgets.qt_viewer import ViewerWidget
from inference import heatmap
from tests.desktop.gui_helpers import make_prediction
from tests.fixtures.maps import FULL_SCALE


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
    flagged = make_prediction(0.9)
    viewer.set_result(flagged)
    # The layer is the renderer's (at most VIEW_LAYER_SIDE a side) stretched over exactly the image.
    assert viewer.overlay_item.image.shape == (300, 200, 4)
    assert viewer.overlay_item.mapRectToParent(viewer.overlay_item.boundingRect()) == \
        viewer.image_item.mapRectToParent(viewer.image_item.boundingRect())
    assert viewer.overlay_item.isVisible()
    viewer.state.set_overlay_visible(False)
    assert not viewer.overlay_item.isVisible()
    viewer.state.set_overlay_visible(True)
    viewer.state.set_opacity(0.8)
    assert viewer.overlay_item.opacity() == pytest.approx(0.8)
    viewer.set_result(make_prediction(0.1))  # below the threshold: muted when shown
    assert viewer.overlay_item.opacity() == pytest.approx(0.8 * heatmap.MUTED_FACTOR)
    viewer.set_result(None)
    assert not viewer.overlay_item.isVisible() and not viewer.legend.isVisibleTo(viewer)


def test_a_big_film_gets_a_bounded_layer_over_all_of_it(qtbot):
    v = ViewerWidget(DisplayState())
    qtbot.addWidget(v)
    v.set_image(np.zeros((4000, 3000), np.float32), (0.5, 1.0))
    v.set_result(make_prediction(0.9))
    assert v.overlay_item.image.shape[:2] == (heatmap.VIEW_LAYER_SIDE, heatmap.VIEW_LAYER_SIDE * 3 // 4)
    rect = v.overlay_item.mapRectToParent(v.overlay_item.boundingRect())
    assert (rect.width(), rect.height()) == (3000, 4000)


def test_controls_and_state_stay_in_step(qtbot):
    state = DisplayState()
    controls = OverlayControls(state)
    qtbot.addWidget(controls)
    state.set_opacity(0.7)
    state.set_overlay_visible(False)
    assert controls.opacity.value() == 70 and not controls.visible_box.isChecked()
    controls.opacity.setValue(40)
    controls.visible_box.setChecked(True)
    assert state.opacity == pytest.approx(0.4) and state.overlay_visible


def test_legend_under_the_film_says_what_the_map_is_or_why_it_is_absent(viewer):
    flagged, below = make_prediction(0.9), make_prediction(0.1)
    viewer.set_result(flagged)
    legend = viewer.legend
    assert legend.isVisibleTo(viewer) and legend.caption.text() == heatmap.caption(flagged, True)
    assert legend.bar.right_label == f"+{FULL_SCALE:.3g} logit / cell" and legend.bar.isVisibleTo(viewer)
    viewer.state.set_overlay_visible(False)
    assert legend.caption.text() == heatmap.caption(flagged, False) and not legend.bar.isVisibleTo(viewer)
    viewer.set_result(below)
    assert legend.caption.text() == "No heat-map: the result is below the review threshold."
    viewer.state.set_overlay_visible(True)
    assert legend.caption.text().startswith("Heat-map muted: the result is below the review threshold")
    # It sits inside the viewer, at the bottom, over the picture.
    assert legend.geometry().bottom() < viewer.height() and legend.geometry().top() > viewer.height() / 2


def test_a_fitted_film_stays_whole_above_the_legend(viewer, qtbot):
    viewer.set_result(make_prediction(0.9))
    viewer.resize(500, 420)  # the window changes size: the film is refitted, still whole

    def whole() -> bool:
        shown = viewer.mapFromScene(viewer.vb.mapViewToScene(viewer.image_item.boundingRect())).boundingRect()
        return shown.top() >= 0 and shown.bottom() <= viewer.legend.geometry().top()

    qtbot.waitUntil(whole, timeout=2000)
