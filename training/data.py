"""The Kermany training folder: file listing, patient ids, the patient-level split, preloading.

Patient identity comes from the file names (see ../shared/data/README.md):
``personN_bacteria_M`` / ``personN_virus_M`` -> pneumonia patient N, ``IM-NNNN-0001*`` and
``NORMAL2-IM-NNNN-0001*`` -> normal patient NNNN. The two normal series share a number range
(211 numbers occur in both). Image similarity says such pairs are most likely different
children (``python -m training.check_patient_ids``: they are no more alike than random pairs,
while two images of one series and number are). We still treat them as the SAME patient:
merging two different children only makes a split group coarser (harmless), while
separating one child across train and validation would leak. Pneumonia ``personN`` and normal ``NNNN`` are separate numbering
schemes and are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inference.sitefilms import LABELS, file_name_patient


def patient_id(path: Path) -> str:
    """Patient key of one training file, e.g. 'P0123' (pneumonia) or 'N0383' (normal)."""
    patient = file_name_patient(path)
    if patient is not None:
        return patient
    raise ValueError(f"{path}: file name carries no patient id (expected personN_* or [NORMAL2-]IM-NNNN-*)")


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 0 NORMAL, 1 PNEUMONIA
    patient: str

    @property
    def viral(self) -> bool:
        """Viral pneumonia (``personN_virus_M``), not bacterial: the graders' subtype, which the
        file name keeps (the auxiliary task of ``train.py --subtype``)."""
        return "_virus_" in self.path.name

    @property
    def normal2(self) -> bool:
        """A film of the ``NORMAL2-IM-*`` series, the second of the two normal series (the weight
        of ``train.py --normal2-weight``)."""
        return self.path.name.startswith("NORMAL2-")


def list_items(data_dir: Path) -> list[Item]:
    """All training images under <data_dir>/train/{NORMAL,PNEUMONIA}, in a stable order."""
    root = Path(data_dir) / "train"
    items: list[Item] = []
    for label, name in enumerate(LABELS):
        folder = root / name
        files = sorted(folder.glob("*.jpeg"))
        if not files:
            raise FileNotFoundError(f"no .jpeg images in {folder}")
        items.extend(Item(f, label, patient_id(f)) for f in files)
    return items


def list_site_items(site_dir: Path) -> list[Item]:
    """A clinic's labelled films under <site_dir>/{NORMAL,PNEUMONIA} (patient from the file name)."""
    items: list[Item] = []
    for label, name in enumerate(LABELS):
        items.extend(Item(f, label, patient_id(f)) for f in sorted((Path(site_dir) / name).glob("*.jpeg")))
    return items


def split_patients(items: list[Item], fraction: float = 0.18, seed: int = 20180222) -> set[str]:
    """Stratified (by class), seeded choice of validation patients."""
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for label in (0, 1):
        patients = sorted({it.patient for it in items if it.label == label})
        k = int(round(fraction * len(patients)))
        chosen.update(rng.choice(patients, size=k, replace=False).tolist())
    return chosen


def read_validation_patients(path: Path) -> set[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def write_validation_patients(path: Path, patients: set[str]) -> None:
    header = (
        "# Validation patients (one per line). P<N> = personN_* (pneumonia), N<NNNN> = IM-NNNN /\n"
        "# NORMAL2-IM-NNNN (normal; both series merged, see training/data.py). Made by\n"
        "# training.data.split_patients(fraction=0.18, seed=20180222).\n"
    )
    Path(path).write_text(header + "\n".join(sorted(patients)) + "\n", encoding="utf-8")


def load_gray(path: Path) -> np.ndarray:
    """One training JPEG as 2-D uint8 (the three channels are equal)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"{path}: cannot decode image")
    return img


def preload(items: list[Item], size: int = 224) -> np.ndarray:
    """All images as one uint8 array [N, size, size] (5,216 images at 224 = 260 MB), area-resized."""
    out = np.empty((len(items), size, size), dtype=np.uint8)
    for i, it in enumerate(items):
        img = load_gray(it.path)
        if img.shape != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = img
    return out
