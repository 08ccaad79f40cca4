"""The audit trail: what it records, that it names no patient, and that damage never stops it."""

from __future__ import annotations

import json
import threading

from inference import userdirs
from inference.audit import AuditLog, current_user
from inference.hashing import pixel_sha256
from inference.worklist import WorklistRecord

from tests.inference.workflow_fixtures import PATIENT_ID, PATIENT_NAME, PROFILE, dicom_study, identified, prediction_for


def _identified_record(real_dicom) -> WorklistRecord:
    study = identified(dicom_study(real_dicom))
    return WorklistRecord.from_prediction(study, prediction_for(study, 0.77, warnings=["adult patient"]), pixel_sha256(study))


def test_analysis_entry_has_the_required_fields(tmp_path, real_dicom):
    log = AuditLog(tmp_path / "audit.jsonl")
    rec = _identified_record(real_dicom)
    log.log_analysis(rec)
    (entry,) = log.read().entries
    assert entry["event"] == "analysis"
    assert entry["user"] == current_user() != ""
    assert entry["time"].endswith("+00:00")
    assert entry["app_version"]
    assert entry["model_sha256"] == rec.model_sha256
    assert (entry["profile_name"], entry["profile_sha256"]) == (PROFILE.name, PROFILE.sha256)
    assert entry["provider"] == "CPUExecutionProvider"
    assert entry["pixel_sha256"] == rec.pixel_sha256
    assert entry["probability"] == round(rec.probability, 6)
    assert (entry["threshold"], entry["label"], entry["warnings"]) == (0.35, "PNEUMONIA", ["adult patient"])
    assert entry["cached"] is False


def test_no_patient_identifiers_in_the_log(tmp_path, real_dicom):
    """Name, ID, UIDs and the file's folder must not appear anywhere in the file."""
    log = AuditLog(tmp_path / "audit.jsonl")
    rec = _identified_record(real_dicom)
    log.log_analysis(rec)
    log.log_export("report", "pdf", tmp_path / "exports" / "result.pdf", [rec.pixel_sha256])
    text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    for secret in (
        PATIENT_NAME,
        "DOE",
        PATIENT_ID,
        rec.metadata["study_instance_uid"],
        rec.metadata["sop_instance_uid"],
        str(real_dicom.parent),
        real_dicom.name,
        str(tmp_path / "exports"),
    ):
        assert secret not in text, secret
    assert '"destination":"result.pdf"' in text


def test_damaged_lines_are_skipped_and_counted(tmp_path, real_dicom):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    rec = _identified_record(real_dicom)
    log.log_analysis(rec)
    with path.open("ab") as fh:
        fh.write(b'{"event": "analysis", "prob\xff\n[1, 2]\n')  # garbage, then a non-object
        fh.write(b'{"event": "export", "what": "re')  # a line torn by a crash, no newline
    log.log_export("worklist", "csv", "list.csv", [rec.pixel_sha256], with_identifiers=True)
    result = log.read()
    assert result.damaged == 3
    assert [e["event"] for e in result.entries] == ["analysis", "export"]
    assert result.entries[1]["with_identifiers"] is True
    assert result.entries[1]["destination"] == "list.csv"


def test_missing_log_reads_empty(tmp_path, monkeypatch):
    monkeypatch.setenv(userdirs.ENV_OVERRIDE, str(tmp_path))
    log = AuditLog()
    assert log.path == tmp_path / "audit.jsonl"
    result = log.read()
    assert (result.entries, result.damaged) == ([], 0)


def test_threads_never_interleave_lines(tmp_path, real_dicom):
    log = AuditLog(tmp_path / "audit.jsonl")
    rec = _identified_record(real_dicom)
    threads = [threading.Thread(target=lambda: [log.log_analysis(rec, cached=True) for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100
    assert all(json.loads(line)["cached"] is True for line in lines)
