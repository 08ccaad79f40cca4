"""End to end through the real window, the real bundled model and real radiographs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from desktop.models.study_item import Status
from inference import heatmap
from inference.presentation import present
from tests.desktop.gui_helpers import mouse_drag, wait_idle

pytestmark = pytest.mark.gui


def _open_via_menu(window, monkeypatch, paths: list[Path]) -> None:
    """File -> Open, with the file dialog answering ``paths`` (the same code path as a user)."""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(p) for p in paths], "")))
    window.act_open.trigger()


def test_real_dicom_shows_the_engines_result(window, qtbot, monkeypatch, real_dicom, tmp_path):
    from inference.engine import Engine
    from inference.loaders import load_study

    c = window.controller
    with qtbot.waitSignal(c.result_ready, timeout=120_000):
        _open_via_menu(window, monkeypatch, [real_dicom])
    wait_idle(qtbot, c)
    ctx = c.context
    assert ctx is not None and ctx.study is not None and ctx.prediction is not None
    assert ctx.item.path == real_dicom

    # The gauge shows what the engine computes for this file.
    study = load_study(real_dicom)
    expected = Engine.load().predict(study)
    gauge = window.result_panel.gauge
    assert gauge.value == pytest.approx(expected.probability, abs=1e-5)
    assert gauge.threshold == pytest.approx(expected.threshold)
    words = present(expected)
    assert window.result_panel.headline_text() == words.headline
    assert gauge.number_text() == words.probability
    assert window.result_panel.detail_text("figures") == words.figures
    assert window.result_panel.detail_text("profile") == words.profile
    assert window.result_panel.detail_text("model") == f"{expected.model.name} {expected.model.version}"
    assert window.result_panel.detail_text("provider") == "CPU"
    for w in expected.warnings:  # every warning is on screen
        assert w in window.result_panel.warning_texts()
    assert window.result_panel.warnings_frame.isVisibleTo(window) == bool(window.result_panel.warning_texts())

    # Full-resolution image with the DICOM default window; the heat-map layer is the renderer's,
    # stretched over exactly the image's rectangle, shown by default only where it applies.
    viewer = window.viewer
    assert viewer.image_item.image.shape == study.shape
    c0, w0 = study.window
    assert viewer.image_item.getLevels() == pytest.approx((c0 - w0 / 2, c0 + w0 / 2))
    np.testing.assert_allclose(viewer.attribution.grid, expected.attribution.grid, atol=1e-5)
    layer = heatmap.layer(expected.attribution, heatmap.layer_shape(study.shape, heatmap.VIEW_LAYER_SIDE),
                          heatmap.HeatmapStyle(1.0))
    assert np.abs(viewer.overlay_item.image.astype(int) - layer).max() <= 1
    rect = viewer.overlay_item.mapRectToParent(viewer.overlay_item.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (0, 0, study.shape[1], study.shape[0])
    applies = heatmap.applies(expected)
    assert viewer.overlay_item.isVisible() is applies is c.display.overlay_visible
    assert window.viewer.legend.caption.text() == heatmap.caption(expected, applies)
    window.act_heatmap.trigger()  # H: the other way round for this study
    assert viewer.overlay_item.isVisible() is not applies
    if not applies:  # shown on request where it does not apply: muted, and it says so
        assert viewer.overlay_item.opacity() == pytest.approx(c.display.opacity * heatmap.MUTED_FACTOR)
        assert window.viewer.legend.caption.text().startswith("Heat-map muted")
    window.act_heatmap.trigger()
    assert viewer.overlay_item.isVisible() is applies

    # Window/level by right-drag changes the displayed levels.
    before = viewer.image_item.getLevels()
    mouse_drag(viewer, 60, 30)
    after = viewer.image_item.getLevels()
    assert after != pytest.approx(before)
    assert (after[1] - after[0]) > (before[1] - before[0])  # dragging right widens the window
    window.act_reset.trigger()
    assert viewer.image_item.getLevels() == pytest.approx(before)

    # Tags panel: the real header is listed and searchable.
    window.tags.filter.setText("Modality")
    rows = window.tags.visible_rows()
    assert rows and all("modality" in " ".join(r).lower() for r in rows)

    # Export view (Ctrl+E) writes a PNG of the viewer.
    out = tmp_path / "view.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    window.act_export.trigger()
    assert out.stat().st_size > 10_000


def test_the_window_decodes_nothing_itself(window, qtbot, monkeypatch, real_dicom, kermany_samples):
    """Every file is decoded in the analysis process, for the batch and for the screen alike:
    the window's own loaders are made to fail, and the studies are still analysed and shown."""
    import inference.loaders as loaders

    def refuse(*args, **kwargs):
        raise AssertionError("a file was decoded in the window's process")

    for name in ("load_study", "load_dicom", "load_raster"):
        monkeypatch.setattr(loaders, name, refuse)
    c = window.controller
    _open_via_menu(window, monkeypatch, [real_dicom, kermany_samples["PNEUMONIA"][0]])
    wait_idle(qtbot, c)
    assert [it.status for it in c.model.items()] == [Status.DONE, Status.DONE]
    for row in range(c.model.rowCount()):
        c.select(c.model.key_at(row))
        wait_idle(qtbot, c)
        item = c.model.item(c.model.key_at(row))
        assert c.context is not None and c.context.study is not None and not c.context.problem
        assert c.context.study.path == item.path


def test_corrupt_file_fails_alone(window, qtbot, monkeypatch, tmp_path, kermany_samples, real_dicom):
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(real_dicom.read_bytes()[:3000])  # a DICOM cut in its pixel data
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    good = [kermany_samples["NORMAL"][0], kermany_samples["PNEUMONIA"][0]]
    _open_via_menu(window, monkeypatch, [good[0], corrupt, text, good[1]])
    wait_idle(qtbot, window.controller)
    items = {it.path.name: it for it in window.controller.model.items()}
    assert items["corrupt.dcm"].status is Status.ERROR and "corrupt.dcm" in items["corrupt.dcm"].error
    assert items["notes.png"].status is Status.ERROR and "notes.png" in items["notes.png"].error
    assert [items[p.name].status for p in good] == [Status.DONE, Status.DONE]
    assert "2 failed" in window.study_list.count_label.text()
    assert not QApplication.activeModalWidget()  # no dialog cascade


def test_cancel_stops_a_batch(window, qtbot, study_copies, monkeypatch):
    """Once the reader says Yes to "Stop analysing?" (the "No" case: test_keyboard_reading.py)."""
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Yes)
    c = window.controller
    folder = study_copies(60)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: c.model.rowCount() == 60, timeout=10_000)
    qtbot.waitUntil(lambda: c.model.counts()[Status.DONE] >= 2, timeout=120_000)
    assert window.cancel_button.isVisible()
    window.cancel_button.click()
    assert asked == ["Stop the batch"]
    wait_idle(qtbot, c, 30_000)
    counts = c.model.counts()
    assert counts[Status.CANCELLED] > 0
    assert counts[Status.DONE] + counts[Status.CANCELLED] == 60
    done = counts[Status.DONE]
    qtbot.wait(500)
    assert c.model.counts()[Status.DONE] == done  # nothing runs after cancel
    assert not window.cancel_button.isVisible()
    assert "cancelled" in window.progress_label.text()


def test_closing_mid_batch_is_clean(qtbot, app_settings, bundled_model, study_copies):
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    c = StudyController(app_settings)
    win = MainWindow(c)
    win.show()
    win.open_paths([study_copies(80)])
    qtbot.waitUntil(lambda: c.model.counts()[Status.DONE] >= 1, timeout=120_000)
    t0 = time.monotonic()
    win.close()
    closed_in = time.monotonic() - t0
    assert not c.worker.alive
    assert not [t.name for t in threading.enumerate() if t.name.startswith("lunglens-")]
    assert closed_in < 10.0
    win.deleteLater()
    qtbot.wait(50)


def test_at_first_start_the_window_fits_the_screen(qtbot, app_settings):
    """It opened at 1440 x 900 whatever the screen: taller than a 1366 x 768 laptop's."""
    from desktop.widgets.qt_main_window import FIRST_SIZE
    from tests.desktop.gui_helpers import close_window, open_window

    win = open_window(qtbot, app_settings)
    room = win.screen().availableGeometry()
    assert room.width() < FIRST_SIZE[0] or room.height() < FIRST_SIZE[1]  # the offscreen screen is 800 x 800
    assert win.frameGeometry().width() <= room.width() and win.frameGeometry().height() <= room.height()
    assert room.contains(win.frameGeometry().center())
    close_window(win)


def test_settings_and_about_fit_a_small_screen_and_scroll(window):
    """Settings (1250 x 900) and About (720 x 780) opened taller than a 1024 x 600 netbook's
    screen, their buttons out of reach; the offscreen screen is 800 x 800."""
    from PySide6.QtWidgets import QDialogButtonBox, QScrollArea

    from desktop.widgets.qt_about_dialog import AboutDialog
    from desktop.widgets.qt_settings_dialog import SettingsDialog
    from inference.paths import models_dir

    c = window.controller
    room = window.screen().availableGeometry()
    for dialog in (SettingsDialog(c.settings, [], "", c.profile, window, worklist_path=c.worklist_path,
                                  audit_path=c.audit_path, shipped_profile=c.shipped_profile),
                   AboutDialog(c.manifest, c.profile, models_dir() / "MODEL_CARD.md", window)):
        dialog.show()
        assert dialog.height() <= room.height() and dialog.width() <= room.width(), type(dialog).__name__
        buttons = dialog.findChild(QDialogButtonBox)
        assert buttons.isVisible() and dialog.rect().contains(buttons.geometry())
        assert dialog.findChildren(QScrollArea)  # what does not fit scrolls
        dialog.close()


def test_a_batch_can_be_cancelled_while_its_folder_is_still_being_listed(window, qtbot, study_copies, monkeypatch):
    """Cancel was disabled until the first files were listed, and a Cancel then let the
    listing go on: all 2,000 films were analysed."""
    from tests.desktop.gui_helpers import wait_idle

    c = window.controller
    folder = study_copies(300)
    window.open_paths([folder])
    assert window.act_cancel.isEnabled() and window.progress_label.text() == "listing files…"
    answers = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.append(a[2]) or QMessageBox.StandardButton.Yes)
    window.act_cancel.trigger()  # before the listing has handed over a single file (Esc asks first)
    assert answers and "still being listed" in answers[0]
    wait_idle(qtbot, c)
    assert c.model.rowCount() == 0 and not window.act_cancel.isEnabled()
    window.open_paths([folder])  # and the next opening is not dropped
    wait_idle(qtbot, c)
    assert c.model.rowCount() == 300


def test_on_a_narrow_first_window_the_film_gets_room_and_the_result_panel_is_not_cut(qtbot, app_settings):
    """At 1024 x 600 the list's 330 px and the panel's 370 px left the film 260 px."""
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    win = MainWindow(StudyController(app_settings))  # a first start: no saved layout
    qtbot.addWidget(win)
    win.resize(1024, 600)
    win.show()
    qtbot.waitUntil(lambda: win.viewer.width() >= 400, timeout=3000)  # 312 px before
    panel = win.result_dock.widget()
    assert panel.widget().width() <= panel.viewport().width()  # its words are not cut at the right
    win.close()
    assert win.controller.worker.shutdown(10.0)
