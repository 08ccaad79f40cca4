"""Shared fixtures for the inference tests: real radiographs as arrays, ready for the factory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.fixtures.dicom_factory` imports from the repo root
    sys.path.insert(0, str(REPO))
KERMANY_TRAIN = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "train"

from tests.fixtures.dicom_factory import radiograph_12bit, read_gray  # noqa: E402


@pytest.fixture(scope="session")
def kermany_gray() -> np.ndarray:
    """One real training radiograph (224x224) as 2-D uint8."""
    files = sorted((KERMANY_TRAIN / "PNEUMONIA").glob("*.jpeg"))
    if not files:
        pytest.fail(f"shared data missing: {KERMANY_TRAIN} (CI clones the repo beside ../shared)")
    return read_gray(files[0])


@pytest.fixture(scope="session")
def film12(kermany_gray: np.ndarray) -> np.ndarray:
    """The same radiograph as a 600x500 12-bit detector image (uint16, 0..4095)."""
    return radiograph_12bit(kermany_gray, (600, 500))
