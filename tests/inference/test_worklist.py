"""The persistent worklist: round trip, skip-recompute lookup, order, kill -9 safety, the
in-place upgrade of a LungLens 1 list, re-reading under another profile, reader verdicts."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import userdirs
from inference import worklist as worklist_module
from inference.decision import Estimate, OperatingPoint, custom_point
from inference.hashing import pixel_sha256
from inference.prediction import ModelInfo
from inference.profile import ProfileError
from inference.worklist import (
    SCHEMA_VERSION,
    VERDICTS,
    Worklist,
    WorklistError,
    WorklistLocked,
    WorklistRecord,
    utc_now,
    verdict_label,
)

from tests.fixtures.tiny_model import tiny_profile
from tests.inference.workflow_fixtures import MODEL, PROFILE, prediction_for, raster_study


def _record(path: Path, probability: float = 0.8) -> WorklistRecord:
    study = raster_study(path)
    return WorklistRecord.from_prediction(study, prediction_for(study, probability), pixel_sha256(study))


def test_default_location_follows_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(userdirs.ENV_OVERRIDE, str(tmp_path / "data"))
    with Worklist() as wl:
        assert wl.path == tmp_path / "data" / "worklist.sqlite3"
        assert wl.path.exists()
        assert wl.schema_version == SCHEMA_VERSION


def test_round_trip_survives_reopen(tmp_path, kermany_samples):
    path = tmp_path / "wl.sqlite3"
    rec = _record(kermany_samples["PNEUMONIA"][0], 0.91)
    with Worklist(path) as wl:
        stored = wl.add(rec)
        assert stored.id is not None
    with Worklist(path) as wl:
        (back,) = wl.records()
    assert back == stored
    assert back.probability == pytest.approx(0.91)
    assert back.study_metadata.source_format == "JPEG"
    assert back.timings_ms == {"inference": 12.5}


def test_thumbnail_and_attribution_restore_the_list_without_the_files(tmp_path, kermany_samples):
    """What a restored list shows comes from the database alone: numbers, thumbnail, heat-map grid."""
    study = raster_study(kermany_samples["PNEUMONIA"][1])
    pred = prediction_for(study, 0.66, warnings=["colour image"])
    thumb = cv2.resize(study.pixels, (96, 96), interpolation=cv2.INTER_AREA).astype(np.uint8)
    path = tmp_path / "wl.sqlite3"
    with Worklist(path) as wl:
        wl.add(WorklistRecord.from_prediction(study, pred, pixel_sha256(study), thumbnail=thumb))
    with Worklist(path) as wl:
        (rec,) = wl.records()
    assert np.array_equal(rec.thumbnail, thumb)
    back = rec.to_prediction()
    assert (back.probability, back.label, back.threshold) == (pred.probability, pred.label, pred.threshold)
    assert back.model == pred.model and back.warnings == ["colour image"]
    assert back.attribution is not None and back.attribution.full_scale == pred.attribution.full_scale
    np.testing.assert_allclose(back.attribution.grid, pred.attribution.grid, atol=1e-5)
    with pytest.raises(ValueError, match="thumbnail must be a 2-D uint8 image"):
        Worklist(path).add(replace(rec, thumbnail=np.zeros((4, 4), np.float32)))


def test_lookup_hit_avoids_recompute(tmp_path, kermany_samples):
    """The app's skip-recompute path: hash the pixels, ask the worklist, run the model only on a miss."""
    files = kermany_samples["NORMAL"][:3]
    computed: list[Path] = []
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        for _ in range(2):  # the same three studies opened twice
            for f in files:
                study = raster_study(f)
                digest = pixel_sha256(study)
                if wl.lookup(digest, MODEL.sha256) is None:
                    computed.append(f)
                    wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.2), digest))
        assert computed == files
        assert len(wl) == 3
        # another model must not reuse these results
        assert wl.lookup(pixel_sha256(raster_study(files[0])), "0" * 64) is None


def test_same_file_again_replaces_in_place(tmp_path, kermany_samples):
    a, b = kermany_samples["NORMAL"][:2]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        first = wl.add(_record(a, 0.1))
        wl.add(_record(b, 0.2))
        again = wl.add(_record(a, 0.3))
        assert again.id == first.id
        assert [r.study_path for r in wl.records()] == [str(a), str(b)]
        assert wl.records()[0].probability == pytest.approx(0.3)


def test_each_files_newest_row_the_most_probable_first(tmp_path, kermany_samples):
    """What a window lists a long worklist by: one row a file (its newest), the top of the
    list first, in batches by id; rows since ``after_id`` and up to ``up_to_id`` only."""
    a, b, c = kermany_samples["NORMAL"][:3]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        old_a = wl.add(_record(a, 0.9))
        rb = wl.add(_record(b, 0.5))
        new_a = wl.add(replace(_record(a, 0.1), pixel_sha256="1" * 64))  # the file's pixels changed
        rc = wl.add(_record(c, 0.7))
        assert wl.last_id() == rc.id
        assert wl.latest_ids() == [rc.id, rb.id, new_a.id]
        assert wl.latest_ids(after_id=rb.id) == [rc.id, new_a.id]
        assert wl.latest_ids(after_id=old_a.id, up_to_id=new_a.id) == [rb.id, new_a.id]
        wl.remove(rb.id)
        assert [(r.id, r.probability) for r in wl.records_by_id([rc.id, rb.id, old_a.id])] == [
            (rc.id, pytest.approx(0.7)), (old_a.id, pytest.approx(0.9))]  # in the order asked, a deleted row left out
        assert wl.records_by_id([]) == []
        wl.clear()
        assert wl.last_id() == 0 and wl.latest_ids() == []


def test_a_failure_is_kept_until_its_file_is_analysed_or_removed(tmp_path, kermany_samples):
    """A file that could not be analysed stays in the worklist, so that a restarted window
    still lists it; a result for the file (however stored) ends it, in the same commit."""
    from inference.worklist import Failure

    a, b, c, d = kermany_samples["NORMAL"][:4]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        rd = wl.add(_record(d))
        wl.add_failure(Failure(str(d), "d: broken since"))
        wl.set_verdict(rd.id, "unsure")  # a verdict is not a new result
        assert [f.study_path for f in wl.failures()] == [str(d)]
        wl.take_path(d)
        fa = wl.add_failure(Failure(str(a), f"{a.name}: truncated"))
        fb = wl.add_failure(Failure(str(b), f"{b.name}: not an image"))
        assert [(f.study_path, f.reason) for f in wl.failures()] == [(str(a), f"{a.name}: truncated"),
                                                                     (str(b), f"{b.name}: not an image")]
        again = wl.add_failure(Failure(str(a), f"{a.name}: still truncated"))  # failed again: found after its id
        assert again.id > fb.id and [f.id for f in wl.failures(after_id=fb.id)] == [again.id]
        assert fa.id not in {f.id for f in wl.failures()}
        wl.add(_record(a))  # analysed at last
        assert [f.study_path for f in wl.failures()] == [str(b)]
        wl.add_failure(Failure(str(c), "c"))
        wl.add(_record(c))
        wl.add(_record(c))  # the same result again (an update, not an insert) after a new failure
        wl.add_failure(Failure(str(c), "c"))
        wl.add(_record(c))
        assert [f.study_path for f in wl.failures()] == [str(b)]
        assert wl.take_path(b) == [] and wl.failures() == []  # removed from the list
        wl.add_failure(Failure(str(b), "b"))
        wl.clear()
        assert wl.failures() == [] and wl.records() == []


def test_remove_and_clear(tmp_path, kermany_samples):
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        recs = [wl.add(_record(f)) for f in kermany_samples["NORMAL"][:3]]
        assert wl.remove(recs[1].id) is True
        assert wl.remove(recs[1].id) is False
        assert [r.id for r in wl.records()] == [recs[0].id, recs[2].id]
        wl.clear()
        assert wl.records() == []


def test_a_file_taken_out_is_put_back_as_it_was(tmp_path, kermany_samples):
    """What undoing a removal in the window relies on: same rows, same ids, same verdict, same order."""
    a, b, c = kermany_samples["NORMAL"][:3]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        first = wl.add(_record(a, 0.1))
        middle = wl.set_verdict(wl.add(_record(b, 0.2)).id, "pneumonia")
        wl.add(_record(c, 0.3))
        before = wl.records()
        taken = wl.take_path(b)
        assert taken == [middle] and [r.study_path for r in wl.records()] == [str(a), str(c)]
        assert wl.take_path(b) == []
        assert wl.put_back(taken) == 1
        assert wl.records() == before
        # A result stored again meanwhile for the same file and pixels is kept, not doubled.
        wl.take_path(a)
        again = wl.add(_record(a, 0.4))
        assert wl.put_back([first]) == 0
        assert [(r.id, r.probability) for r in wl.records() if r.study_path == str(a)] == [(again.id, 0.4)]


def test_reading_at_another_operating_point_relabels_without_the_model(kermany_samples):
    rec = _record(kermany_samples["PNEUMONIA"][0], 0.4)
    assert rec.label == "PNEUMONIA" and rec.is_positive
    balanced = OperatingPoint("balanced", 0.6, Estimate(0.88, 0.8, 0.93), Estimate(0.9, 0.85, 0.94))
    strict = rec.at(balanced)
    assert (strict.label, strict.threshold, strict.sensitivity, strict.operating_point) == (
        "NORMAL", 0.6, 0.88, "balanced")
    assert strict.probability == rec.probability and strict.operating == balanced
    assert rec.at(custom_point(0.4)).label == "PNEUMONIA"  # at the threshold is above it (inference.decision)


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "wl.sqlite3"
    Worklist(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(WorklistError, match=rf"wl\.sqlite3: worklist schema {SCHEMA_VERSION + 1} is newer"):
        Worklist(path)
    assert path.exists() and not list(tmp_path.glob("*.damaged-*"))


def test_a_file_that_is_not_a_database_is_set_aside_and_a_new_list_started(tmp_path, kermany_samples):
    path = tmp_path / "wl.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with Worklist(path) as wl:
        assert wl.set_aside is not None and wl.set_aside.problem == "not an SQLite database"
        (kept,) = wl.set_aside.files
        assert kept.name.startswith("wl.sqlite3.damaged-") and kept.read_bytes().startswith(b"this is not")
        assert str(kept) in wl.set_aside.message()  # the user is told what was kept where
        assert wl.records() == []
        wl.add(_record(kermany_samples["NORMAL"][0]))
    with Worklist(path) as wl:
        assert wl.set_aside is None and len(wl) == 1


def test_worker_thread_and_reader_share_it(tmp_path, kermany_samples):
    files = kermany_samples["NORMAL"] + kermany_samples["PNEUMONIA"]
    recs = [_record(f) for f in files]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        seen: list[int] = []

        def worker() -> None:
            for r in recs:
                wl.add(r)

        t = threading.Thread(target=worker)
        t.start()
        while t.is_alive():
            seen.append(len(wl.records()))
        t.join()
        assert len(wl) == len(recs)
        assert seen == sorted(seen)  # the GUI thread only ever sees the list grow


_WRITER = textwrap.dedent(
    """
    import sys
    from inference.decision import custom_point
    from inference.worklist import Worklist, WorklistRecord
    wl = Worklist(sys.argv[1])
    i = 0
    while True:
        wl.add(WorklistRecord(
            study_path=f"/studies/{i:06d}.dcm", pixel_sha256=f"{i:064x}", metadata={"modality": "CR"},
            probability=0.5, operating=custom_point(0.35), in_scope=True, scope_reasons=[], warnings=[],
            model_name="m", model_version="1", model_sha256="f" * 64, provider="CPUExecutionProvider",
            logit=0.0,
        ))
        i += 1
        print(i, flush=True)  # after the commit: i results are reported finished
    """
)


@pytest.mark.slow
def test_kill_9_mid_batch_loses_no_finished_result(tmp_path):
    path = tmp_path / "wl.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    reported = 0
    deadline = time.monotonic() + 60
    try:
        while reported < 40 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "writer died before it was killed"
            reported = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Lines still in the pipe were reported too.
    for line in proc.stdout.read().split():
        reported = int(line)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert reported >= 40
    with Worklist(path) as wl:
        rows = wl.records()
    # Every reported result is there; at most the one committed between its commit and
    # its print (the kill can land in that gap) is extra.
    assert reported <= len(rows) <= reported + 1
    assert [r.study_path for r in rows[:reported]] == [f"/studies/{i:06d}.dcm" for i in range(reported)]


# ------------------------------------------------------------------------------ schema 2
_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, study_path TEXT NOT NULL, pixel_sha256 TEXT NOT NULL,
    metadata TEXT NOT NULL, probability REAL NOT NULL, label TEXT NOT NULL, threshold REAL NOT NULL,
    operating_point TEXT NOT NULL, sensitivity REAL, specificity REAL, in_scope INTEGER NOT NULL,
    scope_reasons TEXT NOT NULL, warnings TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL, provider TEXT NOT NULL, analysed_at TEXT NOT NULL, timings_ms TEXT NOT NULL,
    thumbnail BLOB, cam_small BLOB, UNIQUE (study_path, pixel_sha256, model_sha256)
);
CREATE INDEX results_by_hash ON results (pixel_sha256, model_sha256);
"""


def _v1_worklist(path: Path, rows: int = 2) -> None:
    """A worklist as LungLens 1 wrote it (its schema and rows, verbatim)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_SCHEMA)
        for i in range(rows):
            conn.execute(
                "INSERT INTO results (study_path, pixel_sha256, metadata, probability, label, threshold, "
                "operating_point, sensitivity, specificity, in_scope, scope_reasons, warnings, model_name, "
                "model_version, model_sha256, provider, analysed_at, timings_ms) "
                "VALUES (?, ?, '{\"modality\": \"CR\"}', ?, 'PNEUMONIA', 0.816, 'high_sensitivity', 0.967, 0.983, 1, "
                "'[]', '[\"old warning\"]', ?, '1.0.0', ?, 'CPUExecutionProvider', '2026-01-0%dT10:00:00+00:00', '{}')"
                % (i + 1),
                (f"/old/{i}.dcm", f"{i:064x}", 0.9 - i / 10, MODEL.name, MODEL.sha256),
            )
    conn.close()


def test_a_schema_1_list_is_upgraded_in_place_keeping_every_row(tmp_path, kermany_samples):
    path = tmp_path / "wl.sqlite3"
    _v1_worklist(path)
    inode = path.stat().st_ino
    with Worklist(path) as wl:
        assert wl.schema_version == SCHEMA_VERSION == 3
        assert wl.set_aside is None
        old = wl.records()
        assert [r.study_path for r in old] == ["/old/0.dcm", "/old/1.dcm"]
        assert [r.probability for r in old] == pytest.approx([0.9, 0.8])
        first = old[0]
        assert first.logit is None and first.profile is None and first.verdict is None
        assert first.attribution is None and first.to_prediction().attribution is None  # its CAM is not drawn
        assert (first.label, first.threshold, first.operating_point) == ("PNEUMONIA", 0.816, "high_sensitivity")
        assert first.warnings == ["old warning"] and first.analysed_at == "2026-01-01T10:00:00+00:00"
        assert first.to_prediction().label == "PNEUMONIA"
        # No logit: it cannot answer for the model again, and the study is analysed anew.
        assert wl.lookup(f"{0:064x}", MODEL.sha256) is None
        new = wl.add(_record(kermany_samples["NORMAL"][0], 0.2))
        assert new.logit == 1.5 and len(wl) == 3
    assert path.stat().st_ino == inode and not list(tmp_path.glob("*.damaged-*"))  # the same file, in place
    with sqlite3.connect(path) as conn:
        cols = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    conn.close()
    assert {"logit", "operating", "profile", "verdict", "verdict_at"} <= cols
    with Worklist(path) as wl:  # reopening an upgraded list changes nothing
        assert len(wl) == 3 and wl.schema_version == SCHEMA_VERSION


def test_a_locked_list_is_refused_not_moved_aside(tmp_path, monkeypatch):
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "wl.sqlite3"
    _v1_worklist(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(WorklistLocked, match=r"wl\.sqlite3: another program has kept the worklist locked"):
            Worklist(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.damaged-*"))
    with Worklist(path) as wl:
        assert len(wl) == 2


def test_the_result_keeps_its_logit_operating_point_and_profile(tmp_path, kermany_samples):
    study = raster_study(kermany_samples["PNEUMONIA"][0])
    pred = prediction_for(study, 0.7, logit=0.85)
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        wl.add(WorklistRecord.from_prediction(study, pred, pixel_sha256(study)))
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        (rec,) = wl.records()
    assert rec.logit == 0.85 and rec.profile == PROFILE
    assert rec.operating == pred.operating and rec.operating.sensitivity == Estimate(0.95, 0.91, 0.98)
    back = rec.to_prediction()
    assert (back.logit, back.profile, back.operating, back.label) == (0.85, PROFILE, pred.operating, pred.label)


def test_a_stored_result_is_re_read_under_another_profile_without_the_model(tmp_path, kermany_samples):
    study = raster_study(kermany_samples["PNEUMONIA"][0])
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.7, logit=0.85), pixel_sha256(study)))
        stored = wl.lookup(pixel_sha256(study), MODEL.sha256)  # the key: pixels and model, not the profile
    assert stored is not None
    site = tiny_profile(MODEL, temperature=4.0)
    reread = stored.under(site)
    assert reread.probability == pytest.approx(1 / (1 + math.exp(-0.85 / 4.0)))
    assert reread.profile == site.info and reread.operating == site.operating_point()
    assert reread.logit == stored.logit and reread.label == ("PNEUMONIA" if reread.probability >= 0.3 else "NORMAL")
    assert stored.under(site, site.operating_point("balanced")).threshold == 0.5
    with pytest.raises(ProfileError, match="not for the model in use"):
        stored.under(tiny_profile(ModelInfo("other", "9", "e" * 64)))
    with pytest.raises(WorklistError, match="without the model's logit"):
        replace(stored, logit=None).under(site)


def test_reader_verdicts_are_stored_with_their_time(tmp_path, kermany_samples):
    files = kermany_samples["NORMAL"][:3]
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        recs = [wl.add(_record(f)) for f in files]
        before = utc_now()
        marked = wl.set_verdict(recs[0].id, "no pneumonia")
        assert marked is not None and marked.verdict == "no pneumonia"
        assert before <= marked.verdict_at <= utc_now()
        wl.set_verdict(recs[2].id, "unsure")
        assert wl.set_verdict(99999, "pneumonia") is None
        with pytest.raises(ValueError, match="verdict must be one of"):
            wl.set_verdict(recs[1].id, "maybe")
        # Analysing the same study again does not undo what the reader said.
        again = wl.add(_record(files[0], 0.3))
        assert again.id == recs[0].id and again.verdict == "no pneumonia" and again.verdict_at == marked.verdict_at
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        assert [(r.study_path, r.verdict) for r in wl.with_verdicts()] == [
            (str(files[0]), "no pneumonia"), (str(files[2]), "unsure")]
        withdrawn = wl.set_verdict(recs[2].id, None)
        assert withdrawn.verdict is None and withdrawn.verdict_at is None
        assert len(wl.with_verdicts()) == 1
    assert [verdict_label(v) for v in (*VERDICTS, None)] == [1, 0, None, None]
