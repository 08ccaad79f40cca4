"""``lunglens classify`` keeps every result in the worklist and answers a rerun from it (issue 14).

A result is committed before its line is printed, so a batch killed half-way and run again
redoes only what was not printed; a worklist another program keeps locked never fails the batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference.audit import AuditLog
from inference.cli import main
from inference.hashing import earlier_pixel_sha256, float32_sha256, holds_pixels, pixel_sha256
from inference.loaders import DECODING, load_study
from inference.thumbnail import THUMBNAIL_SIZE, make_thumbnail
from inference.userdirs import worklist_path
from inference.worklist import Worklist
from tests.inference.test_cli import json_lines, resources, use_tiny_model, write_png  # noqa: F401 -- fixtures
from tests.inference.test_worklist_safety import write_lock_held

REPO = Path(__file__).resolve().parents[2]


def classify(capsys: pytest.CaptureFixture, *argv: str) -> list[dict]:
    assert main(["classify", "--json", *argv]) == 0
    return json_lines(capsys.readouterr().out)


def test_a_rerun_answers_every_finished_study_from_the_worklist(tmp_path: Path, capsys) -> None:
    files = [str(write_png(tmp_path / f"{i}.png", i)) for i in range(3)]
    first = classify(capsys, *files)
    assert [r["cached"] for r in first] == [False] * 3
    with Worklist() as wl:
        assert sorted(r.study_path for r in wl.records()) == sorted(files)

    again = classify(capsys, *files)
    assert [r["cached"] for r in again] == [True] * 3
    for fresh, cached in zip(first, again):  # the same result, and no inference timings of its own
        assert (cached["path"], cached["probability"], cached["label"]) == (fresh["path"], fresh["probability"],
                                                                            fresh["label"])
        assert set(cached["timings_ms"]) == {"read"}
    audited = [e["cached"] for e in AuditLog().read().entries if e["event"] == "analysis"]
    assert audited == [False] * 3 + [True] * 3  # every result shown is audited, cached ones as such


def test_a_film_named_relative_to_where_the_command_runs_is_kept_under_its_whole_path(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """Named from three folders, a film had three rows in the worklist, each "no longer
    available" to a window started anywhere else."""
    film = write_png(tmp_path / "cd" / "films" / "a.png", 3)
    for cwd, name in ((film.parent, "a.png"), (tmp_path / "cd", "films/a.png"), (tmp_path, "cd/films/../films/a.png")):
        monkeypatch.chdir(cwd)
        (result,) = classify(capsys, name)
        assert result["path"] == str(film)
    with Worklist() as wl:
        assert [r.study_path for r in wl.records()] == [str(film)]


def test_a_cached_result_is_read_at_this_runs_threshold(tmp_path: Path, capsys) -> None:
    img = str(write_png(tmp_path / "x.png", 7))
    (fresh,) = classify(capsys, img)
    threshold = fresh["probability"] / 2 if fresh["probability"] > 0 else 0.5
    (cached,) = classify(capsys, "--threshold", str(threshold), img)
    assert cached["cached"] is True
    assert (cached["threshold"], cached["operating_point"]) == (threshold, "custom")
    assert cached["label"] == ("PNEUMONIA" if cached["probability"] >= threshold else "NORMAL")


def test_the_same_pixels_under_another_name_are_cached_and_stored_under_that_name(tmp_path: Path, capsys) -> None:
    original = write_png(tmp_path / "a.png", 3)
    copy = tmp_path / "b.png"
    copy.write_bytes(original.read_bytes())
    classify(capsys, str(original))
    (record,) = classify(capsys, str(copy))
    assert record["cached"] is True
    with Worklist() as wl:
        assert sorted(r.study_path for r in wl.records()) == [str(original), str(copy)]


def test_a_file_that_cannot_be_read_is_kept_as_failed_until_it_is_analysed(tmp_path: Path, capsys) -> None:
    """The window lists it as failed after the run (classify's failures were only printed)."""
    good = write_png(tmp_path / "a.png", 5)
    broken = tmp_path / "b.png"
    broken.write_bytes(good.read_bytes()[:60])
    assert main(["classify", "--json", str(good), str(broken)]) == 1
    first = json_lines(capsys.readouterr().out)
    assert [bool(r.get("error")) for r in first] == [False, True]
    with Worklist() as wl:
        assert [(f.study_path, f.reason) for f in wl.failures()] == [(str(broken), first[1]["error"])]
    broken.write_bytes(good.read_bytes())
    classify(capsys, str(broken))
    with Worklist() as wl:
        assert wl.failures() == []


def test_no_worklist_neither_reads_nor_writes_it(tmp_path: Path, capsys) -> None:
    img = str(write_png(tmp_path / "x.png", 4))
    classify(capsys, img)
    path = worklist_path(create=False)
    before = path.stat().st_mtime_ns, len(Worklist(path))
    (record,) = classify(capsys, "--no-worklist", img)
    assert record["cached"] is False
    assert (path.stat().st_mtime_ns, len(Worklist(path))) == before


def test_a_locked_worklist_does_not_fail_the_batch(tmp_path: Path, capsys) -> None:
    files = [str(write_png(tmp_path / f"{i}.png", i)) for i in range(2)]
    classify(capsys, files[0])  # the list exists, with one result
    with write_lock_held(worklist_path(create=False)):
        assert main(["classify", "--json", *files]) == 0
    captured = capsys.readouterr()
    records = json_lines(captured.out)
    assert [r["ok"] for r in records] == [True, True]
    assert captured.err.count("locked for more than") == 1  # said once, not once per study
    assert "2 results could not be saved in the worklist" in captured.err  # tried once more at the end


def test_a_batch_killed_half_way_is_not_redone(tmp_path: Path, kermany_samples) -> None:
    """The real command and the bundled model in a subprocess: killed (SIGKILL) after its
    fifth line, then run again: every study it printed is answered from the worklist."""
    films = [*kermany_samples["NORMAL"], *kermany_samples["PNEUMONIA"]]
    env = {k: v for k, v in os.environ.items() if k != "LUNGLENS_RESOURCES"}  # the bundled model
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "desktop.main", "classify", "--json", "--provider", "cpu", *map(str, films)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    printed: list[dict] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while len(printed) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(json.loads(line))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert len(printed) == 5 and all(r["ok"] for r in printed)
    assert len(printed) < len(films)

    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    cached = {r["path"]: r["cached"] for r in json_lines(rerun.stdout)}
    assert len(cached) == len(films)
    assert all(cached[r["path"]] for r in printed)


def stored_as_version_1(film: Path, v1: str, capsys: pytest.CaptureFixture) -> dict:
    """Classify ``film`` once, then re-key its row to ``v1`` as LungLens stored it before."""
    (fresh,) = classify(capsys, str(film))
    with Worklist() as wl:
        assert wl.rekey(pixel_sha256(load_study(film)), v1) == 1
    return fresh


def test_a_film_stored_under_the_earlier_fingerprint_is_still_recognised(tmp_path: Path, capsys) -> None:
    """Version 2 hashes 8-bit pixels as bytes, not float32: a version-1 row still answers."""
    film = write_png(tmp_path / "x.png", 5)
    study = load_study(film)
    assert pixel_sha256(study) != float32_sha256(study.pixels)
    fresh = stored_as_version_1(film, float32_sha256(study.pixels), capsys)
    (again,) = classify(capsys, str(film))
    assert again["cached"] is True and again["probability"] == fresh["probability"]
    with Worklist() as wl:  # re-keyed: the next run finds it at once
        assert [r.pixel_sha256 for r in wl.records()] == [pixel_sha256(study)]


def test_a_jpeg_study_stored_under_the_earlier_decoder_is_still_recognised(tmp_path: Path, real_dicom: Path,
                                                                              capsys) -> None:
    """JPEG baseline is decoded by Pillow since decoder generation 2, which changes a grey
    level here and there; a result stored from the earlier decoder's pixels still answers."""
    film = tmp_path / "cr.dcm"
    film.write_bytes(real_dicom.read_bytes())
    now, before = load_study(film), load_study(film, decoding=DECODING - 1)
    assert np.abs(now.pixels - before.pixels).max() <= 1.0
    assert list(earlier_pixel_sha256(now, pixel_sha256(now))) == [float32_sha256(now.pixels), float32_sha256(before.pixels)]
    fresh = stored_as_version_1(film, float32_sha256(before.pixels), capsys)
    (again,) = classify(capsys, str(film))
    assert again["cached"] is True and again["probability"] == fresh["probability"]
    with Worklist() as wl:
        assert [r.pixel_sha256 for r in wl.records()] == [pixel_sha256(now)]


def test_a_file_holds_the_pixels_of_its_fingerprint_under_any_version(tmp_path: Path, real_dicom: Path) -> None:
    """What the window checks before it shows a stored result's file (a file replaced since
    must not be shown under it), without calling a film stored by an earlier version replaced."""
    film = tmp_path / "cr.dcm"
    film.write_bytes(real_dicom.read_bytes())
    now, before = load_study(film), load_study(film, decoding=DECODING - 1)
    other = load_study(write_png(tmp_path / "other.png", 5))
    assert holds_pixels(now, pixel_sha256(now))
    assert holds_pixels(now, float32_sha256(now.pixels)) and holds_pixels(now, float32_sha256(before.pixels))
    assert not holds_pixels(now, pixel_sha256(other)) and not holds_pixels(other, pixel_sha256(now))


def test_version_2_hashes_narrow_pixels_narrow_and_others_as_version_1() -> None:
    from inference.study import Study, StudyMetadata

    def study(pixels: np.ndarray) -> Study:
        return Study(Path("x"), pixels.astype(np.float32), (0.0, 1.0), StudyMetadata())

    grey = np.arange(64, dtype=np.float32).reshape(8, 8)
    assert pixel_sha256(study(grey)) != float32_sha256(grey)
    assert pixel_sha256(study(grey)) != pixel_sha256(study(grey.reshape(4, 16)))  # the shape counts
    assert pixel_sha256(study(grey)) != pixel_sha256(study(grey * 300))  # 16-bit, another type tag
    fractional = grey + 0.5
    assert pixel_sha256(study(fractional)) == float32_sha256(fractional)


def test_the_same_pixels_under_another_header_are_analysed_again(tmp_path: Path, kermany_samples, capsys) -> None:
    """The header can change the verdict: a lateral view of the same pixels is out of scope,
    so a result stored for the frontal film must not answer for it."""
    from tests.fixtures.dicom_factory import read_gray, write_dicom

    gray = read_gray(kermany_samples["PNEUMONIA"][0])
    frontal = write_dicom(tmp_path / "frontal.dcm", gray, tags={"ViewPosition": "PA"})
    lateral = write_dicom(tmp_path / "lateral.dcm", gray, tags={"ViewPosition": "LL"})
    assert pixel_sha256(load_study(frontal)) == pixel_sha256(load_study(lateral))
    (first,) = classify(capsys, str(frontal))
    (second,) = classify(capsys, str(lateral))
    assert first["in_scope"] is True
    assert second["cached"] is False and second["in_scope"] is False
    assert [r["cached"] for r in classify(capsys, str(frontal), str(lateral))] == [True, True]


def test_a_kept_result_carries_the_picture_the_window_lists_it_with(real_dicom: Path, capsys) -> None:
    """A film classified without the window is listed there later from the worklist alone (its
    file may be gone): the result keeps a thumbnail, the film in its default window."""
    classify(capsys, str(real_dicom))
    with Worklist() as wl:
        (record,) = wl.records()
    expected = make_thumbnail(load_study(real_dicom))
    assert record.thumbnail is not None and record.thumbnail.dtype == np.uint8
    assert record.thumbnail.shape == expected.shape and max(expected.shape) == THUMBNAIL_SIZE
    assert np.array_equal(record.thumbnail, expected)
    assert record.thumbnail.std() > 20  # a radiograph, not a blank square
