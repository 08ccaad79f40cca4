"""The audit trail: what it records, that it names no patient, that damage never stops it, and
that its chain shows the first line changed, removed or inserted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from inference import userdirs
from inference.audit import CHAIN_FIELD, GENESIS, AuditLog, current_user, line_hash
from inference.audit_cli import main as audit_main
from inference.hashing import pixel_sha256
from inference.worklist import WorklistRecord

from tests.inference.workflow_fixtures import PATIENT_ID, PATIENT_NAME, PROFILE, dicom_study, identified, prediction_for


REPO = Path(__file__).resolve().parents[2]


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


# ------------------------------------------------------------------------------ the chain
def _chained_log(tmp_path, real_dicom, n: int = 5) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    rec = _identified_record(real_dicom)
    for i in range(n):
        if i % 2:
            log.log_export("report", "pdf", f"r{i}.pdf", [rec.pixel_sha256])
        else:
            log.log_analysis(rec)
    return log


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines()


def _rewrite(log: AuditLog, lines: list[bytes]) -> None:
    log.path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_each_line_links_the_one_before_and_the_chain_verifies(tmp_path, real_dicom):
    log = _chained_log(tmp_path, real_dicom)
    lines = _lines(log)
    links = [json.loads(line)[CHAIN_FIELD] for line in lines]
    assert links == [GENESIS, *(line_hash(line) for line in lines[:-1])]
    report = log.verify()
    assert report.ok and (report.lines, report.unchained, report.unreadable) == (5, 0, ())
    assert report.head == line_hash(lines[-1])
    assert report.summary() == "Intact: all 5 lines are linked, each to the one before it."


@pytest.mark.parametrize(
    ("tamper", "broken_at", "why"),
    [
        (lambda ls: [*ls[:2], ls[2].replace(b'"probability":0.77', b'"probability":0.07'), *ls[3:]], 4,
         "its link does not match line 3"),
        (lambda ls: [*ls[:2], *ls[3:]], 3, "its link does not match line 2"),  # a line removed
        (lambda ls: [*ls[:3], ls[1], *ls[3:]], 4, "its link does not match line 3"),  # a line inserted
        (lambda ls: ls[2:], 1, "lines were removed from the start of the log"),
        (lambda ls: [*ls[:4], b'{"event":"analysis","user":"mallory"}'], 5, "it has no link to the line before it"),
    ],
    ids=["changed", "removed", "inserted", "head-cut", "unchained-appended"],
)
def test_an_edited_log_is_reported_at_its_first_broken_line(tmp_path, real_dicom, tamper, broken_at, why):
    log = _chained_log(tmp_path, real_dicom)
    _rewrite(log, tamper(_lines(log)))
    report = log.verify()
    assert not report.ok and report.broken_at == broken_at and why in report.problem
    assert report.summary().startswith(f"BROKEN at line {broken_at}: line {broken_at}: ")


def test_a_log_written_before_the_chain_is_unchained_not_broken(tmp_path, real_dicom):
    path = tmp_path / "audit.jsonl"
    old = [json.dumps({"time": "2026-01-01T10:00:00+00:00", "event": "analysis", "n": i}).encode() for i in range(3)]
    path.write_bytes(b"".join(line + b"\n" for line in old))
    log = AuditLog(path)
    assert log.verify().summary().startswith("Unchained: its 3 lines were written before")
    log.log_export("worklist", "csv", "list.csv")
    log.log_export("worklist", "json", "list.json")
    report = log.verify()
    assert report.ok and (report.lines, report.unchained) == (5, 3)
    assert json.loads(_lines(log)[3])[CHAIN_FIELD] == line_hash(old[-1])  # the chain starts from the old tail
    assert "unchained up to line 3" in report.summary()


def test_a_line_torn_by_a_crash_is_covered_by_the_chain(tmp_path, real_dicom):
    log = _chained_log(tmp_path, real_dicom, 2)
    with log.path.open("ab") as fh:
        fh.write(b'{"event": "export", "what": "re')  # cut short, no newline
    assert log.verify().ok
    log.log_export("worklist", "csv", "list.csv")
    report = log.verify()
    assert report.ok and report.unreadable == (3,) and report.lines == 4
    assert "Unreadable line 3: written only in part" in report.summary()


_APPENDER = """
import sys
from inference.audit import AuditLog
log = AuditLog(sys.argv[1])
for i in range(40):
    log.log_export("worklist", "csv", f"{sys.argv[2]}-{i}.csv")
"""


def test_processes_appending_at_once_keep_one_chain(tmp_path):
    """The window, its analysis process and a CLI run may all append: an OS lock orders them."""
    path = tmp_path / "audit.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), name], cwd=REPO) for name in "abc"]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    report = AuditLog(path).verify()
    assert report.ok and report.lines == 120 and report.unchained == 0


def test_lunglens_audit_verify_exits_1_on_a_break(tmp_path, real_dicom, capsys):
    log = _chained_log(tmp_path, real_dicom)
    assert audit_main(["audit", "verify", str(log.path)]) == 0
    out = capsys.readouterr().out
    assert "Intact: all 5 lines" in out and f"SHA-256 of the last line (line 5): {line_hash(_lines(log)[-1])}" in out
    lines = _lines(log)
    _rewrite(log, [*lines[:1], lines[1].replace(b'"r1.pdf"', b'"x1.pdf"'), *lines[2:]])
    assert audit_main(["audit", "verify", str(log.path)]) == 1
    assert "BROKEN at line 3: line 3: its link does not match line 2" in capsys.readouterr().out
    assert audit_main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert audit_main(["audit"]) == 2  # no action


def test_a_log_of_one_line_is_worded_for_one() -> None:
    """It read "Intact: all 1 lines are linked, each to the one before it"."""
    from inference.audit import ChainReport

    assert ChainReport(lines=1, unchained=0).summary() == "Intact: its one line begins the chain."
