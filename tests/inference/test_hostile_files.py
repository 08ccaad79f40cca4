"""Issue 18: every hostile file ends in bounded time and memory, and garbage is never classified.

A seeded fuzz of the families in tests/fixtures/hostile.py through ``load_study``, then the
real command on one file of each family (its stderr, its JSON lines, its peak memory), then
the decode budget's own mechanics: deadline, memory ceiling, crash, captured chatter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.errors import (
    DecodeBudgetError,
    PixelDataMismatchError,
    PixelDecodeError,
    StudyLoadError,
    UnsupportedStudyError,
)
from inference.loaders import budget, load_study, pixels
from inference.loaders.codestream import MAX_JPEG_SCANS
from inference.study import Study
from tests.conftest import REPO
from tests.fixtures.dicom_factory import write_dicom
from tests.fixtures.hostile import FAMILIES, HEAVY, first_frame, make_case, rewrite, smooth_image

# pydicom comments on every damaged value it reads; the loader's errors say what matters.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SEED = 18
LIGHT_CASES = 30  # per light family: 270 cases
HEAVY_CASES = 3  # per bomb family: 12 cases, seconds each
SECONDS = 25.0  # per file through load_study: the 30 s for a JSON line, less start-up
PEAK_RSS_MB = 1536
# What a Python traceback, a Rust panic or a C++ abort looks like on stderr.
NOISE = ("Traceback", "panicked", "RUST_BACKTRACE", "terminate called", "Aborted")


def _cases(family: str) -> list[tuple[str, int]]:
    return [(family, i) for i in range(HEAVY_CASES if family in HEAVY else LIGHT_CASES)]


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_hostile_file_ends_cleanly_and_in_time(tmp_path, capfd, family):
    outcomes: Counter[str] = Counter()
    failures = []
    for _, index in _cases(family):
        case = make_case(family, tmp_path / f"{index:03d}", np.random.default_rng([SEED, index]))
        start = time.perf_counter()
        try:
            study = load_study(case.path)
        except StudyLoadError as err:
            outcomes[type(err).__name__] += 1
            if not str(err).startswith(f"{case.path.name}: "):
                failures.append(f"{index}: message does not name the file: {err}")
        except Exception as err:  # noqa: BLE001 -- exactly what the test hunts for
            failures.append(f"{index}: {type(err).__name__}: {err}")
        else:
            outcomes["Study"] += 1
            if case.contradicts:
                failures.append(f"{index}: classified although its pixel data contradicts its header")
            if study.pixels.ndim != 2 or study.pixels.dtype != np.float32:
                failures.append(f"{index}: bad pixels {study.pixels.dtype} {study.pixels.shape}")
        elapsed = time.perf_counter() - start
        if elapsed > SECONDS:
            failures.append(f"{index}: took {elapsed:.1f} s")
    out, err = capfd.readouterr()
    assert not failures, "\n".join(failures)
    assert not out and not any(n in err for n in NOISE), err[-2000:]
    print(f"{family}: {dict(outcomes)}")


@pytest.mark.slow
def test_the_command_answers_every_family_quietly_within_budget(tmp_path):
    for i, family in enumerate(sorted(FAMILIES)):
        case = make_case(family, tmp_path / family, np.random.default_rng([SEED, 1000 + i]))
        line, stderr, seconds, peak_mb = _classify(case.path, tmp_path / "out.txt", tmp_path / "err.txt")
        assert not any(n in stderr for n in NOISE), (family, stderr[-2000:])
        assert not (line["ok"] and case.contradicts), (family, line)
        assert line["ok"] or line["error"].startswith(f"{case.path.name}: "), (family, line)
        assert seconds < 30.0 and peak_mb < PEAK_RSS_MB, (family, seconds, peak_mb)


# Runs the command and writes its peak RSS (KiB) to argv[2]. A process forked from this pytest
# process starts with pytest's resident pages (hundreds of MB late in a full run), and the peak
# survives exec: measured from a small launcher, the figure is the command's own.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-m", "inference.cli", "classify", "--json", sys.argv[1]])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[2], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _classify(path: Path, out: Path, err: Path) -> tuple[dict, str, float, float]:
    """``lunglens classify --json PATH`` in its own process: its one JSON line, its stderr,
    its wall time and its peak RSS (its decode workers included: it reaps them at exit)."""
    rss = out.with_suffix(".rss")
    start = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(path), str(rss)], stdout=stdout,
                                stderr=stderr, stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{path.name}: no answer within 120 s")
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    assert len(lines) == 1, (path.name, proc.returncode, out.read_text(), err.read_text())
    return lines[0], err.read_text(errors="replace"), time.perf_counter() - start, int(rss.read_text()) / 1024


# -- the header checks, one by one -------------------------------------------------------------
def _jpeg_dicom(tmp_path: Path, syntax: str = "jpeg-baseline") -> Path:
    bits = 8 if syntax == "jpeg-baseline" else 12
    return write_dicom(tmp_path / f"{syntax}.dcm", smooth_image(np.random.default_rng(0), bits=bits), syntax,
                       bits_stored=bits)


def test_oversized_sof_is_refused_naming_both_sizes(tmp_path):
    case = make_case("jpeg-baseline-sof", tmp_path, np.random.default_rng(0))
    with pytest.raises(PixelDataMismatchError, match=r"the JPEG stream says \d+ × \d+ but the header says 64 × 64"):
        load_study(case.path)


def test_progressive_jpeg_with_thousands_of_scans_is_refused(tmp_path):
    case = make_case("progressive-scans", tmp_path, np.random.default_rng(1))
    start = time.perf_counter()
    with pytest.raises(PixelDataMismatchError, match=r"scans \(encoders write at most a few dozen\)"):
        load_study(case.path)
    assert time.perf_counter() - start < 1.0


def test_a_normal_progressive_jpeg_still_loads(tmp_path):
    from PIL import Image

    path = tmp_path / "progressive.jpg"
    Image.fromarray(smooth_image(np.random.default_rng(2), (300, 240))).save(path, progressive=True)
    assert load_study(path).shape == (300, 240)
    assert MAX_JPEG_SCANS >= 20


def test_rle_segment_padded_by_a_byte_still_loads(tmp_path):
    path = write_dicom(tmp_path / "rle.dcm", smooth_image(np.random.default_rng(3), bits=8), "rle")
    frame = first_frame(path)
    rewrite(path, frame + b"\x00\x00")  # a literal run of one byte appended to the last segment
    assert load_study(path).shape == (64, 64)


def test_deflated_padding_is_never_inflated(tmp_path):
    case = make_case("deflate-padding", tmp_path, np.random.default_rng(0))
    start = time.perf_counter()
    with pytest.raises(UnsupportedStudyError, match="MB of other data before its image"):
        load_study(case.path)
    assert time.perf_counter() - start < 2.0


def test_deflated_file_with_trailing_padding_loads_without_inflating_it(tmp_path):
    from tests.fixtures.hostile import _deflated_file, _element, _explicit_le, _image_header

    img = smooth_image(np.random.default_rng(4), bits=8)
    pixels_element = _element(0x7FE0, 0x0010, b"OB", img.size) + img.tobytes()
    trailing = _element(0xFFFC, 0xFFFC, b"OB", 1 << 30)
    path = tmp_path / "trailing.dcm"
    path.write_bytes(_deflated_file(_explicit_le(_image_header(64, 64, bits=8)) + pixels_element + trailing,
                                    zeros=1 << 30))
    start = time.perf_counter()
    study = load_study(path)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(study.pixels, img.astype(np.float32))


def test_huge_image_is_shown_reduced_with_a_warning(tmp_path, monkeypatch):
    budget._stop_workers()  # workers forked from now on see the patched limit
    monkeypatch.setattr(pixels, "WORK_PIXELS", 64 * 64)
    img = smooth_image(np.random.default_rng(5), (256, 200), bits=12)
    for syntax in ("explicit", "j2k-lossless"):
        study = load_study(write_dicom(tmp_path / f"{syntax}.dcm", img, syntax, bits_stored=12))
        assert study.shape == (64, 50) and (study.metadata.rows, study.metadata.columns) == (256, 200)
        assert "Very large image (200x256 px): analysed at 50x64 px." in study.warnings
        expected = img[:256, :200].reshape(64, 4, 50, 4).mean(axis=(1, 3))
        assert np.abs(study.pixels - expected).max() <= 0.5
    budget._stop_workers()


# -- the decode budget itself ------------------------------------------------------------------
def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _allocate(nbytes: int) -> int:
    return len(bytearray(nbytes))


def _abort() -> None:
    os.abort()


def _chatter() -> str:
    os.write(2, b"thread '<unnamed>' panicked at src/lib.rs:1:1\n")
    print("decoder says hello")
    return "done"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the budget's worker needs fork")
def test_budget_deadline_kills_a_hung_decode(monkeypatch):
    monkeypatch.setattr(budget, "DECODE_SECONDS", 0.5)
    start = time.perf_counter()
    with pytest.raises(DecodeBudgetError, match=r"took longer than 0 s|took longer than 1 s"):
        budget.run(Path("hung.dcm"), _sleep, 30)
    assert time.perf_counter() - start < 5.0
    assert budget.run(Path("next.dcm"), _allocate, 10) == 10  # a fresh worker takes the next file


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RLIMIT_AS is measured from /proc")
def test_budget_memory_ceiling_refuses_a_greedy_decode():
    with pytest.raises(DecodeBudgetError, match="one image may use"):
        budget.run(Path("greedy.png"), _allocate, budget.DECODE_MEMORY + (256 << 20))
    assert budget.run(Path("modest.png"), _allocate, 64 << 20) == 64 << 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the budget's worker needs fork")
def test_budget_survives_a_crashing_decoder():
    with pytest.raises(PixelDecodeError, match="the decoder crashed on this file"):
        budget.run(Path("crash.dcm"), _abort)
    assert budget.run(Path("next.dcm"), _allocate, 1) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the budget's worker needs fork")
def test_budget_keeps_decoder_output_off_the_terminal(capfd):
    assert budget.run(Path("noisy.dcm"), _chatter) == "done"
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_pydicom_decoder_tracebacks_stay_off_the_terminal(tmp_path, capfd):
    import logging

    logging.getLogger("pydicom.pixels.decoders.base").exception(RuntimeError("a plugin failed"))
    path = _jpeg_dicom(tmp_path)
    ds = pydicom.dcmread(path)
    rewrite(path, first_frame(path)[:200] + b"\xff\xd9", Rows=ds.Rows)
    with pytest.raises(StudyLoadError):
        load_study(path)
    _, err = capfd.readouterr()
    assert "Traceback" not in err and "a plugin failed" not in err


def test_study_results_are_the_same_through_the_worker(tmp_path, monkeypatch):
    path = _jpeg_dicom(tmp_path, "jpeg-lossless")
    through_worker = load_study(path)
    monkeypatch.setattr(budget, "_CAN_FORK", False)
    in_process = load_study(path)
    np.testing.assert_array_equal(through_worker.pixels, in_process.pixels)
    assert isinstance(in_process, Study) and through_worker.warnings == in_process.warnings
