"""The window shows a study at most DISPLAY_MAX_SIDE pixels on its long side, and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.loaders import load_study
from inference.loaders.pixels import DISPLAY_MAX_SIDE, display_note, for_display
from inference.study import Study, StudyMetadata


def _study(rows: int, cols: int) -> Study:
    pixels = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) % 4093
    return Study(Path("film.png"), pixels, (2000.0, 4000.0), StudyMetadata(rows=rows, columns=cols), ["kept"])


def test_a_film_above_the_bound_is_shown_reduced_by_a_whole_factor_with_a_note():
    study = _study(6000, 9000)
    shown = for_display(study)
    assert shown.shape == (2000, 3000)  # factor 3: the smallest that brings 9,000 to 4,096 or below
    assert max(shown.shape) <= DISPLAY_MAX_SIDE
    np.testing.assert_allclose(shown.pixels[0, 0], study.pixels[:3, :3].mean(), rtol=1e-6)  # block mean
    assert shown.warnings[0] == "kept" and "1/3 of 9000x6000" in shown.warnings[1]
    assert display_note(shown) == shown.warnings[1] and display_note(study) == ""
    assert shown.metadata is study.metadata and study.shape == (6000, 9000)  # the original is untouched


def test_a_film_within_the_bound_is_shown_as_it_is(site_sample):
    study = load_study(sorted((site_sample / "NORMAL").iterdir())[0])
    assert for_display(study) is study
    edge = _study(DISPLAY_MAX_SIDE, 100)
    assert for_display(edge) is edge
