"""Full-size radiographs through the app's own path give the probabilities of the 224x224 path.

Validation images are upsampled to ~2,000 px (not square, so the squash is exercised too)
and written as an 8-bit PNG and a 16-bit MONOCHROME2 DICOM; each goes through
inference.loaders.load_study + inference.engine.Engine exactly as in the app.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from inference.engine import Engine
from inference.loaders import load_study
from tests.conftest import KERMANY_TRAIN, REPO
from training.data import list_items, load_gray, read_validation_patients
from training.train import DEFAULT_VAL_LIST

FULL_SHAPE = (2048, 1760)  # rows, columns


def write_dicom16(path, pixels: np.ndarray) -> None:
    """A 16-bit MONOCHROME2 DICOM (uncompressed) of a uint16 image."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CR", "Test^Upsampled", "TEST0001"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.slow
def test_full_size_png_and_dicom_match_the_224_path(tmp_path):
    engine = Engine.load(REPO / "resources" / "models", provider="cpu", threads=1)
    val = read_validation_patients(DEFAULT_VAL_LIST)
    items = [it for it in list_items(KERMANY_TRAIN.parent) if it.patient in val]
    picked = [it for it in items if it.label == 0][::40][:5] + [it for it in items if it.label == 1][::120][:5]
    worst = 0.0
    for it in picked:
        p224 = engine.predict(load_study(it.path)).probability
        big = cv2.resize(load_gray(it.path).astype(np.float32), FULL_SHAPE[::-1], interpolation=cv2.INTER_CUBIC)
        png, dcm = tmp_path / f"{it.path.stem}.png", tmp_path / f"{it.path.stem}.dcm"
        cv2.imwrite(str(png), np.clip(np.rint(big), 0, 255).astype(np.uint8))
        write_dicom16(dcm, np.clip(np.rint(big * 257.0), 0, 65535))
        for path in (png, dcm):
            study = load_study(path)
            assert study.shape == FULL_SHAPE
            p_full = engine.predict(study).probability
            worst = max(worst, abs(p_full - p224))
            assert abs(p_full - p224) <= 0.02, f"{path.name}: {p_full:.4f} vs 224 path {p224:.4f}"
    print(f"largest |p_full - p_224| over {2 * len(picked)} files: {worst:.4f}")
