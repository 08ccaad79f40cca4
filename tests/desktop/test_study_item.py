"""The study list's plain-Python logic: wording, sort order, what is kept in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataclasses import replace

from desktop.models.study_item import (
    MASK,
    Status,
    StudyItem,
    follows,
    masked_value,
    metadata_line,
    suspicion_key,
)
from desktop.models.windowing import preset_window
from inference.decision import OperatingPoint
from inference.study import StudyMetadata
from tests.desktop.gui_helpers import make_prediction, shipped_profile


def _prediction(p: float, threshold: float = 0.5, in_scope: bool = True):
    return make_prediction(p, OperatingPoint("balanced", threshold), in_scope=in_scope)


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


def test_only_results_of_the_model_and_profile_in_use_follow_its_operating_points():
    profile = shipped_profile()
    ours = make_prediction(0.4, model=profile.model, profile=profile.info)
    assert follows(ours, profile)
    assert not follows(replace(ours, model=replace(profile.model, sha256="0" * 64)), profile)  # an earlier model
    assert not follows(replace(ours, profile=replace(profile.info, sha256="1" * 64)), profile)  # another site
    assert not follows(replace(ours, profile=None), profile) and not follows(ours, None)


def test_suspicion_order_puts_everything_that_needs_a_look_before_below_threshold():
    """Above threshold, then not reliable, then failed/cancelled, then pending; below threshold last --
    however low the unreliable or failed ones are."""
    def item(order, status, p=None, in_scope=True):
        pred = None if p is None else _prediction(p, in_scope=in_scope)
        return StudyItem(path=Path(f"{order}.png"), status=status, prediction=pred, order=order)

    items = [
        item(0, Status.DONE, 0.30),
        item(1, Status.ERROR),
        item(2, Status.DONE, 0.95, in_scope=False),
        item(3, Status.QUEUED),
        item(4, Status.DONE, 0.90),
        item(5, Status.DONE, 0.004, in_scope=False),
        item(6, Status.RUNNING),
        item(7, Status.DONE, 0.001),
        item(8, Status.CANCELLED),
        item(9, Status.DONE, 0.55),
    ]
    ordered = [it.order for it in sorted(items, key=suspicion_key)]
    assert ordered == [4, 9, 2, 5, 1, 8, 3, 6, 0, 7]


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
