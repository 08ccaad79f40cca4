"""Calibrate LungLens for a site: run the model on labelled films and fit a profile.

The shipped default profile (``python -m training.site_profile``), ``lunglens calibrate``
and the app's calibration wizard all call :func:`measure` (or :func:`verdict_films` for the
reader verdicts stored in the worklist) then :func:`calibrate`, so a clinic's profile is
made exactly as the shipped one was, whichever way it was asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibration import DEFAULT_TARGET, MIN_PER_CLASS, fit_site
from .decision import probability_text
from .engine import Engine
from .errors import LungLensError
from .hashing import pixel_sha256
from .loaders import load_study
from .prediction import ModelInfo
from .profile import SiteProfile, make_profile
from .sitefilms import LABELS, LabelledFilm, patient_group
from .worklist import WorklistRecord, verdict_label


FEW_PATIENTS = 10  # fewer in a class of 20 films or more: the IDs do not tell its patients apart


def films_text(n: int) -> str:
    """ "1 film", "2 films"."""
    return f"{n} film" if n == 1 else f"{n} films"


@dataclass
class Measured:
    """The model's raw logits on labelled films, with each film's patient group."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    logits: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "<file>: <reason>" for films that failed
    # Film -> the gate's reasons, for films it called not reliable: left out of the fit, as
    # no threshold is ever applied to such a film (25 photographs among a clinic's NORMAL
    # films took its AUC from 0.975 to 0.902 and its specificity from 79 % to 66 %, unsaid).
    outside: dict[Path, str] = field(default_factory=dict)
    # Film -> the film of the same image measured first: the same radiograph under two names
    # (copied into two folders) was counted twice, 12 images passing the minimum of 20.
    duplicates: dict[Path, Path] = field(default_factory=dict)

    def left_out(self) -> str:
        """The films found but not counted, and why ("" when none): a refusal for "only 19
        NORMAL films" had puzzled a user who had counted 20 files, one a copy of another."""
        parts = [(len(self.duplicates), "the same image as another film (each image counts once)"),
                 (len(self.outside), "not reliable (outside the model's intended use)"),
                 (len(self.errors), "could not be read")]
        said = "; ".join(f"{films_text(n)} {why}" for n, why in parts if n)
        return f"left out: {said}" if said else ""

    def resampled(self) -> Resampled:
        """What the bootstrap intervals resample. Patients, as :func:`patient_group` finds them
        (the films of no known patient each alone; "film" only when no film names one) --
        unless they do not tell the patients of a class apart: one "patient" holding half of a
        class's films, or fewer than :data:`FEW_PATIENTS` for 20 films or more, is what a blanked
        or uniform PatientID (or one per day, or one file name in every folder) looks like, and
        resampling so few groups gives intervals of no width around a threshold chosen on them.
        Then every film is its own group, and the reason is given. A few real patients with
        several films each stay patients: counted as films, 19 children's 83 films claimed a
        sensitivity of 95 % with 95 % confidence, which needs 72 children."""
        y, groups = np.asarray(self.labels), np.asarray(self.groups)
        for label, name in enumerate(LABELS):
            _, sizes = np.unique(groups[y == label], return_counts=True)
            films, patients = int(sizes.sum()), len(sizes)
            if films >= MIN_PER_CLASS and (2 * int(sizes.max()) >= films or patients < FEW_PATIENTS):
                return Resampled([f"film:{p}" for p in self.paths], "film", (
                    f"the {films} {name} films name only {patients} patient{'' if patients == 1 else 's'}"
                    f"{f', one of them on {int(sizes.max())} films' if patients > 1 else ''} (the same PatientID or "
                    f"file name on many films, as anonymisation can leave them), so the 95 % intervals resample "
                    f"films instead of patients: they are too narrow if a child has several films here"))
        return Resampled(list(self.groups), "film" if all(g.startswith("film:") for g in groups) else "patient")


@dataclass(frozen=True)
class Resampled:
    """The bootstrap group of each film, what the groups are, and why films when patients were named."""

    groups: list[str]
    grouping: str  # "patient" or "film"
    note: str = ""


def measure(engine: Engine, films: list[LabelledFilm],
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Measured:
    """Run the model on every film (its raw logit does not depend on any profile). An image met
    again under another name is measured once; one given both labels is an error, both left out."""
    out = Measured()
    first_of: dict[str, int] = {}  # pixel fingerprint -> index in out's lists
    for i, film in enumerate(films):
        if cancelled is not None and cancelled():
            break
        try:
            study = load_study(film.path)
            prediction = engine.predict(study)
        except LungLensError as exc:  # named by its whole path: a CSV's row may be anywhere
            out.errors.append(f"{film.path}: {str(exc).removeprefix(f'{film.path.name}: ')}")
        else:
            if not prediction.in_scope:
                out.outside[film.path] = "; ".join(prediction.scope_reasons)
                if progress is not None:
                    progress(i + 1, len(films))
                continue
            fingerprint = pixel_sha256(study)
            if fingerprint in first_of:
                _same_image(out, first_of[fingerprint], film)
                if progress is not None:
                    progress(i + 1, len(films))
                continue
            first_of[fingerprint] = len(out.paths)
            out.paths.append(film.path)
            out.labels.append(film.label)
            out.logits.append(prediction.logit)
            meta = study.metadata
            out.groups.append(patient_group(meta.patient_id, film.path, meta.study_instance_uid))
        if progress is not None:
            progress(i + 1, len(films))
    _drop(out, {j for j, label in enumerate(out.labels) if label < 0})
    return out


def _same_image(out: Measured, first: int, film: LabelledFilm) -> None:
    """``film`` holds the image measured ``first``: left out; with the other label, an error,
    and the first is marked (label -1) to be left out too."""
    original = out.paths[first]
    if out.labels[first] in (film.label, -1):
        out.duplicates[film.path] = original
        return
    out.errors.append(f"{film.path}: the same image as {original}, which is labelled "
                      f"{LABELS[out.labels[first]]}, not {LABELS[film.label]}; both left out")
    out.labels[first] = -1


def _drop(out: Measured, indices: set[int]) -> None:
    """Take the films at ``indices`` out of the measured lists."""
    if not indices:
        return
    keep = [j for j in range(len(out.paths)) if j not in indices]
    out.paths, out.labels, out.logits, out.groups = ([values[j] for j in keep] for values in
                                                     (out.paths, out.labels, out.logits, out.groups))


@dataclass
class WorklistFilms:
    """The worklist's verdicts as measured films, and why the others were left out."""

    measured: Measured
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> number of studies


def verdict_films(records: Iterable[WorklistRecord], model: ModelInfo) -> WorklistFilms:
    """Stored results with a reader verdict as labelled films, one per radiograph (the latest
    verdict when the same pixels were opened under several names). Their stored logits are
    used, so the model is not run again; "unsure" verdicts, another model's results, rows
    without a logit (LungLens 1) and results the input gate called not reliable (no
    threshold applies to them, as in :func:`measure`) are left out and counted."""
    out = WorklistFilms(Measured())
    latest: dict[str, WorklistRecord] = {}
    for record in records:
        label = verdict_label(record.verdict)
        if label is None:
            out.skipped['"unsure"'] += 1
        elif record.model_sha256 != model.sha256:
            out.skipped["another model's result"] += 1
        elif record.logit is None:
            out.skipped["no stored logit (LungLens 1)"] += 1
        elif not record.in_scope:
            out.skipped["not reliable (outside what the model was validated for)"] += 1
        else:
            kept = latest.get(record.pixel_sha256)
            if kept is not None:
                out.skipped["the same radiograph under another name"] += 1
            if kept is None or (record.verdict_at or "") >= (kept.verdict_at or ""):
                latest[record.pixel_sha256] = record
    for record in latest.values():
        path = Path(record.study_path)
        out.measured.paths.append(path)
        out.measured.labels.append(verdict_label(record.verdict))
        out.measured.logits.append(record.logit)
        meta = record.study_metadata
        out.measured.groups.append(patient_group(meta.patient_id, path, meta.study_instance_uid))
    return out


VERDICTS_SOURCE = "reader verdicts in the worklist"  # how a profile made from them names its films


def folders_source(dirs: Iterable[Path]) -> str:
    """How a profile names films found in labelled folders (never a full path: it may name a patient)."""
    return f"NORMAL/PNEUMONIA folders under {', '.join(Path(d).resolve().name for d in dirs)}"


def describe_source(measured: Measured, description: str | None) -> str:
    """How figures name their data, e.g. "site sample: 291 films (116 NORMAL, 175 PNEUMONIA; 1 more
    left out as outside the model's intended use)"."""
    y = np.asarray(measured.labels)
    outside = f"; {len(measured.outside)} more left out as outside the model's intended use" if measured.outside else ""
    counts = f"{len(y)} films ({int((y == 0).sum())} NORMAL, {int((y == 1).sum())} PNEUMONIA{outside})"
    return f"{description}: {counts}" if description else counts


def calibrate(engine: Engine, measured: Measured, name: str, description: str | None = None,
              target_sensitivity: float = DEFAULT_TARGET, n_boot: int = 1000) -> SiteProfile:
    """Fit calibration and operating points on measured films and make them a profile.

    Raises :class:`inference.calibration.CalibrationDataError` for data that cannot support
    a calibration (one class, too few films of a class).
    """
    resampled = measured.resampled()
    fit = fit_site(np.asarray(measured.labels), np.asarray(measured.logits), np.asarray(resampled.groups),
                   target_sensitivity=target_sensitivity, n_boot=n_boot, grouping=resampled.grouping)
    return make_profile(fit, engine.model_info, name=name, source=describe_source(measured, description),
                        grouping=resampled.grouping)


LABEL_CHECK_BELOW = 0.5  # default-point specificity under which the films that set it are named


def label_check_note(measured: Measured, profile: SiteProfile, shown: int = 3) -> str:
    """A note naming the PNEUMONIA films the model scores lowest when the default point flags
    most NORMAL films ("" otherwise). Short of the target, that point is the lowest-scoring
    pneumonia film; one NORMAL film filed under PNEUMONIA set it to "threshold 0.000,
    specificity 0.0 %" and nothing said why."""
    op = profile.operating_point(None)
    if op.name != "high_sensitivity" or op.specificity is None or op.specificity.value >= LABEL_CHECK_BELOW:
        return ""
    flagged = round((1 - op.specificity.value) * profile.n_normal)
    positive = [(p, z) for p, y, z in zip(measured.paths, measured.labels, measured.logits) if y == 1]
    lowest = sorted(positive, key=lambda film: film[1])[:shown]
    names = ", ".join(f"{path.name} ({probability_text(float(profile.calibration.probability(z)))})"
                      for path, z in lowest)
    return (f"Check the labels: the default point flags {flagged} of the {profile.n_normal} NORMAL films here. "
            f"Its threshold is set by the PNEUMONIA films the model scores lowest: {names}. One film filed under "
            f"PNEUMONIA by mistake is enough to set it.")
