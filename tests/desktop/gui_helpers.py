"""Helpers shared by the desktop tests: waiting for the window, and results with stated values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.decision import Estimate, OperatingPoint
from inference.prediction import ModelInfo, Prediction
from inference.profile import ProfileInfo, SiteProfile

REPO = Path(__file__).resolve().parents[2]
SHIPPED_PROFILE = REPO / "resources" / "models" / "lunglens-cxr.profile.json"

MODEL = ModelInfo(name="lunglens-test", version="0.0-test", sha256="c0ffee" * 10 + "abcd")
POINT = OperatingPoint("high_sensitivity", 0.35, Estimate(0.954, 0.92, 0.983), Estimate(0.81, 0.75, 0.862),
                       "screening default")
PROFILE = ProfileInfo("test site", "ab12" * 16, "site sample (test): 292 films (117 NORMAL, 175 PNEUMONIA)")


def wait_idle(qtbot, controller, timeout_ms: int = 120_000) -> None:
    """Until nothing is queued or being listed and the study on screen is fully shown."""
    qtbot.waitUntil(lambda: controller.idle, timeout=timeout_ms)


def shipped_profile() -> SiteProfile:
    """The site profile the bundled model ships with (its values change with the model)."""
    return SiteProfile.load(SHIPPED_PROFILE)


def make_prediction(probability: float, operating: OperatingPoint = POINT, *, shape: tuple[int, int] = (0, 0),
                    in_scope: bool = True, scope_reasons: Sequence[str] = (), warnings: Sequence[str] = (),
                    model: ModelInfo = MODEL, profile: ProfileInfo | None = PROFILE) -> Prediction:
    """A result with stated values and a smooth Grad-CAM peaked at the centre of ``shape``."""
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    cam = np.exp(-(((xx - cols / 2) / max(cols / 4, 1)) ** 2 + ((yy - rows / 2) / max(rows / 4, 1)) ** 2))
    return Prediction(probability=probability, operating=operating, cam=cam.astype(np.float32), model=model,
                      provider="CPUExecutionProvider", timings_ms={"inference": 12.5}, warnings=list(warnings),
                      in_scope=in_scope, scope_reasons=list(scope_reasons), profile=profile,
                      embedding=np.ones(8, np.float32))
