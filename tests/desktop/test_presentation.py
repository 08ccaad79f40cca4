"""inference.presentation: the words every output uses for a result (no Qt here).

Kept beside the desktop tests because the window, the PDF and the Secondary Capture are its
readers; the cross-output comparisons are in test_one_story.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inference.decision import Estimate, OperatingPoint, custom_point, threshold_text
from inference.presentation import (
    NOT_RELIABLE,
    POPULATION,
    Tone,
    headline,
    operating_point_text,
    present,
    scope_phrase,
)
from tests.desktop.gui_helpers import POINT, PROFILE, make_prediction

WHOLE_CERTAINTY = re.compile(r"(?<![\d.])(0|100) %")  # "0 %" or "100 %", not "100.0 %" nor "10 %"


def test_above_below_and_not_reliable_read_as_three_different_stories():
    above = present(make_prediction(0.87))
    assert (above.tone, above.headline, above.finding) == (
        Tone.ABOVE, "Above the review threshold (35 %)", "pneumonia pattern: needs review")
    assert above.summary == ("Above the review threshold (35 %) — pneumonia pattern: needs review — "
                             "probability of pneumonia 87 %")
    assert above.chip == "87 % · above threshold"

    below = present(make_prediction(0.12))
    assert (below.tone, below.headline, below.finding_line) == (
        Tone.BELOW, "Below the review threshold (35 %)", "No pneumonia pattern found")
    assert below.chip == "12 % · below threshold"

    # Out of scope leads with "Not reliable", whatever the number: never a verdict.
    for p in (0.04, 0.99):
        lateral = "DICOM header says lateral view (LL), not frontal"
        out = present(make_prediction(p, in_scope=False, scope_reasons=[lateral]))
        assert out.tone is Tone.UNRELIABLE
        assert out.headline == "Not reliable — not a frontal chest X-ray"
        assert out.summary.startswith(out.headline)
        assert out.summary.endswith(f"probability of pneumonia {out.probability} (does not apply to this film)")
        assert "threshold" not in out.headline and "pattern" not in out.finding
        assert out.chip == "not reliable"
        assert out.warnings[0] == lateral  # the reason, in full


def test_below_a_threshold_over_one_half_the_words_never_say_nothing_was_found():
    """At the balanced point (or a typed one) a film can be below the threshold with a
    probability over 50 %: it is not flagged, and the finding must not read as reassurance."""
    balanced = OperatingPoint("balanced", 0.624, Estimate(0.93, 0.89, 0.97), Estimate(0.94, 0.89, 0.98))
    for p, finding in ((0.58, "not flagged at this threshold, but pneumonia is more probable than not"),
                       (0.5, "not flagged at this threshold, but pneumonia is more probable than not"),
                       (0.49, "no pneumonia pattern found")):
        words = present(make_prediction(p, balanced))
        assert (words.tone, words.headline, words.finding) == (Tone.BELOW, "Below the review threshold (62.4 %)",
                                                               finding), p
        assert words.summary == f"{words.headline} — {finding} — probability of pneumonia {words.probability}"
    assert present(make_prediction(0.624, balanced)).finding == "pneumonia pattern: needs review"


@pytest.mark.parametrize(("threshold", "text"), [(0.0, "0 %"), (1e-4, "< 0.1 %"), (0.0006, "0.1 %"), (0.242, "24.2 %"),
                                                 (0.35, "35 %"), (0.9996, "> 99.9 %"), (1.0, "100 %")])
def test_a_threshold_reads_0_or_100_percent_only_when_it_is(threshold, text):
    assert threshold_text(threshold) == text


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.004, 0.5, 0.996, 0.9999, 1.0])
def test_no_text_claims_certainty_or_normality(p):
    for in_scope in (True, False):
        words = present(make_prediction(p, in_scope=in_scope, scope_reasons=["x"]))
        everything = " ".join([words.headline, words.finding, words.summary, words.chip, words.probability])
        assert not WHOLE_CERTAINTY.search(everything), everything
        assert not re.search(r"\b(normal|unlikely|likely)\b", everything, re.IGNORECASE), everything


def test_the_operating_point_says_what_it_measured_where_with_its_interval():
    words = present(make_prediction(0.5))
    assert words.operating_point == (
        "high sensitivity, threshold 35 %: sensitivity 95.4 % (92.0–98.3), specificity 81.0 % (75.0–86.2), "
        f"95 % CI — {PROFILE.source}, the films the threshold was set on")
    assert operating_point_text(POINT, PROFILE.source) == words.operating_point
    assert words.profile == f"{PROFILE.name} · sha256 {PROFILE.sha256[:12]}"
    assert words.population == POPULATION == "Validated for frontal chest films of children aged 1–5"
    custom = present(make_prediction(0.5, custom_point(0.425)))
    assert custom.operating_point == "custom, threshold 42.5 %: sensitivity and specificity not measured"
    assert custom.source == ""
    # A stored result whose profile is not recorded says so rather than borrow a source.
    assert present(make_prediction(0.5, profile=None)).source == "the data they were measured on is not recorded"
    assert present(make_prediction(0.5, profile=None)).profile == "not recorded"
    balanced = OperatingPoint("balanced", 0.6, Estimate(0.9, 0.85, 0.94), Estimate(0.88, 0.8, 0.93))
    assert present(make_prediction(0.5, balanced)).point == "balanced, threshold 60 %"


def test_warnings_come_once_scope_reasons_first():
    words = present(make_prediction(0.3, in_scope=False, scope_reasons=["r1"], warnings=["w1", "r1", "w2", "w1"]))
    assert words.warnings == ("R1", "W1", "W2")  # each a sentence of its own
    assert present(make_prediction(0.3, warnings=["w1"], scope_reasons=["ignored in scope"])).warnings == ("W1",)


def test_headline_from_plain_values_matches_the_prediction():
    """What the CLI's JSON and the audit log hold is enough to say the same headline."""
    pred = make_prediction(0.61, in_scope=False, scope_reasons=["image is blank or nearly so (1 grey level)"])
    assert headline(pred.probability, pred.threshold, pred.in_scope, pred.scope_reasons) == present(pred).headline
    assert headline(0.61, 0.35, in_scope=False) == f"{NOT_RELIABLE} — outside what the model was validated for"
    assert scope_phrase("a reason nobody has worded yet") == "a reason nobody has worded yet"
    # Likeness says least: any other reason leads.
    both = ["image does not look like the chest X-rays the model learned from (distance 1.1x the limit)",
            "image is blank or nearly so (2 grey levels)"]
    assert headline(0.5, 0.5, False, both) == "Not reliable — blank image"
    assert headline(0.5, 0.5, False, both[:1]) == "Not reliable — unlike the films the model learned from"


@pytest.mark.slow
def test_the_gates_real_reasons_are_worded_for_what_it_measured(tmp_path, kermany_samples, bundled_model):
    """Header and orientation know the film is not a frontal chest X-ray; likeness only knows it is
    unlike the films the model learned from. Run on the real gate so its wording cannot drift apart."""
    import cv2

    from inference.engine import Engine
    from inference.loaders import load_study
    from tests.fixtures.dicom_factory import read_gray, write_dicom

    engine = Engine.load()
    film = read_gray(kermany_samples["NORMAL"][0])
    lateral = write_dicom(tmp_path / "lateral.dcm", film, tags={"ViewPosition": "LL"})
    upside_down = tmp_path / "upside-down.png"
    cv2.imwrite(str(upside_down), np.ascontiguousarray(film[::-1]))
    noisy = tmp_path / "noisy.png"  # still upright and frontal, but no film the model learned from
    noise = np.random.default_rng(0).normal(0, 40, film.shape)
    cv2.imwrite(str(noisy), np.clip(film + noise, 0, 255).astype(np.uint8))

    def reading(path):
        pred = engine.predict(load_study(path))
        assert not pred.in_scope, f"{path.name}: the gate let it through"
        return present(pred).headline

    assert reading(lateral) == "Not reliable — not a frontal chest X-ray"
    # The header's finding is said once, as the gate's reason, not again as a study warning.
    warnings = present(engine.predict(load_study(lateral))).warnings
    assert [w for w in warnings if "ateral view" in w] == ["DICOM header says lateral view (LL), not frontal"]
    assert reading(upside_down) == "Not reliable — not an upright frontal chest X-ray"
    assert reading(noisy) == "Not reliable — unlike the films the model learned from"


def test_the_secondary_capture_burns_in_the_same_story_in_ascii():
    from inference import heatmap
    from inference.dicom_sc import DISCLAIMER, result_lines

    pred = make_prediction(0.06, in_scope=False, scope_reasons=["DICOM header says body part SKULL, not chest"],
                           warnings=["colour image — converted to gray"])
    words = present(pred)
    lines = result_lines(pred, heatmap.caption(pred, shown=False))
    assert lines[:6] == [
        DISCLAIMER,
        "Not reliable - not a frontal chest X-ray - probability of pneumonia 6 % (does not apply to this film)",
        "No heat-map: the result is not reliable (the film is out of scope).",
        f"Operating point: {words.operating_point.replace('—', '-').replace('–', '-')}",
        f"Site profile: {PROFILE.name} - sha256 {PROFILE.sha256[:12]}",
        "Validated for frontal chest films of children aged 1-5",
    ]
    assert lines[6:8] == ["Warning: DICOM header says body part SKULL, not chest",
                          "Warning: Colour image - converted to gray"]
    assert all(line.isascii() for line in lines) and lines[-1].startswith("Model lunglens-test 0.0-test")
