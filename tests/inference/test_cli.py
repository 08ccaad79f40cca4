"""``lunglens classify`` on the tiny test model (the real-model run is in test_end_to_end.py).

The model is swapped in through LUNGLENS_RESOURCES, exactly as a relocated install would be.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.audit import AuditLog
from inference.cli import main
from inference.engine import Engine
from inference.export import columns
from inference.loaders import load_study
from inference.prediction import ModelInfo
from inference.profile import SiteProfile
from tests.fixtures.profiles import forged_profile
from tests.fixtures.tiny_model import build_tiny_model, tiny_profile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resources")
    build_tiny_model(root / "models")
    return root


@pytest.fixture(autouse=True)
def use_tiny_model(resources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNGLENS_RESOURCES", str(resources))


def write_png(path: Path, seed: int, size: tuple[int, int] = (320, 400)) -> Path:
    """A smooth synthetic 8-bit gray image (a real file for the real loader)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random(size).astype(np.float32), (0, 0), 20)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_in_input_order_with_the_documented_fields(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = [write_png(tmp_path / f"{name}.png", i) for i, name in enumerate(["c", "a", "b"])]
    assert main(["classify", "--json", *map(str, files)]) == 0
    records = json_lines(capsys.readouterr().out)
    assert [r["path"] for r in records] == [str(f) for f in files]
    for r in records:
        assert r["ok"] is True
        assert 0.0 <= r["probability"] <= 1.0
        assert r["label"] == ("PNEUMONIA" if r["probability"] >= r["threshold"] else "NORMAL")
        assert r["result"] == ("unreliable" if not r["in_scope"] else "above" if r["label"] == "PNEUMONIA" else "below")
        assert (r["threshold"], r["operating_point"]) == (0.3, "high_sensitivity")
        assert r["provider"] == "CPUExecutionProvider"
        assert r["model"]["name"] == "tiny-cxr" and len(r["model"]["sha256"]) == 64
        assert r["profile"]["name"] == "tiny test profile" and len(r["profile"]["sha256"]) == 64
        assert {"read", "load", "preprocess", "inference", "attribution"} <= set(r["timings_ms"])
        assert isinstance(r["warnings"], list) and isinstance(r["in_scope"], bool)
        assert isinstance(r["scope_reasons"], list)


def test_failures_are_reported_in_place_and_do_not_stop_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good1 = write_png(tmp_path / "good1.png", 1)
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n")
    missing = tmp_path / "gone.dcm"
    good2 = write_png(tmp_path / "good2.png", 2)
    code = main(["classify", "--json", str(good1), str(fake), str(missing), str(good2)])
    assert code == 1
    records = json_lines(capsys.readouterr().out)
    assert [r["path"] for r in records] == [str(good1), str(fake), str(missing), str(good2)]
    assert [r["ok"] for r in records] == [True, False, False, True]
    assert "notes.png" in records[1]["error"] and "Traceback" not in records[1]["error"]
    assert "gone.dcm" in records[2]["error"]
    assert set(records[1]) == {"path", "ok", "error"}


def test_folders_are_walked_recursively_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    top = write_png(tmp_path / "study" / "img2.png", 3)
    write_png(tmp_path / "study" / "img10.png", 4)
    write_png(tmp_path / "study" / "sub" / "deep.png", 5)
    (tmp_path / "study" / "README.txt").write_text("not a study")

    assert main(["classify", "--json", str(tmp_path / "study")]) == 0
    flat = [Path(r["path"]).name for r in json_lines(capsys.readouterr().out)]
    assert flat == ["img2.png", "img10.png"]  # natural order, text file skipped, no subfolder

    assert main(["classify", "--json", "--recursive", str(tmp_path / "study"), str(top)]) == 0
    deep = [Path(r["path"]).name for r in json_lines(capsys.readouterr().out)]
    assert deep == ["img2.png", "img10.png", "deep.png", "img2.png"]


def test_a_folder_with_no_study_is_said_and_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = write_png(tmp_path / "study" / "only" / "img.png", 6)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["classify", "--json", str(empty), str(img)]) == 1  # the other studies still go
    out, err = capsys.readouterr()
    failed, done = json_lines(out)
    assert failed["ok"] is False and Path(failed["path"]) == empty and "folder" in failed["error"]
    assert done["ok"] is True and Path(done["path"]).name == "img.png"
    assert f"no image or DICOM files in {empty}" in err
    assert main(["classify", "--json", str(tmp_path / "study")]) == 1  # a subfolder only: the hint says so
    assert "use --recursive for subfolders" in capsys.readouterr().err
    assert main(["classify", "--json", "--recursive", str(tmp_path / "study")]) == 0


def test_wildcards_are_expanded_for_shells_that_do_not(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("b.png", "a.png", "c.jpg"):
        write_png(tmp_path / name, 15)
    assert main(["classify", "--json", str(tmp_path / "*.png")]) == 0
    assert [Path(r["path"]).name for r in json_lines(capsys.readouterr().out)] == ["a.png", "b.png"]
    assert main(["classify", "--json", str(tmp_path / "*.tif")]) == 1  # matches nothing: reported
    (record,) = json_lines(capsys.readouterr().out)
    assert record["ok"] is False and "*.tif" in record["error"]


def test_table_and_summary_without_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = write_png(tmp_path / "chest.png", 6)
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"%PDF-1.4\n" + b"\0" * 300)
    assert main(["classify", str(good), str(bad), "--threshold", "0.000001"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["FILE", "P(PNEU)", "RESULT", "NOTES"]
    assert out[1].startswith(str(good)) and "Above the review threshold (< 0.1 %)" in out[1]
    assert out[2].startswith(str(bad)) and "FAILED" in out[2] and "scan.dcm" in out[2]
    assert out[1].index("Above") == out[2].index("FAILED")  # aligned columns
    assert out[-2].startswith("2 studies: 1 above the review threshold, 0 not reliable, 1 failed, in ")
    assert "CPU" in out[-2] and "tiny-cxr" in out[-2]
    assert out[-1] == ("Review threshold < 0.1 % (custom operating point, site profile 'tiny test profile'); "
                       "its sensitivity and specificity have not been measured")
    assert not any("likely" in line for line in out)


def test_the_summary_names_the_operating_point_its_figures_and_their_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    img = write_png(tmp_path / "chest.png", 6)
    assert main(["classify", str(img)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Above the review threshold (30 %)" in out[1] or "Below the review threshold (30 %)" in out[1]
    assert out[-1] == ("Review threshold 30 % (high sensitivity operating point, site profile 'tiny test profile'); "
                       "sensitivity 96.0 % (92.0–99.0), specificity 80.0 % (74.0–86.0), 95 % CI — synthetic test "
                       "figures: 40 films (20 NORMAL, 20 PNEUMONIA), the films the threshold was set on")


def test_out_of_scope_inputs_are_flagged_not_dropped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blank = tmp_path / "blank.png"
    assert cv2.imwrite(str(blank), np.full((300, 300), 128, np.uint8))
    assert main(["classify", "--json", str(blank)]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert record["ok"] is True and record["in_scope"] is False
    # The label is the threshold's; what a reader acts on is that it does not apply here (a
    # worklist filtered on NORMAL returned a photograph).
    assert record["label"] in {"NORMAL", "PNEUMONIA"} and record["result"] == "unreliable"
    assert any("blank" in r for r in record["scope_reasons"])
    assert main(["classify", str(blank), "--threshold", "0.000001"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Not reliable" in out[1] and "OUT OF SCOPE, result not reliable: image is blank" in out[1]
    assert "threshold (" not in out[1]  # never called above or below the threshold
    assert out[-2].startswith("1 studies: 0 above the review threshold, 1 not reliable, 0 failed")


def test_a_site_profile_calibrates_and_thresholds_the_results(
    resources: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    img = write_png(tmp_path / "x.png", 7)
    model = ModelInfo(**{k: v for k, v in json.loads((resources / "models" / "tiny-cxr.json").read_text()).items()
                         if k in ("name", "version", "sha256")})
    site = tiny_profile(model, temperature=8.0, default_operating_point="balanced")
    site_path = site.save(tmp_path / "site.profile.json")
    assert main(["classify", "--json", str(img)]) == 0
    assert main(["classify", "--json", str(img), "--profile", str(site_path)]) == 0
    shipped, local = json_lines(capsys.readouterr().out)
    assert local["profile"] == {"name": site.name, "sha256": SiteProfile.load(site_path).sha256}
    assert local["profile"]["sha256"] != shipped["profile"]["sha256"]
    assert (local["operating_point"], local["threshold"]) == ("balanced", 0.5)
    assert local["probability"] != shipped["probability"]
    audited = AuditLog().read().entries[-1]
    assert (audited["profile_name"], audited["profile_sha256"]) == (site.name, local["profile"]["sha256"])


def test_a_profile_of_another_model_or_unreadable_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = write_png(tmp_path / "x.png", 7)
    other = tiny_profile(ModelInfo("other-cxr", "2.0", "ab" * 32)).save(tmp_path / "other.profile.json")
    assert main(["classify", "--json", str(img), "--profile", str(other)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"lunglens classify: {other}: profile 'tiny test profile' was made for model other-cxr 2.0")
    assert "Traceback" not in captured.err and captured.out == ""
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{ not json")
    for path, reason in ((garbled, "not a usable site profile"), (tmp_path / "none.json", "no such profile")):
        assert main(["classify", str(img), "--profile", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"lunglens classify: {path}: {reason}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("changes, reason", [
    ({"model": {"name": "lunglens-cxr", "version": "2.6.0", "sha256": None}}, "field model.sha256 is not text"),
    ({"model": {"name": "lunglens-cxr", "version": "2.6.0", "sha256": 12345}}, "field model.sha256 is not text"),
    ({"model": {"name": "lunglens-cxr", "version": "2.6.0", "sha256": "abc"}}, "field model.sha256 is not a SHA-256"),
    ({"model": {"name": "lunglens-cxr", "version": "2.6.0"}}, "field model.sha256 is missing"),
    ({"model": "lunglens-cxr"}, "field model is not a JSON object"),
    ({"name": None}, "field name is not text"),
    ({"operating_points": [1, 2]}, "field operating_points is not a JSON object"),
    ({"source": {"description": "x", "n_normal": None, "n_pneumonia": 1, "n_groups": 1}},
     "a field holds a value of the wrong kind (int() argument"),
])
def test_a_hand_edited_profile_with_its_hash_recomputed_is_refused_in_one_line(
        changes: dict, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A null model hash had crashed classify with a traceback (exit 1); other shapes had been
    refused in Python's words ("ModelInfo.__init__() missing 1 required positional argument")."""
    img = write_png(tmp_path / "x.png", 7)
    made = tiny_profile(ModelInfo("lunglens-cxr", "2.6.0", "ab" * 32)).save(tmp_path / "made.profile.json")
    edited = forged_profile(made, tmp_path / "edited.json", changes)
    assert main(["classify", str(img), "--profile", str(edited)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lunglens classify: {edited}: not a usable site profile: {reason}"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_custom_threshold_decides_the_label(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for edge in ("0", "1"):  # every film flagged, or none can be: refused, as "0 %" and "100 %" are never shown
        assert main(["classify", str(tmp_path / "x.png"), "--threshold", edge]) == 2
        assert "must be above 0 and below 1" in capsys.readouterr().err
    img = write_png(tmp_path / "x.png", 7)
    main(["classify", "--json", str(img), "--threshold", "0.999999"])
    main(["classify", "--json", str(img), "--threshold", "0.000001"])
    strict, lax = json_lines(capsys.readouterr().out)
    assert strict["probability"] == lax["probability"]
    assert (strict["label"], strict["operating_point"], strict["threshold"]) == ("NORMAL", "custom", 0.999999)
    assert lax["label"] == "PNEUMONIA"


def test_a_named_operating_point_decides_and_its_figures_are_said(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """classify had only --threshold: a batch at the balanced point read "not measured" while
    the PDF and SR of the same films gave the balanced point's figures."""
    img = write_png(tmp_path / "x.png", 7)
    assert main(["classify", "--json", str(img), "--operating-point", "balanced"]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert (record["operating_point"], record["threshold"]) == ("balanced", 0.5)
    assert main(["classify", str(img), "--operating-point", "balanced"]) == 0
    assert "(balanced operating point, site profile 'tiny test profile'); sensitivity 90.0 %" in capsys.readouterr().out
    assert main(["classify", str(img), "--operating-point", "lenient"]) == 2
    assert "lenient" in capsys.readouterr().err
    assert main(["classify", str(img), "--operating-point", "balanced", "--threshold", "0.3"]) == 2


def test_csv_has_one_row_per_input_in_the_apps_export_columns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = write_png(tmp_path / "a.png", 8)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out_csv = tmp_path / "out" / "results.csv"
    out_csv.parent.mkdir()
    assert main(["classify", str(good), str(bad), "--csv", str(out_csv), "--json"]) == 1
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8-sig")))
    assert list(rows[0]) == list(columns())  # the same columns as the app's worklist export
    assert [r["path"] for r in rows] == [str(good), str(bad)]
    assert rows[0]["status"] == "done" and 0 <= float(rows[0]["probability"]) <= 1
    assert len(rows[0]["model_sha256"]) == 64 and len(rows[0]["pixel_sha256"]) == 64
    assert rows[0]["label"] in {"NORMAL", "PNEUMONIA"} and rows[0]["in_scope"] in {"yes", "no"}
    assert rows[1]["status"] == "error" and "b.png" in rows[1]["error"] and rows[1]["probability"] == ""


def test_every_analysis_is_audited_without_the_path(
    tmp_path: Path, private_data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    good = write_png(tmp_path / "secret-name.png", 11)
    assert main(["classify", "--json", str(good)]) == 0
    result = json_lines(capsys.readouterr().out)[0]
    entries = AuditLog().read().entries
    assert [e["event"] for e in entries] == ["analysis"]
    assert entries[0]["probability"] == pytest.approx(result["probability"])
    assert entries[0]["model_sha256"] == result["model"]["sha256"] and len(entries[0]["pixel_sha256"]) == 64
    assert "secret-name" not in (private_data_dir / "audit.jsonl").read_text(encoding="utf-8")


def test_cam_dir_gets_one_uniquely_named_overlay_per_study(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = write_png(tmp_path / "one" / "chest.png", 9, size=(300, 420))
    b = write_png(tmp_path / "two" / "chest.png", 10, size=(350, 350))
    cams = tmp_path / "cams"
    assert main(["classify", "--json", str(a), str(b), "--cam-dir", str(cams), "--cam-all"]) == 0
    records = json_lines(capsys.readouterr().out)
    assert sorted(p.name for p in cams.iterdir()) == ["chest_2_cam.png", "chest_cam.png"]
    assert [Path(r["cam"]).name for r in records] == ["chest_cam.png", "chest_2_cam.png"]
    first = cv2.imread(str(cams / "chest_cam.png"), cv2.IMREAD_UNCHANGED)
    # The film at its size, with a band of words below it (result and what the map means).
    assert first.shape[1:] == (420, 3) and first.shape[0] > 300 and first.dtype == np.uint8
    assert first[300:].max() == 255 and first[305:, :, 0].mean() < 60  # white text on black


def test_cam_grid_is_the_native_map_in_logit_units(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    kermany_samples) -> None:
    film = kermany_samples["PNEUMONIA"][0]
    assert main(["classify", "--json", "--cam-grid", str(film)]) == 0
    record = json_lines(capsys.readouterr().out)[0]
    grid = np.asarray(record["cam_grid"])
    assert grid.shape == (14, 14) and record["cam"] is None
    prediction = Engine.load().predict(load_study(film))
    np.testing.assert_allclose(grid, prediction.attribution.grid, atol=1e-5)  # rows top first, not transposed
    assert main(["classify", "--json", str(film)]) == 0
    assert "cam_grid" not in json_lines(capsys.readouterr().out)[0]  # only when asked


@pytest.mark.parametrize("argv", [["--cam-all"], ["--cam-grid"]])
def test_cam_options_without_what_they_need_are_usage_errors(argv: list[str], capsys) -> None:
    assert main(["classify", "x.png", *argv]) == 2
    assert "--cam" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify"],
        ["classify", "x.png", "--threshold", "1.5"],
        ["classify", "x.png", "--provider", "tpu"],
        ["classify", "x.png", "--threads", "0"],
        ["classify", "x.png", "--bogus"],
        ["diagnose", "x.png"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err  # argparse says what is wrong


def test_an_output_that_cannot_be_opened_fails_before_any_analysis(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A valid option whose file cannot be written is a failure (1), not a usage error (2)."""
    img = write_png(tmp_path / "x.png", 14)
    assert main(["classify", str(img), "--csv", str(tmp_path)]) == 1  # a folder, not a file
    captured = capsys.readouterr()
    assert "cannot write output" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""  # nothing analysed in vain
    (tmp_path / "taken").write_text("a file where the folder should go")
    assert main(["classify", str(img), "--cam-dir", str(tmp_path / "taken")]) == 1


def test_a_heat_map_whose_file_name_is_taken_by_a_folder_fails_the_run(tmp_path: Path, capsys) -> None:
    """Every study is still classified and reported; the status says an output is missing."""
    cams = tmp_path / "cams"
    (cams / "a_cam.png").mkdir(parents=True)  # where a_cam.png must go (root cannot write there either)
    a, b = write_png(tmp_path / "a.png", 16), write_png(tmp_path / "b.png", 17)
    assert main(["classify", "--json", "--cam-dir", str(cams), "--cam-all", str(a), str(b)]) == 1
    first, second = json_lines(capsys.readouterr().out)
    assert first["ok"] and first["cam"] is None and any("heat-map not written" in w for w in first["warnings"])
    assert second["ok"] and second["cam"] == str(cams / "b_cam.png")


def test_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    assert main(["classify", "--help"]) == 0
    assert "--cam-dir" in capsys.readouterr().out


def test_a_tampered_model_stops_with_a_clear_message(tmp_path: Path, monkeypatch, capsys) -> None:
    res = tmp_path / "res"
    build_tiny_model(res / "models")
    onnx_file = res / "models" / "tiny-cxr.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    monkeypatch.setenv("LUNGLENS_RESOURCES", str(res))
    assert main(["classify", str(write_png(tmp_path / "x.png", 11))]) == 1
    err = capsys.readouterr().err
    assert "corrupted or has been modified" in err and "Traceback" not in err


def test_provider_fallback_is_visible(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = write_png(tmp_path / "x.png", 12)
    assert main(["classify", "--json", "--provider", "cuda", "--threads", "1", str(img)]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert record["provider"] == "CPUExecutionProvider"
    assert any("CUDA" in w for w in record["warnings"])


def test_the_lunglens_entry_point_classifies_without_importing_qt(resources: Path, tmp_path: Path) -> None:
    img = write_png(tmp_path / "x.png", 13)
    probe = (
        "import json, sys\n"
        "from desktop.main import main\n"
        f"code = main(['classify', '--json', {str(img)!r}])\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'PySide6', 'shiboken6', 'pyqtgraph', 'superqt', 'torch'})\n"
        "print(json.dumps({'code': code, 'qt': qt}))\n"
    )
    env = {**os.environ, "LUNGLENS_RESOURCES": str(resources)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    record, verdict = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert record["ok"] is True
    assert verdict == {"code": 0, "qt": []}


def test_a_file_name_with_a_newline_stays_on_its_row_and_notes_read_as_sentences(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = write_png(tmp_path / "child\nfilm.png", 7)
    assert main(["classify", str(img)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[1].startswith(str(tmp_path / "child\\nfilm.png"))  # header, row, summary
    assert ".;" not in out[1] and "Patient age not recorded" in out[1]
