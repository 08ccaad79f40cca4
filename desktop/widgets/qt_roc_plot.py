"""The ROC curve of a site profile's films, with its operating points where they sit.

Shown beside the reliability diagram in Settings → Site calibration and on the calibration
wizard's last page, so a clinic choosing its operating point sees what each one trades:
each point sits at (1 − specificity, sensitivity) with its 95 % intervals as cross-hairs,
the default one ringed. Data: the curve and figures the profile stores, never recomputed
here (the PNG ``lunglens calibrate`` writes is drawn from the same numbers).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt

from inference.decision import Estimate, threshold_text
from inference.profile import SiteProfile

from .. import pgsetup  # noqa: F401 -- global pyqtgraph options
from .. import theme

# Muted, and neither the "above" red nor the "below" green: a point is not a result.
POINT_COLOURS = ("#d9a35b", "#a78bd4", "#6fb7c9", "#c9c27a")


class RocPlot(pg.PlotWidget):
    """Sensitivity against the false-positive rate; the title gives the AUC with its CI."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent=parent)
        self.auc: Estimate | None = None
        self.points: dict[str, tuple[float, float]] = {}  # operating point -> (fpr, sensitivity) drawn
        self.default = ""  # the ringed point
        self._markers: dict[str, pg.PlotDataItem] = {}
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.04)  # points at sensitivity 1 stay whole
        item.setLabel("bottom", "1 − specificity (false-positive rate)")
        item.setLabel("left", "Sensitivity")
        item.showGrid(x=True, y=True, alpha=0.15)
        self.legend = item.addLegend(offset=(-10, -10), labelTextColor=theme.TEXT, brush=pg.mkBrush(theme.SURFACE),
                                     pen=pg.mkPen(theme.BORDER))
        self.legend.setZValue(10)
        self.setMinimumSize(320, 260)
        self.setAccessibleName("ROC curve")
        self.set_profile(None)

    def set_profile(self, profile: SiteProfile | None, default: str | None = None) -> None:
        """Draw the profile's curve and points, ringing ``default`` (None: the profile's own)."""
        item = self.getPlotItem()
        item.clear()  # and the legend's entries
        self.points = {}
        self._markers = {}
        self.auc = profile.metrics.get("auc") if profile else None
        item.plot([0, 1], [0, 1], pen=pg.mkPen(theme.TEXT_DIM, width=1, style=Qt.PenStyle.DashLine))
        self.legend.setVisible(bool(profile and profile.roc))
        if profile is None or not profile.roc:
            note = pg.TextItem("No ROC curve in this site profile", color=theme.TEXT_DIM, anchor=(0.5, 0.5))
            note.setPos(0.5, 0.5)
            item.addItem(note)
            item.setTitle("ROC: not available")
            return
        fpr, tpr = zip(*profile.roc)
        item.plot(list(fpr), list(tpr), pen=pg.mkPen(theme.ACCENT, width=2), name="ROC curve")
        for colour, op in zip(POINT_COLOURS, profile.operating_points.values()):
            if op.sensitivity is None or op.specificity is None:
                continue
            x, y = 1.0 - op.specificity.value, op.sensitivity.value
            sens, spec = op.sensitivity, op.specificity
            # Both 95 % intervals as one cross (two segments), then the point itself.
            item.plot([1.0 - spec.hi, 1.0 - spec.lo, x, x], [y, y, sens.lo, sens.hi], connect="pairs",
                      pen=pg.mkPen(colour, width=1.5))
            self._markers[op.name] = item.plot([x], [y], pen=None, symbol="o", symbolBrush=pg.mkBrush(colour),
                                               name=f"{op.display_name} ({threshold_text(op.threshold)})")
            self.points[op.name] = (x, y)
        self.set_default(default or profile.default_operating_point)
        item.setTitle(f"AUC {self.auc.plain()}, 95 % CI" if self.auc else "ROC")

    def set_default(self, name: str) -> None:
        """Ring the default operating point (cheap: the wizard calls it as the user chooses)."""
        self.default = name
        for key, marker in self._markers.items():
            chosen = key == name
            marker.setSymbolSize(14 if chosen else 10)
            marker.setSymbolPen(pg.mkPen(theme.TEXT, width=2.5) if chosen else pg.mkPen(theme.BACKGROUND))
