"""The reliability diagram shows the site profile's calibration as the profile records it."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from desktop.widgets.qt_reliability_plot import ReliabilityPlot
from tests.desktop.gui_helpers import shipped_profile

pytestmark = pytest.mark.gui


def test_plot_shows_the_profiles_bins_and_ece(qtbot) -> None:
    profile = shipped_profile()
    plot = ReliabilityPlot()
    qtbot.addWidget(plot)
    plot.set_profile(profile)
    plot.show()

    shown = [b for b in profile.reliability if b["count"] > 0]
    assert plot.bins == shown and shown
    assert sum(b["count"] for b in plot.bins) == profile.n_normal + profile.n_pneumonia
    assert plot.ece == profile.metrics["ece_after"]
    assert f"ECE {profile.metrics['ece_after'].percent()}" in plot.summary_text()
    bars = [i for i in plot.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1
    assert list(bars[0].opts["height"]) == pytest.approx([b["observed_fraction"] for b in shown])
    assert " 0 %" not in plot.toolTip() and "100 %" not in plot.toolTip().replace("–100 %", "")


def test_plot_without_calibration_says_so(qtbot) -> None:
    plot = ReliabilityPlot()
    qtbot.addWidget(plot)
    plot.set_profile(None)
    assert plot.bins == [] and plot.ece is None
    assert "not available" in plot.getPlotItem().titleLabel.text
