"""Window features around the result: opening routes, keyboard, settings, tags, dialogs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.models.study_item import MASK, Status
from tests.desktop.gui_helpers import wait_idle

pytestmark = pytest.mark.gui


def test_a_thousand_studies_are_listed_at_once(window, qtbot, study_copies):
    c = window.controller
    folder = study_copies(1000)
    t0 = time.monotonic()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: c.model.rowCount() == 1000, timeout=10_000)
    listed = time.monotonic() - t0
    print(f"\n1000 studies listed in {listed * 1000:.0f} ms")
    assert listed < 5.0
    assert c.model.counts()[Status.DONE] < 1000  # listed long before they are analysed
    assert window.cancel_button.isVisible()
    window.controller.cancel()
    wait_idle(qtbot, c, 60_000)


def test_drop_and_recent_files_open_through_the_same_path(window, qtbot, kermany_samples, tmp_path):
    c = window.controller
    sub = tmp_path / "drop" / "nested"
    sub.mkdir(parents=True)
    target = sub / "study.jpeg"
    target.symlink_to(kermany_samples["NORMAL"][1])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "drop"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_idle(qtbot, c)
    assert [it.path for it in c.model.items()] == [target]  # folders are opened recursively
    assert c.settings.recent[0] == str(tmp_path / "drop")
    window._fill_recent()
    assert window.recent_menu.actions()[0].text() == str(tmp_path / "drop")


def test_a_film_named_relative_to_the_folder_lunglens_started_in_is_listed_and_kept_whole(
        window, qtbot, kermany_samples, monkeypatch):
    """``lunglens IM-0001.jpeg`` from the film's folder: the worklist and Open Recent had kept
    the bare name, "no longer available" to the next window started elsewhere."""
    c = window.controller
    monkeypatch.chdir(kermany_samples["NORMAL"][0].parent)
    film = Path.cwd() / kermany_samples["NORMAL"][0].name  # the folder as the system names it (no symlink)
    window.open_paths([film.name])
    wait_idle(qtbot, c)
    assert [item.path for item in c.model.items()] == [film]
    assert c.settings.recent[0] == str(film) and c.settings.last_dir == str(film.parent)


def test_the_study_n_opens_is_decoded_ahead(window, qtbot, kermany_samples, monkeypatch):
    """Each film shown names the one N goes to next, in the order shown, for the analysis
    process to decode meanwhile (test_analysis_process shows it does)."""
    c = window.controller
    paths = kermany_samples["NORMAL"][:3]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    asked: list[tuple[Path, Path | None]] = []
    real = c.worker.load_for_view
    monkeypatch.setattr(c.worker, "load_for_view", lambda token, path, fingerprint=None, ahead=None: (
        asked.append((path, ahead)), real(token, path, fingerprint, ahead)))
    for mode in ("opened", "suspicion"):
        window.study_list.proxy.set_mode(mode)
        order = [item.path for item in window.shown_items()]
        window.study_list.select_row(2)
        asked.clear()
        window.study_list.select_row(0)
        for _ in range(2):
            window.study_list.step(1)
        wait_idle(qtbot, c)
        assert asked == [(order[0], order[1]), (order[1], order[2]), (order[2], None)], mode
    assert [item.path for item in window.shown_items()] != paths  # two orders, not one twice


def test_keyboard_navigation_and_view_keys(window, qtbot, kermany_samples):
    c = window.controller
    paths = kermany_samples["NORMAL"][:3]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    window.study_list.proxy.set_mode("opened")
    window.study_list.select_row(0)
    wait_idle(qtbot, c)
    assert c.context.item.path == paths[0]
    window.activateWindow()
    window.study_list.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.study_list.view)
    for key, expected in ((Qt.Key.Key_N, paths[1]), (Qt.Key.Key_Space, paths[2]), (Qt.Key.Key_P, paths[1])):
        qtbot.keyClick(window.study_list.view, key)
        wait_idle(qtbot, c)
        assert c.context.item.path == expected, key
    qtbot.keyClick(window, Qt.Key.Key_I)
    assert c.display.invert and window.act_invert.isChecked()
    visible = c.display.overlay_visible
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert c.display.overlay_visible is not visible
    c.display.set_window(10.0, 20.0)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert c.display.window == c.display.default_window and not c.display.invert
    window.viewer.vb.scaleBy((0.25, 0.25))
    qtbot.keyClick(window, Qt.Key.Key_F)
    rect = window.viewer.vb.viewRect()
    h, w = window.viewer.pixels.shape
    assert rect.width() >= w and rect.height() >= h  # the whole image is in view
    qtbot.keyClick(window, Qt.Key.Key_1)  # 1:1 -- one image pixel per device pixel
    vb = window.viewer.vb
    assert vb.viewRect().width() == pytest.approx(vb.width() * window.viewer.devicePixelRatioF(), rel=0.02)


def _first_of_two_on_screen(window, qtbot, kermany_samples) -> list[Path]:
    """Two films analysed, the first on screen; returns their paths."""
    c = window.controller
    paths = kermany_samples["NORMAL"][:2]
    window.open_paths(paths)
    wait_idle(qtbot, c)
    window.study_list.select_key(c.model.key_of_path(paths[0]))
    wait_idle(qtbot, c)
    return paths


def test_space_and_del_are_the_windows_except_on_controls_that_use_them(window, qtbot, kermany_samples):
    """Space on the heat-map check box opened the next patient, and Del in the DICOM tags
    removed the study: on such a control the key is the control's; anywhere else (the
    result panel a click gave the focus to, say) it is Next Study and Remove."""
    c, paths = window.controller, _first_of_two_on_screen(window, qtbot, kermany_samples)
    window.activateWindow()
    box = window.overlay_controls.visible_box
    box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is box)
    checked = box.isChecked()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert c.context.item.path == paths[0] and box.isChecked() is not checked
    tags = window.tags.tree
    tags.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tags)
    qtbot.keyClick(tags, Qt.Key.Key_Delete)
    assert c.model.rowCount() == 2
    panel = window.result_panel
    panel.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel)
    qtbot.keyClick(panel, Qt.Key.Key_Space)
    wait_idle(qtbot, c)
    assert c.context.item.path == paths[1]
    qtbot.keyClick(panel, Qt.Key.Key_Delete)
    assert c.model.rowCount() == 1 and c.model.key_of_path(paths[1]) is None


def test_a_verdict_or_export_waits_for_the_film_to_be_on_screen(window, qtbot, kermany_samples, monkeypatch):
    """N then Shift+U before the next film had loaded: the verdict landed on the highlighted
    study while the film, title and result on screen were still the one before; right-click
    then Export at once exported the study before. (Del names what it removed, with Undo.)"""
    from PySide6.QtWidgets import QFileDialog

    c, paths = window.controller, _first_of_two_on_screen(window, qtbot, kermany_samples)
    second = c.model.key_of_path(paths[1])
    window.study_list.select_key(second)  # highlighted; its film is loaded in the background
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a[2]) or ("", ""))
    window.give_verdict("unsure")
    assert c.model.item(second).record.verdict is None
    assert "not on screen yet" in window.statusBar().currentMessage()
    window.export_view()
    assert asked == [] and "not on screen yet" in window.statusBar().currentMessage()
    wait_idle(qtbot, c)
    window.give_verdict("unsure")
    assert c.model.item(second).record.verdict == "unsure"
    window.export_view()
    assert asked and paths[1].stem in asked[0]


def test_the_end_of_a_batch_never_takes_a_reader_off_a_film_they_acted_on(window, qtbot, kermany_samples):
    """The batch ended and the window went to its most suspicious study; the status bar still
    named the film the reader had just marked, and their next verdict went to the other one."""
    c = window.controller
    first = kermany_samples["NORMAL"][0]
    window.open_paths([first, *kermany_samples["PNEUMONIA"][:8]])
    qtbot.waitUntil(lambda: c.context is not None and c.context.item.path == first
                    and c.model.item(c.context.key).status is Status.DONE, timeout=60_000)
    window.give_verdict("no pneumonia")
    wait_idle(qtbot, c, 120_000)
    assert c.context.item.path == first and window.study_list.current_key() == c.context.key
    window.open_paths([kermany_samples["NORMAL"][1]])  # but a film opened next is shown, as ever
    qtbot.waitUntil(lambda: c.context is not None and c.context.item.path == kermany_samples["NORMAL"][1],
                    timeout=60_000)


def test_window_presets_change_the_levels(window, qtbot, real_dicom):
    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    default = window.viewer.image_item.getLevels()
    window.apply_preset("lung")
    lung = window.viewer.image_item.getLevels()
    window.apply_preset("bone")
    bone = window.viewer.image_item.getLevels()
    assert lung != pytest.approx(default) and bone[0] > lung[0]
    assert window.preset_box.currentData() == "bone"


def test_tags_are_masked_until_identifiers_are_allowed(window, qtbot, tmp_path, kermany_samples):
    from tests.fixtures.dicom_factory import read_gray, write_dicom

    path = write_dicom(tmp_path / "named.dcm", read_gray(kermany_samples["PNEUMONIA"][0]),
                       tags={"PatientName": "DOE^JANE", "PatientID": "MRN-4711"})
    c = window.controller
    window.open_paths([path])
    wait_idle(qtbot, c)
    window.tags.filter.setText("Patient")
    rows = {kw: value for _, kw, value in window.tags.visible_rows()}
    assert rows["PatientName"] == MASK and rows["PatientID"] == MASK
    idx = window.study_list.proxy.index(0, 0)
    assert "DOE" not in window.study_list.model.index(0).data(Qt.ItemDataRole.UserRole + 3)

    c.settings.show_identifiers = True
    c.apply_settings({"privacy"})
    window.tags.set_show_identifiers(True)
    rows = {kw: value for _, kw, value in window.tags.visible_rows()}
    assert rows["PatientName"] == "DOE^JANE" and rows["PatientID"] == "MRN-4711"
    assert idx.isValid()


def test_settings_dialog_offers_only_available_providers_and_relabels(window, qtbot, real_dicom):
    from inference.presentation import operating_point_text
    from inference.providers import available_providers

    from desktop.widgets.qt_settings_dialog import SettingsDialog

    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    pred = c.context.item.prediction
    dlg = SettingsDialog(c.settings, available_providers(), c.engine.provider, c.profile, window)
    qtbot.addWidget(dlg)
    offered = [dlg.provider.itemData(i) for i in range(dlg.provider.count())]
    assert offered == ["auto", *available_providers()]
    assert dlg.in_use.text() == "CPU"
    assert [dlg.operating_point.itemData(i) for i in range(dlg.operating_point.count())] == \
        [*c.profile.operating_points, "custom"]
    # Each point is offered with what it measured, where, and its 95 % CI.
    default = c.profile.operating_point()
    assert dlg.operating_point.currentData() == default.name
    assert dlg.figures.text().startswith(operating_point_text(default, c.profile.source))
    # No custom field beside a named point: its greyed "50.0 %" read as a second threshold.
    assert dlg.custom.isHidden()
    # A custom threshold just above this study's probability turns the label around.
    dlg.operating_point.setCurrentIndex(dlg.operating_point.findData("custom"))
    assert not dlg.custom.isHidden() and dlg.custom.isEnabled()
    assert (dlg.custom.minimum(), dlg.custom.maximum()) == (1.0, 99.0)  # 0 % flags all, 100 % none
    dlg.custom.setValue(min(pred.probability * 100 + 1.0, 99.0))
    changed = dlg.apply()
    assert changed == {"decision"}
    c.apply_settings(changed)
    after = c.context.item.prediction
    assert after.probability == pred.probability and after.operating_point == "custom"
    assert after.label == "NORMAL" and after.sensitivity is None
    assert window.result_panel.headline_text().startswith("Below the review threshold")
    assert window.result_panel.detail_text("figures") == "sensitivity and specificity not measured"
    # Persisted in QSettings.
    assert c.settings.q.value("decision/operating_point") == "custom"


def test_about_dialog_states_intended_use_credit_and_versions(window, qtbot):
    import onnxruntime
    from PySide6.QtCore import qVersion

    from html import escape

    from desktop.widgets.qt_about_dialog import AboutDialog, versions
    from inference.presentation import POPULATION, figures_text, point_text

    c = window.controller
    dlg = AboutDialog(c.manifest, c.profile, Path("resources/models/MODEL_CARD.md").resolve(), window)
    qtbot.addWidget(dlg)
    v = versions(c.manifest, c.profile)
    assert v["ONNX Runtime"] == onnxruntime.__version__ and v["Qt"] == qVersion()
    assert v["Model"].startswith(c.manifest.name) and v["Site profile"].startswith(c.profile.name)
    texts = " ".join(w.text() for w in dlg.findChildren(type(window.cursor_label)))
    assert "not a diagnostic device" in texts and "Kermany" in texts and "CC BY 4.0" in texts
    assert dlg.figures.text() in texts  # the "Site profile" tab
    # Every figure with the data it comes from and its interval; the population it holds for.
    assert POPULATION in texts
    assert f"Measured on {escape(c.profile.source)}" in texts
    for op in c.profile.operating_points.values():
        assert escape(f"{point_text(op)}: {figures_text(op)}") in texts
    assert "on validation" not in texts
    assert len(dlg.card.toPlainText()) > 200  # the real model card is shown


def test_window_layout_is_remembered(qtbot, app_settings, bundled_model):
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    c1 = StudyController(app_settings)
    w1 = MainWindow(c1)
    w1.show()
    w1.resize(700, 500)  # the offscreen screen is 800x600: restoring clamps to it
    w1.studies_dock.hide()
    qtbot.waitExposed(w1)
    w1.close()
    c2 = StudyController(app_settings)
    w2 = MainWindow(c2)
    qtbot.addWidget(w2)
    w2.show()
    assert (w2.width(), w2.height()) == (700, 500)
    assert not w2.studies_dock.isVisible() and w2.result_dock.isVisible()
    w2.close()
    w1.deleteLater()
    QApplication.processEvents()


def test_a_layout_saved_on_a_wider_screen_leaves_the_film_room(qtbot, app_settings, bundled_model):
    """Docks of a 1920-px session came back at their widths on a 1024-px screen and left the
    film a quarter of the window; a narrow window now fits them, as at first start."""
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    c1 = StudyController(app_settings)
    w1 = MainWindow(c1)
    w1.show()
    w1.resize(780, 560)  # the offscreen screen is 800x600
    qtbot.waitExposed(w1)
    w1.resizeDocks([w1.studies_dock, w1.result_dock], [330, 370], Qt.Orientation.Horizontal)
    QApplication.processEvents()
    wide, film = w1.studies_dock.width() + w1.result_dock.width(), w1.viewer.width()
    w1.close()
    c2 = StudyController(app_settings)
    w2 = MainWindow(c2)
    qtbot.addWidget(w2)
    w2.show()
    QApplication.processEvents()
    assert w2.studies_dock.width() + w2.result_dock.width() < wide * 0.9
    assert w2.viewer.width() > film + 50
    w2.close()
    w1.deleteLater()
    QApplication.processEvents()


def test_changing_the_provider_restarts_the_engine(window, qtbot, kermany_samples):
    c = window.controller
    old_worker = c.worker
    c.settings.provider = "CPUExecutionProvider"
    c.apply_settings({"engine"})
    assert c.worker is not old_worker and not old_worker.alive
    with qtbot.waitSignal(c.engine_status, timeout=120_000) as blocker:
        window.open_paths([kermany_samples["PNEUMONIA"][2]])
    assert blocker.args == ["CPUExecutionProvider", ""]
    wait_idle(qtbot, c)
    assert c.model.items()[0].prediction.provider == "CPUExecutionProvider"
    assert "CPU" in window.engine_label.text()
