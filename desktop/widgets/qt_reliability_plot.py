"""The reliability diagram of the site profile in use, with its ECE.

It answers "when LungLens says 80 %, is it right 80 % of the time?": each bar is one bin of
calibrated probabilities, its height the fraction of those films that really had pneumonia;
a calibrated model's bars follow the diagonal. Data: the profile's films (the shipped
profile's are the site sample), as the profile records them, never recomputed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from inference.decision import Estimate, probability_text
from inference.profile import SiteProfile

from .. import pgsetup  # noqa: F401 -- global pyqtgraph options
from .. import theme


class ReliabilityPlot(pg.PlotWidget):
    """Observed pneumonia fraction per bin of predicted probability; title gives the ECE."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent=parent)
        self.ece: Estimate | None = None
        self.ece_before: Estimate | None = None
        self.bins: list[dict[str, float]] = []  # the non-empty bins shown
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.04)  # dots at 0 or 1 stay whole
        item.setLabel("bottom", "Predicted probability of pneumonia (calibrated)")
        item.setLabel("left", "Observed fraction with pneumonia")
        item.showGrid(x=True, y=True, alpha=0.15)
        self.setMinimumSize(320, 260)
        self.setAccessibleName("Reliability diagram")
        self.set_profile(None)

    def set_profile(self, profile: SiteProfile | None) -> None:
        """Draw the profile's diagram (None, or a profile without one: say there is none)."""
        item = self.getPlotItem()
        item.clear()
        self.bins = [b for b in (profile.reliability if profile else []) if int(b.get("count", 0)) > 0]
        metrics = profile.metrics if profile else {}
        self.ece, self.ece_before = metrics.get("ece_after"), metrics.get("ece_before")
        item.plot([0, 1], [0, 1], pen=pg.mkPen(theme.TEXT_DIM, width=1, style=Qt.PenStyle.DashLine))
        if not self.bins:
            note = pg.TextItem("No calibration data in this site profile", color=theme.TEXT_DIM, anchor=(0.5, 0.5))
            note.setPos(0.5, 0.5)
            item.addItem(note)
            item.setTitle("Reliability: not available")
            return
        lo = np.array([b["lo"] for b in self.bins], float)
        hi = np.array([b["hi"] for b in self.bins], float)
        observed = np.array([b["observed_fraction"] for b in self.bins], float)
        predicted = np.array([b["mean_predicted"] for b in self.bins], float)
        counts = np.array([b["count"] for b in self.bins], float)
        accent = pg.mkColor(theme.ACCENT)
        fill = pg.mkColor(theme.ACCENT)
        fill.setAlpha(110)
        item.addItem(pg.BarGraphItem(x0=lo, x1=hi, height=observed, brush=fill, pen=pg.mkPen(accent, width=1)))
        # Dots at each bin's mean prediction; their area grows with the number of images.
        sizes = 6 + 14 * np.sqrt(counts / counts.max())
        item.plot(predicted, observed, pen=None, symbol="o", symbolSize=sizes,
                  symbolBrush=pg.mkBrush(theme.TEXT), symbolPen=pg.mkPen(theme.BACKGROUND))  # fmt: skip
        # Two short lines: as one, the title held the plot wider than half of an 800-pixel screen
        # and Settings cut its right side off.
        item.setTitle(self.summary_text(between="<br>"))
        tips = "\n".join(
            f"{b['lo'] * 100:.0f}–{b['hi'] * 100:.0f} %: {round(b['observed_fraction'] * b['count'])} of "
            f"{int(b['count'])} films had pneumonia; mean predicted {probability_text(b['mean_predicted'])}"
            for b in self.bins
        )
        self.setToolTip(tips)

    def summary_text(self, between: str = "; ") -> str:
        """The ECE after calibration and, ``between`` them, before it, with their 95 % CIs."""
        if self.ece is None:
            return "Reliability of the site profile"
        parts = [f"ECE {self.ece.percent()}, 95 % CI"]
        if self.ece_before is not None:
            parts.append(f"before calibration {self.ece_before.percent()}")
        return between.join(parts)
