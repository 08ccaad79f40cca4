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

from inference.prediction import ModelInfo, Prediction
from inference.study import Study, StudyMetadata

MODEL = ModelInfo(name="lunglens-test", version="0.0-test", sha256="c0ffee" * 10 + "abcd")
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


def prediction_for(study: Study, probability: float, threshold: float = 0.35, warnings: list[str] | None = None) -> Prediction:
    """A result for ``study`` with a smooth CAM peaked at the image centre."""
    rows, cols = study.shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    cam = np.exp(-(((xx - cols / 2) / (cols / 4)) ** 2 + ((yy - rows / 2) / (rows / 4)) ** 2)).astype(np.float32)
    return Prediction(
        probability=probability,
        label="PNEUMONIA" if probability >= threshold else "NORMAL",
        threshold=threshold,
        operating_point="high_sensitivity",
        sensitivity=0.95,
        specificity=0.81,
        cam=cam,
        model=MODEL,
        provider="CPUExecutionProvider",
        timings_ms={"inference": 12.5},
        warnings=list(warnings or []),
    )
