"""The bundled samples are what the self-test trusts: check they are complete and clean."""

from __future__ import annotations

import hashlib
import json
import re

import pydicom
import pytest

from inference.paths import resources_dir

SAMPLES = resources_dir() / "samples"
# Kermany file names identify patients (personN_bacteria_M, IM-NNNN-0001, NORMAL2-IM-...).
SOURCE_NAME = re.compile(r"person\d|bacteria|virus|IM-\d{4}|NORMAL2", re.IGNORECASE)


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


def test_samples_are_small_and_neutrally_named() -> None:
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2 * 2**20
    for path in files:
        assert not SOURCE_NAME.search(path.name), f"{path.name} looks like a source file name"


def test_classified_samples_cover_both_labels_and_a_compressed_dicom(expected: dict) -> None:
    entries = expected["classify"]
    assert {e["label"] for e in entries} == {"NORMAL", "PNEUMONIA"}
    for entry in entries:
        data = (SAMPLES / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
    dicoms = [e for e in entries if e["file"].endswith(".dcm")]
    assert dicoms, "no DICOM among the classified samples"
    ds = pydicom.dcmread(SAMPLES / dicoms[0]["file"])
    assert ds.file_meta.TransferSyntaxUID.is_compressed
    assert not SOURCE_NAME.search(str(ds.get("PatientName", "")) + str(ds.get("PatientID", "")))


def test_every_compressed_syntax_has_a_sample(expected: dict) -> None:
    syntaxes = {e["transfer_syntax"]: e for e in expected["decode"]}
    wanted = {
        "1.2.840.10008.1.2.4.50": "JPEG baseline",
        "1.2.840.10008.1.2.4.51": "JPEG extended",
        "1.2.840.10008.1.2.4.57": "JPEG lossless",
        "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
        "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
        "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
        "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
        "1.2.840.10008.1.2.4.91": "JPEG 2000",
        "1.2.840.10008.1.2.5": "RLE",
        "1.2.840.10008.1.2.1.99": "deflated",
    }
    assert set(wanted) <= set(syntaxes), f"missing: {[wanted[u] for u in set(wanted) - set(syntaxes)]}"
    for uid, entry in syntaxes.items():
        ds = pydicom.dcmread(SAMPLES / entry["file"], stop_before_pixels=True)
        assert ds.file_meta.TransferSyntaxUID == uid, entry["file"]
        assert (SAMPLES / entry["reference"]).is_file()
        assert entry["lossless"] == (entry["max_mean_abs_error"] == 0.0)
