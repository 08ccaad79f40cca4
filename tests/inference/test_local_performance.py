"""Local performance: the active profile's operating point against the reader's verdicts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inference import metrics as M
from inference.calibration import sens_spec_estimates
from inference.decision import custom_point
from inference.local_performance import MIN_PER_CLASS, local_performance
from inference.prediction import ModelInfo
from inference.worklist import WorklistRecord

from tests.fixtures.tiny_model import tiny_profile

MODEL = ModelInfo("lunglens-test", "0.0-test", "c0ffee" * 10 + "abcd")
PROFILE = tiny_profile(MODEL)  # p = sigmoid(logit / 2); points at 0.3 and 0.5


def verdict(i: int, logit: float, said: str | None, **changes) -> WorklistRecord:
    """A stored result with a verdict; its stored probability is deliberately not the profile's."""
    record = WorklistRecord(
        study_path=f"/studies/person{i}_virus_{i}.jpeg", pixel_sha256=f"{i:064x}", metadata={}, probability=0.99,
        operating=custom_point(0.5), in_scope=True, scope_reasons=[], warnings=[], model_name=MODEL.name,
        model_version=MODEL.version, model_sha256=MODEL.sha256, provider="CPUExecutionProvider", logit=logit,
        verdict=said, verdict_at=f"2026-01-01T03:{i % 60:02d}:00+00:00", id=i)
    return replace(record, **changes)


def reader_set(n_pos: int, n_neg: int, seed: int = 3) -> tuple[list[WorklistRecord], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = np.concatenate([rng.normal(1.5, 1.5, n_pos), rng.normal(-1.5, 1.5, n_neg)])
    y = np.concatenate([np.ones(n_pos, int), np.zeros(n_neg, int)])
    records = [verdict(i, float(z), "pneumonia" if label else "no pneumonia")
               for i, (z, label) in enumerate(zip(logits, y))]
    return records, y, logits


def test_figures_are_the_profiles_reading_of_the_stored_logits_with_bootstrap_intervals() -> None:
    records, y, logits = reader_set(14, 16)
    operating = PROFILE.operating_point("balanced")
    # Left out, and counted: unsure, another model, no logit, not reliable; a radiograph twice counts once.
    extra = [verdict(100, 3.0, "unsure"),
             verdict(101, 3.0, "pneumonia", model_sha256="0" * 64),
             verdict(102, None, "pneumonia"),
             verdict(103, 3.0, "pneumonia", in_scope=False),
             replace(records[0], study_path="/studies/copy.jpeg", id=200, verdict_at="2026-01-01T02:00:00+00:00")]
    result = local_performance(records + extra, PROFILE, operating, n_boot=300)
    assert (result.n_pneumonia, result.n_no_pneumonia, result.n) == (14, 16, 30)
    assert result.too_few == "" and result.grouping == "patient"
    assert dict(result.skipped) == {'"unsure"': 1, "another model's result": 1, "no stored logit (LungLens 1)": 1,
                                    "not reliable (outside what the model was validated for)": 1,
                                    "the same radiograph under another name": 1}
    prob = 1 / (1 + np.exp(-logits / 2))  # the profile's calibration, not the stored 0.99
    sens, spec = M.sens_spec(y, prob, operating.threshold)
    assert result.sensitivity.value == pytest.approx(sens) and result.specificity.value == pytest.approx(spec)
    assert result.flagged_pneumonia == round(sens * 14) and result.cleared_no_pneumonia == round(spec * 16)
    assert result.auc.value == pytest.approx(M.auc(y, logits))
    groups = np.asarray([f"patient:P{i:04d}" for i in range(30)])
    expected = sens_spec_estimates(y, prob, operating.threshold, groups, 300)
    assert (result.sensitivity, result.specificity) == expected  # the very intervals a profile gets
    for e in (result.auc, result.sensitivity, result.specificity):
        assert e.lo <= e.value <= e.hi


def test_another_operating_point_moves_sensitivity_not_the_auc() -> None:
    records, _, _ = reader_set(12, 12)
    low = local_performance(records, PROFILE, PROFILE.operating_point("high_sensitivity"), n_boot=200)
    high = local_performance(records, PROFILE, custom_point(0.9), n_boot=200)
    assert low.sensitivity.value > high.sensitivity.value and low.specificity.value < high.specificity.value
    assert low.auc == high.auc


def test_too_few_verdicts_of_a_class_give_no_figures_but_say_so() -> None:
    records, _, _ = reader_set(MIN_PER_CLASS - 1, 25)
    result = local_performance(records, PROFILE, PROFILE.operating_point(), n_boot=200)
    assert result.auc is None and result.sensitivity is None and result.specificity is None
    assert result.too_few.startswith(f"Too few verdicts to measure anything yet: {MIN_PER_CLASS - 1} “pneumonia” "
                                     f"and 25 “no pneumonia”. At least {MIN_PER_CLASS} patients of each are needed")
    nothing = local_performance([], PROFILE, PROFILE.operating_point())
    assert nothing.n == 0 and "0 “pneumonia” and 0 “no pneumonia”" in nothing.too_few


def test_a_profile_fitted_on_these_verdicts_says_its_figures_are_not_a_fresh_check() -> None:
    """Help → Local performance had shown a profile fitted on the worklist's verdicts, measured
    on those same verdicts, under "how the profile does on this site's studies"."""
    from inference.site_calibration import VERDICTS_SOURCE

    records, _, _ = reader_set(14, 16)
    operating = PROFILE.operating_point("balanced")
    assert local_performance(records, PROFILE, operating, n_boot=100).caveat == ""
    fitted_here = replace(PROFILE, source=f"{VERDICTS_SOURCE}: 30 films (16 NORMAL, 14 PNEUMONIA)",
                          created="2026-11-30T03:00:00+00:00")
    caveat = local_performance(records, fitted_here, operating, n_boot=100).caveat
    assert caveat.startswith("This profile was fitted on 2026-11-30 on the reader verdicts in this worklist")
    assert "Only verdicts given since are a fresh check." in caveat


def test_ten_studies_of_four_children_are_four_patients_and_too_few() -> None:
    """Ten "pneumonia" studies of four children had given "100.0 % (39.8-100.0)" beside "10 of
    the 10 studies", the four nowhere: the minimum and the counts are the bootstrap's patients."""
    records, _, _ = reader_set(10, 12)
    four = [replace(r, study_path=f"/studies/person{1000 + i % 4}_virus_{i}.jpeg") if r.verdict == "pneumonia" else r
            for i, r in enumerate(records)]  # the file names say which child
    result = local_performance(four, PROFILE, PROFILE.operating_point(), n_boot=100)
    assert (result.n_pneumonia, result.groups_pneumonia, result.groups_no_pneumonia) == (10, 4, 12)
    assert result.sensitivity is None and result.too_few.startswith(
        "Too few verdicts to measure anything yet: 10 “pneumonia” and 12 “no pneumonia” (of 4 and 12 patients). "
        f"At least {MIN_PER_CLASS} patients of each are needed")
    enough = local_performance(records, PROFILE, PROFILE.operating_point(), n_boot=100)
    assert (enough.groups_pneumonia, enough.groups_no_pneumonia) == (10, 12) and enough.sensitivity is not None
