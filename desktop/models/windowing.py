"""Window presets for radiographs.

CT presets are fixed Hounsfield ranges; a radiograph's values are not calibrated (they
depend on detector, exposure and processing), so these presets are placed on the image's
own histogram: lung spreads the dark (air-filled) part, bone the bright part, soft tissue
the middle, full range everything.
"""

from __future__ import annotations

import numpy as np

PRESETS = ("default", "lung", "soft tissue", "bone", "full range")

# (low percentile, high percentile) of the image's pixel values.
_PERCENTILES = {
    "lung": (0.5, 65.0),
    "soft tissue": (15.0, 95.0),
    "bone": (45.0, 99.8),
    "full range": (0.0, 100.0),
}


def preset_window(pixels: np.ndarray, name: str, default: tuple[float, float]) -> tuple[float, float]:
    """(center, width) of preset ``name`` for this image; "default" is the study's own window."""
    if name == "default":
        return default
    if name not in _PERCENTILES:
        raise ValueError(f"unknown window preset {name!r}; choose from {PRESETS}")
    lo_p, hi_p = _PERCENTILES[name]
    sample = pixels[:: max(1, pixels.shape[0] // 512), :: max(1, pixels.shape[1] // 512)]
    lo, hi = (float(v) for v in np.percentile(sample, [lo_p, hi_p]))
    if name == "full range":
        lo, hi = float(pixels.min()), float(pixels.max())
    width = max(hi - lo, 1e-6)
    return lo + width / 2.0, width


# Below this width a window is shown with one decimal (e.g. an image of values 0..1).
_SMALL_RANGE = 10.0


def window_text(center: float, width: float) -> str:
    """"level 1777, width 3000": whole numbers as a reader reads them, one decimal for small ranges."""
    digits = 1 if width < _SMALL_RANGE else 0

    def shown(value: float) -> str:
        return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: never "-0"

    return f"level {shown(center)}, width {shown(width)}"
