"""The picture of a result that leaves the window: the film in a window, the heat-map over it.

Used by the CLI's ``--cam-dir``, the PDF report and the DICOM Secondary Capture, with the
same layer (:func:`inference.heatmap.layer`) the viewer draws, so what is exported is what
was on screen. Pictures are at most ``heatmap.MAX_LAYER_SIDE`` a side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import heatmap
from .imageops import resize_area
from .prediction import Prediction
from .study import Study


@dataclass(frozen=True)
class Picture:
    """An exported film: RGB uint8 [rows, columns, 3] and the sentence that goes beside it."""

    rgb: np.ndarray
    caption: str
    heatmap_shown: bool


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


def render_picture(
    study: Study,
    prediction: Prediction,
    *,
    shown: bool | None = None,
    opacity: float = heatmap.DEFAULT_OPACITY,
    window: tuple[float, float] | None = None,
) -> Picture:
    """The film (in ``window``, default the study's own) with the heat-map as the viewer draws it.

    ``shown`` None follows :func:`inference.heatmap.applies` (in scope and at or above the
    threshold); True draws it anyway, muted where it does not apply; False leaves it off.
    """
    visible = heatmap.applies(prediction) if shown is None else bool(shown and prediction.attribution is not None)
    grey = window_to_uint8(study.pixels, window or study.window)
    size = heatmap.layer_shape(grey.shape)
    if size != grey.shape:
        grey = np.clip(resize_area(grey, size) + 0.5, 0, 255).astype(np.uint8)
    rgba = None
    if visible and prediction.attribution is not None:
        rgba = heatmap.layer(prediction.attribution, size, heatmap.style_for(prediction, opacity))
    return Picture(heatmap.composite(grey, rgba), heatmap.caption(prediction, visible), visible)


_ASCII = str.maketrans({"\u2014": "-", "\u2013": "-", "\u00b7": "-", "\u2265": ">=", "\u2264": "<=",
                        "\u00d7": "x", "\u2026": "...", "\u00a0": " "})


def ascii_text(text: str) -> str:
    """``text`` in plain ASCII (dashes, times signs, ellipses spelt out): all that the
    built-in font is sure to draw."""
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def burn_in(image: np.ndarray, lines: list[str], caution: Callable[[str], bool] = lambda _line: False) -> np.ndarray:
    """``image`` (RGB uint8) with a black band below it holding ``lines`` in white (amber for
    the lines ``caution`` picks), so the words travel with the picture.

    The font scales with the image width and long lines wrap at word boundaries, so the
    text stays legible on a 224-pixel image and on a 3,000-pixel one.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
    width = image.shape[1]
    font = ImageFont.load_default(size=max(11.0, width / 56.0))
    margin = max(4, width // 100)
    rows = [(part, (255, 210, 0) if caution(line) else (255, 255, 255))
            for line in lines for part in _wrap(line, font, width - 2 * margin)]
    line_height = round(font.size * 1.45)
    band = Image.new("RGB", (width, line_height * len(rows) + 2 * margin))
    draw = ImageDraw.Draw(band)
    for i, (text, colour) in enumerate(rows):
        draw.text((margin, margin + i * line_height), text, fill=colour, font=font)
    return np.ascontiguousarray(np.vstack([image, np.asarray(band)]))


def _wrap(line: str, font: ImageFont.FreeTypeFont, room: float) -> list[str]:
    """Greedy word wrap to ``room`` pixels (a word longer than that gets a row of its own)."""
    rows: list[str] = []
    for word in line.split(" "):
        if rows and font.getlength(f"{rows[-1]} {word}") <= room:
            rows[-1] = f"{rows[-1]} {word}"
        else:
            rows.append(word)
    return rows or [""]
