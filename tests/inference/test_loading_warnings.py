"""Every study warning, raised from real files, and none on a clean chest film."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference.loaders import load_study
from tests.fixtures.dicom_factory import write_dicom, write_raster


def _warnings(tmp_path, pixels, **kw) -> list[str]:
    return load_study(write_dicom(tmp_path / "w.dcm", pixels, bits_stored=12, **kw)).warnings


def test_clean_chest_dx_has_no_warnings(tmp_path, film12):
    assert _warnings(tmp_path, film12) == []
    assert _warnings(tmp_path, film12, tags={"Modality": None, "BodyPartExamined": None, "ViewPosition": None}) == []


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"BodyPartExamined": "KNEE"}, "Body part is KNEE, not chest: the model only knows chest X-rays."),
        ({"ViewPosition": "LL"}, "Lateral view (LL): the model was trained on frontal (PA/AP) views."),
        ({"ViewPosition": "RL"}, "Lateral view (RL): the model was trained on frontal (PA/AP) views."),
        ({"ViewPosition": "LATERAL"}, "Lateral view (LATERAL): the model was trained on frontal (PA/AP) views."),
        ({"Modality": "CT"}, "Modality is CT, not a radiograph (CR/DX)."),
        ({"Modality": "MG"}, "Modality is MG, not a radiograph (CR/DX)."),
    ],
)
def test_header_warnings(tmp_path, film12, tags, expected):
    assert _warnings(tmp_path, film12, tags=tags) == [expected]


@pytest.mark.parametrize("modality", ["CR", "DX", "DR", ""])
def test_radiograph_modalities_do_not_warn(tmp_path, film12, modality):
    assert _warnings(tmp_path, film12, tags={"Modality": modality}) == []


def test_non_chest_image_named_in_guide(tmp_path, film12):
    warnings = _warnings(tmp_path, film12, tags={"BodyPartExamined": "HAND", "Modality": "CR"})
    assert any("not chest" in w for w in warnings)


def test_small_image_warning(tmp_path, film12):
    small = cv2.resize(film12, (200, 240), interpolation=cv2.INTER_AREA)
    assert _warnings(tmp_path, small) == ["Small image (200x240 px): detail may be lost."]


def test_extreme_aspect_ratio_warning(tmp_path, film12):
    strip = np.ascontiguousarray(np.tile(film12, (1, 3))[:300])  # 1500x300
    assert _warnings(tmp_path, strip) == [
        "Unusual aspect ratio (1500x300 px): it may not be a whole chest film."
    ]


def test_colour_and_multi_frame_warnings(tmp_path, film12, kermany_gray):
    frames = _warnings(tmp_path, np.stack([film12, film12]))
    assert frames == ["Multi-frame image (2 frames): only the first frame is shown and analysed."]
    big = cv2.resize(kermany_gray, (512, 512))
    rgb = np.dstack([big, big // 3, 255 - big])
    raster = load_study(write_raster(tmp_path / "c.png", rgb)).warnings
    assert raster == ["Colour image: converted to greyscale."]
