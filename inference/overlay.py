"""The picture a person looks at: the radiograph in its default window, Grad-CAM in colour.

Used by the CLI's ``--cam-dir`` and by the PDF report and DICOM Secondary Capture, so the
overlay looks the same wherever it is seen.
"""

from __future__ import annotations

import numpy as np

from .gradcam import resize_cam
from .prediction import Prediction
from .study import Study

FEATHER = 0.1  # CAM range over which the colour fades in above the floor

# The jet colormap as (position, value) breakpoints per channel: blue low, red high.
_JET = (
    ((0.0, 0.35, 0.66, 0.89, 1.0), (0.0, 0.0, 1.0, 1.0, 0.5)),
    ((0.0, 0.125, 0.375, 0.64, 0.91, 1.0), (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)),
    ((0.0, 0.11, 0.34, 0.65, 1.0), (0.5, 1.0, 1.0, 0.0, 0.0)),
)
_JET_LUT = np.stack(
    [np.rint(255.0 * np.interp(np.linspace(0.0, 1.0, 256), x, y)) for x, y in _JET], axis=-1
).astype(np.uint8)


def window_to_uint8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Linear window (center, width) -> 8-bit gray; a zero width falls back to the full range."""
    center, width = float(window[0]), float(window[1])
    img = np.asarray(pixels, dtype=np.float32)
    if not np.isfinite(width) or width <= 0:
        lo, hi = float(img.min()), float(img.max())
    else:
        lo, hi = center - width / 2.0, center + width / 2.0
    if hi <= lo:
        return np.zeros(img.shape, dtype=np.uint8)
    scaled = (img - lo) * (255.0 / (hi - lo))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def jet(cam: np.ndarray) -> np.ndarray:
    """A 0..1 map of any shape -> RGB uint8 (shape + (3,)) through the jet colormap."""
    idx = np.clip(np.asarray(cam, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _JET_LUT[idx]


def render_overlay(study: Study, prediction: Prediction, opacity: float = 0.4, floor: float = 0.2) -> np.ndarray:
    """RGB uint8 [rows, columns, 3]: the windowed study in gray, the CAM blended in where it
    exceeds ``floor`` (weak activations leave the image untouched, so the anatomy stays
    readable), reaching ``opacity`` within FEATHER above the floor so the edge is soft."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    rgb = np.repeat(window_to_uint8(study.pixels, study.window)[..., np.newaxis], 3, axis=2)
    cam = prediction.cam
    if cam.shape != study.shape:
        cam = resize_cam(cam, study.shape)
    alpha = np.clip((cam - floor) * (opacity / FEATHER), 0.0, opacity).astype(np.float32)
    # Blend only where the map shows: on a 3,000-pixel film that is a fraction of the pixels.
    shown = alpha > 0.0
    a = alpha[shown][:, np.newaxis]
    blended = rgb[shown] * (1.0 - a) + jet(cam[shown]) * a
    rgb[shown] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return rgb
