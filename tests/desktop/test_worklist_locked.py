"""A worklist another program keeps locked, through the real window.

The window waits for it with a message; if the lock outlasts the busy timeout it carries on
without the list -- results still shown, exported and audited -- and says so; a lock that is
released in time is picked up, the stored results listed and new ones kept. The database
itself is never renamed, replaced or changed by the wait.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.models.study_item import Status
from inference import worklist as worklist_module
from inference.audit import AuditLog
from inference.hashing import pixel_sha256
from inference.worklist import Worklist, WorklistRecord
from tests.desktop.gui_helpers import close_window, open_window, wait_idle
from tests.inference.test_worklist_safety import write_lock_held
from tests.inference.workflow_fixtures import prediction_for, raster_study

pytestmark = pytest.mark.gui


def _store(data: Path, files: list[Path]) -> list[int]:
    with Worklist(data / "worklist.sqlite3") as wl:
        return [wl.add(WorklistRecord.from_prediction(s, prediction_for(s, 0.4), pixel_sha256(s))).id
                for s in map(raster_study, files)]


def test_a_lock_that_outlasts_the_wait_leaves_the_list_alone_and_analysis_goes_on(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch, tmp_path):
    data = isolated_user_dirs
    ids = _store(data, kermany_samples["NORMAL"][:2])
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 2.0)
    with write_lock_held(data / "worklist.sqlite3"):
        win = open_window(qtbot, app_settings)
        c = win.controller
        assert c.worklist is None
        assert win.banner.isVisibleTo(win) and "is locked by another program; waiting up to 2 s" in win.banner_label.text()
        qtbot.waitUntil(lambda: "carries on without it" in win.banner_label.text(), timeout=10_000)
        assert "Nothing in it was changed" in win.banner_label.text()

        study = kermany_samples["PNEUMONIA"][0]
        win.open_paths([study])
        wait_idle(qtbot, c)
        (item,) = c.model.items()
        assert item.status is Status.DONE and item.prediction is not None  # shown
        analyses = [e for e in AuditLog(data / "audit.jsonl").read().entries if e["event"] == "analysis"]
        assert [e["pixel_sha256"] for e in analyses] == [item.record.pixel_sha256]  # audited
        out = tmp_path / "list.csv"
        win.export_worklist_to(out)
        assert out.is_file() and study.name in out.read_text(encoding="utf-8-sig")  # exported
        close_window(win)
    assert not list(data.glob("*.damaged-*"))
    with Worklist(data / "worklist.sqlite3") as wl:  # exactly the rows it had
        assert [r.id for r in wl.records()] == ids


def test_a_lock_released_in_time_is_picked_up(qtbot, app_settings, isolated_user_dirs, kermany_samples,
                                              bundled_model, monkeypatch):
    data = isolated_user_dirs
    files = kermany_samples["NORMAL"][:2]
    _store(data, files)
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 30.0)
    with write_lock_held(data / "worklist.sqlite3"):
        win = open_window(qtbot, app_settings)
        c = win.controller
        assert c.worklist is None and "waiting up to 30 s" in win.banner_label.text()
    qtbot.waitUntil(lambda: c.worklist is not None, timeout=10_000)
    assert not win.banner.isVisibleTo(win)
    assert sorted(it.name for it in c.model.items()) == sorted(f.name for f in files)  # restored
    win.open_paths([kermany_samples["PNEUMONIA"][1]])
    wait_idle(qtbot, c)
    with Worklist(data / "worklist.sqlite3") as wl:  # the restarted analysis process keeps results again
        assert len(wl) == 3
    close_window(win)
