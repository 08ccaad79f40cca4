"""``lunglens classify`` and ``lunglens calibrate`` stopped by Ctrl+C or SIGTERM mid-run: a clear
exit status, whole outputs or none, and every printed result kept in the worklist; and commands
whose reader closes the pipe, which go on (the real commands, each in its own process)."""

from __future__ import annotations

import csv
import json
import os
import pty
import signal
import sys

import numpy as np
import pytest
from PIL import Image

from inference.commands import Terminated, terminate_as_interrupt
from inference.userdirs import worklist_path
from inference.worklist import Worklist

from tests.conftest import REPO, SITE_SAMPLE
from tests.fixtures.processes import running

pytestmark = pytest.mark.slow

# Each signal, the status a shell gives it, and the word the command stops with.
STOPS = pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                         (signal.SIGTERM, 143, "terminated")], ids=["SIGINT", "SIGTERM"])


def _sigint_as_at_a_terminal() -> None:
    """In the child before it starts: a shell starts a background job (such as a test run
    with ``&``) with SIGINT ignored, and the command would inherit that; at a terminal,
    Ctrl+C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def long_batch(tmp_path_factory: pytest.TempPathFactory) -> list:
    """300 distinct films (site-sample films with a little seeded noise, so none is answered
    from the worklist as a copy of another): a batch that is still running after a few results."""
    out = tmp_path_factory.mktemp("batch")
    films = sorted(SITE_SAMPLE.glob("*/*.jpeg"))
    rng = np.random.default_rng(0)
    for k in range(300):
        pixels = np.asarray(Image.open(films[k % len(films)]).convert("L"), dtype=np.int16)
        noisy = np.clip(pixels + rng.integers(-2, 3, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(out / f"film{k:03d}.png")
    return out


@STOPS
def test_a_stopped_batch_says_so_and_keeps_whole_outputs(tmp_path, long_batch, sig, status, word):
    out_csv = tmp_path / "out.csv"
    with running([sys.executable, "-m", "inference.cli", "classify", str(long_batch), "--json", "--csv", str(out_csv)],
                 cwd=REPO, env=dict(os.environ), preexec_fn=_sigint_as_at_a_terminal) as proc:
        printed = [json.loads(proc.stdout.readline()) for _ in range(3)]  # the batch is under way
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=120)
    printed += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == status, err
    assert f"lunglens classify: {word}" in err and "Traceback" not in err
    assert len(printed) < 300  # stopped, not finished
    # The CSV ends with whole rows, each of a result printed before the stop (printed first, then written).
    with out_csv.open(encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert rows and all(len(r) == len(header) for r in rows)
    path_col = header.index("path")
    assert {r[path_col] for r in rows} <= {p["path"] for p in printed}
    # Every printed result was committed to the worklist before it was printed.
    stored = {r.study_path for r in Worklist(worklist_path()).records()}
    assert {p["path"] for p in printed} <= stored


def test_sigterm_raises_only_inside_the_block_and_the_old_handler_comes_back():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("old"))
    try:
        with pytest.raises(Terminated), terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next bytecode
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == ["old"]
    finally:
        signal.signal(signal.SIGTERM, previous)


@STOPS
def test_a_stopped_calibration_says_so_and_writes_nothing(tmp_path, sig, status, word):
    """Signalled while it measures the site sample (its progress, shown on a terminal, says when)."""
    out = tmp_path / "site.profile.json"
    leader, follower = pty.openpty()  # a terminal for stderr, so the command reports its progress
    with running([sys.executable, "-m", "inference.calibrate_cli", "calibrate", str(SITE_SAMPLE), "--out", str(out)],
                 cwd=REPO, env=dict(os.environ), stderr=follower, preexec_fn=_sigint_as_at_a_terminal) as proc:
        os.close(follower)
        seen = b""
        while b"analysed 3/" not in seen:
            seen += os.read(leader, 1024)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        while (chunk := _read_rest(leader)):
            seen += chunk
    os.close(leader)
    err = seen.decode()
    assert proc.returncode == status, err
    assert f"lunglens calibrate: {word}; no profile written" in err and "Traceback" not in err
    assert "analysed 292/292" not in err  # stopped, not finished
    assert list(tmp_path.iterdir()) == []


def _read_rest(fd: int) -> bytes:
    """What is left on a terminal whose writer has exited (Linux reports EIO at its end)."""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


@pytest.mark.parametrize("command", ["classify", "report"])
def test_a_reader_that_stops_reading_does_not_stop_the_command(command: str, tmp_path) -> None:
    """``lunglens classify … | head -1``: the pipe closes before the command has printed; it
    still does all its work -- every CSV row, the SR after the PDF -- and exits 0 without a
    BrokenPipeError traceback (before, it died half-way with one and exit 1)."""
    import subprocess

    samples = REPO / "resources" / "samples"
    out = tmp_path / "out"
    args = {"classify": ["classify", "--no-worklist", "--csv", str(out / "results.csv"),
                         str(samples / "sample-pneumonia.png"), str(samples / "sample-normal.png")],
            "report": ["report", str(samples / "sample-pneumonia.dcm"), "--pdf", str(out / "r.pdf"),
                       "--sr", str(out / "r-sr.dcm")]}[command]
    out.mkdir()
    env = {**os.environ, "LUNGLENS_DATA_DIR": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "desktop.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader has gone before the first line
    err = proc.stderr.read()
    assert proc.wait(120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    if command == "classify":
        with open(out / "results.csv", newline="", encoding="utf-8-sig") as f:
            assert len(list(csv.DictReader(f))) == 2
    else:
        assert (out / "r.pdf").stat().st_size > 0 and (out / "r-sr.dcm").stat().st_size > 0
