"""Studies and results for the workflow tests (worklist, audit, export, Secondary Capture).

Studies are real images from ../shared/data read directly (the tests of the storage and
output code must not depend on the loaders). Predictions are plain result records with
stated values: the storage code is tested on what it stores, the engine has its own tests.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom

from inference.decision import Estimate, OperatingPoint
from inference.prediction import ModelInfo, Prediction
from inference.profile import ProfileInfo
from inference.study import Study, StudyMetadata
from tests.fixtures.maps import centre_peaked

MODEL = ModelInfo(name="lunglens-test", version="0.0-test", sha256="c0ffee" * 10 + "abcd")
PROFILE = ProfileInfo(name="test site", sha256="5173" * 16, source="test films: 60 films (30 NORMAL, 30 PNEUMONIA)")
PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "PID-4711-XYZ"


def raster_study(path: Path) -> Study:
    """A Kermany JPEG as a study (gray, bone bright, full-range window)."""
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, path
    meta = StudyMetadata(rows=gray.shape[0], columns=gray.shape[1], source_format="JPEG", transfer_syntax="JPEG")
    return Study(path=path, pixels=gray.astype(np.float32), window=(127.5, 255.0), metadata=meta)


def dicom_study(path: Path) -> Study:
    """A DICOM file as a study, with its real header fields."""
    ds = pydicom.dcmread(path)
    px = ds.pixel_array.astype(np.float32)
    meta = StudyMetadata(
        patient_name=str(ds.get("PatientName", "")),
        patient_id=str(ds.get("PatientID", "")),
        patient_sex=str(ds.get("PatientSex", "")),
        study_instance_uid=str(ds.StudyInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        modality=str(ds.get("Modality", "")),
        view_position=str(ds.get("ViewPosition", "")),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        source_format="DICOM",
    )
    return Study(path=path, pixels=px, window=(float(px.mean()), float(np.ptp(px)) or 1.0), metadata=meta)


def identified(study: Study) -> Study:
    """The study with a known patient name and ID (to prove they never leak)."""
    meta = StudyMetadata(**{**study.metadata.__dict__, "patient_name": PATIENT_NAME, "patient_id": PATIENT_ID})
    return Study(path=study.path, pixels=study.pixels, window=study.window, metadata=meta, warnings=study.warnings)


def operating_point(threshold: float = 0.35) -> OperatingPoint:
    """A high-sensitivity point with stated figures."""
    return OperatingPoint("high_sensitivity", threshold, Estimate(0.95, 0.91, 0.98), Estimate(0.81, 0.74, 0.87),
                          "test: the screening point")


def prediction_for(study: Study, probability: float, threshold: float = 0.35, warnings: list[str] | None = None,
                   logit: float = 1.5) -> Prediction:
    """A result for ``study`` with a smooth attribution map peaked at the image centre."""
    return Prediction(
        probability=probability,
        operating=operating_point(threshold),
        attribution=centre_peaked(),
        model=MODEL,
        provider="CPUExecutionProvider",
        timings_ms={"inference": 12.5},
        warnings=list(warnings or []),
        logit=logit,
        profile=PROFILE,
    )
