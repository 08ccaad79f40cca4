"""The heat-map renderer: absolute scale, opacity that rises with the value, when it is shown,
what it says, and that every export draws the very layer the window draws."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inference import heatmap
from inference.attribution import Attribution
from inference.decision import custom_point
from inference.overlay import render_picture, window_to_uint8
from inference.prediction import ModelInfo, Prediction
from inference.study import Study, StudyMetadata
from tests.fixtures.maps import FULL_SCALE, centre_peaked


def film(shape: tuple[int, int] = (60, 80)) -> Study:
    pixels = np.tile(np.linspace(0, 4095, shape[1], dtype=np.float32), (shape[0], 1))
    return Study(Path("x.dcm"), pixels, (2048.0, 4096.0), StudyMetadata(rows=shape[0], columns=shape[1]))


def result(probability: float = 0.9, in_scope: bool = True, attribution: Attribution | None = None) -> Prediction:
    return Prediction(probability=probability, operating=custom_point(0.5), model=ModelInfo("m", "1", "0" * 64),
                      provider="CPUExecutionProvider", in_scope=in_scope,
                      attribution=attribution if attribution is not None else centre_peaked())


def test_window_maps_center_and_width_to_gray() -> None:
    img = np.array([[-100.0, 0.0, 50.0, 100.0, 500.0]], np.float32)
    assert window_to_uint8(img, (50.0, 100.0)).tolist() == [[0, 0, 128, 255, 255]]
    assert window_to_uint8(img, (0.0, 0.0)).tolist() == [[0, 43, 64, 85, 255]]  # no width: -100..500


def test_shown_by_default_only_in_scope_at_or_above_the_threshold() -> None:
    assert heatmap.applies(result(0.9))
    assert heatmap.applies(result(0.5))  # at the threshold is above it
    assert not heatmap.applies(result(0.3))
    assert not heatmap.applies(result(0.9, in_scope=False))
    assert not heatmap.applies(replace(result(0.9), attribution=None))


def test_one_absolute_scale_never_the_maps_own_maximum() -> None:
    style = heatmap.HeatmapStyle(opacity=0.6)
    strong = heatmap.layer(centre_peaked(FULL_SCALE), (56, 56), style)
    weak = heatmap.layer(centre_peaked(FULL_SCALE / 2), (56, 56), style)
    assert strong[..., 3].max() == pytest.approx(0.6 * 255, abs=3)  # full scale: full opacity
    assert weak[..., 3].max() == pytest.approx(0.3 * 255, abs=3)  # half the logit: half as strong
    assert np.abs(strong[28, 28, :3].astype(int) - heatmap.COLOURS[255]).max() <= 3  # the full-scale colour
    # Beyond full scale it saturates rather than rescaling everything else.
    hot = heatmap.layer(centre_peaked(4 * FULL_SCALE), (56, 56), style)
    assert hot[..., 3].max() == round(0.6 * 255)  # clipped at full opacity
    assert (hot[..., 3] == round(0.6 * 255)).sum() > 10 * (strong[..., 3] >= 152).sum()  # a plateau, not a rescale


def test_opacity_rises_with_the_value_without_a_hard_edge() -> None:
    rgba = heatmap.layer(centre_peaked(), (140, 140), heatmap.HeatmapStyle(opacity=1.0))
    alpha = rgba[70, :, 3].astype(int)  # a row through the peak
    assert alpha[:70].tolist() == sorted(alpha[:70].tolist())  # rises towards the centre
    assert np.abs(np.diff(alpha)).max() <= 12  # no step: the old floor cut jumped by ~100
    assert alpha[0] == 0  # the negative corners draw nothing


def test_nothing_positive_draws_nothing() -> None:
    for grid in (np.zeros((14, 14), np.float32), -np.ones((14, 14), np.float32)):
        assert heatmap.layer(Attribution(grid, 0.05), (30, 40), heatmap.HeatmapStyle())[..., 3].max() == 0


def test_muted_layer_is_fainter_with_the_same_colours() -> None:
    loud = heatmap.layer(centre_peaked(), (56, 56), heatmap.HeatmapStyle(0.6))
    muted = heatmap.layer(centre_peaked(), (56, 56), heatmap.HeatmapStyle(0.6, muted=True))
    np.testing.assert_array_equal(loud[..., :3], muted[..., :3])
    assert muted[..., 3].max() == pytest.approx(loud[..., 3].max() * heatmap.MUTED_FACTOR, abs=1)
    with pytest.raises(ValueError, match="opacity"):
        heatmap.HeatmapStyle(opacity=1.5)


def test_captions_say_what_the_map_is_or_why_it_is_absent() -> None:
    shown = heatmap.caption(result(0.9), shown=True)
    assert "regions that raised the score — not an outline of a lesion" in shown
    assert f"+{FULL_SCALE:.3g} logit" in shown
    assert heatmap.caption(result(0.3), shown=False) == "No heat-map: the result is below the review threshold."
    assert "not reliable" in heatmap.caption(result(0.9, in_scope=False), shown=False)
    muted = heatmap.caption(result(0.3), shown=True)
    assert muted.startswith("Heat-map muted: the result is below the review threshold") and "logit" in muted
    assert "not stored" in heatmap.caption(replace(result(0.9), attribution=None), shown=True)


def test_border_warning_only_for_a_flagged_score_resting_on_the_edge() -> None:
    edge = np.zeros((14, 14), np.float32)
    edge[0, :] = FULL_SCALE  # a burned-in label along the top
    edge[6, 6] = FULL_SCALE
    on_edge = Attribution(edge, FULL_SCALE)
    assert heatmap.warnings(result(0.9, attribution=on_edge)) == [heatmap.BORDER_WARNING]
    assert heatmap.warnings(result(0.3, attribution=on_edge)) == []  # not flagged: the map is not the story
    assert heatmap.warnings(result(0.9)) == []  # evidence inside the thorax


def test_exported_picture_is_the_film_with_the_screen_layer() -> None:
    study, pred = film(), result(0.9)
    picture = render_picture(study, pred, opacity=0.5)
    grey = window_to_uint8(study.pixels, study.window)
    expected = heatmap.composite(grey, heatmap.layer(pred.attribution, study.shape, heatmap.HeatmapStyle(0.5)))
    np.testing.assert_array_equal(picture.rgb, expected)
    assert picture.heatmap_shown and picture.caption == heatmap.caption(pred, True)


def test_exports_leave_a_negative_film_plain_unless_asked() -> None:
    study, pred = film(), result(0.2)
    grey = window_to_uint8(study.pixels, study.window)
    plain = render_picture(study, pred)
    assert not plain.heatmap_shown and plain.caption.startswith("No heat-map")
    np.testing.assert_array_equal(plain.rgb, np.repeat(grey[..., None], 3, axis=2))
    asked = render_picture(study, pred, shown=True)  # the reader toggled it on: muted, as on screen
    expected = heatmap.layer(pred.attribution, study.shape, heatmap.HeatmapStyle(muted=True))
    np.testing.assert_array_equal(asked.rgb, heatmap.composite(grey, expected))
    assert asked.caption.startswith("Heat-map muted")


def test_a_huge_film_is_exported_at_a_bounded_size() -> None:
    assert heatmap.layer_shape((6000, 3000)) == (heatmap.MAX_LAYER_SIDE, heatmap.MAX_LAYER_SIDE // 2)
    assert heatmap.layer_shape((300, 200)) == (300, 200)
    picture = render_picture(film((3000, 2400)), result(0.9))
    assert picture.rgb.shape == (2048, 1638, 3)
