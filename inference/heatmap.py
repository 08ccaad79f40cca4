"""The heat-map as a person sees it: one renderer for the window, the PNGs, the PDF and the SC.

What is drawn is the positive part of the film's attribution (:mod:`inference.attribution`),
upsampled smoothly *before* it is rectified, on one absolute scale: colour and opacity both
rise with the logit contribution, from nothing at 0 to full at the manifest's ``full_scale``,
so there is no hard edge and a weak map looks weak. When it is shown by default, and what it
says beside it, is decided here too, so every place tells the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .attribution import Attribution

DEFAULT_OPACITY = 0.45  # opacity at full colour, less below it: the anatomy stays readable under it
MUTED_FACTOR = 0.35  # a map shown where it does not apply is drawn at this share of the opacity
# Never draw a layer bigger than this a side: the map is smooth (a 14 x 14 grid), so a smaller
# layer stretched over a big film loses nothing visible, and a 20,000-pixel film does not cost
# gigabytes. Exports use MAX_LAYER_SIDE; the window, which draws on its GUI thread, VIEW_LAYER_SIDE.
MAX_LAYER_SIDE = 2048
VIEW_LAYER_SIDE = 768

MEANING = "regions that raised the score — not an outline of a lesion"
BORDER_WARNING = "The score rests on the image edge or a marker; check the film."

# ColorBrewer's sequential YlOrRd (readable by colour-blind readers): pale yellow at the faint
# end, where the layer is nearly transparent anyway, deep red at full scale, which stands out on
# the dark lungs and the white mediastinum alike (a pale top colour vanished on bright bone).
_STOPS = (
    (0.00, (255, 255, 178)),
    (0.25, (254, 204, 92)),
    (0.50, (253, 141, 60)),
    (0.75, (240, 59, 32)),
    (1.00, (189, 0, 38)),
)
COLOURS = np.stack(
    [np.rint(np.interp(np.linspace(0.0, 1.0, 256), [s[0] for s in _STOPS], [s[1][c] for s in _STOPS]))
     for c in range(3)],
    axis=-1,
).astype(np.uint8)  # [256, 3]: the colour of value i / 255 of full scale


class _Result(Protocol):
    in_scope: bool
    attribution: Attribution | None

    @property
    def is_positive(self) -> bool: ...


@dataclass(frozen=True)
class HeatmapStyle:
    """How the layer is drawn: its opacity at full colour, and whether it is muted."""

    opacity: float = DEFAULT_OPACITY
    muted: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be between 0 and 1, got {self.opacity}")

    @property
    def peak_alpha(self) -> float:
        return self.opacity * (MUTED_FACTOR if self.muted else 1.0)


def applies(result: _Result) -> bool:
    """Whether the map is shown by default: only for an in-scope result at or above the
    threshold. Below it the map explains a score that did not flag the film; out of scope it
    explains a score that does not apply; both are shown only on request, muted."""
    return bool(result.in_scope and result.is_positive and result.attribution is not None)


def style_for(result: _Result, opacity: float = DEFAULT_OPACITY) -> HeatmapStyle:
    """The style of a map shown for ``result``: muted where it does not apply by default."""
    return HeatmapStyle(opacity=opacity, muted=not applies(result))


def legend_text(full_scale: float) -> str:
    """What the colours mean, in the map's own units."""
    return f"colour from 0 to +{full_scale:.3g} logit or more per cell"


def caption(result: _Result, shown: bool) -> str:
    """The sentence beside the film: what the map is, or why there is none."""
    if result.attribution is None:
        return "No heat-map: it is not stored for this result (analyse the study again to see it)."
    why = ("the result is not reliable (the film is out of scope)" if not result.in_scope
           else "the result is below the review threshold")
    if not shown:
        return f"No heat-map: {why}."
    text = f"Heat-map: {MEANING}; {legend_text(result.attribution.full_scale)}."
    return text if applies(result) else f"Heat-map muted: {why}. {text}"


def warnings(result: _Result) -> list[str]:
    """The map's own warning: a flagged score that rests on the film's edge or a marker."""
    if applies(result) and result.attribution is not None and result.attribution.rests_on_border:
        return [BORDER_WARNING]
    return []


def layer_shape(shape: tuple[int, int], max_side: int = MAX_LAYER_SIDE) -> tuple[int, int]:
    """The size a layer for a film of ``shape`` is drawn at (at most ``max_side`` a side)."""
    rows, cols = int(shape[0]), int(shape[1])
    scale = min(1.0, max_side / max(rows, cols))
    return max(1, round(rows * scale)), max(1, round(cols * scale))


def layer(attribution: Attribution, shape: tuple[int, int], style: HeatmapStyle) -> np.ndarray:
    """RGBA uint8 [rows, columns, 4] at ``shape``: colour and alpha both rise with the value."""
    value = attribution.upsampled(shape)
    value *= 255.0 / attribution.full_scale
    np.clip(value, 0.0, 255.0, out=value)  # rectified after upsampling: no plateaus, no edges
    lut = np.empty((256, 4), dtype=np.uint8)
    lut[:, :3] = COLOURS
    lut[:, 3] = np.rint(np.arange(256) * style.peak_alpha)
    # One 4-byte gather per pixel: a 1,024-pixel film costs a few ms, not tens.
    index = np.rint(value, out=value).astype(np.uint8)
    return lut.view(np.uint32)[:, 0][index].view(np.uint8).reshape(*index.shape, 4)


def composite(grey: np.ndarray, rgba: np.ndarray | None) -> np.ndarray:
    """RGB uint8: an 8-bit grey film with ``rgba`` (same rows and columns, or None) over it."""
    rgb = np.repeat(np.asarray(grey, dtype=np.uint8)[..., np.newaxis], 3, axis=2)
    if rgba is None:
        return rgb
    if rgba.shape[:2] != rgb.shape[:2]:
        raise ValueError(f"layer {rgba.shape[:2]} does not match the film {rgb.shape[:2]}")
    shown = rgba[..., 3] > 0  # on most films a fraction of the pixels: blend only those
    a = rgba[..., 3][shown][:, np.newaxis].astype(np.float32) / 255.0
    rgb[shown] = np.rint(rgb[shown] * (1.0 - a) + rgba[..., :3][shown] * a).astype(np.uint8)
    return rgb
