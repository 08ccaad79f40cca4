"""The attribution map: which regions of the film raised or lowered the model's score.

The ONNX model exports its last feature map ``A`` [C, h, w] and ``d logit / d A``. The head is
a global average pool and a linear layer, so ``sum_c grad[c] * A[c, i, j]`` over all cells is
exactly the logit minus the head's bias: each cell's value is its share of the logit, signed,
in logit units. That grid (14 x 14 for model 2.2, one cell per 8 x 8 input pixels) is the one
thing every picture, JSON field and check is made from; it is never rectified or rescaled
before it is drawn (see :mod:`inference.heatmap`), and it is never scaled to its own maximum:
``full_scale`` (from the model manifest, measured on validation films) is the logit
contribution of a cell drawn at full colour, the same for every film.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# A map whose positive evidence lies mostly in the outermost ring of cells (the film's edge,
# where burned-in text, side markers and collimator edges sit) does not rest on the lungs.
# On a 14 x 14 grid the ring is 52 of 196 cells (27 %); for model 2.6's 195 films at or above the
# default threshold on the site sample its share is 2-7 % (10th-90th percentile, at most 14 %),
# so "more than half" is far outside it.
BORDER_SHARE_LIMIT = 0.5


@dataclass(frozen=True)
class Attribution:
    """A film's native attribution grid with the scale it is drawn on."""

    grid: np.ndarray  # float32 [h, w], logit units, row-major, top row first
    full_scale: float  # logit contribution per cell drawn at full colour (manifest)

    def __post_init__(self) -> None:
        grid = np.asarray(self.grid, dtype=np.float32)
        if grid.ndim != 2 or min(grid.shape) < 1:
            raise ValueError(f"an attribution grid is 2-D, got shape {grid.shape}")
        if not (np.isfinite(self.full_scale) and self.full_scale > 0):
            raise ValueError(f"the attribution full scale must be a positive number, got {self.full_scale}")
        object.__setattr__(self, "grid", grid)

    @property
    def border_share(self) -> float:
        """The share of the positive evidence that lies in the outermost ring of cells (0..1;
        0 when nothing raised the score)."""
        positive = np.clip(self.grid, 0.0, None)
        total = float(positive.sum())
        if total <= 0.0 or min(positive.shape) < 3:
            return 0.0
        inner = float(positive[1:-1, 1:-1].sum())
        return (total - inner) / total

    @property
    def rests_on_border(self) -> bool:
        """Whether most of what raised the score lies on the film's edge (see BORDER_SHARE_LIMIT)."""
        return self.border_share > BORDER_SHARE_LIMIT

    def upsampled(self, shape: tuple[int, int]) -> np.ndarray:
        """The signed map stretched to ``shape`` (rows, columns), float32, in logit units.

        Bicubic, so a hot cell becomes a smooth bump rather than a square or a diamond, and done
        on the signed values (rectifying first would turn a dip next to a peak into a plateau).
        The model sees the whole film squashed to its input (no crop, no padding), so cell
        (i, j) covers the film's rows [i, i+1) * rows / h: output pixel y samples the grid at
        (y + 0.5) * h / rows - 0.5, which puts each cell's peak at the centre of the film region
        it came from. Separable, as two small matrix products (Pillow's bicubic resize gives the
        same values but took 9 ms for a 1,024-pixel film on the GUI thread).
        """
        rows, cols = int(shape[0]), int(shape[1])
        if rows < 1 or cols < 1:
            raise ValueError(f"cannot draw a map at {rows} x {cols} pixels")
        return (_cubic_weights(rows, self.grid.shape[0]) @ self.grid @ _cubic_weights(cols, self.grid.shape[1]).T)

    def to_dict(self, digits: int = 5) -> dict[str, Any]:
        """JSON form: {"grid": rows of numbers, top row first, "full_scale": number}."""
        return {"grid": np.round(self.grid.astype(np.float64), digits).tolist(), "full_scale": self.full_scale}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        return cls(np.asarray(data["grid"], dtype=np.float32), float(data["full_scale"]))


def _cubic_weights(n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in] bicubic interpolation weights (Keys, a = -0.5), pixel centres aligned;
    taps beyond the grid's edge are dropped and the rest renormalized, as Pillow does."""
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    d = np.abs(centre[:, None] - np.arange(n_in)[None, :])
    a = -0.5
    w = np.where(d < 1.0, ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0,
                 np.where(d < 2.0, ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a, 0.0))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def attribution_grid(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """The signed native map in logit units, float32 [h, w]: each cell's share of the logit.

    ``features`` and ``grads`` are [C, h, w] (or [1, C, h, w]), as the model outputs them.
    """
    a = np.asarray(features, dtype=np.float32)
    g = np.asarray(grads, dtype=np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a, g = a[0], g[0]
    if a.ndim != 3 or a.shape != g.shape:
        raise ValueError(f"features {a.shape} and gradients {g.shape} must both be [C, h, w]")
    return np.einsum("chw,chw->hw", g, a).astype(np.float32)
