"""The analysis child process with the real model: results, views, cancel, and surviving a crash."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from desktop.analysis_messages import Cancelled, EngineInfo, EngineReady, Failed, Finished, Viewed, ViewFailed
from desktop.analysis_process import AnalysisProcess

pytestmark = pytest.mark.slow


class Recorder:
    """Keeps every report of the analysis process, thread-safely (it is called on a reader thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports: list = []

    def __call__(self, report) -> None:
        with self.lock:
            self.reports.append(report)

    def kinds(self, kind: type) -> list:
        with self.lock:
            return [r for r in self.reports if isinstance(r, kind)]


def _wait(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _links(tmp_path: Path, sources: list[Path], n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"s{i:03d}{sources[i % len(sources)].suffix}"
        p.symlink_to(sources[i % len(sources)])
        out.append(p)
    return out


def test_results_match_the_engine_and_stay_small(tmp_path, real_dicom, bundled_model):
    from inference.engine import Engine
    from inference.loaders import load_study

    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        proc.submit([(1, real_dicom), (2, tmp_path / "missing.png")])
        _wait(lambda: len(rec.kinds(Finished)) + len(rec.kinds(Failed)) == 2)
    finally:
        assert proc.shutdown()
    (info,) = [r.info for r in rec.kinds(EngineReady)]
    assert isinstance(info, EngineInfo) and info.provider == "CPUExecutionProvider"
    (done,) = rec.kinds(Finished)
    key, pred, outcome = done.key, done.prediction, done.outcome
    expected = Engine.load().predict(load_study(real_dicom))
    assert key == 1 and pred.probability == pytest.approx(expected.probability, abs=1e-5)
    assert pred.embedding is None  # the gate's features stay in the child
    np.testing.assert_allclose(pred.attribution.grid, expected.attribution.grid, atol=1e-5)
    # Without a worklist nothing is stored or looked up; the record still says which model ran.
    assert not outcome.cached and outcome.record.id is None
    assert outcome.record.model_sha256 == expected.model.sha256
    assert outcome.record.probability == pred.probability and outcome.record.study_path == str(real_dicom)
    (fail,) = rec.kinds(Failed)
    fkey, reason = fail.key, fail.reason
    assert fkey == 2 and "missing.png" in reason


def test_cancel_reports_every_unfinished_study(tmp_path, kermany_samples, bundled_model):
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        paths = _links(tmp_path, kermany_samples["NORMAL"], 80)
        proc.submit(list(enumerate(paths)))
        _wait(lambda: len(rec.kinds(Finished)) >= 3)
        proc.cancel()
        _wait(lambda: len(rec.kinds(Finished)) + len(rec.kinds(Cancelled)) == 80)
        assert rec.kinds(Cancelled)
        # Still usable after a cancel.
        proc.submit([(1000, paths[0])])
        _wait(lambda: any(r.key == 1000 for r in rec.kinds(Finished)))
    finally:
        assert proc.shutdown()


def test_a_crashed_child_fails_its_studies_and_is_replaced(tmp_path, kermany_samples, bundled_model):
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        paths = _links(tmp_path, kermany_samples["PNEUMONIA"], 60)
        proc.submit(list(enumerate(paths)))
        _wait(lambda: len(rec.kinds(Finished)) >= 1)
        os.kill(proc._child.proc.pid, signal.SIGKILL)  # a decoder blowing up takes the child down
        _wait(lambda: len(rec.kinds(Finished)) + len(rec.kinds(Failed)) == 60, 30)
        failed = rec.kinds(Failed)
        assert failed and all("stopped unexpectedly" in r.reason for r in failed)
        proc.submit([(500, paths[0])])  # the next batch gets a fresh child
        _wait(lambda: any(r.key == 500 for r in rec.kinds(Finished)))
    finally:
        assert proc.shutdown()


def test_views_are_decoded_by_the_child_newest_first(tmp_path, real_dicom, bundled_model):
    from inference.loaders import load_study

    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        proc.view(1, real_dicom)
        _wait(lambda: rec.kinds(Viewed))
        (viewed,) = rec.kinds(Viewed)
        assert viewed.token == 1 and viewed.study.path == real_dicom
        np.testing.assert_array_equal(viewed.study.pixels, load_study(real_dicom).pixels)

        pdf = tmp_path / "report.dcm"
        pdf.write_bytes(b"%PDF-1.4\n" + b"0" * 4000)
        proc.view(2, pdf)
        _wait(lambda: rec.kinds(ViewFailed))
        (failed,) = rec.kinds(ViewFailed)
        assert failed.token == 2 and "report.dcm" in failed.reason and "PDF" in failed.reason
        assert proc._child.viewing is None  # answered: nothing to fail if the child dies now
    finally:
        assert proc.shutdown()


def test_a_view_the_child_dies_on_fails_and_the_next_gets_a_new_child(real_dicom, bundled_model):
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        pid = proc._child.proc.pid
        os.kill(pid, signal.SIGSTOP)  # it cannot answer: the view is in flight when it dies
        proc.view(5, real_dicom)
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: rec.kinds(ViewFailed), 30)
        (failed,) = rec.kinds(ViewFailed)
        assert failed.token == 5 and "stopped unexpectedly" in failed.reason
        assert not rec.kinds(Viewed)
        proc.view(6, real_dicom)  # a fresh child answers
        _wait(lambda: rec.kinds(Viewed))
        assert [v.token for v in rec.kinds(Viewed)] == [6] and proc._child.proc.pid != pid
    finally:
        assert proc.shutdown()


def _overwrite_keeping_size_and_time(path: Path) -> None:
    """Garbage of the same size and modification time: the decode cache's key of ``path`` stays."""
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_study_after_the_one_viewed_is_decoded_ahead(tmp_path, real_dicom, bundled_model):
    """N shows the next film without waiting for its decode (bench/stepping.py: 631 -> 180 ms
    median on large JPEG 2000 films). Seen here through the cache: a file decoded ahead is
    served as it was then, though it has since been overwritten under the same size and time."""
    shown, nxt, other = (tmp_path / f"{name}.dcm" for name in ("shown", "next", "other"))
    for path in (shown, nxt, other):
        path.write_bytes(real_dicom.read_bytes())
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        proc.view(1, shown, ahead=nxt)
        _wait(lambda: rec.kinds(Viewed))
        time.sleep(2.0)  # the read-ahead thread decodes a small film in milliseconds
        for path in (nxt, other):
            _overwrite_keeping_size_and_time(path)
        proc.view(2, nxt)
        _wait(lambda: len(rec.kinds(Viewed)) + len(rec.kinds(ViewFailed)) == 2)
        proc.view(3, other)
        _wait(lambda: len(rec.kinds(Viewed)) + len(rec.kinds(ViewFailed)) == 3)
        assert [v.token for v in rec.kinds(Viewed)] == [1, 2]  # decoded ahead, before the overwrite
        (failed,) = rec.kinds(ViewFailed)
        assert failed.token == 3 and "other.dcm" in failed.reason  # not read ahead: decoded now
    finally:
        assert proc.shutdown()
