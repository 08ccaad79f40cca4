"""The reliability diagram shows the bundled model's validation calibration from its manifest."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from desktop.widgets.qt_reliability_plot import ReliabilityPlot
from inference.engine import find_manifest
from inference.manifest import ModelManifest

pytestmark = pytest.mark.gui


def test_plot_shows_the_manifests_bins_and_ece(qtbot) -> None:
    manifest = ModelManifest.load(find_manifest())
    calibration = manifest.raw["calibration"]
    plot = ReliabilityPlot()
    qtbot.addWidget(plot)
    plot.set_manifest(manifest)
    plot.show()

    shown = [b for b in calibration["reliability"] if b["count"] > 0]
    assert plot.bins == shown and shown
    assert sum(b["count"] for b in plot.bins) == manifest.raw["validation"]["n_images"]
    assert plot.ece == pytest.approx(calibration["ece_after"])
    assert f"ECE {calibration['ece_after'] * 100:.1f} %" in plot.summary_text()
    bars = [i for i in plot.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1
    assert list(bars[0].opts["height"]) == pytest.approx([b["observed_fraction"] for b in shown])


def test_plot_without_calibration_says_so(qtbot) -> None:
    plot = ReliabilityPlot()
    qtbot.addWidget(plot)
    plot.set_calibration({"method": "none"})
    assert plot.bins == [] and plot.ece is None
    assert "not available" in plot.getPlotItem().titleLabel.text
