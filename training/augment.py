"""Batch augmentation in torch, built around the app's histogram equalization.

Equalization is a rank transform: it erases every monotonic intensity change (brightness,
contrast, gamma, window). So photometric augmentation only teaches the model something if it
is NON-monotonic (noise, blur/sharpening, local contrast, uneven exposure, clipping) and is
applied BEFORE equalization. Geometric augmentation is applied after it, as the app never
pads or rotates.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from inference.preprocess import PreprocessSpec, local_equalize

_LEVELS = 4096  # quantization of the rank transform; > 256 so uint8 inputs keep every level


def equalize_batch(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalization of each image of [N,1,H,W], as inference.preprocess.equalize.

    Each value maps to the midpoint of its empirical CDF (ties share a value). Values are
    min-max scaled and quantized to 4,096 levels first (a monotonic map, so ranks are kept);
    for 8-bit inputs the result equals inference.preprocess.equalize exactly.
    """
    n = x.shape[0]
    flat = x.reshape(n, -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    q = ((flat - lo) / (hi - lo).clamp_min(1e-12) * (_LEVELS - 1)).round().long()
    idx = q + torch.arange(n, device=x.device).unsqueeze(1) * _LEVELS
    counts = torch.bincount(idx.reshape(-1), minlength=n * _LEVELS).reshape(n, _LEVELS).float()
    cdf_mid = (counts.cumsum(dim=1) - counts / 2.0) / flat.shape[1]
    return cdf_mid.gather(1, q).reshape(x.shape)


def normalize_batch(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """inference.preprocess.normalize of each image of [N,1,H,W]: the rank transform in torch,
    then, for "local_equalization", the app's own numpy function on each image."""
    eq = equalize_batch(x)
    if spec.normalization == "local_equalization":
        eq = torch.from_numpy(np.stack([local_equalize(e) for e in eq[:, 0].numpy()])).unsqueeze(1)
    return (eq - spec.mean) / spec.std


def _gauss_kernels(sigma: torch.Tensor, size: int = 7) -> torch.Tensor:
    """1-D Gaussian kernels [N, size]; sigma < 0 gives an unsharp (sharpening) kernel."""
    r = torch.arange(size, dtype=torch.float32) - size // 2
    s = sigma.abs().clamp_min(1e-3).unsqueeze(1)
    k = torch.exp(-0.5 * (r.unsqueeze(0) / s) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    delta = torch.zeros(size)
    delta[size // 2] = 1.0
    sharpen = (sigma < 0).float().unsqueeze(1)
    return sharpen * (2 * delta - k) + (1 - sharpen) * k


def _separable(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-image separable convolution of [N,1,H,W] with kernels [N, size] (reflect padding)."""
    n, _, h, w = x.shape
    p = k.shape[1] // 2
    y = x.reshape(1, n, h, w)
    y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), k.reshape(n, 1, 1, -1), groups=n)
    y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), k.reshape(n, 1, -1, 1), groups=n)
    return y.reshape(n, 1, h, w)


def blur_or_sharpen(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur (sigma up to 1.2 px) or sharpening of 60 % of the images: different devices and resampling."""
    n = x.shape[0]
    sigma = (torch.rand(n, generator=gen) * 1.6 - 0.4) * (torch.rand(n, generator=gen) < 0.6).float()
    return _separable(x, _gauss_kernels(torch.where(sigma.abs() < 0.3, torch.full_like(sigma, 1e-3), sigma)))


def photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Non-monotonic intensity changes of raw images [N,1,H,W] in 0..1 (before equalization)."""
    n, _, h, w = x.shape

    def u(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(n, 1, 1, 1, generator=gen) * (hi - lo) + lo)

    def coin(p: float) -> torch.Tensor:
        return (torch.rand(n, 1, 1, 1, generator=gen) < p).float()

    # Exposure / detector response: gamma, then clipping of the extremes (saturation).
    x = x.clamp(0, 1) ** u(0.6, 1.6)
    clip = coin(0.3)
    x = torch.minimum(x, 1 - clip * u(0.0, 0.12))
    x = torch.maximum(x, clip * u(0.0, 0.08))
    # Local contrast (CLAHE-like unsharp masking at a large scale, or its opposite).
    low = F.interpolate(F.avg_pool2d(x, 16), size=(h, w), mode="bilinear", align_corners=False)
    x = x + coin(0.6) * u(-0.4, 1.2) * (x - low)
    # Uneven exposure / scatter: a smooth random field.
    field = F.interpolate(torch.randn(n, 1, 4, 4, generator=gen), size=(h, w), mode="bicubic", align_corners=False)
    x = x + coin(0.5) * u(0.0, 0.12) * field
    x = blur_or_sharpen(x, gen)
    # Quantum noise, and de-quantization noise that breaks 8-bit ties as full-size inputs do.
    x = x + coin(0.5) * u(0.0, 0.035) * torch.randn(x.shape, generator=gen)
    x = x + (torch.rand(x.shape, generator=gen) - 0.5) / 255.0
    return x


# (max rotation in degrees, scale range, max shift as a fraction of the side, max aspect
# change: width/height scaled apart by a factor drawn log-uniformly in [1/a, a])
GEOMETRY = {
    "standard": (10.0, (0.9, 1.1), 0.08, 1.0),
    "strong": (15.0, (0.75, 1.25), 0.12, 1.0),
    "aspect": (15.0, (0.75, 1.25), 0.12, 1.2),
    "aspect-wide": (15.0, (0.75, 1.25), 0.12, 1.35),
}


def geometric(x: torch.Tensor, gen: torch.Generator, hflip: bool = True, geometry: str = "standard") -> torch.Tensor:
    """Random rotation, scale and shift (GEOMETRY), optional horizontal flip; no vertical flip.

    "standard" is the shipped recipe (+-10 deg, 0.9-1.1, +-8 %); "strong" zooms further in and
    out, which crops to the lung fields half of the time (an experiment, EXPERIMENTS.md).
    """
    n = x.shape[0]
    rot, (s_lo, s_hi), shift, aspect = GEOMETRY[geometry]
    ang = (torch.rand(n, generator=gen) * 2 * rot - rot) * math.pi / 180
    scale = torch.rand(n, generator=gen) * (s_hi - s_lo) + s_lo
    # Films reach 224 x 224 from many aspect ratios, so a detector's geometry shows up as a
    # squeeze; "aspect" draws one (and nothing is drawn for the other levels).
    stretch = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * math.log(aspect)) if aspect > 1 else torch.ones(n)
    tx = (torch.rand(n, generator=gen) * 2 - 1) * shift
    ty = (torch.rand(n, generator=gen) * 2 - 1) * shift
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if hflip else torch.ones(n)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    sx, sy = stretch.sqrt(), 1 / stretch.sqrt()
    theta = torch.stack(
        [torch.stack([cos * flip * sx, -sin * sx, tx * 2], 1), torch.stack([sin * flip * sy, cos * sy, ty * 2], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def erase(x: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """Random erasing: with probability ``p`` one rectangle (2-25 % of the area, aspect
    0.5-2) of each standardized input is set to 0, the mean intensity, so the model cannot
    lean on any single region (an experiment, EXPERIMENTS.md)."""
    n, _, h, w = x.shape
    area = (torch.rand(n, generator=gen) * 0.23 + 0.02) * h * w
    ratio = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * math.log(2.0))
    eh = (area * ratio).sqrt().clamp(1, h)
    ew = (area / ratio).sqrt().clamp(1, w)
    y0 = torch.rand(n, generator=gen) * (h - eh)
    x0 = torch.rand(n, generator=gen) * (w - ew)
    on = torch.rand(n, generator=gen) < p
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    box = ((rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1))
           & (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1)) & on.view(n, 1, 1))
    return x.masked_fill(box.unsqueeze(1), 0.0)


def light_photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Only de-quantization noise, which breaks 8-bit ties as full-size inputs do."""
    return x + (torch.rand(x.shape, generator=gen) - 0.5) / 255.0


def augment_batch(raw_u8: torch.Tensor, spec: PreprocessSpec, gen: torch.Generator, hflip: bool = True,
                  strength: str = "full", geometry: str = "standard", erase_p: float = 0.0) -> torch.Tensor:
    """uint8 [N,H,W] -> augmented model input [N,1,H,W] (photometric, equalize, geometric).

    ``strength`` "light" keeps the geometric part and drops the photometric one; "blur" keeps
    only its blur or sharpening (experiments in training/EXPERIMENTS.md).
    """
    x = raw_u8.unsqueeze(1).float() / 255.0
    if strength == "full":
        x = photometric(x, gen)
    else:
        x = light_photometric(blur_or_sharpen(x, gen) if strength == "blur" else x, gen)
    x = normalize_batch(x, spec)
    x = geometric(x, gen, hflip=hflip, geometry=geometry)
    return erase(x, gen, erase_p) if erase_p > 0 else x
