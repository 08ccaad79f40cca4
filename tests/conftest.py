"""Paths to the real data every test tier may use."""

from __future__ import annotations

from pathlib import Path

import pytest

import inference  # noqa: F401 - ONNX Runtime's telemetry opt-out, before any test module imports onnxruntime

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
KERMANY_TRAIN = SHARED_DATA / "kermany-cxr-224" / "train"
# Films of other patients (the official test split): for calibration, never for training.
SITE_SAMPLE = SHARED_DATA / "kermany-cxr-224" / "site-sample"
REAL_DICOM = SHARED_DATA / "dicom" / "cxr-cr-jpeg-baseline-monochrome2.dcm"


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Worklist and audit log go to a throw-away folder, never the user's real one."""
    path = tmp_path_factory.mktemp("lunglens-data")
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def real_dicom() -> Path:
    """The real compressed (JPEG baseline) chest CR from ../shared/data."""
    if not REAL_DICOM.exists():
        pytest.fail(f"shared data missing: {REAL_DICOM} (CI clones the repo beside ../shared)")
    return REAL_DICOM


@pytest.fixture(scope="session")
def kermany_samples() -> dict[str, list[Path]]:
    """A few real training images per class, in a fixed order."""
    out = {}
    for label in ("NORMAL", "PNEUMONIA"):
        files = sorted((KERMANY_TRAIN / label).glob("*.jpeg"))
        if not files:
            pytest.fail(f"shared data missing: {KERMANY_TRAIN / label}")
        out[label] = files[:: max(1, len(files) // 10)][:10]
    return out


@pytest.fixture(scope="session")
def site_sample() -> Path:
    """The site sample folder (NORMAL/ and PNEUMONIA/ of other patients' films)."""
    if not all((SITE_SAMPLE / label).is_dir() for label in ("NORMAL", "PNEUMONIA")):
        pytest.fail(f"shared data missing: {SITE_SAMPLE} (CI clones the repo beside ../shared)")
    return SITE_SAMPLE
