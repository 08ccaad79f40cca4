"""The overlay image: windowed radiograph in gray, Grad-CAM in jet colours above the floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.decision import custom_point
from inference.overlay import jet, render_overlay, window_to_uint8
from inference.prediction import ModelInfo, Prediction
from inference.study import Study, StudyMetadata


def study_and_prediction(cam: np.ndarray, shape: tuple[int, int] = (60, 80)) -> tuple[Study, Prediction]:
    pixels = np.tile(np.linspace(0, 4095, shape[1], dtype=np.float32), (shape[0], 1))
    study = Study(Path("x.dcm"), pixels, (2048.0, 4096.0), StudyMetadata(rows=shape[0], columns=shape[1]))
    pred = Prediction(
        probability=0.9, operating=custom_point(0.5), cam=cam.astype(np.float32), model=ModelInfo("m", "1", "0" * 64),
        provider="CPUExecutionProvider",
    )
    return study, pred


def test_window_maps_center_and_width_to_gray() -> None:
    img = np.array([[-100.0, 0.0, 50.0, 100.0, 500.0]], np.float32)
    out = window_to_uint8(img, (50.0, 100.0))  # 0..100 -> 0..255
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 128, 255, 255]]
    assert window_to_uint8(img, (0.0, 0.0)).tolist() == [[0, 43, 64, 85, 255]]  # no width: -100..500


def test_below_the_floor_the_image_is_plain_windowed_gray() -> None:
    cam = np.zeros((60, 80), np.float32)
    cam[10:30, 20:40] = 1.0
    cam[40:50, 50:70] = 0.15  # under the default floor of 0.2
    study, pred = study_and_prediction(cam)
    rgb = render_overlay(study, pred)
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    gray = window_to_uint8(study.pixels, study.window)
    outside = cam <= 0.2
    for ch in range(3):
        np.testing.assert_array_equal(rgb[..., ch][outside], gray[outside])
    hot = rgb[10:30, 20:40].reshape(-1, 3).astype(int)
    assert (hot[:, 0] > hot[:, 2]).all()  # jet at 1.0 is red: red outweighs blue once blended
    expected = np.round(0.6 * gray[15, 25] + 0.4 * jet(np.array([[1.0]]))[0, 0, 0])
    assert abs(int(rgb[15, 25, 0]) - expected) <= 1


def test_colour_fades_in_just_above_the_floor() -> None:
    cam = np.zeros((60, 80), np.float32)
    cam[:, 40:] = 0.25  # half-way through the feather above the 0.2 floor: half the opacity
    study, pred = study_and_prediction(cam)
    rgb = render_overlay(study, pred).astype(float)
    gray = window_to_uint8(study.pixels, study.window).astype(float)
    colour = jet(np.array([[0.25]]))[0, 0].astype(float)
    np.testing.assert_allclose(rgb[:, 50], 0.8 * gray[:, 50, None] + 0.2 * colour, atol=1.0)


def test_opacity_zero_leaves_the_image_and_bad_opacity_is_refused() -> None:
    study, pred = study_and_prediction(np.ones((60, 80), np.float32))
    gray = window_to_uint8(study.pixels, study.window)
    np.testing.assert_array_equal(render_overlay(study, pred, opacity=0.0)[..., 1], gray)
    with pytest.raises(ValueError, match="opacity"):
        render_overlay(study, pred, opacity=1.5)


def test_a_cam_of_another_size_is_stretched_to_the_image() -> None:
    cam = np.zeros((7, 7), np.float32)
    cam[:, :3] = 1.0  # left part
    study, pred = study_and_prediction(cam)
    rgb = render_overlay(study, pred)
    assert rgb.shape == (60, 80, 3)
    assert (rgb[:, 0, 0] != rgb[:, 0, 2]).all()  # coloured on the left
    assert (rgb[:, -1, 0] == rgb[:, -1, 2]).all()  # gray on the right


def test_jet_runs_blue_to_red() -> None:
    lut = jet(np.array([[0.0, 0.5, 1.0]]))
    assert lut.shape == (1, 3, 3)
    (b_r, b_g, b_b), (_, m_g, _), (r_r, r_g, r_b) = lut[0].astype(int)
    assert b_b > b_r and r_r > r_b and m_g > 200
