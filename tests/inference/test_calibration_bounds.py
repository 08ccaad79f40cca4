"""Figures of 100 % carry an honest interval: the exact n-of-n bound, never "100.0 (100.0-100.0)"."""

from __future__ import annotations

import numpy as np
import pytest

from inference.calibration import all_of_n_lower_bound, fit_site, patients_needed


def _separable(n_pos: int, n_neg: int, films_each: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, logits and patient ids of a set a model separates perfectly (pneumonia > 0 > normal)."""
    rng = np.random.default_rng(7)
    y = np.repeat(np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int), films_each)
    logit = np.where(y == 1, 1.0, -1.0) * rng.uniform(1.0, 4.0, len(y))
    groups = np.repeat(np.arange(n_pos + n_neg), films_each).astype(str)
    return y, logit, groups


def test_the_exact_bound():
    assert all_of_n_lower_bound(20) == pytest.approx(0.8316, abs=1e-4)
    assert patients_needed(0.95) == 72
    assert all_of_n_lower_bound(72) >= 0.95 > all_of_n_lower_bound(71)


def test_too_few_patients_cannot_show_the_target_and_the_profile_says_so():
    y, logit, groups = _separable(20, 20, films_each=2)  # 40 films each, but 20 patients each
    fit = fit_site(y, logit, groups, target_sensitivity=0.95, n_boot=300)
    for op in fit.operating_points.values():
        for e in (op.sensitivity, op.specificity):
            assert e.value == 1.0
            assert e.lo == pytest.approx(all_of_n_lower_bound(20)) and e.hi == 1.0
    hs = fit.operating_points["high_sensitivity"]
    assert hs.description.startswith("Screening default: No threshold showed a sensitivity of at least 95 %")
    assert "at least 72 patients" in hs.description and "these had 20" in hs.description


def test_enough_patients_show_the_target():
    y, logit, groups = _separable(80, 30)
    hs = fit_site(y, logit, groups, n_boot=300).operating_points["high_sensitivity"]
    assert hs.sensitivity.value == 1.0 and hs.sensitivity.lo == pytest.approx(all_of_n_lower_bound(80))
    assert hs.sensitivity.lo >= 0.95
    assert hs.description.startswith("Screening default: the most specific threshold")


def test_few_children_with_several_films_each_are_resampled_as_children():
    """19 children's 83 pneumonia films had been resampled as 83 films, and the profile claimed
    the 95 % target that needs 72 children; only a "patient" holding half a class (a blanked
    PatientID) makes the films their own groups."""
    from pathlib import Path

    from inference.site_calibration import Measured

    y, logit, groups = _separable(19, 40, films_each=1)
    films_of = np.r_[np.full(19, 3), np.full(40, 1)]  # each child with pneumonia: 3 films (57)
    y, logit, groups = (np.repeat(a, films_of) for a in (y, logit, groups))
    measured = Measured(paths=[Path(f"{i}.dcm") for i in range(len(y))], labels=list(y), logits=list(logit),
                        groups=[f"patient:{g}" for g in groups])
    resampled = measured.resampled()
    assert (resampled.grouping, resampled.note) == ("patient", "")
    fit = fit_site(y, logit, np.asarray(resampled.groups), target_sensitivity=0.95, n_boot=300,
                   grouping=resampled.grouping)
    hs = fit.operating_points["high_sensitivity"]
    assert hs.sensitivity.lo == pytest.approx(all_of_n_lower_bound(19)) and hs.sensitivity.lo < 0.95
    assert "at least 72 patients" in hs.description and "these had 19." in hs.description

    blanked = Measured(paths=measured.paths, labels=measured.labels, logits=measured.logits,
                       groups=["patient:ANONYMOUS" if label else g for label, g in zip(y, measured.groups)])
    resampled = blanked.resampled()
    assert resampled.grouping == "film" and "the 57 PNEUMONIA films name only 1 patient (" in resampled.note
    per_day = Measured(paths=measured.paths, labels=measured.labels, logits=measured.logits,  # 3 IDs: 3 days
                       groups=[f"patient:day{i % 3}" if label else g for i, (label, g) in enumerate(zip(y, measured.groups))])
    assert per_day.resampled().grouping == "film"
    assert "the 57 PNEUMONIA films name only 3 patients, one of them on 19 films (" in per_day.resampled().note
    hs = fit_site(y, logit, np.asarray(resampled.groups), target_sensitivity=0.95, n_boot=300,
                  grouping=resampled.grouping).operating_points["high_sensitivity"]
    assert "these had 57 films, each counted as a patient" in hs.description


def test_films_the_model_separates_perfectly_are_not_calibrated_to_certainty():
    """22 + 22 separated films had given a Platt slope of 11: every new film "> 99 %" or
    "< 1 %". Platt's targets keep the calibrated probabilities within what 22 films show."""
    from inference.calibration import fit
    from inference.metrics import fit_platt

    y, logit, _ = _separable(22, 22)  # logits 1 to 4 and -4 to -1
    assert fit_platt(y, logit)[0] > 20  # maximum likelihood: a film at logit 1 reads "> 99 %"
    for method in ("platt", "temperature"):
        calibration = fit(method, y, logit)
        assert calibration.slope < 2, method
        near = calibration.probability(np.array([-1.0, 1.0]))  # the films nearest the other class
        assert 0.1 < near[0] < 0.5 < near[1] < 0.9, method
    # Films it does not separate are fitted by maximum likelihood, as before.
    y[0] = 0  # a PNEUMONIA film labelled NORMAL: scores overlap
    assert (fit("platt", y, logit).slope, fit("platt", y, logit).intercept) == fit_platt(y, logit)


def test_a_default_point_that_flags_most_normal_films_names_the_films_that_set_it():
    """One NORMAL film filed under PNEUMONIA set the default to "threshold 0.000, specificity
    0.0 %", exit 0, and nothing said why."""
    from pathlib import Path

    from inference.prediction import ModelInfo
    from inference.profile import make_profile
    from inference.site_calibration import Measured, label_check_note

    y, logit, groups = _separable(30, 30)
    y, logit, groups = np.append(y, 1), np.append(logit, -5.0), np.append(groups, "misfiled")  # a NORMAL film filed PNEUMONIA
    paths = [Path(f"film{i}.png") for i in range(len(y) - 1)] + [Path("NORMAL2-IM-0279-0001.jpeg")]

    def note(labels: np.ndarray, logits: np.ndarray) -> str:
        fit = fit_site(labels, logits, groups[:len(labels)], n_boot=200)
        profile = make_profile(fit, ModelInfo("m", "1", "0" * 64), name="site", source="test", grouping="patient")
        return label_check_note(Measured(paths=paths[:len(labels)], labels=list(labels), logits=list(logits),
                                         groups=list(groups[:len(labels)])), profile)

    text = note(y, logit)
    assert text.startswith("Check the labels: the default point flags 30 of the 30 NORMAL films here.")
    assert "NORMAL2-IM-0279-0001.jpeg (< 1 %)" in text.split("lowest: ")[1].split(",")[0]
    assert note(y[:-1], logit[:-1]) == ""  # the same films without it: nothing to check


def test_a_calibration_error_that_rose_is_explained() -> None:
    """20 + 20 cleanly separated films read "ECE 8.9 %; before calibration 4.1 %" in the wizard,
    unexplained."""
    from dataclasses import replace

    from inference.decision import Estimate
    from inference.paths import models_dir
    from inference.presentation import calibration_note
    from inference.profile import SiteProfile

    shipped = SiteProfile.load(models_dir() / "lunglens-cxr.profile.json")
    assert calibration_note(shipped) == ""  # 0.093 before, 0.019 after
    rose = replace(shipped, metrics={**shipped.metrics, "ece_before": Estimate(0.041, 0.02, 0.07),
                                     "ece_after": Estimate(0.089, 0.059, 0.125)})
    assert calibration_note(rose).startswith("The calibration error on these films is higher after calibration")
    assert "away from certainty" in calibration_note(rose)


def test_films_separated_perfectly_give_an_auc_interval_of_some_width():
    """20 + 20 separated films read "AUC 1.000 (1.000-1.000)": every resample separates them too."""
    y, logit, groups = _separable(20, 30, films_each=2)  # 20 and 30 patients, two films each
    auc = fit_site(y, logit, groups, n_boot=300).auc
    assert (auc.value, auc.hi) == (1.0, 1.0)
    assert auc.lo == pytest.approx(all_of_n_lower_bound(20)) and auc.lo == pytest.approx(0.8316, abs=1e-4)
    y[0] = 0  # one PNEUMONIA film called NORMAL: not separated, the bootstrap interval as before
    overlapping = fit_site(y, logit, groups, n_boot=300).auc
    assert overlapping.value < 1.0 and overlapping.lo < overlapping.value
