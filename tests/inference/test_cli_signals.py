"""``lunglens classify`` stopped by Ctrl+C or SIGTERM mid-batch: a clear exit status, whole
outputs, and every printed result kept in the worklist (the real command, in its own process)."""

from __future__ import annotations

import csv
import json
import os
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


@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_batch_says_so_and_keeps_whole_outputs(tmp_path, long_batch, sig, status, word):
    out_csv = tmp_path / "out.csv"
    with running([sys.executable, "-m", "inference.cli", "classify", str(long_batch), "--json", "--csv", str(out_csv)],
                 cwd=REPO, env=dict(os.environ)) as proc:
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
