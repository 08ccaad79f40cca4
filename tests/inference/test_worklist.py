"""The persistent worklist: round trip, skip-recompute lookup, order, and kill -9 safety."""

from __future__ import annotations

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
from inference.hashing import pixel_sha256
from inference.worklist import SCHEMA_VERSION, Worklist, WorklistError, WorklistRecord

from tests.inference.workflow_fixtures import MODEL, prediction_for, raster_study


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


def test_thumbnail_and_reduced_cam_restore_the_list_without_the_files(tmp_path, kermany_samples):
    """What a restored list shows comes from the database alone: numbers, thumbnail, CAM."""
    study = raster_study(kermany_samples["PNEUMONIA"][1])
    pred = prediction_for(study, 0.66, warnings=["colour image"])
    thumb = cv2.resize(study.pixels, (96, 96), interpolation=cv2.INTER_AREA).astype(np.uint8)
    cam_small = np.clip(cv2.resize(pred.cam, (128, 128)) * 255, 0, 255).astype(np.uint8)
    path = tmp_path / "wl.sqlite3"
    with Worklist(path) as wl:
        wl.add(WorklistRecord.from_prediction(study, pred, pixel_sha256(study), thumbnail=thumb, cam_small=cam_small))
    with Worklist(path) as wl:
        (rec,) = wl.records()
    assert np.array_equal(rec.thumbnail, thumb) and np.array_equal(rec.cam_small, cam_small)
    back = rec.to_prediction()
    assert (back.probability, back.label, back.threshold) == (pred.probability, pred.label, pred.threshold)
    assert back.model == pred.model and back.warnings == ["colour image"] and back.cam.size == 0
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


def test_remove_and_clear(tmp_path, kermany_samples):
    with Worklist(tmp_path / "wl.sqlite3") as wl:
        recs = [wl.add(_record(f)) for f in kermany_samples["NORMAL"][:3]]
        assert wl.remove(recs[1].id) is True
        assert wl.remove(recs[1].id) is False
        assert [r.id for r in wl.records()] == [recs[0].id, recs[2].id]
        wl.clear()
        assert wl.records() == []


def test_with_threshold_relabels_without_the_model(kermany_samples):
    rec = _record(kermany_samples["PNEUMONIA"][0], 0.4)
    assert rec.label == "PNEUMONIA"
    strict = rec.with_threshold(0.6, "balanced", 0.88, 0.9)
    assert (strict.label, strict.threshold, strict.sensitivity) == ("NORMAL", 0.6, 0.88)
    assert strict.probability == rec.probability


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "wl.sqlite3"
    Worklist(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(WorklistError, match=r"wl\.sqlite3: worklist schema 2 is newer"):
        Worklist(path)
    assert path.exists() and not list(tmp_path.glob("*.damaged-*"))


def test_damaged_database_is_moved_aside_and_a_new_list_started(tmp_path, kermany_samples):
    path = tmp_path / "wl.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with Worklist(path) as wl:
        assert wl.damaged_copy is not None and wl.damaged_copy.name.startswith("wl.sqlite3.damaged-")
        assert wl.damaged_copy.read_bytes().startswith(b"this is not")
        assert wl.records() == []
        wl.add(_record(kermany_samples["NORMAL"][0]))
    with Worklist(path) as wl:
        assert wl.damaged_copy is None and len(wl) == 1


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
    from inference.worklist import Worklist, WorklistRecord
    wl = Worklist(sys.argv[1])
    i = 0
    while True:
        wl.add(WorklistRecord(
            study_path=f"/studies/{i:06d}.dcm", pixel_sha256=f"{i:064x}", metadata={"modality": "CR"},
            probability=0.5, label="PNEUMONIA", threshold=0.35, operating_point="high_sensitivity",
            sensitivity=0.95, specificity=0.8, in_scope=True, scope_reasons=[], warnings=[],
            model_name="m", model_version="1", model_sha256="f" * 64, provider="CPUExecutionProvider",
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
