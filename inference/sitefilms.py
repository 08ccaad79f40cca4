"""A site's labelled films: where they are, what they are, whose they are.

Labels come from folder names (``NORMAL``/``PNEUMONIA`` at any depth, as a clinic would sort
its films) or from a CSV of ``path,label``. Films of one patient are grouped so that the
bootstrap intervals resample patients, not films: the DICOM PatientID where there is one,
else the Kermany file-name rule (``personN_*`` and ``[NORMAL2-]IM-NNNN-*``) within a folder,
else the DICOM study, else the film stands alone.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .loaders import iter_study_files

LABELS = ("NORMAL", "PNEUMONIA")
_LABEL_WORDS = {"normal": 0, "0": 0, "negative": 0, "no pneumonia": 0,
                "pneumonia": 1, "1": 1, "positive": 1}
_PERSON = re.compile(r"^person(\d+)_(bacteria|virus)_", re.IGNORECASE)
_NORMAL = re.compile(r"^(?:NORMAL2-)?IM-(\d+)-", re.IGNORECASE)


class LabelError(ValueError):
    """Labels that cannot be read or matched to films."""


@dataclass(frozen=True)
class LabelledFilm:
    path: Path
    label: int  # 0 NORMAL, 1 PNEUMONIA


def file_name_patient(path: Path) -> str | None:
    """The patient of a Kermany-named file ('P0123' pneumonia, 'N0383' normal), else None.

    The two normal series share a number range; they are merged (a coarser grouping is
    harmless, splitting one child across groups is not).
    """
    m = _PERSON.match(path.name)
    if m:
        return f"P{int(m.group(1)):04d}"
    m = _NORMAL.match(path.name)
    if m:
        return f"N{int(m.group(1)):04d}"
    return None


def patient_group(patient_id: str, path: Path, study_uid: str = "") -> str:
    """The bootstrap group of a film: its DICOM PatientID, else the file-name rule within the
    film's folder (an export with one folder per patient names every first film
    ``IM-0001-0001``: the same name, other children), else its DICOM study (the films of one
    study are one patient's), else the film alone ("film:..."). Only counted, never written
    to a profile."""
    if patient_id.strip():
        return f"patient:{patient_id.strip()}"
    named = file_name_patient(path)
    if named:
        return f"patient:{path.parent}/{named}"
    return f"study:{study_uid.strip()}" if study_uid.strip() else f"film:{path}"


def label_of_folder(path: Path, root: Path) -> int | None:
    """0/1 from the nearest folder named NORMAL or PNEUMONIA from ``root`` itself (a clinic
    chooses its NORMAL and PNEUMONIA folders as often as the folder holding them) to the file.

    ``path`` may be a folder: one that cannot be listed stands in the listing for its films
    (:func:`inference.loaders.files.iter_study_files`), and an unreadable NORMAL folder must
    be reported as a film that failed, not passed over because its own name was not looked at."""
    parts = (root.name, *path.relative_to(root).parts)
    for part in reversed(parts if path.is_dir() else parts[:-1]):
        if part.upper() in LABELS:
            return LABELS.index(part.upper())
    return None


def _each_once(films: list[tuple[LabelledFilm, str]]) -> list[LabelledFilm]:
    """Every film once (a folder given twice, or inside another given, a CSV naming a file
    twice): counted twice it would pass the minimum of a class and narrow every interval.
    A film given both labels is refused, naming where (``films``: film, where it was named)."""
    seen: dict[Path, tuple[LabelledFilm, str]] = {}
    for film, where in films:
        key = film.path.resolve()
        first = seen.setdefault(key, (film, where))
        if first[0].label != film.label:
            raise LabelError(f"{film.path} is labelled both {LABELS[first[0].label]} ({first[1]}) and "
                             f"{LABELS[film.label]} ({where})")
    return [film for film, _ in seen.values()]


def from_folders(roots: list[Path]) -> list[LabelledFilm]:
    """Every study file under a NORMAL or PNEUMONIA folder below any of ``roots``, once."""
    films = []
    for root in map(Path, map(os.path.abspath, roots)):  # as iter_study_files names the films
        if not root.is_dir():
            raise LabelError(f"{root}: not a folder")
        for path in iter_study_files([root], recursive=True):
            label = label_of_folder(path, root)
            if label is not None:
                films.append((LabelledFilm(path, label), f"under {root}"))
    return _each_once(films)


def from_csv(csv_path: Path) -> list[LabelledFilm]:
    """``path,label`` rows (a header row is allowed); relative paths are taken from the CSV's folder."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{csv_path}: cannot read the labels ({exc})") from exc
    films = []
    for n, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            raise LabelError(f"{csv_path}, line {n}: expected path,label")
        path_text, label_text = row[0].strip(), row[1].strip().lower()
        path = Path(path_text)
        path = path if path.is_absolute() else csv_path.parent / path
        if n == 1 and label_text not in _LABEL_WORDS and not path.is_file():
            continue  # a header (a first line naming a film is a film, whose label must be read)
        if label_text not in _LABEL_WORDS:
            raise LabelError(f"{csv_path}, line {n}: label {row[1]!r} is not NORMAL or PNEUMONIA")
        films.append((LabelledFilm(path, _LABEL_WORDS[label_text]), f"line {n}"))
    if not films:
        raise LabelError(f"{csv_path}: no labelled films")
    return _each_once(films)
