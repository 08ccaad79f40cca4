"""Pixel helpers shared by the DICOM and raster loaders: size limits, reduction of huge
images, grey conversion, the default window when the file gives none."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from inference.errors import UnsupportedStudyError
from inference.study import Study

# Refused before any decoder allocates: no radiograph is this big, a corrupt header is.
MAX_SIDE = 20_000
MAX_PIXELS = 400_000_000
# Below this there is no picture to show or to analyse: the file is refused as unreadable.
MIN_SIDE = 32
MIN_SHORT_SIDE = 128
"""Films with fewer pixels than this on the short side are out of scope: too small to judge.

The model was trained and validated on 224 px films (which it reads reduced to its input size).
Below 128 px the detail a reader would check a result against is gone, and nothing was
validated there. The image tests do not catch such films -- a shrunken chest film still looks
like a chest film (none of 12 training films reduced to 64 px was flagged) -- so the gate
(:mod:`inference.ood`) refuses them by size, with that reason, rather than show a confident
number beside a "small image" warning. Films between :data:`MIN_SIDE` and this are shown."""
# Images above this are shown and analysed reduced by a whole factor (a block mean), so a
# study costs at most ~200 MB as float32 whatever its size: the largest chest films are
# under 20 megapixels, a 50-micron film digitisation about 60.
WORK_PIXELS = 50_000_000
# The window shows a study at most this many pixels on its long side (a whole-factor block
# mean above it): more than any screen, and the viewer, its window/level and its heat-map
# layer stay small and quick. Analysis and exports do not use this (exports draw at
# heatmap.MAX_LAYER_SIDE).
DISPLAY_MAX_SIDE = 4096
_SHOWN_AT = "Shown at "  # how for_display's note begins
# Percentiles for a default window that ignores collimator edges and burnt-in labels.
WINDOW_PERCENTILES = (0.5, 99.5)
# Percentiles are taken on a strided sample of about this many pixels: same answer, far faster.
_WINDOW_SAMPLE = 100_000


def check_size(path: Path, width: int, height: int) -> None:
    """Refuse empty, tiny and absurdly large images with a reason a person can act on."""
    if width <= 0 or height <= 0:
        raise UnsupportedStudyError(path, f"image has no pixels ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise UnsupportedStudyError(
            path,
            f"image is too large ({width}x{height} px; the limit is {MAX_SIDE:,} px a side "
            f"and {MAX_PIXELS // 1_000_000} megapixels)",
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise UnsupportedStudyError(
            path,
            f"image is too small ({width}x{height} px): LungLens judges films of at least "
            f"{MIN_SHORT_SIDE} px on the short side",
        )


def reduction_factor(width: int, height: int) -> int:
    """The smallest whole factor that brings ``width * height`` to WORK_PIXELS or below."""
    return max(1, math.ceil(math.sqrt(width * height / WORK_PIXELS)))


def reduce_pixels(
    img: np.ndarray, factor: int, convert: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """``convert(img)`` reduced by ``factor`` (mean of factor x factor blocks, same dtype).

    Done in bands of rows so that neither ``convert`` nor the sums ever hold more than a
    band of the full-size image: on a 400-megapixel film that is the difference between
    a few megabytes and gigabytes.
    """
    if factor == 1:
        return convert(img) if convert is not None else img
    height, width = img.shape[0] // factor, img.shape[1] // factor
    band = max(1, (1 << 22) // max(1, width * factor * factor))  # output rows per band, ~4M inputs
    out: np.ndarray | None = None
    for top in range(0, height, band):
        rows = min(band, height - top)
        part = img[top * factor : (top + rows) * factor, : width * factor]
        if convert is not None:
            part = convert(part)
        blocks = part.reshape(rows, factor, width, factor, *part.shape[2:])
        mean = blocks.mean(axis=(1, 3), dtype=np.float64)
        if out is None:
            out = np.empty((height, width, *part.shape[2:]), dtype=part.dtype)
        out[top : top + rows] = np.rint(mean) if part.dtype.kind in "iu" else mean
    assert out is not None
    return out


def for_display(study: Study, max_side: int = DISPLAY_MAX_SIDE) -> Study:
    """``study`` with its pixels reduced by the smallest whole factor that brings the long side
    to ``max_side`` or below (itself when it already is), saying so among its warnings."""
    rows, cols = study.shape
    factor = math.ceil(max(rows, cols) / max_side)
    if factor <= 1:
        return study
    pixels = reduce_pixels(study.pixels, factor)
    note = (f"{_SHOWN_AT}{pixels.shape[1]}x{pixels.shape[0]} px (1/{factor} of {cols}x{rows}) to keep the "
            "window responsive; the result does not depend on it.")
    return replace(study, pixels=pixels, warnings=[*study.warnings, note])


def display_note(study: Study) -> str:
    """What :func:`for_display` said of ``study`` ("" if it is shown whole)."""
    return next((w for w in study.warnings if w.startswith(_SHOWN_AT)), "")


def robust_window(pixels: np.ndarray) -> tuple[float, float]:
    """(center, width) spanning the 0.5th..99.5th percentiles of the image."""
    step = max(1, int(math.sqrt(pixels.size / _WINDOW_SAMPLE)))
    sample = pixels[::step, ::step]
    lo, hi = (float(v) for v in np.percentile(sample, WINDOW_PERCENTILES))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo + hi) / 2.0, hi - lo


def to_gray(img: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """A (h, w, c) RGB(A) image -> (2-D grey image, had real colour, had transparency).

    Many "RGB" radiographs (the training set included) carry three equal channels; those
    keep their exact values and are not reported as colour.
    """
    if img.ndim == 2:
        return img, False, False
    channels = img.shape[2]
    transparent = False
    if channels in (2, 4):  # grey+alpha or colour+alpha: the alpha is dropped
        alpha = img[..., -1]
        transparent = bool(alpha.min() < _full_scale(img))
        img = img[..., :-1]
        channels -= 1
    if channels == 1:
        return np.ascontiguousarray(img[..., 0]), False, transparent
    if not _is_colour(img):
        return np.ascontiguousarray(img[..., 1]), False, transparent
    # ITU-R BT.601 luma, the usual weights for colour -> grey.
    gray = np.tensordot(img[..., :3].astype(np.float32), np.array([0.299, 0.587, 0.114], np.float32), axes=1)
    return gray, True, transparent


def _full_scale(img: np.ndarray) -> float:
    return float(np.iinfo(img.dtype).max) if img.dtype.kind in "ui" else 1.0


def _is_colour(img: np.ndarray) -> bool:
    step = max(1, int(math.sqrt(img.shape[0] * img.shape[1] / _WINDOW_SAMPLE)))
    sample = img[::step, ::step, :3].astype(np.float32)
    span = float(sample.max() - sample.min()) or 1.0
    tol = 0.02 * (_full_scale(img) if img.dtype.kind in "ui" else span)
    diff = np.maximum(
        np.abs(sample[..., 0] - sample[..., 1]), np.abs(sample[..., 1] - sample[..., 2])
    )
    return int(np.count_nonzero(diff > tol)) > 0.001 * diff.size
