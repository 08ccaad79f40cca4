"""The one preprocessing function, shared by the app and the training pipeline.

The model must see the same thing whatever the source: a 224x224 JPEG from the training
set, a 3,000-pixel 16-bit DICOM or an 8-bit PNG. Histogram equalization (a rank transform)
makes the input invariant to any monotonic change of intensity -- exposure, gamma,
window, bit depth -- which is the main difference between the training images and the
radiographs the app meets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .imageops import resize_area, resize_linear


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become the model's input; stored in the model manifest."""

    height: int = 224
    width: int = 224
    # The training images were squashed to 224x224 without keeping the aspect ratio,
    # so full-size radiographs are squashed the same way.
    keep_aspect: bool = False
    # "area" (box-filter average) when shrinking, bilinear when enlarging.
    resize: str = "area"
    normalization: str = "histogram_equalization"
    # Applied after equalization, which maps intensities onto a uniform 0..1 distribution.
    mean: float = 0.5
    std: float = 0.2887

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def resize_to_input(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize a 2-D image to the model's input size, as float32."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {pixels.shape}")
    img = np.ascontiguousarray(pixels, dtype=np.float32)
    h, w = img.shape
    if (h, w) == (spec.height, spec.width):
        return img
    shrinking = h >= spec.height and w >= spec.width
    if spec.resize == "area" and shrinking:
        return resize_area(img, (spec.height, spec.width))
    return resize_linear(img, (spec.height, spec.width))


def equalize(img: np.ndarray) -> np.ndarray:
    """Map each value to the midpoint of its empirical CDF (ties share one value): 0..1."""
    return equalize_counted(img)[0]


def equalize_counted(img: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`equalize` and the number of distinct values of ``img``, from one sort (the
    input gate needs both, the model the first)."""
    flat = img.ravel()
    values, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    cdf_mid = (np.cumsum(counts) - counts / 2.0) / flat.size
    return cdf_mid[inverse].reshape(img.shape).astype(np.float32), int(values.size)


# "local_equalization" was tried (experiment X in training/EXPERIMENTS.md) and no shipped model
# uses it; it lives here because a model is measured through the app's own preprocessing.
LOCAL_GRID = 4  # tiles per side
LOCAL_BINS = 64  # histogram bins per tile
LOCAL_CLIP = 3.0  # a tile's bin holds at most this many times its mean count


def local_equalize(eq: np.ndarray) -> np.ndarray:
    """Contrast-limited local equalization (CLAHE) of an already equalized image (0..1).

    Each of LOCAL_GRID x LOCAL_GRID tiles gets its own clipped-histogram CDF; a pixel's value
    interpolates, within its bin and bilinearly between the four nearest tile centres, so the
    output is continuous and has no seams. The tiles divide the image evenly and
    symmetrically, so a mirrored image gives the mirrored output. It starts from the global
    rank transform, so it inherits its invariance to any monotonic intensity change.
    """
    g, nb = LOCAL_GRID, LOCAL_BINS
    h, w = eq.shape
    v = np.clip(eq.astype(np.float64), 0.0, 1.0) * nb
    b = np.minimum(v.astype(np.int64), nb - 1)
    frac = v - b
    ty = np.minimum(np.arange(h) * g // h, g - 1)
    tx = np.minimum(np.arange(w) * g // w, g - 1)
    tile = ty[:, None] * g + tx[None, :]
    hist = np.bincount((tile * nb + b).ravel(), minlength=g * g * nb).reshape(g * g, nb).astype(np.float64)
    size = hist.sum(axis=1, keepdims=True)
    limit = LOCAL_CLIP * size / nb
    clipped = np.minimum(hist, limit)
    clipped += (size - clipped.sum(axis=1, keepdims=True)) / nb
    hi = np.cumsum(clipped, axis=1) / size  # CDF at each bin's upper edge
    lo = hi - clipped / size

    def mapped(t: np.ndarray) -> np.ndarray:
        """Each pixel's value under the maps of tiles ``t`` (linear within its bin)."""
        return lo[t, b] + (hi[t, b] - lo[t, b]) * frac

    fy = np.clip((np.arange(h) + 0.5) * g / h - 0.5, 0, g - 1)
    fx = np.clip((np.arange(w) + 0.5) * g / w - 0.5, 0, g - 1)
    y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, g - 1), np.minimum(x0 + 1, g - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    y0, y1, x0, x1 = y0[:, None], y1[:, None], x0[None, :], x1[None, :]
    top = mapped(y0 * g + x0) * (1 - wx) + mapped(y0 * g + x1) * wx
    bottom = mapped(y1 * g + x0) * (1 - wx) + mapped(y1 * g + x1) * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def normalize(img: np.ndarray, spec: PreprocessSpec, equalized: np.ndarray | None = None) -> np.ndarray:
    """Intensity normalization of an image already at input size (``equalized``: its
    :func:`equalize`, when already computed)."""
    if spec.normalization in ("histogram_equalization", "local_equalization"):
        out = equalize(img) if equalized is None else equalized
        if spec.normalization == "local_equalization":
            out = local_equalize(out)
    elif spec.normalization == "minmax":
        lo, hi = float(img.min()), float(img.max())
        out = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    else:
        raise ValueError(f"unknown normalization {spec.normalization!r}")
    return ((out - spec.mean) / spec.std).astype(np.float32)


def preprocess(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """A 2-D image (bone bright, any range) -> the model's input, float32 [1, 1, H, W]."""
    img = normalize(resize_to_input(pixels, spec), spec)
    return img[np.newaxis, np.newaxis]


@dataclass(frozen=True)
class Prepared:
    """One film prepared once for both readers of it: the model (``tensor``, what
    :func:`preprocess` returns) and the input gate (``equalized`` and ``levels``, what
    ``inference.ood.model_view`` returns), so neither resizes or sorts the film again."""

    tensor: np.ndarray  # float32 [1, 1, H, W]
    equalized: np.ndarray  # float32 [H, W], 0..1
    levels: int  # distinct grey levels of the resized film


def prepare(pixels: np.ndarray, spec: PreprocessSpec) -> Prepared:
    """:func:`preprocess` and the gate's view of the same film, from one resize and one sort."""
    resized = resize_to_input(pixels, spec)
    equalized, levels = equalize_counted(resized)
    return Prepared(normalize(resized, spec, equalized)[np.newaxis, np.newaxis], equalized, levels)
