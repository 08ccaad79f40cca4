"""``lunglens calibrate`` on the real bundled model and real site-sample films.

The films are linked (not copied) into throw-away folders laid out as a clinic would sort
them. Refusals are checked to come before the model is even loaded; the profiles that are
written are read back, applied with ``lunglens classify --profile``, and their plots opened.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inference import calibrate_cli
from inference.calibrate_cli import main
from inference.cli import main as classify_main
from inference.calibration import DEFAULT_TARGET
from inference.decision import threshold_text
from inference.engine import Engine
from inference.hashing import pixel_sha256
from inference.loaders import load_study
from inference.paths import models_dir
from inference.prediction import ModelInfo
from inference.profile import ProfileError, SiteProfile
from inference.profile_library import import_profile
from inference.sitefilms import LABELS
from inference.worklist import Worklist, WorklistRecord
from tests.fixtures.dicom_factory import read_gray, write_dicom
from tests.fixtures.unlistable import refuse_listing

N_PER_CLASS = 24  # enough for a calibration (20 a class), few enough to run in seconds


@pytest.fixture(scope="module")
def films(site_sample: Path) -> dict[str, list[Path]]:
    """Site-sample films per class, spread over the folder (every k-th in name order)."""
    out = {}
    for label in ("NORMAL", "PNEUMONIA"):
        files = sorted((site_sample / label).glob("*.jpeg"))
        out[label] = files[:: max(1, len(files) // N_PER_CLASS)][:N_PER_CLASS]
        assert len(out[label]) == N_PER_CLASS
    return out


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(threads=1)


def link_films(root: Path, films: dict[str, list[Path]], counts: dict[str, int] | None = None) -> Path:
    """``root/<label>/<film>`` symlinks, ``counts[label]`` of each class (default all)."""
    for label, files in films.items():
        n = len(files) if counts is None else counts.get(label, 0)
        if n:
            (root / label).mkdir(parents=True, exist_ok=True)
        for f in files[:n]:
            (root / label / f.name).symlink_to(f)
    return root


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals must come before the model is loaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded for data that cannot be calibrated")

    monkeypatch.setattr(calibrate_cli.Engine, "load", refuse)


# ---------------------------------------------------------------------------------- refusals
def test_a_one_class_folder_exits_2(tmp_path: Path, films, no_model, capsys: pytest.CaptureFixture) -> None:
    site = link_films(tmp_path / "site", films, {"NORMAL": N_PER_CLASS})
    out = tmp_path / "site.profile.json"
    assert main(["calibrate", str(site), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lunglens calibrate: all {N_PER_CLASS} labelled films are NORMAL: calibration needs "
                          f"films of both classes")
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not out.exists()


def test_19_films_of_a_class_exit_2_saying_1_more_is_needed(tmp_path: Path, films, no_model,
                                                              capsys: pytest.CaptureFixture) -> None:
    site = link_films(tmp_path / "site", films, {"NORMAL": 19, "PNEUMONIA": 20})
    assert main(["calibrate", str(site), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "only 19 NORMAL films: calibration needs at least 20 of each class (1 more NORMAL)" in err
    assert len(err.splitlines()) == 1


def test_unreadable_or_wrong_labels_exit_2_naming_the_file(tmp_path: Path, films, no_model,
                                                           capsys: pytest.CaptureFixture) -> None:
    cases = {
        "binary.csv": (b"\xff\xfe\x00garbage\x9c", "binary.csv: cannot read the labels"),
        "wrong.csv": (f"path,label\n{films['NORMAL'][0]},normal\n{films['NORMAL'][1]},maybe\n".encode(),
                      "wrong.csv, line 3: label 'maybe' is not NORMAL or PNEUMONIA"),
        "short.csv": (f"{films['NORMAL'][0]}\n".encode(), "short.csv, line 1: expected path,label"),
        "empty.csv": (b"path,label\n", "empty.csv: no labelled films"),
        # A first line naming a film is not a header: its label is read, a typo refused.
        "first.csv": (f"{films['NORMAL'][0]},PNEUMONA\n{films['NORMAL'][1]},normal\n".encode(),
                      "first.csv, line 1: label 'PNEUMONA' is not NORMAL or PNEUMONIA"),
        "both.csv": (f"{films['NORMAL'][0]},normal\n{films['NORMAL'][1]},normal\n{films['NORMAL'][0]},pneumonia\n"
                     .encode(), f"{films['NORMAL'][0]} is labelled both NORMAL (line 1) and PNEUMONIA (line 3)"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["calibrate", "--labels", str(tmp_path / name), "--out", str(tmp_path / "p.json")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["calibrate", "--labels", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "p.json")]) == 2
    assert "missing.csv: cannot read the labels" in capsys.readouterr().err


def test_an_out_that_would_destroy_something_else_is_refused_before_any_film_is_read(
        tmp_path: Path, films, no_model, capsys: pytest.CaptureFixture) -> None:
    site = link_films(tmp_path / "site", films)
    film = tmp_path / "victim.jpeg"
    film.write_bytes(b"\xff\xd8 a film the clinic keeps")
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    (tmp_path / "odd.roc.png").mkdir()
    for out, message in ((film, "a site profile is a .json file"),
                         (notes, "the file exists and is not a LungLens site profile; not overwritten"),
                         (tmp_path / "odd.json", "odd.roc.png is a folder")):
        assert main(["calibrate", str(site), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert film.read_bytes() == b"\xff\xd8 a film the clinic keeps" and notes.read_text() == '{"my": "notes"}'
    assert not (tmp_path / "odd.json").exists()


def test_a_film_named_twice_counts_once(tmp_path: Path, films, no_model, capsys: pytest.CaptureFixture) -> None:
    """The same folder twice, or a folder and one inside it, must not pass the minimum of 20 a
    class (nor narrow the intervals) with 12 films counted twice."""
    site = link_films(tmp_path / "site", films, {"NORMAL": N_PER_CLASS, "PNEUMONIA": 12})
    for dirs in ([site, site], [site, site / "PNEUMONIA"]):
        assert main(["calibrate", *map(str, dirs), "--out", str(tmp_path / "p.json")]) == 2
        assert "only 12 PNEUMONIA films" in capsys.readouterr().err
    rows = "".join(f"{f},pneumonia\n" for f in [*films["PNEUMONIA"][:12]] * 2)
    (tmp_path / "twice.csv").write_text("path,label\n" + rows + "".join(f"{f},normal\n" for f in films["NORMAL"]))
    assert main(["calibrate", "--labels", str(tmp_path / "twice.csv"), "--out", str(tmp_path / "p.json")]) == 2
    assert "only 12 PNEUMONIA films" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_the_same_image_under_two_names_counts_once_and_with_both_labels_is_left_out(
        tmp_path: Path, films, capsys: pytest.CaptureFixture) -> None:
    """Copies, not links: 12 radiographs copied into two folders each had passed the minimum of
    20 PNEUMONIA films, and one filed under both labels was counted as both."""
    site = tmp_path / "site"
    for label, files in (("NORMAL", films["NORMAL"]), ("PNEUMONIA", films["PNEUMONIA"][:12])):
        for copy in ("a", "b"):
            (site / copy / label).mkdir(parents=True, exist_ok=True)
            for f in files:
                (site / copy / label / f.name).write_bytes(f.read_bytes())
    both = site / "a" / "NORMAL" / f"again-{films['PNEUMONIA'][0].name}"
    both.write_bytes(films["PNEUMONIA"][0].read_bytes())
    assert main(["calibrate", str(site), "--out", str(tmp_path / "p.json"), "--bootstrap", "200"]) == 2
    err = capsys.readouterr().err
    assert "only 11 PNEUMONIA films" in err  # 12 images, one of them also filed NORMAL: left out
    assert (f"{site / 'a' / 'PNEUMONIA' / films['PNEUMONIA'][0].name}: the same image as {both}, which is "
            f"labelled NORMAL, not PNEUMONIA; both left out") in err
    assert f"left out (the same image as {site / 'a' / 'PNEUMONIA' / films['PNEUMONIA'][1].name})" in err
    assert not (tmp_path / "p.json").exists()


def test_the_normal_and_pneumonia_folders_themselves_can_be_chosen(tmp_path: Path, films, no_model,
                                                                   capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing site/NORMAL and site/PNEUMONIA had been refused: "no labelled films found ...
    put them in folders named NORMAL and PNEUMONIA", which is what was chosen."""
    link_films(tmp_path / "site", films, {"NORMAL": N_PER_CLASS, "PNEUMONIA": 12})
    monkeypatch.chdir(tmp_path / "site")
    assert main(["calibrate", "NORMAL", "PNEUMONIA", "--out", str(tmp_path / "p.json")]) == 2
    assert "only 12 PNEUMONIA films" in capsys.readouterr().err  # both folders read, by their own names
    monkeypatch.chdir(tmp_path / "site" / "PNEUMONIA")
    assert main(["calibrate", ".", "../NORMAL", "--out", str(tmp_path / "p.json")]) == 2
    assert "only 12 PNEUMONIA films" in capsys.readouterr().err


def test_no_labelled_films_and_ambiguous_sources_exit_2(tmp_path: Path, films, no_model,
                                                        capsys: pytest.CaptureFixture) -> None:
    unsorted = tmp_path / "unsorted"
    unsorted.mkdir()
    (unsorted / films["NORMAL"][0].name).symlink_to(films["NORMAL"][0])
    assert main(["calibrate", str(unsorted), "--out", str(tmp_path / "p.json")]) == 2
    assert "no labelled films found under" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.json")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    for argv in (["calibrate", "--out", "p.json"],
                 ["calibrate", str(unsorted), "--from-worklist", "--out", "p.json"],
                 ["calibrate", str(unsorted), "--labels", "x.csv", "--out", "p.json"]):
        assert main(argv) == 2
        assert "give the labelled films one way" in capsys.readouterr().err
    assert main(["calibrate", "--from-worklist", "--out", "p.json"]) == 2  # no worklist yet
    assert "no worklist at" in capsys.readouterr().err
    for argv in (["calibrate", str(unsorted)],  # no --out
                 ["calibrate", str(unsorted), "--out", "p.json", "--target-sensitivity", "1.2"],
                 ["calibrate", str(unsorted), "--out", "p.json", "--bootstrap", "10"],
                 ["calibrate", str(unsorted), "--out", "p.json", "--provider", "tpu"]):
        assert main(argv) == 2
        assert capsys.readouterr().err


# ------------------------------------------------------------------------------ calibrating
def test_calibrating_labelled_folders_writes_a_profile_and_plots_that_classify_uses(
    tmp_path: Path, films, engine: Engine, capsys: pytest.CaptureFixture
) -> None:
    link_films(tmp_path / "clinic" / "2024", films)  # NORMAL/PNEUMONIA below a year folder
    out = tmp_path / "profiles" / "clinic.profile.json"
    code = main(["calibrate", str(tmp_path / "clinic"), "--out", str(out), "--name", "Clinic A",
                 "--description", "Clinic A films of 2024", "--bootstrap", "200"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    profile = SiteProfile.load(out, engine.model_info)  # made for the bundled model
    assert (profile.name, profile.n_normal, profile.n_pneumonia) == ("Clinic A", N_PER_CLASS, N_PER_CLASS)
    assert profile.source == f"Clinic A films of 2024: {2 * N_PER_CLASS} films ({N_PER_CLASS} NORMAL, {N_PER_CLASS} PNEUMONIA)"
    assert profile.grouping == "patient" and profile.n_groups <= 2 * N_PER_CLASS
    assert set(profile.operating_points) == {"high_sensitivity", "balanced"}
    hs, bal = profile.operating_points["high_sensitivity"], profile.operating_points["balanced"]
    assert hs.threshold <= bal.threshold and hs.sensitivity.value >= bal.sensitivity.value
    assert hs.sensitivity.lo <= hs.sensitivity.value <= hs.sensitivity.hi
    text = out.read_text()
    assert not any(f.stem.split("_")[0] in text for f in films["PNEUMONIA"])  # no file name, no patient

    # The summary: counts, method and CV ECE, AUC and ECE with CIs, each point, and the data.
    summary = captured.out
    assert f"Wrote {out} (profile 'Clinic A'" in summary
    assert f"Films: {profile.source}" in summary
    assert f"Calibration: {profile.calibration.method}" in summary and "cross-validated ECE (temperature" in summary
    assert f"AUC {profile.metrics['auc'].plain()}" in summary
    assert f"ECE {profile.metrics['ece_before'].plain()} before calibration" in summary
    assert (f"high sensitivity (default): threshold {threshold_text(hs.threshold)}, sensitivity {hs.sensitivity.percent()}, "
            f"specificity {hs.specificity.percent()}") in summary
    assert f"balanced: threshold {threshold_text(bal.threshold)}" in summary
    assert "measured on the 48 films above, the same the profile was fitted on" in summary
    assert "bootstrap over patients (200 resamples)" in summary
    # 24 pneumonia patients cannot show the default 93 % sensitivity with 95 % confidence (51 all
    # found can): said.
    assert profile.target_sensitivity == DEFAULT_TARGET == 0.93 and hs.sensitivity.lo < DEFAULT_TARGET
    assert "  No threshold showed a sensitivity of at least 93 % with 95 % confidence" in summary
    assert f"at least 51 patients with pneumonia, all found, and these had {N_PER_CLASS}." in summary

    # The plots, beside the profile.
    for name in ("clinic.roc.png", "clinic.reliability.png"):
        with Image.open(out.parent / name) as image:
            assert image.format == "PNG" and image.width >= 800 and image.height >= 700
            pixels = np.asarray(image.convert("L"))
            assert (pixels < 128).mean() > 0.01  # text, axes and curves were drawn
    assert f"plots: {out.parent / 'clinic.roc.png'}, {out.parent / 'clinic.reliability.png'}" in summary

    # classify --profile applies it and says so.
    probe = [films["NORMAL"][0], films["PNEUMONIA"][0]]
    assert classify_main(["classify", "--json", "--profile", str(out), *map(str, probe)]) == 0
    records = json_lines(capsys.readouterr().out)
    for record, film in zip(records, probe):
        assert record["profile"] == {"name": "Clinic A", "sha256": profile.sha256}
        assert record["threshold"] == hs.threshold and record["operating_point"] == "high_sensitivity"
        logit = engine.predict(load_study(film)).logit
        assert record["probability"] == pytest.approx(profile.probability(logit), abs=1e-6)


def test_films_that_fail_are_listed_and_the_calibration_goes_on(
    tmp_path: Path, films, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "films" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    rows = ["path,label", *(f"{f},NORMAL" for f in films["NORMAL"][:21]),
            *(f"{f},pneumonia" for f in films["PNEUMONIA"][:21]), "films/broken.png,PNEUMONIA",
            "films/gone.dcm,NORMAL"]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    out = tmp_path / "site.json"
    assert main(["calibrate", "--labels", str(labels), "--out", str(out), "--bootstrap", "100"]) == 1
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2 and "broken.png" in skipped[0] and "gone.dcm" in skipped[1]
    assert skipped[1] == f"skipped {tmp_path / 'films' / 'gone.dcm'}: file not found"  # the whole path, once
    assert "Traceback" not in captured.err
    profile = SiteProfile.load(out)
    assert (profile.n_normal, profile.n_pneumonia, profile.name) == (21, 21, "site")
    assert profile.source.startswith("labels from labels.csv: 42 films")
    assert "Skipped: 2 films could not be used (listed above, on standard error)." in captured.out
    assert (tmp_path / "site.roc.png").is_file() and (tmp_path / "site.reliability.png").is_file()

    # Failures that leave too few films of a class: refused, saying both.
    rows = ["path,label", *(f"{f},NORMAL" for f in films["NORMAL"][:19]), "films/broken.png,NORMAL",
            *(f"{f},PNEUMONIA" for f in films["PNEUMONIA"][:20])]
    labels.write_text("\n".join(rows) + "\n")
    assert main(["calibrate", "--labels", str(labels), "--out", str(tmp_path / "short.json")]) == 2
    err = capsys.readouterr().err
    assert "only 20 NORMAL" not in err and "only 19 NORMAL films" in err and "(left out: 1 film could not be read)" in err
    assert not (tmp_path / "short.json").exists()
    # A copy of a film under another name is one image: refused, saying so (20 files, 19 images).
    copy = tmp_path / "copy-of-a-normal.png"
    copy.write_bytes(Path(films["NORMAL"][0]).read_bytes())
    labels.write_text("\n".join([*rows[:20], f"{copy},NORMAL", *rows[21:]]) + "\n")
    assert main(["calibrate", "--labels", str(labels), "--out", str(tmp_path / "short.json")]) == 2
    err = capsys.readouterr().err
    assert "only 19 NORMAL films" in err and "(left out: 1 film the same image as another film" in err


def test_a_labelled_folder_that_cannot_be_read_is_named_not_passed_over(
        tmp_path: Path, films, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """An unreadable NORMAL folder was skipped without a word: the profile was fitted on the
    films of the other folders and the command said nothing was missing (exit 0). CI runs as
    root, whom no permission stops, so the refusal is the OS call's."""
    root = link_films(tmp_path / "clinic", {"NORMAL": films["NORMAL"][:21], "PNEUMONIA": films["PNEUMONIA"][:21]})
    locked = root / "old" / "NORMAL"
    locked.mkdir(parents=True)
    refuse_listing(monkeypatch, locked)
    out = tmp_path / "site.json"
    assert main(["calibrate", str(root), "--out", str(out), "--bootstrap", "100"]) == 1
    captured = capsys.readouterr()
    assert f"skipped {locked}: permission denied: the folder cannot be read" in captured.err
    assert "Skipped: 1 film could not be used (listed above, on standard error)." in captured.out
    assert SiteProfile.load(out).n_normal == 21


def test_films_the_gate_calls_not_reliable_are_left_out_and_named(tmp_path: Path, films,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Photographs among the NORMAL films were fitted with the rest, unsaid: 25 of them took a
    clinic's AUC from 0.975 to 0.902. No threshold is ever applied to such a film."""
    site = link_films(tmp_path / "site", films, {"NORMAL": 22, "PNEUMONIA": 22})
    rng = np.random.default_rng(0)
    photos = []
    for i in range(3):
        photo = site / "NORMAL" / f"photo{i}.png"
        assert cv2.imwrite(str(photo), rng.integers(0, 255, (300, 300, 3), dtype=np.uint8))
        photos.append(photo)
    out = tmp_path / "site.json"
    assert main(["calibrate", str(site), "--out", str(out), "--bootstrap", "100"]) == 0
    captured = capsys.readouterr()
    left = [line for line in captured.err.splitlines() if line.startswith("left out")]
    assert [line.split(") ", 1)[1].split(": ", 1)[0] for line in left] == [str(p) for p in photos]
    assert all(line.startswith("left out (not reliable: outside the model's intended use) ") for line in left)
    profile = SiteProfile.load(out)
    assert (profile.n_normal, profile.n_pneumonia) == (22, 22)
    assert profile.source.endswith("44 films (22 NORMAL, 22 PNEUMONIA; 3 more left out as outside the model's "
                                   "intended use)")
    assert "Left out: 3 films the input gate called not reliable" in captured.out


def test_intervals_resample_patients_only_where_the_names_tell_them_apart(
    tmp_path: Path, films, capsys: pytest.CaptureFixture
) -> None:
    """A profile must not claim a confidence its data cannot give: an export with one folder per
    child names every first film IM-0001-0001 (other children, not one), and anonymised DICOMs
    that all read PatientID ANONYMOUS are one "patient" for the whole set, whose bootstrap
    intervals have no width."""
    export = tmp_path / "export"
    for label, files in films.items():
        for k, f in enumerate(files):
            (export / label / f"child{k:02d}").mkdir(parents=True)
            (export / label / f"child{k:02d}" / "IM-0001-0001.jpeg").symlink_to(f)
    out = tmp_path / "export.profile.json"
    assert main(["calibrate", str(export), "--out", str(out), "--bootstrap", "200"]) == 0
    profile = SiteProfile.load(out)
    assert (profile.grouping, profile.n_groups) == ("patient", 2 * N_PER_CLASS)
    assert "Note:" not in capsys.readouterr().out

    anonymous = tmp_path / "anonymous"
    for label, files in films.items():
        (anonymous / label).mkdir(parents=True)
        for k, f in enumerate(files):
            write_dicom(anonymous / label / f"{k:02d}.dcm", read_gray(f), tags={"PatientID": "ANONYMOUS"})
    out = tmp_path / "anonymous.profile.json"
    assert main(["calibrate", str(anonymous), "--out", str(out), "--bootstrap", "200"]) == 0
    profile = SiteProfile.load(out)
    assert (profile.grouping, profile.n_groups) == ("film", 2 * N_PER_CLASS)
    printed = capsys.readouterr().out
    assert f"{2 * N_PER_CLASS} films for the bootstrap" in printed
    assert f"Note: the {N_PER_CLASS} NORMAL films name only 1 patient (the same PatientID" in printed
    auc = profile.metrics["auc"]
    assert auc.hi - auc.lo > 0.0  # an interval, not a point

    # No PatientID and no Kermany names: the films of one DICOM study are one patient's.
    unnamed = tmp_path / "unnamed"
    for label, files in films.items():
        (unnamed / label).mkdir(parents=True)
        for k, f in enumerate(files):
            study = k // 2 if k < 8 else k - 4  # the first eight films two a study: 20 studies a class
            write_dicom(unnamed / label / f"{k:02d}.dcm", read_gray(f), tags={
                "PatientID": None, "StudyInstanceUID": f"1.2.826.0.1.3680043.8.498.{LABELS.index(label) + 1}.{study}"})
    out = tmp_path / "unnamed.profile.json"
    assert main(["calibrate", str(unnamed), "--out", str(out), "--bootstrap", "200"]) == 0
    profile = SiteProfile.load(out)
    assert (profile.grouping, profile.n_groups) == ("patient", 2 * (N_PER_CLASS - 4))
    assert f"{2 * (N_PER_CLASS - 4)} patients for the bootstrap" in capsys.readouterr().out


def test_a_profile_from_reader_verdicts_needs_no_model_run(
    tmp_path: Path, films, engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Verdicts on stored results give the same profile as the same films in labelled folders."""
    site = link_films(tmp_path / "site", films)
    by_folders = tmp_path / "folders.json"
    assert main(["calibrate", str(site), "--out", str(by_folders), "--bootstrap", "100"]) == 0
    capsys.readouterr()

    with Worklist() as worklist:
        for label, verdict in (("NORMAL", "no pneumonia"), ("PNEUMONIA", "pneumonia")):
            for film in films[label]:
                study = load_study(film)
                stored = worklist.add(WorklistRecord.from_prediction(study, engine.predict(study), pixel_sha256(study)))
                worklist.set_verdict(stored.id, verdict)
        # What is left out, and counted: an unsure verdict, a LungLens 1 row, another model's row,
        # and the same radiograph opened under another name (it counts once).
        extra = load_study(write_dicom(tmp_path / "extra.dcm", read_gray(films["NORMAL"][0])))
        base = WorklistRecord.from_prediction(extra, engine.predict(extra), "f" * 64)
        for record, verdict in ((replace(base, study_path="/u.dcm", pixel_sha256="1" * 64), "unsure"),
                                (replace(base, study_path="/v1.dcm", pixel_sha256="2" * 64, logit=None), "pneumonia"),
                                (replace(base, study_path="/o.dcm", model_sha256="0" * 64), "pneumonia"),
                                (replace(base, study_path="/copy.jpeg",
                                         pixel_sha256=worklist.records()[0].pixel_sha256), "no pneumonia")):
            worklist.set_verdict(worklist.add(record).id, verdict)

    def no_inference(*args, **kwargs):
        raise AssertionError("the model was run on films whose logits are stored")

    monkeypatch.setattr(Engine, "predict", no_inference)
    by_verdicts = tmp_path / "verdicts.profile.json"
    assert main(["calibrate", "--from-worklist", "--out", str(by_verdicts), "--bootstrap", "100"]) == 0
    summary = capsys.readouterr().out
    assert ('Left out of the worklist: 1 "unsure", 1 no stored logit (LungLens 1), 1 another model\'s result, '
            '1 the same radiograph under another name.') in summary
    a, b = SiteProfile.load(by_folders), SiteProfile.load(by_verdicts)
    assert b.source.startswith("reader verdicts in the worklist: 48 films (24 NORMAL, 24 PNEUMONIA)")
    assert a.source == "NORMAL/PNEUMONIA folders under site: 48 films (24 NORMAL, 24 PNEUMONIA)"
    assert (a.n_normal, a.n_pneumonia, a.n_groups) == (b.n_normal, b.n_pneumonia, b.n_groups)
    assert a.calibration.method == b.calibration.method
    assert a.calibration.slope == pytest.approx(b.calibration.slope, rel=1e-5)
    for name, op in a.operating_points.items():
        assert b.operating_points[name].threshold == pytest.approx(op.threshold, abs=1e-6)


def test_the_lunglens_command_dispatches_calibrate(tmp_path: Path, films) -> None:
    import subprocess
    import sys

    site = link_films(tmp_path / "site", films, {"NORMAL": 3})
    result = subprocess.run([sys.executable, "-m", "desktop.main", "calibrate", str(site), "--out",
                             str(tmp_path / "p.json")], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2 and "all 3 labelled films are NORMAL" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_models_profile_is_refused_by_classify(tmp_path: Path, films, capsys: pytest.CaptureFixture) -> None:
    """The shipped profile with another model's hash, as if it had been made before an update."""
    shipped = SiteProfile.load(models_dir() / "lunglens-cxr.profile.json")
    stale = replace(shipped, model=ModelInfo("lunglens-cxr", "0.9.0", "9" * 64)).save(tmp_path / "stale.profile.json")
    assert classify_main(["classify", "--json", "--profile", str(stale), str(films["NORMAL"][0])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err
    assert f"{stale}: profile" in captured.err and "made for model lunglens-cxr 0.9.0" in captured.err


def test_a_profile_edited_after_it_was_made_is_refused(tmp_path: Path, films, capsys: pytest.CaptureFixture) -> None:
    """Results record a profile by its hash: a threshold typed into the file by hand would be
    recorded under a hash that names no file, with figures nobody measured at it."""
    data = json.loads((models_dir() / "lunglens-cxr.profile.json").read_text())
    data["operating_points"]["high_sensitivity"]["threshold"] = 0.5
    edited = tmp_path / "edited.profile.json"
    edited.write_text(json.dumps(data))
    assert classify_main(["classify", "--json", "--profile", str(edited), str(films["NORMAL"][0])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err
    assert f"{edited}: not a usable site profile: its contents were changed after" in captured.err
    with pytest.raises(ProfileError, match="contents were changed"):
        import_profile(edited, SiteProfile.load(models_dir() / "lunglens-cxr.profile.json").model)


def test_ece_interval_holds_its_own_estimate_on_a_small_set() -> None:
    """Resampling repeats films, which inflates a binned ECE: the plain percentile interval of
    40 + 40 films missed its own estimate. The bias-corrected one must contain it."""
    from inference import metrics as M

    rng = np.random.default_rng(7)
    y = np.repeat([0, 1], 40)
    prob = np.clip(0.5 + 0.35 * (y - 0.5) * 2 + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    groups = np.arange(len(y)).astype(str)
    ece = M.ece(y, prob)
    plain = M.bootstrap_ci(lambda i: M.ece(y[i], prob[i]), groups, n_boot=300)
    corrected = M.bootstrap_ci(lambda i: M.ece(y[i], prob[i]), groups, n_boot=300, bias_corrected=True)
    assert corrected[0] <= ece <= corrected[1]
    assert corrected[0] < plain[0] and corrected[0] >= 0.0
