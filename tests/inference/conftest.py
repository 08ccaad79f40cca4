"""Shared fixtures for the inference tests: real radiographs as arrays, ready for the factory."""

from __future__ import annotations


import numpy as np
import pytest

from tests.conftest import KERMANY_TRAIN
from tests.fixtures.dicom_factory import radiograph_12bit, read_gray


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
