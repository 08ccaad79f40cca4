"""The DICOM SR of a result (inference/dicom_sr.py and ``lunglens report --sr``): a TID 1500
measurement report in the source's study that says everything the result is made of, that
``dciodvfy`` finds no error in and DCMTK's ``dsrdump`` reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from desktop.main import main as lunglens
from inference.audit import AuditLog
from inference.dicom_sr import ABOVE, BELOW, NOT_RELIABLE, SourceNotDicomError, build_sr, write_sr
from inference.engine import Engine
from inference.loaders import load_study
from inference.presentation import POPULATION, present
from tests.conftest import REPO
from tests.fixtures.dicom_factory import write_dicom
from tests.fixtures.dicom_peers import need

SAMPLES = REPO / "resources" / "samples"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(provider="cpu", threads=1)


def _items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    """Every content item of the SR tree, depth first."""
    out = []
    for item in ds.get("ContentSequence", []):
        out.append(item)
        out.extend(_items(item))
    return out


def _named(ds: pydicom.Dataset, meaning: str) -> list[pydicom.Dataset]:
    return [i for i in _items(ds) if "ConceptNameCodeSequence" in i
            and i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def _dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run([need("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_the_sr_carries_the_whole_result_in_the_source_study(engine: Engine, real_dicom: Path,
                                                             tmp_path: Path) -> None:
    study = load_study(real_dicom)
    prediction = engine.predict(study)
    out = write_sr(study, prediction, tmp_path / "sr.dcm")
    sr, source = pydicom.dcmread(out), pydicom.dcmread(real_dicom, stop_before_pixels=True)

    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PatientID == source.PatientID
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    ref = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (source.SOPClassUID, source.SOPInstanceUID)
    image = _named(sr, "Source of Measurement")[0].ReferencedSOPSequence[0]
    assert image.ReferencedSOPInstanceUID == source.SOPInstanceUID

    probability = _named(sr, "Probability of pneumonia")[0].MeasuredValueSequence[0]
    assert float(probability.NumericValue) == pytest.approx(prediction.probability, abs=1e-9)
    threshold = _named(sr, "Review threshold")[0].MeasuredValueSequence[0]
    assert float(threshold.NumericValue) == pytest.approx(prediction.threshold, abs=1e-9)
    result = _named(sr, "Triage result")[0].ConceptCodeSequence[0].CodeValue
    assert result == (ABOVE if prediction.is_positive else BELOW).value
    # The group is about the triage, not a diagnosis: a PACS showing only this line showed
    # "Finding: Pneumonia" for films far below the threshold.
    assert [i.ConceptCodeSequence[0].CodeMeaning for i in _named(sr, "Finding")] == ["Pneumonia triage"]
    assert _named(sr, "Within the model's intended use")[0].ConceptCodeSequence[0].CodeMeaning == "Yes"
    # The film is in scope, the patient (62) is not in the validated population: coded apart.
    assert _named(sr, "Patient within the validated population")[0].ConceptCodeSequence[0].CodeMeaning == "No"
    assert _named(sr, "Algorithm Name")[0].TextValue == prediction.model.name
    assert _named(sr, "Algorithm Version")[0].TextValue == prediction.model.version
    params = " | ".join(i.TextValue for i in _named(sr, "Algorithm Parameters"))
    assert prediction.model.sha256 in params
    assert prediction.profile is not None and prediction.profile.sha256 in params and prediction.profile.name in params
    assert f"operating point {prediction.operating_point}" in params and f"label {prediction.label}" in params
    # What a reader must know beside the number reaches the PACS too, worded as everywhere else.
    words = present(prediction)
    assert any(w.startswith("Adult patient (age 62 years)") for w in words.warnings), words.warnings
    assert [i.TextValue for i in _named(sr, "Warning")] == list(words.warnings)
    assert _named(sr, "Operating point")[0].TextValue == words.operating_point
    assert _named(sr, "Validated population")[0].TextValue == POPULATION
    assert _dciodvfy_errors(out) == []


def test_the_same_result_gets_the_same_uids_and_another_operating_point_new_ones(engine: Engine,
                                                                                 real_dicom: Path) -> None:
    """A re-sent film's SR is filed once by the PACS (one instance per SOP Instance UID)."""
    study = load_study(real_dicom)
    prediction = engine.predict(study)
    a, b = build_sr(study, prediction), build_sr(study, prediction)
    assert (a.SeriesInstanceUID, a.SOPInstanceUID) == (b.SeriesInstanceUID, b.SOPInstanceUID)
    corrected = load_study(real_dicom)
    header = pydicom.dcmread(real_dicom, stop_before_pixels=True)
    header.PatientName = "Corrected^Name"  # the same film re-sent after a demographics correction
    assert build_sr(corrected, prediction, header).SOPInstanceUID != a.SOPInstanceUID
    other = build_sr(study, prediction.at(engine.profile.operating_points["balanced"]))
    assert other.SOPInstanceUID != a.SOPInstanceUID and other.SeriesInstanceUID != a.SeriesInstanceUID
    assert a.SOPInstanceUID not in (a.SeriesInstanceUID, a.StudyInstanceUID, a.CurrentRequestedProcedureEvidenceSequence[0]
                                   .ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    # The same film sent again in another transfer syntax: its pixels' encoding is not its
    # description (a JPEG 2000 film re-sent uncompressed had filed a second SR).
    as_sent, recoded = (pydicom.dcmread(real_dicom, stop_before_pixels=True) for _ in range(2))
    recoded.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    recoded.PhotometricInterpretation, recoded.LossyImageCompression = "MONOCHROME2", "01"
    as_sent.add_new(0x00090010, "LO", "MODALITY VENDOR")  # a private block: LO read explicitly,
    recoded.add_new(0x00090010, "UN", b"MODALITY VENDOR ")  # UN from an implicit-VR copy
    assert build_sr(study, prediction, recoded).SOPInstanceUID == build_sr(study, prediction, as_sent).SOPInstanceUID


def test_an_out_of_scope_film_is_reported_not_reliable_with_its_reasons(engine: Engine, tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)  # out of scope, and "small"
    film = write_dicom(tmp_path / "small.dcm", noise, "j2k")
    study = load_study(film)
    prediction = engine.predict(study)
    assert not prediction.in_scope
    sr = build_sr(study, prediction)
    assert _named(sr, "Triage result")[0].ConceptCodeSequence[0].CodeValue == NOT_RELIABLE.value
    assert _named(sr, "Within the model's intended use")[0].ConceptCodeSequence[0].CodeMeaning == "No"
    params = [i.TextValue for i in _named(sr, "Algorithm Parameters")]
    assert "label: does not apply (outside the model's intended use)" in params
    assert not any(p.startswith(("label PNEUMONIA", "label NORMAL")) for p in params)
    reasons = [i.TextValue for i in _named(sr, "Reason outside intended use")]
    assert reasons == list(prediction.scope_reasons)
    # The image is out of scope; the patient (the factory's PatientAge 004Y) is in the population.
    assert _named(sr, "Patient within the validated population")[0].ConceptCodeSequence[0].CodeMeaning == "Yes"
    others = [i.TextValue for i in _named(sr, "Warning")]  # each said once: the reasons are not repeated
    assert others and not {w.casefold() for w in others} & {r.casefold() for r in reasons}
    assert len(reasons) + len(others) == len(present(prediction).warnings)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    assert _dciodvfy_errors(tmp_path / "sr.dcm") == []


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the sloppy header, written on purpose
def test_a_sloppy_source_header_still_gives_a_valid_sr(engine: Engine, kermany_gray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    film = write_dicom(tmp_path / "sloppy.dcm", kermany_gray, "jpeg-baseline",
                       tags={"PatientAge": "4", "PatientSex": "X", "StudyDate": "31.01.2024", "PatientBirthDate": None})
    study = load_study(film)
    out = write_sr(study, engine.predict(study), tmp_path / "sr.dcm")
    assert _dciodvfy_errors(out) == []


def test_a_patient_of_unknown_age_is_coded_unknown(engine: Engine, kermany_gray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    film = write_dicom(tmp_path / "ageless.dcm", kermany_gray, tags={"PatientAge": None, "PatientBirthDate": None})
    study = load_study(film)
    sr = build_sr(study, engine.predict(study))
    assert _named(sr, "Patient within the validated population")[0].ConceptCodeSequence[0].CodeMeaning == "Unknown"
    assert any(i.TextValue.startswith("Patient age not recorded") for i in _named(sr, "Warning"))


def test_a_raster_has_no_study_to_join(engine: Engine) -> None:
    study = load_study(SAMPLES / "sample-pneumonia.png")
    with pytest.raises(SourceNotDicomError, match="PNG"):
        build_sr(study, engine.predict(study))


def test_report_sr_writes_the_same_sr_and_dsrdump_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           private_data_dir: Path) -> None:
    dsrdump = need("dsrdump")
    out = tmp_path / "report-sr.dcm"
    assert lunglens(["report", str(SAMPLES / "sample-pneumonia.dcm"), "--sr", str(out), "--provider", "cpu"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    dump = subprocess.run([dsrdump, str(out)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    for text in ("Imaging Measurement Report", "Probability of pneumonia", "Triage result",
                 "Above the review threshold", "Source of Measurement"):
        assert text in dump.stdout
    assert _dciodvfy_errors(out) == []
    exports = [e for e in AuditLog(private_data_dir / "audit.jsonl").read().entries if e["event"] == "export"]
    assert exports[-1]["what"] == "structured_report" and exports[-1]["destination"] == out.name

    assert lunglens(["report", str(SAMPLES / "sample-pneumonia.png"), "--sr", str(tmp_path / "x.dcm")]) == 1
    assert "a DICOM export joins the source's study" in capsys.readouterr().err
    assert lunglens(["report", str(SAMPLES / "sample-pneumonia.dcm"), "--sr", str(out), "--anonymize"]) == 2
