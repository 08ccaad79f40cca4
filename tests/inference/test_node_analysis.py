"""The DICOM node's analysis (inference/node_analysis.py) when things go wrong around a film: a
full disk, a worklist another program locks, a hot-folder file still being copied. (The node
end to end, with DCMTK and Orthanc peers: test_dicom_node.py and test_outbox.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import node_analysis
from inference.engine import Engine
from inference.hot_folder import ANALYSED, UNREADABLE, HotFolder, SeenFiles
from inference.node_analysis import Analyser, Job
from inference.outbox import Destination, Outbox
from inference.result_store import ResultStore
from inference.worklist import Worklist
from tests.conftest import REPO
from tests.inference.test_worklist_safety import write_lock_held

SAMPLE = REPO / "resources" / "samples" / "sample-pneumonia.dcm"  # flagged: an SR and a capture


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(provider="cpu", threads=1)


def analyser(engine: Engine, tmp_path: Path) -> Analyser:
    results = ResultStore(tmp_path / "worklist.sqlite3", tmp_path / "audit.jsonl", report=lambda _: None,
                          open_timeout=0.5)
    outbox = Outbox(tmp_path / "outbox", Destination("PACS", "127.0.0.1", 1))
    return Analyser(engine, results, outbox)


def test_outputs_a_full_disk_could_not_keep_are_queued_once_there_is_room(engine, tmp_path, monkeypatch):
    """A full disk had lost a flagged film's results for good, its pending marker deleted. (The
    full disk is Outbox.put raising ENOSPC: a real one needs a mount this test cannot make.)"""
    node = analyser(engine, tmp_path)
    film = tmp_path / "received" / "film.dcm"
    film.parent.mkdir()
    film.write_bytes(SAMPLE.read_bytes())
    marker = film.with_suffix(".pending")
    marker.touch()
    real_put = Outbox.put
    full = {"disk": True}
    tries: list[str] = []

    def put(self, ds, what, pixel_sha256=""):
        tries.append(what)
        if full["disk"]:
            raise OSError(28, "No space left on device")
        return real_put(self, ds, what, pixel_sha256)
    monkeypatch.setattr(Outbox, "put", put)

    result = node.analyse(Job(film, "dicom", pending_marker=marker))
    assert result.ok and result.queued == [] and marker.exists()  # kept for the next start, too
    assert tries == ["sr"]
    node._while_idle()  # not yet time: nothing tried
    assert tries == ["sr"] and len(node.outbox) == 0
    full["disk"] = False
    monkeypatch.setattr(node_analysis, "RETRY_OUTPUTS_S", 0.0)
    node._retry_at = 0.0
    node._while_idle()
    assert sorted(item.what for item in node.outbox.items()) == ["sc", "sr"] and not marker.exists()


def test_a_hot_folder_film_whose_outputs_wait_for_room_is_done_only_once_they_are_queued(engine, tmp_path,
                                                                                         monkeypatch):
    """The hot folder had remembered (and moved out) a film whose SR and capture a full disk kept
    out of the outbox, so a node stopped before there was room never sent them. Now it is done
    once they are queued, and a node stopped first analyses it again at its next start."""
    node = analyser(engine, tmp_path)
    hot, moved = tmp_path / "hot", tmp_path / "moved"
    hot.mkdir()
    film = hot / "film.dcm"
    film.write_bytes(SAMPLE.read_bytes())
    real_put = Outbox.put
    full = {"disk": True}

    def put(self, ds, what, pixel_sha256=""):
        if full["disk"]:
            raise OSError(28, "No space left on device")
        return real_put(self, ds, what, pixel_sha256)
    monkeypatch.setattr(Outbox, "put", put)

    def folder() -> HotFolder:  # as a node start makes it, on the same remembered files
        return HotFolder(hot, lambda path, done: jobs.append(
            Job(path, "hot-folder", done=lambda result: done(ANALYSED if result.ok else UNREADABLE))),
            seen=SeenFiles(tmp_path / "seen.jsonl"), settle=0.0, move_to=moved)

    jobs: list[Job] = []
    watcher = folder()
    watcher.scan(now=0.0)
    watcher.scan(now=1.0)
    assert len(jobs) == 1
    result = node.run(jobs[0])
    assert film.exists() and len(watcher.seen) == 0  # not remembered, not moved out
    assert result.ok and result.waiting
    jobs.clear()
    restarted = folder()  # a node stopped now: its next start takes the film again
    restarted.scan(now=0.0)
    restarted.scan(now=1.0)
    assert [job.path for job in jobs] == [film]
    full["disk"] = False
    monkeypatch.setattr(node_analysis, "RETRY_OUTPUTS_S", 0.0)
    node._retry_at = 0.0
    node._while_idle()
    assert sorted(item.what for item in node.outbox.items()) == ["sc", "sr"]
    assert not film.exists() and (moved / "film.dcm").exists() and len(watcher.seen) == 1


def test_a_result_held_while_the_worklist_was_locked_is_saved_while_the_node_is_idle(engine, tmp_path,
                                                                                    monkeypatch):
    """They had waited for the next film to arrive, and a node killed meanwhile lost them."""
    from inference import result_store

    monkeypatch.setattr(result_store, "RETRY_LOCKED_S", 0.0)
    node = analyser(engine, tmp_path)
    film = tmp_path / "film.dcm"
    film.write_bytes(SAMPLE.read_bytes())
    with write_lock_held(tmp_path / "worklist.sqlite3"):
        assert node.analyse(Job(film, "dicom")).ok
        assert node.results.held
    node._while_idle()
    assert not node.results.held
    with Worklist(tmp_path / "worklist.sqlite3", read_only=True) as wl:
        assert [r.study_path for r in wl.records()] == [str(film)]


def test_a_hot_folder_file_cut_short_gets_no_not_analysed_report(engine, tmp_path):
    """It may still be being copied: a "Not analysed" SR sent at once stayed in the PACS beside
    the film's result. A film received over DICOM arrives whole, so its failure is reported."""
    node = analyser(engine, tmp_path)
    cut = tmp_path / "hot" / "film.dcm"
    cut.parent.mkdir()
    cut.write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 2])
    result = node.analyse(Job(cut, "hot-folder"))
    assert "truncated" in result.error and result.queued == [] and len(node.outbox) == 0
    result = node.analyse(Job(cut, "dicom"))
    assert result.queued == ["sr"] and len(node.outbox) == 1
