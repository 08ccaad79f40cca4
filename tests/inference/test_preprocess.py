"""The app's intensity normalization: global equalization and its local (CLAHE) variant."""

from __future__ import annotations

import numpy as np
import pytest

from inference.loaders import load_study
from inference.preprocess import PreprocessSpec, equalize, local_equalize, normalize, resize_to_input
from tests.conftest import KERMANY_TRAIN

LOCAL = PreprocessSpec(height=112, width=112, normalization="local_equalization")


@pytest.fixture(scope="module")
def film() -> np.ndarray:
    path = sorted((KERMANY_TRAIN / "PNEUMONIA").iterdir())[0]
    return resize_to_input(load_study(path).pixels, LOCAL)


def test_local_equalization_of_a_mirrored_film_is_the_mirrored_output(film):
    out = local_equalize(equalize(film))
    assert np.array_equal(local_equalize(equalize(film[:, ::-1])), out[:, ::-1])
    assert np.array_equal(local_equalize(equalize(film[::-1])), out[::-1])


def test_a_uniform_image_stays_flat():
    out = local_equalize(np.full((112, 112), 0.5, np.float32))
    assert np.ptp(out) == 0.0


def test_like_global_equalization_it_ignores_monotonic_intensity_changes(film):
    raw = film / 255.0
    assert np.allclose(normalize(raw, LOCAL), normalize(raw ** 1.8 * 4000.0, LOCAL), atol=1e-5)


def test_where_every_tile_is_already_uniform_it_changes_little():
    """Noise has the same flat histogram in every tile: the clipped maps are near identity,
    which checks the within-bin and between-tile interpolation."""
    eq = equalize(np.random.default_rng(0).random((112, 112)))
    change = local_equalize(eq) - eq
    assert np.abs(change).max() < 0.06
    assert abs(change.mean()) < 0.001  # without the within-bin part, -0.008 (half a bin)


def test_it_raises_contrast_where_the_film_has_little(film):
    """Global equalization gives the lower half, squeezed into a narrow band above everything
    else, only the upper half of the range; local equalization spreads it over nearly all of it."""
    img = film.copy()
    img[56:] = 300.0 + img[56:] * 0.05
    eq = equalize(img)
    out = local_equalize(eq)
    assert out[64:104].std() > 1.5 * eq[64:104].std()
    assert 0.0 <= out.min() and out.max() <= 1.0
