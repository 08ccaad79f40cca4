"""The heat-map legend under the film: its caption is read whole on a small screen too."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QBoxLayout, QWidget

from desktop.widgets.qt_heatmap_legend import HeatmapLegend
from tests.desktop.gui_helpers import make_prediction

pytestmark = pytest.mark.gui


def test_the_caption_goes_above_the_colour_bar_when_there_is_no_room_beside_it(qtbot) -> None:
    holder = QWidget()  # as under the film: a child, not a window of its own
    holder.resize(800, 200)
    qtbot.addWidget(holder)
    legend = HeatmapLegend(holder)
    legend.show_for(make_prediction(0.9), shown=True)
    holder.show()
    legend.resize(700, 60)
    qtbot.waitUntil(lambda: legend._layout.direction() is QBoxLayout.Direction.LeftToRight)
    legend.resize(300, 120)  # the film's column on a 1024 x 600 laptop
    qtbot.waitUntil(lambda: legend._layout.direction() is QBoxLayout.Direction.TopToBottom)
    qtbot.waitUntil(lambda: legend.caption.width() > legend.bar.width())  # the whole width for the words
    assert "not an outline of a lesion" in legend.caption.text()
