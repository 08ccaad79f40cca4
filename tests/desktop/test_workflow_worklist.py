"""The persistent worklist through the real window: stored as results arrive, restored on
reopening, never recomputed for pixels the model has seen, removable, clearable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from desktop.models.study_item import Status
from inference.audit import AuditLog
from inference.decision import OperatingPoint
from inference.worklist import Worklist
from tests.desktop.gui_helpers import close_window, open_window, wait_idle

pytestmark = pytest.mark.gui


def _stored(data_dir: Path) -> list:
    with Worklist(data_dir / "worklist.sqlite3") as wl:
        return wl.records()


def _analyses(data_dir: Path) -> list[dict]:
    return [e for e in AuditLog(data_dir / "audit.jsonl").read().entries if e["event"] == "analysis"]


def test_results_are_stored_as_they_arrive_and_restored(window, qtbot, app_settings, isolated_user_dirs,
                                                         kermany_samples, real_dicom):
    data = isolated_user_dirs
    c = window.controller
    paths = [kermany_samples["NORMAL"][0], kermany_samples["PNEUMONIA"][0], real_dicom]
    seen_in_db_when_shown: list[bool] = []

    def on_result(key: int) -> None:  # the window hears of a result only once it is on disk
        item = c.model.item(key)
        with Worklist(data / "worklist.sqlite3") as wl:
            stored = wl.lookup(item.record.pixel_sha256, item.record.model_sha256)
        seen_in_db_when_shown.append(stored is not None and stored.probability == item.prediction.probability)

    c.result_ready.connect(on_result)
    window.open_paths(paths)
    wait_idle(qtbot, c)
    assert seen_in_db_when_shown == [True, True, True]

    items = {it.path: it for it in c.model.items()}
    records = {Path(r.study_path): r for r in _stored(data)}
    assert set(records) == set(paths)
    for path, record in records.items():
        item = items[path]
        assert record.probability == pytest.approx(item.prediction.probability)
        assert record.label == item.prediction.label and record.model_sha256 == item.prediction.model.sha256
        assert record.provider == "CPUExecutionProvider" and record.thumbnail is not None
        assert record.attribution is not None and record.attribution.grid.shape == (14, 14)
        assert not item.cached
    assert records[real_dicom].metadata["study_instance_uid"]
    analyses = _analyses(data)
    assert len(analyses) == 3 and not any(e["cached"] for e in analyses)
    close_window(window)

    # Reopen: the list comes back from the worklist alone -- nothing is analysed again.
    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    restored = {it.path: it for it in c2.model.items()}
    assert set(restored) == set(paths)
    assert not c2.busy
    for path, item in restored.items():
        assert item.status is Status.DONE and item.restored
        assert item.prediction.probability == pytest.approx(items[path].prediction.probability)
        assert item.prediction.label == items[path].prediction.label
        assert item.prediction.in_scope == items[path].prediction.in_scope
        assert item.prediction.warnings == items[path].prediction.warnings
        assert c2.model.thumbnail(c2.model.key_of_path(path)) is not None
    assert "3 analysed" in win2.study_list.count_label.text()
    # The top of the list is on screen at once (it was an empty viewer under "Window: custom").
    qtbot.waitUntil(lambda: c2.context is not None and c2.context.study is not None, timeout=10_000)
    top = max(restored.values(), key=lambda it: it.prediction.probability)
    assert c2.context.item.path == top.path and win2.preset_box.currentText() == "Window: default"
    # Selecting a restored study reloads its pixels; the heat-map comes from the stored attribution grid.
    win2.study_list.select_key(c2.model.key_of_path(real_dicom))
    wait_idle(qtbot, c2)
    ctx = c2.context
    assert ctx.study is not None and ctx.item.path == real_dicom
    np.testing.assert_allclose(win2.viewer.attribution.grid, ctx.prediction.attribution.grid, atol=1e-5)
    assert win2.viewer.overlay_item.image.shape[2] == 4
    assert win2.result_panel.gauge.value == pytest.approx(restored[real_dicom].prediction.probability)
    assert len(_analyses(data)) == 3  # restoring is not an analysis
    close_window(win2)


def test_the_same_pixels_are_not_analysed_again(window, qtbot, app_settings, isolated_user_dirs,
                                                kermany_samples, tmp_path):
    data = isolated_user_dirs
    c = window.controller
    paths = kermany_samples["PNEUMONIA"][1:4]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    first = {it.path: it.prediction.probability for it in c.model.items()}
    stamps = {r.study_path: r.analysed_at for r in _stored(data)}

    # Opening the same files again: the same rows, answered from the worklist.
    window.open_paths(paths)
    wait_idle(qtbot, c)
    assert c.model.rowCount() == 3
    for item in c.model.items():
        assert item.status is Status.DONE and item.cached
        assert item.prediction.probability == first[item.path]
    analyses = _analyses(data)
    assert [e["cached"] for e in analyses] == [False] * 3 + [True] * 3
    assert {r.study_path: r.analysed_at for r in _stored(data)} == stamps  # no new inference was stored

    # The same pixels under another name are recognised too, and get a row of their own.
    twin = tmp_path / "renamed-copy.jpeg"
    shutil.copyfile(paths[0], twin)
    window.open_paths([twin])
    wait_idle(qtbot, c)
    item = c.model.item(c.model.key_of_path(twin))
    assert item.cached and item.prediction.probability == first[paths[0]]
    assert str(twin) in {r.study_path for r in _stored(data)}
    assert _analyses(data)[-1]["cached"] is True
    close_window(window)

    # After reopening, opening them once more is still answered from the worklist.
    win2 = open_window(qtbot, app_settings)
    win2.open_paths(paths)
    wait_idle(qtbot, win2.controller)
    assert win2.controller.model.rowCount() == 4
    assert all(it.cached for it in win2.controller.model.items())
    assert [e["cached"] for e in _analyses(data)][-3:] == [True, True, True]
    close_window(win2)


def test_a_cached_result_follows_the_current_operating_point(window, qtbot, isolated_user_dirs, kermany_samples):
    c = window.controller
    path = kermany_samples["NORMAL"][4]
    window.open_paths([path])
    wait_idle(qtbot, c)
    probability = c.model.items()[0].prediction.probability
    # A custom threshold just above the probability: the cached answer must say NORMAL at it.
    c.settings.operating_point, c.settings.custom_threshold = "custom", min(probability + 0.01, 0.99)
    c.apply_settings({"decision"})
    window.open_paths([path])
    wait_idle(qtbot, c)
    item = c.model.items()[0]
    assert item.cached and item.prediction.operating_point == "custom"
    assert item.prediction.threshold == pytest.approx(min(probability + 0.01, 0.99))
    assert item.prediction.label == "NORMAL"
    assert _analyses(isolated_user_dirs)[-1]["operating_point"] == "custom"


def _analysed_then_closed(window, qtbot, film: Path, at: Path) -> float:
    """``film`` copied to ``at``, analysed and the window closed; returns its probability."""
    shutil.copyfile(film, at)
    window.open_paths([at])
    wait_idle(qtbot, window.controller)
    probability = window.controller.model.items()[0].prediction.probability
    close_window(window)
    return probability


def test_a_restored_study_whose_file_is_gone_keeps_its_result(window, qtbot, app_settings, isolated_user_dirs,
                                                              kermany_samples, tmp_path, monkeypatch):
    gone = tmp_path / "moved-away.jpeg"
    probability = _analysed_then_closed(window, qtbot, kermany_samples["PNEUMONIA"][5], gone)
    gone.unlink()

    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    win2.open_paths([kermany_samples["NORMAL"][5]])  # a film on screen, its window changed by hand
    wait_idle(qtbot, c2)
    win2.study_list.select_key(c2.model.key_of_path(kermany_samples["NORMAL"][5]))
    qtbot.waitUntil(lambda: c2.context is not None and c2.context.study is not None, timeout=10_000)
    win2.apply_preset("lung")
    c2.display.set_window(40.0, 80.0)
    assert win2.preset_box.currentIndex() == -1 and win2.cursor_label.text()
    if not win2.act_heatmap.isChecked():
        win2.act_heatmap.trigger()  # H: the map shown, muted, on this film
    assert win2.act_heatmap.isChecked()
    win2.study_list.select_key(c2.model.key_of_path(gone))
    wait_idle(qtbot, c2)
    item = c2.model.item(c2.model.key_of_path(gone))
    assert item.status is Status.DONE and item.prediction.probability == probability
    ctx = c2.context
    assert ctx.study is None and "no longer available" in ctx.problem and "moved-away.jpeg" in ctx.problem
    # Nothing of the film shown before stays in the toolbar or the status bar.
    assert win2.preset_box.currentText() == "Window: default" and win2.cursor_label.text() == ""
    assert not win2.act_heatmap.isChecked() and not win2.act_heatmap.isEnabled()  # no map reads as shown
    box = win2.overlay_controls.visible_box
    assert not box.isChecked() and not box.isEnabled()
    assert win2.viewer.message.isVisibleTo(win2) and "no longer available" in win2.viewer.message.text()
    assert win2.result_panel.gauge.value == pytest.approx(probability)  # the stored result is still shown
    # Exporting says why it cannot, in the status bar; no dialog, no traceback.
    win2.export_view()
    assert "no longer available" in win2.statusBar().currentMessage()
    win2.study_list.select_key(c2.model.key_of_path(kermany_samples["NORMAL"][5]))
    qtbot.waitUntil(lambda: c2.context is not None and c2.context.study is not None, timeout=10_000)
    assert win2.act_heatmap.isEnabled() and box.isEnabled()
    close_window(win2)


def test_a_restored_study_whose_file_was_replaced_never_shows_the_new_image_under_its_result(
        window, qtbot, app_settings, isolated_user_dirs, kermany_samples, tmp_path):
    """A new CD under the same file names: IM000001 is another patient now. The window showed
    that film under the old result (> 99 %, another patient's) and exported it so."""
    film = tmp_path / "IM000001.jpeg"
    probability = _analysed_then_closed(window, qtbot, kermany_samples["PNEUMONIA"][5], film)
    shutil.copyfile(kermany_samples["NORMAL"][5], film)  # same name, another film

    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    win2.study_list.select_row(0)
    wait_idle(qtbot, c2)
    ctx = c2.context
    assert ctx.item.prediction.probability == probability  # the stored result stands...
    assert ctx.study is None and ctx.prediction is None and "replaced by another image" in ctx.problem  # ...alone
    assert win2.viewer.message.isVisibleTo(win2) and "replaced by another image" in win2.viewer.message.text()
    win2.export_view()
    assert "replaced by another image" in win2.statusBar().currentMessage()
    assert not list(isolated_user_dirs.rglob("*.pdf"))
    close_window(win2)


def test_a_file_that_could_not_be_read_is_still_listed_as_failed_after_a_restart(
        window, qtbot, app_settings, isolated_user_dirs, kermany_samples, tmp_path):
    """The list puts failed studies above everything below the threshold, because they still
    need a look; after a restart they were gone, and the batch looked complete."""
    c = window.controller
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(kermany_samples["NORMAL"][0].read_bytes()[:400])  # cut short
    window.open_paths([kermany_samples["NORMAL"][1], broken])
    wait_idle(qtbot, c)
    reason = c.model.item(c.model.key_of_path(broken)).error
    assert "broken.jpeg" in reason
    close_window(window)

    def kept_as_failed() -> list[str]:
        with Worklist(isolated_user_dirs / "worklist.sqlite3") as wl:
            return [f.reason for f in wl.failures()]
    assert kept_as_failed() == [reason]
    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    item = c2.model.item(c2.model.key_of_path(broken))
    assert item.status is Status.ERROR and item.error == reason
    assert "1 failed" in win2.study_list.count_label.text()
    removal = c2.remove([c2.model.key_of_path(broken)])  # removed: no longer kept...
    assert len(removal.items) == 1 and kept_as_failed() == []
    assert c2.undo_remove(removal) == 1 and kept_as_failed() == [reason]  # ...unless put back
    shutil.copyfile(kermany_samples["NORMAL"][2], broken)  # mended, and analysed again
    c2.retry(c2.model.key_of_path(broken))
    wait_idle(qtbot, c2)
    assert c2.model.item(c2.model.key_of_path(broken)).status is Status.DONE and kept_as_failed() == []
    close_window(win2)


def test_a_failed_row_from_the_worklist_takes_its_result_in_place(qtbot, app_settings, isolated_user_dirs,
                                                                   kermany_samples):
    """The DICOM node could not analyse a film, then could (sent again): the row the reader is
    on takes the result. It was removed and listed anew, and the reader found themselves on
    another patient."""
    from inference.hashing import pixel_sha256
    from inference.worklist import Failure, WorklistRecord
    from tests.inference.workflow_fixtures import prediction_for, raster_study

    film, other = kermany_samples["PNEUMONIA"][:2]
    with Worklist(isolated_user_dirs / "worklist.sqlite3") as wl:
        study = raster_study(other)
        wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.9), pixel_sha256(study)))
        wl.add_failure(Failure(str(film), f"{film.name}: the node could not read it"))
    win = open_window(qtbot, app_settings)
    c = win.controller
    key = c.model.key_of_path(film)
    assert c.model.item(key).status is Status.ERROR
    win.study_list.select_key(key)
    wait_idle(qtbot, c)
    with Worklist(isolated_user_dirs / "worklist.sqlite3") as wl:
        study = raster_study(film)
        wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.2), pixel_sha256(study)))
        assert wl.failures() == []
    c.restore()  # as the node's log line makes the window do
    wait_idle(qtbot, c)
    assert c.model.key_of_path(film) == key and c.model.item(key).status is Status.DONE
    assert win.study_list.current_key() == key and c.context.key == key and c.context.study is not None
    assert c.context.item.prediction.probability == pytest.approx(0.2)
    close_window(win)


def test_remove_and_clear_the_worklist(window, qtbot, app_settings, isolated_user_dirs, kermany_samples, monkeypatch):
    data = isolated_user_dirs
    c = window.controller
    paths = kermany_samples["NORMAL"][5:8]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    window.study_list.select_key(c.model.key_of_path(paths[1]))
    wait_idle(qtbot, c)
    window.act_remove.trigger()
    assert paths[1] not in [it.path for it in c.model.items()]
    assert {Path(r.study_path) for r in _stored(data)} == {paths[0], paths[2]}
    close_window(window)

    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    assert {it.path for it in c2.model.items()} == {paths[0], paths[2]}
    asked: list[str] = []

    def answer(button):
        def question(parent, title, text, *args):  # noqa: ANN001, ARG001
            asked.append(text)
            return button
        return staticmethod(question)

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    win2.act_clear.trigger()
    assert asked and "2 studies" in asked[0] and c2.model.rowCount() == 2 and len(_stored(data)) == 2
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    win2.act_clear.trigger()
    assert c2.model.rowCount() == 0 and _stored(data) == []
    assert len(_analyses(data)) == 3  # the audit log keeps its history
    close_window(win2)
    win3 = open_window(qtbot, app_settings)
    assert win3.controller.model.rowCount() == 0
    close_window(win3)


def test_each_test_starts_with_an_empty_worklist(window, isolated_user_dirs):
    """The isolation the other tests rely on: a fresh data directory, nothing restored."""
    assert window.controller.model.rowCount() == 0
    assert window.controller.worklist_path == isolated_user_dirs / "worklist.sqlite3"
    assert window.controller.audit.path == isolated_user_dirs / "audit.jsonl"


def test_an_unusable_data_folder_is_said_and_analysis_goes_on(qtbot, app_settings, monkeypatch, tmp_path,
                                                             kermany_samples, bundled_model):
    not_a_folder = tmp_path / "data-is-a-file"
    not_a_folder.write_text("occupied")
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(not_a_folder))
    win = open_window(qtbot, app_settings)
    c = win.controller
    assert c.worklist is None and c.audit is None
    assert win.banner.isVisibleTo(win) and "not being saved" in win.banner_label.text()
    win.open_paths([kermany_samples["NORMAL"][9]])
    wait_idle(qtbot, c)
    item = c.model.items()[0]
    assert item.status is Status.DONE and item.prediction is not None and not item.cached
    win.act_audit.trigger()
    assert "audit log is not available" in win.statusBar().currentMessage()
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda parent, title, text, *a: shown.append(text)))
    out = tmp_path / "list.csv"
    win.export_worklist_to(out)
    assert out.is_file() and shown == ["list.csv was written, but the audit log could not record it "
                                       "(the data folder cannot be used)."]
    close_window(win)


def test_a_result_of_an_earlier_model_is_kept_apart(window, qtbot, app_settings, isolated_user_dirs,
                                                    kermany_samples):
    """After a model update the list still shows old results -- read at their own model's
    threshold and marked -- and opening such a study again analyses it with the new model.
    (The earlier model's row is made by re-labelling a real stored row: only one model exists here.)"""
    from dataclasses import replace

    data = isolated_user_dirs
    c = window.controller
    path = kermany_samples["PNEUMONIA"][6]
    window.open_paths([path])
    wait_idle(qtbot, c)
    current = c.model.items()[0].prediction
    close_window(window)
    with Worklist(data / "worklist.sqlite3") as wl:
        (record,) = wl.records()
        wl.clear()
        old_threshold = 0.999 if current.probability < 0.999 else 0.001  # surely not the current reading
        wl.add(replace(record, id=None, model_sha256="0" * 64, model_version="0.9-earlier",
                       operating=OperatingPoint("balanced", old_threshold)))

    win2 = open_window(qtbot, app_settings)
    c2 = win2.controller
    (item,) = c2.model.items()
    assert item.prediction.threshold == old_threshold  # not re-judged at the current model's threshold
    win2.study_list.select_row(0)
    wait_idle(qtbot, c2)
    assert win2.result_panel.detail_text("model").endswith("0.9-earlier · not the model loaded now")
    win2.open_paths([path])
    wait_idle(qtbot, c2)
    (item,) = c2.model.items()
    assert not item.cached and item.prediction.model.sha256 == current.model.sha256
    assert item.prediction.probability == pytest.approx(current.probability)
    assert "not the model loaded now" not in win2.result_panel.detail_text("model")
    close_window(win2)


def test_results_another_program_adds_join_the_list_and_only_new_rows_are_read(
        window, qtbot, isolated_user_dirs, kermany_samples, monkeypatch):
    """The DICOM node's films join the list through restore(), once per film. It read every
    row of the worklist each time: 10,000 rows held the window for 4 s a film."""
    from inference.hashing import pixel_sha256
    from inference.worklist import WorklistRecord
    from tests.inference.workflow_fixtures import prediction_for, raster_study

    data = isolated_user_dirs
    c = window.controller
    films = kermany_samples["NORMAL"][:4]

    def add_elsewhere(path: Path) -> int:  # as the node's process stores a result
        study = raster_study(path)
        with Worklist(data / "worklist.sqlite3") as wl:
            return wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.3), pixel_sha256(study))).id

    read: list[int] = []
    records_by_id = Worklist.records_by_id
    monkeypatch.setattr(Worklist, "records_by_id",
                        lambda wl, ids, **kw: (lambda got: (read.append(len(got)), got)[1])(records_by_id(wl, ids, **kw)))
    add_elsewhere(films[0])
    add_elsewhere(films[1])
    assert c.restore() == 2 and read == [2]
    last = add_elsewhere(films[2])
    assert c.restore() == 1 and read == [2, 1]  # the new row only
    assert c.model.key_of_path(films[2]) is not None and c.model.item(c.model.key_of_path(films[2])).record.id == last
    assert c.restore() == 0 and read == [2, 1, 0]
    assert c.clear_worklist()
    add_elsewhere(films[3])  # ids go on after a clear (AUTOINCREMENT): it is found
    assert c.restore() == 1 and [it.path for it in c.model.items()] == [films[3]]


def test_a_long_worklist_is_read_off_the_gui_thread_and_listed_with_the_window_up(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """10,000 stored results took 3-4 s to read and decode and 1 s to list, all on the GUI
    thread before the window showed. Past RESTORE_AT_ONCE_UP_TO rows the read runs on a
    thread of its own and the rows are listed a step at a time as they are read (here 6
    studies, 2 at once), the most probable first: the study on screen is the top of the list
    from the first step on, and stays there."""
    import threading
    from functools import partial

    from PySide6.QtCore import QTimer

    from desktop import controller as controller_module
    from inference.worklist import WorklistRecord
    from tests.inference.workflow_fixtures import prediction_for, raster_study

    films = kermany_samples["NORMAL"][:6]
    with Worklist(isolated_user_dirs / "worklist.sqlite3") as wl:
        _store_rising(wl, films)
        # The first film again, its pixels since changed: its newest row comes steps after its first.
        study = raster_study(films[0])
        newest = wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.05), "0" * 64)).id
    monkeypatch.setattr(controller_module, "RESTORE_AT_ONCE_UP_TO", 3)
    monkeypatch.setattr(controller_module, "RESTORE_STEP", 2)
    on_gui_thread: list[bool] = []
    records_by_id = Worklist.records_by_id
    monkeypatch.setattr(Worklist, "records_by_id", lambda wl, ids, **kw: (
        on_gui_thread.append(threading.current_thread() is threading.main_thread()), records_by_id(wl, ids, **kw))[1])
    monkeypatch.setattr(controller_module, "_read_latest", partial(controller_module._read_latest, batch=2))
    win = open_window(qtbot, app_settings)
    c = win.controller
    assert c.restoring and "Reading the results kept in the worklist" in win.statusBar().currentMessage()
    shown: list[Path] = []
    c.model.rowsInserted.connect(lambda *_: QTimer.singleShot(0, lambda: shown.append(  # after the window's choice
        c.model.item(win.study_list.current_key()).path if win.study_list.current_key() else None)))
    qtbot.waitUntil(lambda: c.idle and c.model.rowCount() == 6, timeout=10_000)
    assert c.model.item(c.model.key_of_path(films[0])).record.id == newest  # each file's latest result
    assert on_gui_thread and not any(on_gui_thread)
    assert win.statusBar().currentMessage() == ""
    assert len(shown) == 3 and set(shown) == {films[-1]}  # the most suspicious one, from the first step on
    assert [it.path for it in sorted(c.model.items(), key=lambda it: it.order)] == [*films[1:], films[0]]  # as stored
    close_window(win)


def test_a_study_the_reader_chose_while_a_long_worklist_is_listed_stays_on_screen(
        qtbot, app_settings, isolated_user_dirs, kermany_samples, bundled_model, monkeypatch):
    """The window shows the most suspicious study when none is on screen, but never takes the
    reader off one they chose while the rest is listed (at the end of the listing it had)."""
    from desktop import controller as controller_module

    films = kermany_samples["NORMAL"][:6]
    with Worklist(isolated_user_dirs / "worklist.sqlite3") as wl:
        _store_rising(wl, films)
    monkeypatch.setattr(controller_module, "RESTORE_AT_ONCE_UP_TO", 3)
    monkeypatch.setattr(controller_module, "RESTORE_STEP", 1)
    win = open_window(qtbot, app_settings)
    c = win.controller
    chosen: list[int] = []

    def reader_picks_the_second_listed(_parent: object, first: int, _last: int) -> None:
        if first == 1:
            chosen.append(c.model.key_at(first))
            win.study_list.select_key(chosen[0])

    c.model.rowsInserted.connect(reader_picks_the_second_listed)
    qtbot.waitUntil(lambda: c.idle and c.model.rowCount() == 6, timeout=10_000)
    assert c.model.item(chosen[0]).path == films[-2]  # the second most probable: not the window's choice
    assert win.study_list.current_key() == chosen[0]
    close_window(win)


def _store_rising(wl: Worklist, films: list[Path]) -> None:
    """A result for each film, the probability rising with its place (the last the most suspicious)."""
    from inference.hashing import pixel_sha256
    from inference.worklist import WorklistRecord
    from tests.inference.workflow_fixtures import prediction_for, raster_study

    for i, f in enumerate(films):
        study = raster_study(f)
        wl.add(WorklistRecord.from_prediction(study, prediction_for(study, 0.1 + i / 10), pixel_sha256(study)))
