"""The analysis process killed mid-batch while new work arrives: the dead child's studies
are failed, the new child's are not, and the batch ends once.

The race this guards: the child dies, new studies are submitted -- starting a new child --
before the dead child's reader has noticed; that reader must fail only its own child's
studies, not the ones just sent to the new child (which would flip from failed to done
when their results arrived, and end the batch early).
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict

import pytest

from tests.desktop.gui_helpers import wait_idle

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_a_child_killed_mid_batch_fails_only_its_own_studies(window, qtbot, study_copies, monkeypatch):
    c = window.controller
    first, second = study_copies(40, "first"), study_copies(6, "second")
    reports: dict[int, list[str]] = defaultdict(list)
    for name, kind in (("set_result", "done"), ("set_failed", "failed"), ("set_cancelled", "cancelled")):
        original = getattr(c.model, name)

        def record(key, *args, _original=original, _kind=kind, **kwargs):
            reports[key].append(_kind)
            return _original(key, *args, **kwargs)

        monkeypatch.setattr(c.model, name, record)
    batches_finished: list[float] = []
    c.batch_finished.connect(lambda: batches_finished.append(time.monotonic()))

    window.open_paths([first])
    qtbot.waitUntil(lambda: sum(r == ["done"] for r in reports.values()) >= 3, timeout=120_000)
    assert not batches_finished
    child = c.worker._analysis._child.proc
    os.kill(child.pid, signal.SIGKILL)  # a decoder blowing up takes the child down
    while child.is_alive():  # dead -- and its reader, polling, has most likely not noticed yet
        time.sleep(0.001)
    new_paths = sorted(second.iterdir())
    c._discovered(new_paths)  # what listing a newly opened folder does: a new child for them
    new_keys = {c.model.key_of_path(p) for p in new_paths}

    wait_idle(qtbot, c)
    qtbot.wait(500)  # anything late would arrive now
    old_keys = set(reports) - new_keys
    assert len(old_keys) == 40 and all(len(r) == 1 for r in reports.values()), dict(reports)
    assert any(reports[k] == ["failed"] for k in old_keys)  # the dead child's unfinished studies
    assert all(reports[k] == ["done"] for k in new_keys), {k: reports[k] for k in new_keys}
    assert len(batches_finished) == 1
    assert all(c.model.item(k).status.name == "DONE" for k in new_keys)
