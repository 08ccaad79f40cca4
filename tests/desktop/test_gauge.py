"""The probability gauge: what it says and where it draws the needle and the threshold."""

from __future__ import annotations

import math

import pytest
from PySide6.QtGui import QColor, QImage

from desktop import theme
from desktop.widgets.qt_gauge import GaugeWidget, value_to_angle


def _render(gauge: GaugeWidget) -> QImage:
    return gauge.grab().toImage()


def _near(img: QImage, x: float, y: float, colour: str, tol: int = 40) -> bool:
    """True when some pixel within 2 px of (x, y) is close to ``colour``."""
    want = QColor(colour)
    dpr = img.devicePixelRatio()
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            c = img.pixelColor(int((x + dx) * dpr), int((y + dy) * dpr))
            if abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < tol:
                return True
    return False


def test_angles_span_240_degrees():
    assert value_to_angle(0.0) == 210.0
    assert value_to_angle(0.5) == 90.0  # straight up
    assert value_to_angle(1.0) == -30.0
    assert value_to_angle(1.7) == -30.0  # clamped


@pytest.mark.parametrize(("p", "thr", "colour"), [(0.87, 0.3, theme.ABOVE), (0.06, 0.3, theme.BELOW)])
def test_needle_points_at_the_probability_in_the_decision_colour(qtbot, p, thr, colour):
    gauge = GaugeWidget()
    qtbot.addWidget(gauge)
    gauge.resize(300, 260)
    gauge.set_result(p, thr)
    assert gauge.number_text() == f"{p * 100:.0f} %"
    assert gauge.needle_angle() == pytest.approx(210 - 240 * p)
    assert gauge.needle_color() == QColor(colour)
    img = _render(gauge)
    center, r = gauge.dial_geometry()
    a = math.radians(gauge.needle_angle())
    x, y = center.x() + 0.75 * r * math.cos(a), center.y() - 0.75 * r * math.sin(a)
    assert _near(img, x, y, colour), "the needle is not painted where the probability is"
    # The threshold mark is drawn in the text colour across the dial's band.
    t = math.radians(gauge.threshold_angle())
    tx, ty = center.x() + (r - 2) * math.cos(t), center.y() - (r - 2) * math.sin(t)
    assert _near(img, tx, ty, theme.TEXT, tol=60)


def test_out_of_scope_is_grey_not_red(qtbot):
    gauge = GaugeWidget()
    qtbot.addWidget(gauge)
    gauge.resize(300, 260)
    gauge.set_result(0.95, 0.3, in_scope=False)
    assert gauge.needle_color() == QColor(theme.UNRELIABLE)
    img = _render(gauge)
    center, r = gauge.dial_geometry()
    a = math.radians(gauge.needle_angle())
    assert _near(img, center.x() + 0.75 * r * math.cos(a), center.y() - 0.75 * r * math.sin(a), theme.UNRELIABLE)
    assert not _near(img, center.x() + 0.75 * r * math.cos(a), center.y() - 0.75 * r * math.sin(a), theme.ABOVE)


def test_empty_gauge_has_no_needle_and_marks_the_threshold_in_use(qtbot):
    gauge = GaugeWidget()
    qtbot.addWidget(gauge)
    assert gauge.caption_text() == "" and gauge.threshold_angle() is None  # no profile: no threshold claimed
    gauge.set_result(0.5, 0.5)
    gauge.clear("Queued", 0.539)
    assert gauge.needle_angle() is None and gauge.number_text() == "—"
    assert gauge.caption_text() == "threshold 53.9 %" and gauge.threshold_angle() == pytest.approx(210 - 240 * 0.539)


@pytest.mark.parametrize(("p", "shown"), [(0.0004, "< 1 %"), (0.9996, "> 99 %"), (0.999, "> 99 %"), (0.004, "< 1 %")])
def test_the_number_never_claims_certainty(qtbot, p, shown):
    gauge = GaugeWidget()
    qtbot.addWidget(gauge)
    gauge.set_result(p, 0.5)
    assert gauge.number_text() == shown


@pytest.mark.parametrize("p, shown", [(0.3, True), (0.44, True), (0.5, False), (0.53, False), (0.7, True)])
def test_the_50_label_gives_way_to_a_needle_that_would_cross_it(qtbot, p, shown):
    gauge = GaugeWidget()
    qtbot.addWidget(gauge)
    gauge.resize(300, 240)
    gauge.set_result(p, 0.225)
    assert gauge.shows_mid_label() is shown
    empty = GaugeWidget()
    qtbot.addWidget(empty)
    assert empty.shows_mid_label()  # no needle: the scale is whole
