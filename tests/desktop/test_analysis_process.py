"""The analysis child process with the real model: results, cancel, and surviving a crash."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from desktop.analysis_messages import EngineInfo
from desktop.analysis_process import AnalysisProcess

pytestmark = pytest.mark.slow


class Recorder:
    """A ResultSink that keeps every report, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple] = []

    def _add(self, *event) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self, kind: str) -> list[tuple]:
        with self.lock:
            return [e for e in self.events if e[0] == kind]

    def engine_ready(self, info): self._add("engine_ready", info)  # noqa: E704
    def engine_failed(self, reason): self._add("engine_failed", reason)  # noqa: E704
    def started(self, key, stage): self._add("started", key, stage)  # noqa: E704
    def loaded(self, key, thumb, meta, warnings): self._add("loaded", key, thumb, meta, warnings)  # noqa: E704
    def finished(self, key, pred, outcome): self._add("finished", key, pred, outcome)  # noqa: E704
    def failed(self, key, reason): self._add("failed", key, reason)  # noqa: E704
    def cancelled(self, key): self._add("cancelled", key)  # noqa: E704
    def storage_failed(self, reason): self._add("storage_failed", reason)  # noqa: E704


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
        _wait(lambda: len(rec.kinds("finished")) + len(rec.kinds("failed")) == 2)
    finally:
        assert proc.shutdown()
    (info,) = [e[1] for e in rec.kinds("engine_ready")]
    assert isinstance(info, EngineInfo) and info.provider == "CPUExecutionProvider"
    (_, key, pred, outcome), = rec.kinds("finished")
    expected = Engine.load().predict(load_study(real_dicom))
    assert key == 1 and pred.probability == pytest.approx(expected.probability, abs=1e-5)
    assert pred.embedding is None  # the gate's features stay in the child
    np.testing.assert_allclose(pred.attribution.grid, expected.attribution.grid, atol=1e-5)
    # Without a worklist nothing is stored or looked up; the record still says which model ran.
    assert not outcome.cached and outcome.record.id is None
    assert outcome.record.model_sha256 == expected.model.sha256
    assert outcome.record.probability == pred.probability and outcome.record.study_path == str(real_dicom)
    (_, fkey, reason), = rec.kinds("failed")
    assert fkey == 2 and "missing.png" in reason


def test_cancel_reports_every_unfinished_study(tmp_path, kermany_samples, bundled_model):
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        paths = _links(tmp_path, kermany_samples["NORMAL"], 80)
        proc.submit(list(enumerate(paths)))
        _wait(lambda: len(rec.kinds("finished")) >= 3)
        proc.cancel()
        _wait(lambda: len(rec.kinds("finished")) + len(rec.kinds("cancelled")) == 80)
        assert rec.kinds("cancelled")
        # Still usable after a cancel.
        proc.submit([(1000, paths[0])])
        _wait(lambda: any(e[1] == 1000 for e in rec.kinds("finished")))
    finally:
        assert proc.shutdown()


def test_a_crashed_child_fails_its_studies_and_is_replaced(tmp_path, kermany_samples, bundled_model):
    rec = Recorder()
    proc = AnalysisProcess(rec)
    try:
        paths = _links(tmp_path, kermany_samples["PNEUMONIA"], 60)
        proc.submit(list(enumerate(paths)))
        _wait(lambda: len(rec.kinds("finished")) >= 1)
        os.kill(proc._child.proc.pid, signal.SIGKILL)  # a decoder blowing up takes the child down
        _wait(lambda: len(rec.kinds("finished")) + len(rec.kinds("failed")) == 60, 30)
        failed = rec.kinds("failed")
        assert failed and all("stopped unexpectedly" in e[2] for e in failed)
        proc.submit([(500, paths[0])])  # the next batch gets a fresh child
        _wait(lambda: any(e[1] == 500 for e in rec.kinds("finished")))
    finally:
        assert proc.shutdown()
