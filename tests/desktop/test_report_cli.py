"""``lunglens report``: the PDF and the Secondary Capture from the command line, audited.

The mechanics run on the tiny test model (swapped in through LUNGLENS_RESOURCES, as a
relocated install would be); the last test runs the real bundled model on the real DICOM.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pydicom
import pypdf
import pytest

from desktop.main import main as lunglens
from inference.audit import AuditLog
from inference.engine import Engine
from inference.loaders import load_study
from inference.paths import models_dir
from inference.presentation import present
from tests.fixtures.tiny_model import build_tiny_model
from tests.inference.test_dicom_sc import dciodvfy
from tests.inference.test_dicom_sr import _named

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(tmp_path / "userdata"))
    return tmp_path / "userdata"


@pytest.fixture
def tiny_model(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.mktemp("resources")
    build_tiny_model(root / "models")
    monkeypatch.setenv("LUNGLENS_RESOURCES", str(root))
    return root / "models"


def pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(str(path))
    assert len(reader.pages) == 1
    return " ".join(unicodedata.normalize("NFKC", reader.pages[0].extract_text()).split())


@pytest.mark.gui
def test_pdf_and_secondary_capture_are_written_and_audited(qapp, tiny_model, data_dir, tmp_path, real_dicom, capsys):
    pdf, sc = tmp_path / "out.pdf", tmp_path / "out.dcm"
    code = lunglens(["report", str(real_dicom), "--pdf", str(pdf), "--dicom-sc", str(sc)])
    out = capsys.readouterr().out
    assert code == 0, out
    expected = Engine.load(tiny_model).predict(load_study(real_dicom))
    words = present(expected)
    assert f"{real_dicom.name}: {words.summary}" in out  # the story the window and the PDF tell

    text = pdf_text(pdf)
    assert words.headline in text and f"(calibrated): {words.probability}" in text
    assert "tiny-cxr 0.0.1-test" in text
    assert "16d7f894" not in text  # the patient's name/ID: not asked for
    assert dciodvfy(sc)[0] == []
    assert pydicom.dcmread(sc).StudyInstanceUID == pydicom.dcmread(real_dicom, stop_before_pixels=True).StudyInstanceUID

    entries = AuditLog(data_dir / "audit.jsonl").read()
    assert entries.damaged == 0
    assert [(e["event"], e.get("what"), e.get("destination")) for e in entries.entries] == [
        ("analysis", None, None),
        ("export", "report", "out.pdf"),
        ("export", "secondary_capture", "out.dcm"),
    ]
    assert entries.entries[0]["probability"] == pytest.approx(expected.probability, abs=1e-6)
    assert entries.entries[1]["with_identifiers"] is False


@pytest.mark.gui
def test_show_identifiers_puts_them_in_the_pdf(qapp, tiny_model, data_dir, tmp_path, real_dicom, capsys):
    pdf = tmp_path / "out.pdf"
    assert lunglens(["report", str(real_dicom), "--pdf", str(pdf), "--show-identifiers", "--threshold", "0.9"]) == 0
    text = pdf_text(pdf)
    assert "16d7f894-55d7-4d95-8957-d18987f0e981" in text and real_dicom.name in text
    assert "Operating point: custom, threshold 90 %: sensitivity and specificity not measured" in text
    assert AuditLog(data_dir / "audit.jsonl").read().entries[-1]["with_identifiers"] is True


@pytest.mark.gui
def test_anonymize_leaves_out_every_identifier_and_says_so(qapp, tiny_model, data_dir, tmp_path, real_dicom, capsys):
    pdf, sc = tmp_path / "teaching.pdf", tmp_path / "teaching.dcm"
    assert lunglens(["report", str(real_dicom), "--anonymize", "--pdf", str(pdf), "--dicom-sc", str(sc)]) == 0
    source = pydicom.dcmread(real_dicom, stop_before_pixels=True)
    text = pdf_text(pdf)
    assert "Anonymized for teaching or demonstration" in text
    for secret in (str(source.PatientName), source.PatientID, real_dicom.name, real_dicom.stem):
        assert secret not in text
    capture = pydicom.dcmread(sc)
    assert capture.PatientName == "" and capture.PatientID == "" and capture.PatientIdentityRemoved == "YES"
    assert capture.StudyInstanceUID != source.StudyInstanceUID
    assert dciodvfy(sc)[0] == []
    exports = [e for e in AuditLog(data_dir / "audit.jsonl").read().entries if e["event"] == "export"]
    assert [(e["what"], e["with_identifiers"], e["anonymized"]) for e in exports] == [
        ("report", False, True), ("secondary_capture", False, True)]


@pytest.mark.gui
def test_a_data_folder_that_cannot_be_written_is_a_warning_not_a_traceback(qapp, tiny_model, tmp_path, real_dicom,
                                                                          capsys, monkeypatch):
    occupied = tmp_path / "a-file"
    occupied.write_text("where the data folder should be")
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(occupied / "LungLens"))
    pdf = tmp_path / "out.pdf"
    assert lunglens(["report", str(real_dicom), "--pdf", str(pdf)]) == 0  # the report itself was written
    err = capsys.readouterr().err
    assert pdf.is_file() and "Traceback" not in err
    assert err.count("warning: the audit log") == 1 and "nothing more is audited in this run" in err


@pytest.mark.gui
def test_a_site_profile_decides_the_report_and_is_named_in_it(qapp, tiny_model, data_dir, tmp_path, real_dicom, capsys):
    """`--profile`, as classify and serve take it: the PDF and the SR say which profile made them."""
    from inference.profile import SiteProfile

    shipped = SiteProfile.load(next(tiny_model.glob("*.profile.json")))
    clinic = shipped.chosen("Clinic R", "balanced")
    path = clinic.save(tmp_path / "clinic.profile.json")
    pdf, sr = tmp_path / "r.pdf", tmp_path / "r-sr.dcm"
    assert lunglens(["report", str(real_dicom), "--profile", str(path), "--pdf", str(pdf), "--sr", str(sr)]) == 0
    assert f"site profile: Clinic R · sha256 {clinic.sha256[:12]}" in capsys.readouterr().out
    assert f"Clinic R · sha256 {clinic.sha256[:12]}" in pdf_text(pdf)
    assert "balanced, threshold" in pdf_text(pdf)
    params = [i.TextValue for i in _named(pydicom.dcmread(sr), "Algorithm Parameters")]
    assert f"site profile Clinic R sha256 {clinic.sha256}" in params


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["missing.dcm", "--pdf", "x.pdf"], 1, "missing.dcm: file not found"),
        (["{notes}", "--dicom-sc", "x.dcm"], 1, "notes.txt: not an image or DICOM file"),
        (["{dicom}"], 2, "nothing to write"),
        (["{dicom}", "--threshold", "1.5", "--pdf", "x.pdf"], 2, "argument --threshold: must be above 0 and below 1"),
        (["{dicom}", "--threshold", "0", "--pdf", "x.pdf"], 2, "argument --threshold: must be above 0 and below 1"),
        (["{dicom}", "--threshold", "1", "--pdf", "x.pdf"], 2, "argument --threshold: must be above 0 and below 1"),
        (["{dicom}", "--provider", "foo", "--pdf", "x.pdf"], 2, "argument --provider: invalid choice: 'foo'"),
        (["{dicom}", "--threads", "0", "--pdf", "x.pdf"], 2, "argument --threads: must be at least 1"),
        (["{dicom}", "--anonymize", "--show-identifiers", "--pdf", "x.pdf"], 2, "not allowed with argument"),
        (["{dicom}", "--operating-point", "nope", "--pdf", "x.pdf"], 2, "unknown operating point 'nope'"),
        (["{dicom}", "--pdf", "{tmp}/no/such/dir/x.pdf"], 1, "does not exist"),
        (["{dicom}", "--profile", "{tmp}/none.profile.json", "--pdf", "x.pdf"], 2, "none.profile.json: no such profile"),
    ],
)
def test_errors_name_the_file_and_the_reason(argv, code, message, tiny_model, data_dir, tmp_path, real_dicom, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    args = [a.format(dicom=real_dicom, notes=tmp_path / "notes.txt", tmp=tmp_path) for a in argv]
    assert lunglens(["report", *args]) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_real_model_report_from_the_entry_point_offscreen(tmp_path, real_dicom):
    """The installed command, in a fresh process without a display, on the bundled model."""
    if not any(models_dir().glob("*.json")):
        pytest.skip(f"the bundled model is not in {models_dir()} yet")
    pdf, sc = tmp_path / "real.pdf", tmp_path / "real.dcm"
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["LUNGLENS_DATA_DIR"] = str(tmp_path / "userdata")
    proc = subprocess.run(
        [sys.executable, "-m", "desktop.main", "report", str(real_dicom), "--pdf", str(pdf), "--dicom-sc", str(sc)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    expected = present(Engine.load().predict(load_study(real_dicom)))
    text = pdf_text(pdf)
    assert expected.headline in text and f"(calibrated): {expected.probability}" in text
    assert dciodvfy(sc)[0] == []
    assert len(AuditLog(tmp_path / "userdata" / "audit.jsonl").read().entries) == 3


def test_the_command_line_writes_every_output_for_its_user_alone(tmp_path, data_dir, real_dicom):
    """PDF, capture, SR, --csv and --cam-dir pictures carry patient data: they were 0644."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        out.mkdir()
        assert lunglens(["report", str(real_dicom), "--pdf", str(out / "r.pdf"), "--dicom-sc", str(out / "c.dcm"),
                         "--sr", str(out / "s.dcm")]) == 0
        flagged = REPO / "resources" / "samples" / "sample-pneumonia.png"
        assert lunglens(["classify", str(flagged), "--csv", str(out / "r.csv"), "--cam-dir", str(out / "cams")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert modes == dict.fromkeys(["r.pdf", "c.dcm", "s.dcm", "r.csv", "sample-pneumonia_cam.png"], 0o600)


@pytest.mark.gui
@pytest.mark.parametrize("charset, name", [
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # Japanese: no SC nor SR could be built
    (None, "Núñez^José"),  # Latin-1 bytes under no declared set: the SC had copied them as they were
])
def test_a_film_without_file_meta_gives_both_dicom_exports_with_the_name_intact(
        charset, name, qapp, tiny_model, data_dir, tmp_path, kermany_samples, capsys):
    """The exports join the header the film was loaded with, not the file read again: a film
    without preamble or file meta (an old CD's) had given a traceback and no SR."""
    from tests.fixtures.dicom_factory import read_gray, write_dicom

    tags = {"PatientName": name, "PatientID": "P1"}
    if charset is not None:
        tags["SpecificCharacterSet"] = charset
    film = write_dicom(tmp_path / "old-cd.dcm", read_gray(kermany_samples["PNEUMONIA"][0]), "implicit",
                       no_file_meta=True, tags=tags)
    if charset is None:
        assert name.encode("latin-1") in film.read_bytes()  # pydicom's fallback: Latin-1, no set said
    sc, sr = tmp_path / "sc.dcm", tmp_path / "sr.dcm"
    code = lunglens(["report", str(film), "--dicom-sc", str(sc), "--sr", str(sr)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    for written in (sc, sr):
        ds = pydicom.dcmread(written)
        assert str(ds.PatientName).rstrip() == name and ds.SpecificCharacterSet == "ISO_IR 192"
    assert dciodvfy(sc)[0] == []
