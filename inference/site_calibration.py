"""Calibrate LungLens for a site: run the model on labelled films and fit a profile.

The shipped default profile (``python -m training.site_profile``), ``lunglens calibrate``
and the app's calibration wizard all call :func:`measure` then :func:`calibrate`, so a
clinic's profile is made exactly as the shipped one was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibration import fit_site
from .engine import Engine
from .errors import LungLensError
from .loaders import load_study
from .profile import SiteProfile, make_profile
from .sitefilms import LabelledFilm, patient_group


@dataclass
class Measured:
    """The model's raw logits on labelled films, with each film's patient group."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    logits: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "<file>: <reason>" for films that failed

    @property
    def grouping(self) -> str:
        """"patient" when every film has a patient, else "film" (mixed: the patients we know)."""
        return "patient" if all(not g.startswith("film:") for g in self.groups) else "film"


def measure(engine: Engine, films: list[LabelledFilm],
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Measured:
    """Run the model on every film (its raw logit does not depend on any profile)."""
    out = Measured()
    for i, film in enumerate(films):
        if cancelled is not None and cancelled():
            break
        try:
            study = load_study(film.path)
            prediction = engine.predict(study)
        except LungLensError as exc:
            out.errors.append(str(exc) if str(film.path.name) in str(exc) else f"{film.path}: {exc}")
        else:
            out.paths.append(film.path)
            out.labels.append(film.label)
            out.logits.append(prediction.logit)
            out.groups.append(patient_group(study.metadata.patient_id, film.path))
        if progress is not None:
            progress(i + 1, len(films))
    return out


def describe_source(measured: Measured, description: str | None) -> str:
    """How figures name their data, e.g. "site sample: 292 films (117 NORMAL, 175 PNEUMONIA)"."""
    y = np.asarray(measured.labels)
    counts = f"{len(y)} films ({int((y == 0).sum())} NORMAL, {int((y == 1).sum())} PNEUMONIA)"
    return f"{description}: {counts}" if description else counts


def calibrate(engine: Engine, measured: Measured, name: str, description: str | None = None,
              target_sensitivity: float = 0.95, n_boot: int = 1000) -> SiteProfile:
    """Fit calibration and operating points on measured films and make them a profile.

    Raises :class:`inference.calibration.CalibrationDataError` for data that cannot support
    a calibration (one class, too few films of a class).
    """
    fit = fit_site(np.asarray(measured.labels), np.asarray(measured.logits), np.asarray(measured.groups),
                   target_sensitivity=target_sensitivity, n_boot=n_boot)
    return make_profile(fit, engine.model_info, name=name, source=describe_source(measured, description),
                        grouping=measured.grouping)
