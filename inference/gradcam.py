"""Grad-CAM from what the ONNX model outputs, with numpy only (no autograd at run time).

The model exports its last convolutional feature map ``A`` and ``d logit / d A``; for a
global-average-pool + linear head that gradient is exact, so this is Grad-CAM proper
(Selvaraju et al. 2017), not an approximation.
"""

from __future__ import annotations

import numpy as np

from .imageops import resize_linear


def _feature_pair(features: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features and their gradients as float32 [C, h, w] each (a batch of one is unwrapped)."""
    a = np.asarray(features, dtype=np.float32)
    g = np.asarray(grads, dtype=np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a, g = a[0], g[0]
    if a.ndim != 3 or a.shape != g.shape:
        raise ValueError(f"features {a.shape} and gradients {g.shape} must both be [C, h, w]")
    return a, g


def attribution_grid(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """The signed native map in logit units, float32 [h, w]: each cell's share of the logit.

    For a global-average-pool + linear head, sum_c grad[c] * feature[c, i, j] summed over
    every cell is exactly the logit minus the head's bias, so a cell's value is how much that
    region raised (or, negative, lowered) the score.
    """
    a, g = _feature_pair(features, grads)
    return np.einsum("chw,chw->hw", g, a).astype(np.float32)


def grad_cam(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM of one image: float32 [h, w] in 0..1.

    ``features`` and ``grads`` are [C, h, w] (or [1, C, h, w]). Channel weights are the
    spatially averaged gradients; the weighted sum is rectified so only evidence *for*
    pneumonia shows, then divided by its maximum. A map with no positive evidence stays
    all zero rather than being stretched into noise.
    """
    a, g = _feature_pair(features, grads)
    alpha = g.mean(axis=(1, 2))  # [C]
    cam = np.maximum(np.tensordot(alpha, a, axes=(0, 0)), 0.0)
    peak = float(cam.max())
    if not np.isfinite(peak) or peak <= 0.0:
        return np.zeros(cam.shape, dtype=np.float32)
    return (cam / peak).astype(np.float32)


def resize_cam(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Stretch a [h, w] map to ``shape`` (rows, columns), bilinear, kept in 0..1.

    The model input squashes the whole image to its size (no aspect kept, no crop), so
    stretching the map back over the whole image puts each cell where it came from.
    """
    rows, cols = shape
    out = resize_linear(cam, (rows, cols))
    return np.clip(out, 0.0, 1.0, out=out)  # in place: a 3,000-pixel film is 36 MB of float32
