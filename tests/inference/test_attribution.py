"""The attribution grid: its definition, the border check, and how it is stretched to a film."""

from __future__ import annotations

import numpy as np
import pytest

from inference.attribution import BORDER_SHARE_LIMIT, Attribution, attribution_grid


def test_grid_is_each_cells_share_of_the_logit() -> None:
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(8, 14, 14)), 0).astype(np.float32)  # post-ReLU features
    w = rng.normal(size=8).astype(np.float32)  # a linear head after global average pooling
    g = np.broadcast_to((w / 196.0)[:, None, None], a.shape)  # its exact d logit / d features
    grid = attribution_grid(a, g)
    assert grid.shape == (14, 14) and grid.dtype == np.float32
    assert float(grid.sum()) == pytest.approx(float(w @ a.mean(axis=(1, 2))), rel=1e-5)
    assert (grid < 0).any() and (grid > 0).any()  # signed: not rectified
    np.testing.assert_array_equal(attribution_grid(a[None], g[None]), grid)  # a batch of one
    with pytest.raises(ValueError, match="must both be"):
        attribution_grid(a, g[:, :7])


def test_border_share_is_the_positive_evidence_on_the_outer_ring() -> None:
    grid = np.zeros((14, 14), np.float32)
    grid[0, 5] = grid[13, 13] = 1.0  # on the ring
    grid[6, 6] = 2.0  # inside
    grid[7, 7] = -5.0  # negative evidence counts for nothing
    att = Attribution(grid, 0.05)
    assert att.border_share == pytest.approx(0.5)
    assert not att.rests_on_border  # exactly half is not "most"
    grid[0, 0] = 0.1
    assert Attribution(grid, 0.05).rests_on_border and Attribution(grid, 0.05).border_share > BORDER_SHARE_LIMIT
    assert Attribution(-np.ones((14, 14), np.float32), 0.05).border_share == 0.0  # nothing raised the score


def test_upsampled_hot_cell_peaks_at_the_centre_of_its_region_and_is_smooth() -> None:
    grid = np.zeros((14, 14), np.float32)
    grid[2, 11] = 1.0
    rows, cols = 700, 420
    up = Attribution(grid, 1.0).upsampled((rows, cols))
    assert up.shape == (rows, cols) and up.dtype == np.float32
    peak = np.unravel_index(int(up.argmax()), up.shape)
    assert abs(peak[0] - (2.5 * rows / 14 - 0.5)) <= 1 and abs(peak[1] - (11.5 * cols / 14 - 0.5)) <= 1
    # Bicubic, not nearest or bilinear: no flat top, and no step from one pixel to the next.
    assert np.abs(np.diff(up, axis=0)).max() < 0.05 and np.abs(np.diff(up, axis=1)).max() < 0.05
    assert float(up[peak]) == pytest.approx(1.0, abs=0.02)


def test_upsampling_is_done_on_signed_values() -> None:
    grid = np.zeros((14, 14), np.float32)
    grid[5, 5], grid[5, 8] = -1.0, 1.0
    up = Attribution(grid, 1.0).upsampled((140, 140))
    assert up.min() < -0.9 and up.max() > 0.9  # both signs survive; the renderer rectifies later


def test_mirrored_grid_gives_the_mirrored_map() -> None:
    grid = np.random.default_rng(1).normal(size=(14, 14)).astype(np.float32)
    up = Attribution(grid, 1.0).upsampled((300, 500))
    mirrored = Attribution(grid[:, ::-1].copy(), 1.0).upsampled((300, 500))
    np.testing.assert_allclose(mirrored, up[:, ::-1], atol=1e-5)


def test_json_round_trip_and_refusals() -> None:
    grid = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    att = Attribution(grid, 0.057)
    back = Attribution.from_dict(att.to_dict())
    np.testing.assert_allclose(back.grid, grid, atol=1e-5)
    assert back.full_scale == 0.057 and att.to_dict()["grid"][0] == [0.0, 0.14286, 0.28571]  # top row first
    with pytest.raises(ValueError, match="positive"):
        Attribution(grid, 0.0)
    with pytest.raises(ValueError, match="2-D"):
        Attribution(np.zeros(4, np.float32), 1.0)
