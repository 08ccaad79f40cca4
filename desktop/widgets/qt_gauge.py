"""The probability gauge: a dial 0-100 % with needle, threshold mark, coloured bands.

Painted by hand so it reads at a glance across a dark room: the big number, where the
threshold sits, and which side of it the needle points. The number, the threshold and the
colours come from :mod:`inference.decision` and :mod:`inference.presentation`, as everywhere
else. Empty, it still marks the threshold of the operating point in use, so the dial never
shows a threshold that is not the one results will be read at. The geometry (angles) is
exposed so tests can check what is drawn without comparing pictures.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from inference import decision, presentation

from .. import theme

START_DEG = 210.0  # angle (Qt convention: counter-clockwise from 3 o'clock) of 0 %
SPAN_DEG = 240.0  # clockwise sweep to 100 %


def value_to_angle(value: float) -> float:
    """Dial angle in degrees (counter-clockwise from 3 o'clock) for a probability 0..1."""
    v = min(max(value, 0.0), 1.0)
    return START_DEG - SPAN_DEG * v


class GaugeWidget(QWidget):
    """Shows one probability against one threshold; empty when there is no result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value: float | None = None
        self._threshold: float | None = None  # unknown until the profile in use is
        self._in_scope = True
        self._pending_text = "No study"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumSize(220, 200)
        self.setAccessibleName("Pneumonia probability gauge")

    # -- state ---------------------------------------------------------------------------------
    def set_result(self, probability: float, threshold: float, in_scope: bool = True) -> None:
        self._value = float(probability)
        self._threshold = float(threshold)
        self._in_scope = bool(in_scope)
        self.setAccessibleDescription(self.number_text())
        self.update()

    def clear(self, text: str = "No study", threshold: float | None = None) -> None:
        """No result: ``text`` in the dial, and the threshold results will be read at."""
        self._value = None
        self._threshold = threshold
        self._pending_text = text
        self.setAccessibleDescription(text)
        self.update()

    @property
    def pending_text(self) -> str:
        return self._pending_text

    @property
    def value(self) -> float | None:
        return self._value

    @property
    def threshold(self) -> float | None:
        return self._threshold

    @property
    def in_scope(self) -> bool:
        return self._in_scope

    def number_text(self) -> str:
        if self._value is None:
            return "—"
        return decision.probability_text(self._value, self._threshold if self._in_scope else None)

    def needle_angle(self) -> float | None:
        return None if self._value is None else value_to_angle(self._value)

    def threshold_angle(self) -> float | None:
        return None if self._threshold is None else value_to_angle(self._threshold)

    def caption_text(self) -> str:
        if self._threshold is None:
            return ""
        beside = self._value if self._value is not None and self._in_scope else None
        return f"threshold {decision.threshold_text(self._threshold, beside)}"

    def needle_color(self) -> QColor:
        if self._value is None or self._threshold is None:
            return theme.color(theme.UNRELIABLE)
        return theme.color(theme.TONE[presentation.tone(self._value, self._threshold, self._in_scope)])

    def shows_mid_label(self) -> bool:
        """Whether "50" is drawn inside the top of the dial: not when the needle would run
        through it (a probability near 50 %, which the number in the middle says anyway)."""
        angle = self.needle_angle()
        if angle is None:
            return True
        _, r = self.dial_geometry()
        # The label is about 0.2 r wide at about 0.72 r from the centre; the needle 0.09 r wide.
        half_width_deg = math.degrees(math.atan2(0.1 * r + 0.045 * r + 2, 0.72 * r))
        return abs(angle - 90.0) > half_width_deg

    def sizeHint(self) -> QSize:
        return QSize(280, 240)

    # -- painting ------------------------------------------------------------------------------
    TOP_MARGIN = 10.0
    SIDE_MARGIN = 18.0

    def dial_geometry(self) -> tuple[QPointF, float]:
        """(centre, outer radius) of the dial for the current size."""
        w, h = self.width(), self.height()
        # Below the centre: the ends of the dial and their labels, down to about 0.7 r.
        r = max(20.0, min((w - 2 * self.SIDE_MARGIN) / 2.0, (h - self.TOP_MARGIN - 6) / 1.72))
        return QPointF(w / 2.0, self.TOP_MARGIN + r), r

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        center, r = self.dial_geometry()
        band = max(8.0, r * 0.12)
        arc_r = r - band / 2
        arc_rect = QRectF(center.x() - arc_r, center.y() - arc_r, 2 * arc_r, 2 * arc_r)
        empty = self._value is None
        unreliable = not empty and not self._in_scope

        # Coloured bands either side of the threshold; grey when empty or not reliable.
        thr_angle = self.threshold_angle()
        split = START_DEG if thr_angle is None else thr_angle
        for a0, a1, col in ((START_DEG, split, theme.BELOW), (split, START_DEG - SPAN_DEG, theme.ABOVE)):
            c = QColor(theme.UNRELIABLE if (unreliable or empty) else col)
            c.setAlpha(70 if (empty or unreliable) else 165)
            p.setPen(QPen(c, band, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap))
            p.drawArc(arc_rect, int(a0 * 16), int((a1 - a0) * 16))

        # Ticks every 10 %; "0" and "100" under the ends of the dial, "50" inside the top.
        small = QFont(self.font())
        small.setPixelSize(max(10, int(r * 0.11)))
        p.setFont(small)
        fm = p.fontMetrics()
        p.setPen(QPen(theme.color(theme.TEXT_DIM), 1.2))
        for i in range(11):
            a = math.radians(value_to_angle(i / 10))
            inner = r - band - (7 if i % 5 == 0 else 4)
            p.drawLine(_polar(center, inner, a), _polar(center, r - band - 1, a))
        for v, text in ((0.0, "0"), (1.0, "100")):
            end = _polar(center, arc_r, math.radians(value_to_angle(v)))
            p.drawText(QRectF(end.x() - 20, end.y() + band / 2 + 1, 40, fm.height()), Qt.AlignmentFlag.AlignCenter, text)
        if self.shows_mid_label():
            top = _polar(center, r - band - 9 - fm.height() / 2, math.radians(90))
            p.drawText(QRectF(top.x() - 20, top.y() - fm.height() / 2, 40, fm.height()), Qt.AlignmentFlag.AlignCenter,
                       "50")

        # Threshold mark: a bright bar across the band, slightly beyond it.
        if thr_angle is not None:
            a = math.radians(thr_angle)
            p.setPen(QPen(theme.color(theme.TEXT), 3.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            p.drawLine(_polar(center, r - band - 3, a), _polar(center, r + 3, a))

        # The needle: a tapered pointer on the outer half, so the centre stays free for the number.
        angle = self.needle_angle()
        if angle is not None:
            a = math.radians(angle)
            tip = _polar(center, r - band * 0.35, a)
            base = _polar(center, r * 0.62, a)
            half = r * 0.045
            path = QPainterPath(tip)
            path.lineTo(QPointF(base.x() + half * math.cos(a + math.pi / 2), base.y() - half * math.sin(a + math.pi / 2)))
            path.lineTo(QPointF(base.x() + half * math.cos(a - math.pi / 2), base.y() - half * math.sin(a - math.pi / 2)))
            path.closeSubpath()
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.needle_color())
            p.drawPath(path)
            p.drawEllipse(base, half, half)

        # The big number in the middle, the threshold caption under it.
        big = QFont(self.font())
        big.setPixelSize(max(16, int(r * 0.36)))
        big.setWeight(QFont.Weight.DemiBold)
        p.setFont(big)
        p.setPen(theme.color(theme.TEXT if not empty and self._in_scope else theme.TEXT_DIM))
        num_h = QFontMetrics(big).height()
        num_rect = QRectF(center.x() - r, center.y() - num_h * 0.55, 2 * r, num_h)
        p.drawText(num_rect, Qt.AlignmentFlag.AlignCenter, self.number_text())
        p.setFont(small)
        p.setPen(theme.color(theme.TEXT_DIM))
        caption = QRectF(center.x() - r, num_rect.bottom(), 2 * r, fm.height())
        p.drawText(caption, Qt.AlignmentFlag.AlignCenter, self.caption_text())
        if empty:
            p.drawText(QRectF(center.x() - r, num_rect.top() - fm.height() * 1.4, 2 * r, fm.height() * 1.2),
                       Qt.AlignmentFlag.AlignCenter, self._pending_text)
        p.end()


def _polar(center: QPointF, radius: float, angle_rad: float) -> QPointF:
    """Point at ``radius`` from ``center``; Qt's y axis points down."""
    return QPointF(center.x() + radius * math.cos(angle_rad), center.y() - radius * math.sin(angle_rad))
