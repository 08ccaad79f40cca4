"""The few image operations the app needs, on numpy and Pillow.

OpenCV would do all of them, but its wheel is about 150 MiB of an installed app that must
stay under 350 MB (and Pillow is already here for highdicom). Training and the test
fixtures still use OpenCV. Bilinear resizing and the Gaussian blur follow OpenCV's
conventions exactly (pixel centres, kernel size, mirrored border), so the input gate's
statistics and every figure measured with OpenCV still hold.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image


def resize_area(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Shrink a 2-D image to ``shape`` (rows, columns) by averaging the source pixels under
    each output pixel (Pillow's box filter), float32. For enlarging use :func:`resize_linear`."""
    rows, cols = shape
    src = np.ascontiguousarray(img, dtype=np.float32)
    h, w = src.shape
    if h % rows == 0 and w % cols == 0:  # whole blocks: a reshape is exact and faster
        return src.reshape(rows, h // rows, cols, w // cols).mean(axis=(1, 3), dtype=np.float32)
    return np.asarray(Image.fromarray(src).resize((cols, rows), Image.Resampling.BOX))


def resize_linear(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D image to ``shape`` (rows, columns), float32.

    Separable, as two small matrix products (the model input's resize; OpenCV's convention).
    """
    rows, cols = shape
    src = np.asarray(img, dtype=np.float32)
    return _linear_weights(rows, src.shape[0]) @ src @ _linear_weights(cols, src.shape[1]).T


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a small 2-D image (the model input, 112 or 224 px), float32.

    Kernel of ``round(8 sigma + 1) | 1`` taps and a mirrored border without repeating the
    edge pixel, as OpenCV does for floating-point images.
    """
    src = np.asarray(img, dtype=np.float32)
    return _blur_matrix(src.shape[0], sigma) @ src @ _blur_matrix(src.shape[1], sigma).T


def encode_png(image: np.ndarray, compress_level: int = 1) -> bytes:
    """A 2-D grey or [h, w, 3] RGB uint8 image -> PNG bytes (level 1: fast, still lossless)."""
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected a grey or RGB uint8 image, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes written by :func:`encode_png` -> the image."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _linear_weights(n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in] bilinear weights, pixel centres aligned, edge pixels repeated."""
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0.0, n_in - 1)
    left = np.floor(x).astype(np.intp)
    right = np.minimum(left + 1, n_in - 1)
    frac = (x - left).astype(np.float32)
    weights = np.zeros((n_out, n_in), np.float32)
    out = np.arange(n_out)
    np.add.at(weights, (out, left), 1.0 - frac)
    np.add.at(weights, (out, right), frac)
    return weights


@lru_cache(maxsize=16)
def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """[n, n] Gaussian blur along one axis with a reflect-101 border, read-only. Cached: the
    gate blurs every film's model input at the same two sigmas, and building the matrix
    cost more than using it."""
    taps = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    offsets = np.arange(taps) - (taps - 1) // 2
    kernel = np.exp(-(offsets.astype(np.float64) ** 2) / (2.0 * sigma * sigma))
    kernel /= kernel.sum()
    matrix = np.zeros((n, n), np.float64)
    rows = np.arange(n)
    for offset, weight in zip(offsets, kernel):
        np.add.at(matrix, (rows, _reflect101(rows + offset, n)), weight)
    out = matrix.astype(np.float32)
    out.setflags(write=False)
    return out


def _reflect101(index: np.ndarray, n: int) -> np.ndarray:
    """Mirror out-of-range indices about the edge pixels (``dcb|abcd|cba``)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.abs(index) % period
    return np.where(index >= n, period - index, index)
