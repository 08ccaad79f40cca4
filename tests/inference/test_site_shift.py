"""Synthetic site shifts (issue 12 item 6): what recalibrating on a site's own films buys.

The site-sample films are altered as other equipment or software might give them -- gamma,
blur, resampling, JPEG quality, edge enhancement -- and split by patient into a calibration
half and an evaluation half. A profile fitted on the calibration half (the code of
``lunglens calibrate``) is compared on the evaluation half with the shipped profile.

Measured with model 1.0 (evaluation half: 144 films, 86 PNEUMONIA; shipped -> recalibrated):
edge enhancement moves the pneumonia logits down, and the shipped high-sensitivity threshold
misses the 95 % target (sensitivity 0.930) where the recalibrated one restores it (0.988);
blur and resampling move the logits up, so the shipped threshold keeps its sensitivity but
loses specificity. Gamma barely matters: the model's histogram equalization undoes any
monotone grey-level change. ECE falls under every shift (0.137 -> 0.082 with edge
enhancement, 0.220 -> 0.097 with blur, 0.171 -> 0.066 with gamma). No blur, resampling,
JPEG or gamma setting tried made the shipped threshold miss the target. With model 2.6 and the
default target 93 % (printed by ``pytest -s``, 2026-12-02): edge enhancement 0.779 -> 0.988,
ECE 0.139 -> 0.068; blur sigma 3 1.000 -> 0.953, ECE 0.135 -> 0.046.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import metrics as M
from inference.calibration import DEFAULT_TARGET
from inference.engine import Engine
from inference.profile import UNCALIBRATED, SiteProfile
from inference.site_calibration import Measured, calibrate, measure
from inference.sitefilms import LABELS, LabelledFilm, from_folders, patient_group

pytestmark = pytest.mark.slow  # ~1-2 min: five shifts of 292 films through the real model

TARGET = DEFAULT_TARGET  # calibrate's own, which the profile below is fitted with


def _edge_enhanced(g: np.ndarray) -> np.ndarray:
    """Unsharp masking (amount 2, sigma 2 px), as CR/DR processing applies."""
    f = g.astype(np.float32)
    return np.clip(3.0 * f - 2.0 * cv2.GaussianBlur(f, (0, 0), 2.0), 0, 255).astype(np.uint8)


def _resampled(g: np.ndarray) -> np.ndarray:
    """Acquired at 96 px and scaled back up, as a coarser detector would give it."""
    small = cv2.resize(g, (96, 96), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)


# name -> (pixel change, file suffix, imwrite parameters)
SHIFTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str, list[int]]] = {
    "gamma 0.5": (lambda g: (255.0 * (g / 255.0) ** 0.5).astype(np.uint8), ".png", []),
    "blur sigma 3": (lambda g: cv2.GaussianBlur(g, (0, 0), 3.0), ".png", []),
    "resampled from 96 px": (_resampled, ".png", []),
    "JPEG quality 10": (lambda g: g, ".jpeg", [cv2.IMWRITE_JPEG_QUALITY, 10]),
    "edge enhancement": (_edge_enhanced, ".png", []),
}
MISSES = "edge enhancement"  # the shift under which the shipped threshold misses the target


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(threads=1, profile=UNCALIBRATED)  # raw logits; profiles are applied below


@pytest.fixture(scope="module")
def halves(site_sample: Path) -> tuple[list[LabelledFilm], list[LabelledFilm]]:
    """Calibration and evaluation halves: patients alternate in name order, each class split alike."""
    films = from_folders([site_sample])
    patients = sorted({patient_group("", f.path) for f in films})
    half = {p: i % 2 for i, p in enumerate(patients)}
    split = ([f for f in films if half[patient_group("", f.path)] == 0],
             [f for f in films if half[patient_group("", f.path)] == 1])
    assert not {patient_group("", f.path) for f in split[0]} & {patient_group("", f.path) for f in split[1]}
    return split


def shifted(films: list[LabelledFilm], shift: str, root: Path) -> list[LabelledFilm]:
    """The films altered by ``shift``, written as files under ``root/<LABEL>/``."""
    change, suffix, params = SHIFTS[shift]
    out = []
    for film in films:
        gray = cv2.imread(str(film.path), cv2.IMREAD_GRAYSCALE)
        target = root / LABELS[film.label] / (film.path.stem + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(target), change(gray), params)
        out.append(LabelledFilm(target, film.label))
    return out


def figures(profile: SiteProfile, measured: Measured) -> tuple[float, float]:
    """Sensitivity at the profile's high-sensitivity threshold, and ECE, on measured films."""
    y = np.asarray(measured.labels)
    prob = np.asarray(profile.calibration.probability(np.asarray(measured.logits)))
    sensitivity, _ = M.sens_spec(y, prob, profile.operating_point("high_sensitivity").threshold)
    return sensitivity, M.ece(y, prob)


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_recalibrating_on_half_the_shifted_films_holds_on_the_other_half(
    shift: str, engine: Engine, halves, tmp_path: Path
) -> None:
    calibration_films, evaluation_films = halves
    cal = measure(engine, shifted(calibration_films, shift, tmp_path / "calibration"))
    ev = measure(engine, shifted(evaluation_films, shift, tmp_path / "evaluation"))
    assert not cal.errors and not ev.errors
    shipped = SiteProfile.load(engine.model_path.parent / engine.manifest.default_profile, engine.model_info)
    local = calibrate(engine, cal, name=f"site with {shift}", description=f"calibration half, {shift}", n_boot=200)

    shipped_sens, shipped_ece = figures(shipped, ev)
    local_sens, local_ece = figures(local, ev)
    print(f"\n{shift:>22}: sensitivity {shipped_sens:.3f} -> {local_sens:.3f}, ECE {shipped_ece:.3f} -> {local_ece:.3f}")
    # The shipped profile was fitted on all site films, evaluation half included; where a
    # shift leaves it well calibrated (gamma: undone by equalization) a half-site refit can
    # only match it, within noise. Where the shift spoils it, recalibrating must do better.
    if shipped_ece > 0.08:
        assert local_ece < shipped_ece
    else:
        assert local_ece < shipped_ece + 0.03
    assert local_sens >= 0.93  # issue 12's target on the evaluation half
    if shift == MISSES:
        assert shipped_sens < TARGET <= local_sens
