"""A worklist another program keeps locked, through the real window.

The window waits for it with a message; if the lock outlasts the busy timeout it carries on
without the list -- results still shown, exported and audited -- and says so; a lock that is
released in time is picked up, the stored results listed and new ones kept. The database
itself is never renamed, replaced or changed by the wait.
"""

from __future__ import annotations

import threading
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


def test_a_lock_that_outlasts_the_wait_leaves_the_list_alone_and_what_is_made_meanwhile_is_saved_later(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch, tmp_path):
    """Past the busy timeout the window carries on without the list; it was then given up for
    the session (a 15 s lock cost every one of 5,961 results). It is tried again every few
    seconds, and once it is free the results made meanwhile are saved in it."""
    from desktop import controller as controller_module

    data = isolated_user_dirs
    ids = _store(data, kermany_samples["NORMAL"][:2])
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 2.0)
    monkeypatch.setattr(controller_module, "LOCK_RETRY_MS", 300)
    with write_lock_held(data / "worklist.sqlite3"):
        win = open_window(qtbot, app_settings)
        c = win.controller
        assert c.worklist is None
        assert win.banner.isVisibleTo(win) and "is locked by another program; waiting up to 2 s" in win.banner_label.text()
        qtbot.waitUntil(lambda: "carries on without it" in win.banner_label.text(), timeout=10_000)
        text = win.banner_label.text()
        assert "locked for more than 2 s" in text and "saves them in it once it is free" in text  # not "0 s"
        assert "Results are not saved in it yet" in text
        assert "Nothing in it was changed" in text

        study = kermany_samples["PNEUMONIA"][0]
        win.open_paths([study])
        wait_idle(qtbot, c)
        (item,) = c.model.items()
        assert item.status is Status.DONE and item.prediction is not None  # shown
        assert item.record is not None and item.record.id is None  # not saved yet
        analyses = [e for e in AuditLog(data / "audit.jsonl").read().entries if e["event"] == "analysis"]
        assert [e["pixel_sha256"] for e in analyses] == [item.record.pixel_sha256]  # audited
        out = tmp_path / "list.csv"
        win.export_worklist_to(out)
        assert out.is_file() and study.name in out.read_text(encoding="utf-8-sig")  # exported
        assert not list(data.glob("*.damaged-*"))
        with Worklist(data / "worklist.sqlite3", read_only=True) as wl:  # exactly the rows it had
            assert [r.id for r in wl.records()] == ids
        threads: list[bool] = []  # whether each result the window saves is saved on its GUI thread
        add = Worklist.add
        monkeypatch.setattr(Worklist, "add", lambda wl, record: (
            threads.append(threading.current_thread() is threading.main_thread()), add(wl, record))[1])
    qtbot.waitUntil(lambda: c.worklist is not None, timeout=10_000)  # the lock is gone: picked up
    saved = next(it for it in c.model.items() if it.path == study)
    # Saved on a thread of its own, then listed by its row.
    qtbot.waitUntil(lambda: saved.record is not None and saved.record.id is not None, timeout=10_000)
    assert threads == [False]
    assert not win.banner.isVisibleTo(win)
    assert win.statusBar().currentMessage() == ("The worklist is free again: the 1 result made while it was "
                                                "locked is saved in it.")
    with Worklist(data / "worklist.sqlite3") as wl:
        rows = wl.records()
        assert [r.id for r in rows][:2] == ids and rows[-1].study_path == str(study)
        assert rows[-1].thumbnail is not None  # as if it had been saved at once
    close_window(win)


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


def test_the_banner_gives_the_worklists_and_the_audit_logs_reasons_apart(window):
    """A read-only data folder fails both; the audit log's message replaced the worklist's,
    and the banner no longer said that results were not being saved."""
    from desktop.analysis_messages import StorageFailed

    c = window.controller
    c._report(StorageFailed("Results are not being saved in the worklist: read-only file system"))
    c._report(StorageFailed("Analyses are not being written to the audit log (read-only file system).", what="audit"))
    text = window.banner_label.text()
    assert "not being saved in the worklist" in text and "not being written to the audit log" in text


def test_closing_with_results_the_locked_worklist_does_not_hold_asks_first_and_saves_them_if_it_can(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """The window closed at once and the session's results were not in the list next time."""
    from desktop.widgets import qt_main_window

    data = isolated_user_dirs
    _store(data, kermany_samples["NORMAL"][:1])
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 0.5)
    monkeypatch.setattr(qt_main_window, "CLOSE_SAVE_WAIT_S", 0.2)
    asked: list[str] = []
    monkeypatch.setattr(qt_main_window.MainWindow, "_close_anyway", lambda self, text: asked.append(text) or False)
    study = kermany_samples["PNEUMONIA"][0]
    with write_lock_held(data / "worklist.sqlite3"):
        win = open_window(qtbot, app_settings)
        c = win.controller
        qtbot.waitUntil(lambda: "carries on without it" in win.banner_label.text(), timeout=10_000)
        win.open_paths([study])
        wait_idle(qtbot, c)
        assert c.unsaved() == 1
        win.close()  # the reader is asked, and keeps it open
        assert win.isVisible() and asked and asked[0].startswith("1 result of this session is not saved in the worklist")
    win.close()  # the lock is gone: saved, then closed without a question
    assert not win.isVisible() and len(asked) == 1
    with Worklist(data / "worklist.sqlite3") as wl:
        assert str(study) in {r.study_path for r in wl.records()}


def test_results_the_analysis_process_saves_once_the_lock_goes_are_listed_by_their_rows_without_a_write(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """The analysis process held results while the worklist was locked mid-session and saved
    them when it was free (inference.result_store): it hands the window their rows. The
    window used to store every one of them again on its own thread just to learn the ids."""
    from dataclasses import replace

    from desktop.analysis_messages import StorageRecovered

    win = open_window(qtbot, app_settings)
    c = win.controller
    study = kermany_samples["PNEUMONIA"][0]
    win.open_paths([study])
    wait_idle(qtbot, c)
    (item,) = c.model.items()
    stored = item.record
    assert stored is not None and stored.id is not None
    item.record = replace(stored, id=None)  # as the analysis process reports a result it holds
    assert c.unsaved() == 1

    def no_write(*_: object) -> None:
        raise AssertionError("the window wrote to the worklist")

    monkeypatch.setattr(c.worklist, "add", no_write)
    c._report(StorageRecovered("free again", (stored,)))
    qtbot.waitUntil(lambda: item.record is not None and item.record.id == stored.id, timeout=5_000)
    assert c.unsaved() == 0
    assert win.statusBar().currentMessage() == ("The worklist is free again: the 1 result made while it was "
                                                "locked is saved in it.")
    close_window(win)


def test_a_lock_taken_mid_session_is_told_at_the_next_verdict_not_waited_for_and_then_picked_up_again(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """The window's own changes (a verdict, a removal) waited the whole busy timeout (10 s)
    for another program's lock, with the window frozen. Now the verdict is refused at once
    with the reason, and the list is tried again every few seconds and picked up when free."""
    import time

    from desktop import controller as controller_module

    monkeypatch.setattr(controller_module, "LOCK_RETRY_MS", 300)
    data = isolated_user_dirs
    win = open_window(qtbot, app_settings)
    c = win.controller
    win.open_paths([kermany_samples["PNEUMONIA"][0]])
    wait_idle(qtbot, c)
    key = c.model.key_of_path(kermany_samples["PNEUMONIA"][0])
    with write_lock_held(data / "worklist.sqlite3"):
        started = time.monotonic()
        problem = c.set_verdict(key, "pneumonia")
        held_for = time.monotonic() - started
        assert held_for < 2.0, f"the GUI thread waited {held_for:.1f} s for the lock"  # it waited 10 s
        assert problem.startswith("The verdict could not be saved") and "locked" in problem
        assert c.worklist is None and "carries on without it" in win.banner_label.text()
    qtbot.waitUntil(lambda: c.worklist is not None, timeout=10_000)  # free: picked up again
    assert c.set_verdict(key, "pneumonia") == ""
    with Worklist(data / "worklist.sqlite3", read_only=True) as wl:
        assert [r.verdict for r in wl.records()] == ["pneumonia"]
    close_window(win)


def test_a_clear_while_held_results_are_being_saved_waits_for_them_and_clears_them_too(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """The save runs on a thread of its own; a clear taken meanwhile deleted only what was
    written so far, and the rest came back at the next start with the patients' data."""
    import time
    from dataclasses import replace

    data = isolated_user_dirs
    win = open_window(qtbot, app_settings)
    c = win.controller
    win.open_paths(kermany_samples["NORMAL"][:3])
    wait_idle(qtbot, c)
    with Worklist(data / "worklist.sqlite3") as wl:
        wl.clear()  # as if they had been made while it was locked
    for item in c.model.items():
        item.record = replace(item.record, id=None)
    add = Worklist.add
    monkeypatch.setattr(Worklist, "add", lambda wl, record: (time.sleep(0.3), add(wl, record))[1])
    c._save_in_background()
    assert c._saving is not None and c._saving.running
    assert c.clear_worklist()
    qtbot.wait(1200)  # what the save thread would still have written
    with Worklist(data / "worklist.sqlite3", read_only=True) as wl:
        assert len(wl) == 0
    assert c.model.rowCount() == 0
    close_window(win)
