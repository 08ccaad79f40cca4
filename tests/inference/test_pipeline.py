"""The shared batch pipeline (CLI and app): order, bounded look-ahead, cancel -- real model, real films."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from inference.engine import Engine
from inference.loaders import load_study
from inference.pipeline import Analysed, BatchPipeline
from inference.study import Study


class Recorder:
    """A PipelineSink that remembers what it was told, and the most studies it held decoded and unsettled."""

    def __init__(self, expected: int) -> None:
        self.lock = threading.Lock()
        self.settled: list[tuple[int, str, object]] = []  # (key, how, detail)
        self.holding: set[int] = set()  # loaded, not yet settled
        self.most_held = 0
        self.expected = expected
        self.done = threading.Event()

    def _settle(self, key: int, how: str, detail: object = None) -> None:
        with self.lock:
            self.settled.append((key, how, detail))
            self.holding.discard(key)
            if len(self.settled) == self.expected:
                self.done.set()

    def engine_ready(self, engine) -> None: ...
    def engine_failed(self, reason: str) -> None: ...
    def started(self, key: int, stage: str) -> None: ...

    def loaded(self, key: int, study: Study) -> None:
        with self.lock:
            self.holding.add(key)
            self.most_held = max(self.most_held, len(self.holding))

    def analysed(self, result: Analysed) -> None:
        self._settle(result.key, "analysed", result)

    def failed(self, key: int, reason: str, unreadable: Path | None = None) -> None:
        self._settle(key, "failed", (reason, unreadable))

    def cancelled(self, key: int) -> None:
        self._settle(key, "cancelled")


def slow_even(path: Path) -> Study:
    """Decode, taking longer for every other film, so two loaders finish out of order."""
    if int(path.stem.split("-")[0]) % 2 == 0:
        time.sleep(0.15)
    return load_study(path)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load()


def numbered(tmp_path: Path, films: list[Path]) -> list[Path]:
    out = []
    for i, film in enumerate(films):
        link = tmp_path / f"{i}-{film.name}"
        link.symlink_to(film)
        out.append(link)
    return out


def test_every_study_is_settled_once_in_submission_order_with_bounded_lookahead(tmp_path, engine, kermany_samples):
    films = numbered(tmp_path, kermany_samples["NORMAL"][:4] + kermany_samples["PNEUMONIA"][:4])
    missing = tmp_path / "8-missing.png"
    garbage = tmp_path / "9-garbage.dcm"
    garbage.write_bytes(b"%PDF-1.4 not a DICOM at all")
    paths = [*films, missing, garbage]
    sink = Recorder(len(paths))
    pipe = BatchPipeline(lambda: engine, sink, slow_even, loader_threads=2, lookahead=3)
    try:
        pipe.submit(enumerate(paths))
        assert sink.done.wait(60)
    finally:
        assert pipe.shutdown(10)
    assert [key for key, _, _ in sink.settled] == list(range(len(paths)))  # in order, each once
    assert [how for _, how, _ in sink.settled] == ["analysed"] * 8 + ["failed", "failed"]
    assert "8-missing.png" in sink.settled[8][2][0] and "9-garbage.dcm" in sink.settled[9][2][0]
    assert [sink.settled[i][2][1] for i in (8, 9)] == [missing, garbage]  # the file's failure: kept as such
    first = sink.settled[0][2]
    assert first.study.path == films[0] and 0 < first.prediction.probability < 1 and first.read_ms > 0
    assert sink.most_held <= 3  # never more decoded studies held than the look-ahead


def test_cancel_settles_the_rest_as_cancelled_and_the_pipeline_goes_on(tmp_path, engine, kermany_samples):
    films = numbered(tmp_path, kermany_samples["NORMAL"][:6])
    sink = Recorder(len(films))
    pipe = BatchPipeline(lambda: engine, sink, slow_even, loader_threads=1, lookahead=2)
    try:
        pipe.submit(enumerate(films))
        deadline = time.monotonic() + 30
        while not sink.settled and time.monotonic() < deadline:
            time.sleep(0.01)
        pipe.cancel()
        assert sink.done.wait(30)
        hows = [how for _, how, _ in sink.settled]
        assert hows[0] == "analysed" and "cancelled" in hows and len(hows) == 6
        assert [key for key, _, _ in sink.settled] == list(range(6))
        # Still usable after a cancel: a new submission is analysed.
        sink.done.clear()
        sink.expected = 7
        pipe.submit([(6, films[1])])
        assert sink.done.wait(30)
        assert sink.settled[-1][:2] == (6, "analysed")
    finally:
        assert pipe.shutdown(10)
