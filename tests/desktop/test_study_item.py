"""The study list's plain-Python logic: wording, sort order, what is kept in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop.models.study_item import (
    MASK,
    Status,
    StudyItem,
    compact_prediction,
    expand_cam,
    full_prediction,
    masked_value,
    metadata_line,
    percent_text,
    reduce_cam,
    relabel,
    result_sentence,
    suspicion_key,
)
from desktop.models.windowing import preset_window
from inference.prediction import ModelInfo, Prediction
from inference.study import StudyMetadata


def _prediction(p: float, threshold: float = 0.5, in_scope: bool = True, shape=(300, 200)) -> Prediction:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    cam = (xx / (shape[1] - 1)).astype(np.float32)  # a left-to-right ramp
    return Prediction(
        probability=p, label="PNEUMONIA" if p >= threshold else "NORMAL", threshold=threshold,
        operating_point="balanced", sensitivity=0.9, specificity=0.8, cam=cam,
        model=ModelInfo("m", "1", "abc"), provider="CPUExecutionProvider", in_scope=in_scope,
        embedding=np.ones(8, np.float32),
    )


def test_sentences_say_likely_unlikely_or_unreliable():
    assert result_sentence(0.87, True) == "Pneumonia likely — 87 %"
    assert result_sentence(0.06, False) == "Pneumonia unlikely — 6 %"
    assert result_sentence(0.87, True, in_scope=False) == "Not a frontal chest X-ray — result not reliable"


def test_percent_never_claims_certainty():
    assert percent_text(0.0004) == "<1 %"
    assert percent_text(0.9996) == ">99 %"
    assert percent_text(0.5) == "50 %"


def test_metadata_line_hides_identifiers_unless_allowed():
    meta = StudyMetadata(patient_name="DOE^JANE", patient_id="12345", patient_age="004Y", patient_sex="F",
                         study_date="20240131", modality="CR", view_position="PA")
    hidden = metadata_line(meta, show_identifiers=False)
    shown = metadata_line(meta, show_identifiers=True)
    assert "DOE" not in hidden and "12345" not in hidden
    assert hidden == "4 y · F · 2024-01-31 · CR PA"
    assert shown.startswith("DOE JANE · ID 12345 · ")


def test_tag_masking():
    assert masked_value("PatientName", "DOE^JANE", False) == MASK
    assert masked_value("PatientName", "DOE^JANE", True) == "DOE^JANE"
    assert masked_value("Modality", "CR", False) == "CR"


def test_compact_prediction_keeps_numbers_and_a_small_cam():
    pred = _prediction(0.7, shape=(3000, 2000))
    compact, cam_small = compact_prediction(pred)
    assert compact.cam.size == 0 and compact.embedding is None
    assert compact.probability == 0.7 and compact.label == "PNEUMONIA"
    assert max(cam_small.shape) == 128 and cam_small.dtype == np.uint8
    assert cam_small.nbytes < 20_000  # vs 24 MB for the full float32 map


def test_cam_round_trip_keeps_where_the_map_is_strong():
    pred = _prediction(0.7, shape=(300, 200))
    small = reduce_cam(pred.cam)
    back = expand_cam(small, (300, 200))
    assert back.shape == (300, 200)
    assert np.abs(back - pred.cam).max() < 0.03
    item = StudyItem(path=Path("a.png"), prediction=compact_prediction(pred)[0], cam_small=small)
    full = full_prediction(item, (300, 200))
    assert full is not None and full.cam.shape == (300, 200) and full.probability == 0.7


def test_relabel_moves_the_decision_not_the_probability():
    pred = _prediction(0.4, threshold=0.5)
    assert pred.label == "NORMAL"
    low = relabel(pred, 0.2, "high_sensitivity", 0.97, 0.6)
    assert (low.label, low.probability, low.threshold, low.sensitivity) == ("PNEUMONIA", 0.4, 0.2, 0.97)


def test_suspicion_order_puts_out_of_scope_and_pending_apart():
    def item(order, status, p=None, in_scope=True):
        pred = None if p is None else compact_prediction(_prediction(p, in_scope=in_scope))[0]
        return StudyItem(path=Path(f"{order}.png"), status=status, prediction=pred, order=order)

    items = [
        item(0, Status.DONE, 0.30),
        item(1, Status.ERROR),
        item(2, Status.DONE, 0.95, in_scope=False),
        item(3, Status.QUEUED),
        item(4, Status.DONE, 0.90),
        item(5, Status.DONE, 0.10, in_scope=False),
        item(6, Status.RUNNING),
    ]
    ordered = [it.order for it in sorted(items, key=suspicion_key)]
    assert ordered == [4, 0, 2, 5, 3, 6, 1]


def test_window_presets_sit_on_the_image_histogram():
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 200, (400, 300)).astype(np.float32)
    lung = preset_window(img, "lung", (1000, 400))
    bone = preset_window(img, "bone", (1000, 400))
    full = preset_window(img, "full range", (1000, 400))
    assert lung[0] < bone[0]  # lung looks at the darker values
    assert full == pytest.approx(((img.min() + img.max()) / 2, img.max() - img.min()))
    assert preset_window(img, "default", (1000, 400)) == (1000, 400)
    with pytest.raises(ValueError, match="unknown window preset"):
        preset_window(img, "brain", (1, 1))
