"""Helpers shared by the desktop tests: waiting for the window, and results with stated values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.decision import Estimate, OperatingPoint
from inference.prediction import ModelInfo, Prediction
from inference.profile import ProfileInfo, SiteProfile
from tests.fixtures.maps import centre_peaked

REPO = Path(__file__).resolve().parents[2]
SHIPPED_PROFILE = REPO / "resources" / "models" / "lunglens-cxr.profile.json"

MODEL = ModelInfo(name="lunglens-test", version="0.0-test", sha256="c0ffee" * 10 + "abcd")
POINT = OperatingPoint("high_sensitivity", 0.35, Estimate(0.954, 0.92, 0.983), Estimate(0.81, 0.75, 0.862),
                       "screening default")
PROFILE = ProfileInfo("test site", "ab12" * 16, "site sample (test): 292 films (117 NORMAL, 175 PNEUMONIA)")


def mouse_drag(viewer, dx: int, dy: int, button=None) -> None:  # noqa: ANN001 -- Qt objects
    """A real drag (right button unless told) across the viewer's viewport, as mouse events,
    paced as a hand moves: pyqtgraph drops moves closer together than its mouse rate limit."""
    import pyqtgraph as pg
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    button = Qt.MouseButton.RightButton if button is None else button
    vp = viewer.viewport()
    start = QPointF(vp.width() / 2, vp.height() / 2)
    none = Qt.KeyboardModifier.NoModifier

    def send(kind: QEvent.Type, pt: QPointF, changed, held) -> None:  # noqa: ANN001
        QApplication.sendEvent(vp, QMouseEvent(kind, pt, vp.mapToGlobal(pt), changed, held, none))

    rate = pg.getConfigOption("mouseRateLimit")  # moves per second; 0: no limit
    pause_ms = int(1000 / rate) + 2 if rate > 0 else 0
    send(QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, 11):
        QTest.qWait(pause_ms)
        send(QEvent.Type.MouseMove, start + QPointF(dx * i / 10, dy * i / 10), Qt.MouseButton.NoButton, button)
    send(QEvent.Type.MouseButtonRelease, start + QPointF(dx, dy), button, Qt.MouseButton.NoButton)


def wait_idle(qtbot, controller, timeout_ms: int = 120_000) -> None:
    """Until nothing is queued or being listed and the study on screen is fully shown."""
    qtbot.waitUntil(lambda: controller.idle, timeout=timeout_ms)


def shipped_profile() -> SiteProfile:
    """The site profile the bundled model ships with (its values change with the model)."""
    return SiteProfile.load(SHIPPED_PROFILE)


def make_prediction(probability: float, operating: OperatingPoint = POINT, *,
                    in_scope: bool = True, scope_reasons: Sequence[str] = (), warnings: Sequence[str] = (),
                    model: ModelInfo = MODEL, profile: ProfileInfo | None = PROFILE) -> Prediction:
    """A result with stated values and a smooth attribution map peaked at the centre."""
    return Prediction(probability=probability, operating=operating, attribution=centre_peaked(), model=model,
                      provider="CPUExecutionProvider", timings_ms={"inference": 12.5}, warnings=list(warnings),
                      in_scope=in_scope, scope_reasons=list(scope_reasons), profile=profile,
                      embedding=np.ones(8, np.float32))


def open_window(qtbot, app_settings):
    """A main window on ``app_settings``' data directory, shown: what the user sees after
    (re)opening the app."""
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    win = MainWindow(StudyController(app_settings))
    qtbot.addWidget(win)
    win.show()
    return win


def close_window(win) -> None:
    """Close ``win`` and check its analysis process and threads stopped."""
    win.close()
    assert win.controller.worker.shutdown(10.0)
