"""The reading room (issue 17): removing studies is undoable and keeps every count in step;
focus is visible; window/level reads as numbers a reader uses and the preset box follows
it; right-drag always windows; tag values read in full; export remembers its folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFileDialog

from desktop import theme
from desktop.models.study_item import metadata_line
from desktop.platform_quirks import fit_top_level
from desktop.settings import AppSettings
from desktop.widgets.qt_main_window import CUSTOM_WINDOW
from desktop.widgets.qt_tags import TagsPanel
from inference.presentation import present
from inference.worklist import Worklist
from tests.desktop.gui_helpers import mouse_drag, wait_idle

pytestmark = pytest.mark.gui


def _stored(window) -> list:
    with Worklist(window.controller.worklist_path) as wl:
        return wl.records()


def _counts(window) -> tuple[int, str, str]:
    """What the three counts say: the list's rows, its header and the status bar."""
    return (window.study_list.proxy.rowCount(), window.study_list.count_label.text(),
            window.progress_label.text())


def _click_rows(qtbot, window, rows: list[int]) -> None:
    """Click the first row, Ctrl-click the others, as a reader selects several studies."""
    view = window.study_list.view
    for i, row in enumerate(rows):
        rect = view.visualRect(window.study_list.proxy.index(row, 0))
        modifier = Qt.KeyboardModifier.ControlModifier if i else Qt.KeyboardModifier.NoModifier
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


# ------------------------------------------------------------------------------ delete
def test_removing_studies_says_so_offers_undo_and_keeps_every_count_in_step(window, qtbot, kermany_samples):
    c = window.controller
    films = kermany_samples["NORMAL"][:5]
    window.open_paths(films)
    wait_idle(qtbot, c)
    assert _counts(window) == (5, "5 studies · 5 analysed", "5 of 5 analysed")
    before = _stored(window)
    assert len(before) == 5

    shown = window.shown_items()
    chosen = [shown[row].path for row in (0, 2, 3)]
    _click_rows(qtbot, window, [0, 2, 3])
    window.act_remove.trigger()  # Del
    wait_idle(qtbot, c)

    # Gone from the list, from the worklist file and from every count, and the reader is told.
    assert {it.path for it in c.model.items()}.isdisjoint(chosen)
    assert _counts(window) == (2, "2 studies · 2 analysed", "2 of 2 analysed")
    assert {r.study_path for r in _stored(window)} == {str(p) for p in films} - {str(p) for p in chosen}
    message = window.statusBar().currentMessage()
    assert "Removed 3 studies from the list and the worklist file" in message and "Ctrl+Z" in message
    assert window.undo_button.isVisibleTo(window) and window.act_undo.isEnabled()
    assert c.context is not None and c.context.item.path not in chosen  # a remaining study is on screen

    # Undo puts back the same rows of the worklist file, the same list, the same counts.
    window.act_undo.trigger()  # Ctrl+Z
    assert _counts(window) == (5, "5 studies · 5 analysed", "5 of 5 analysed")
    assert _stored(window) == before  # same ids, same results
    assert {it.path for it in c.model.items()} == set(films)
    assert all(it.prediction is not None and it.thumbnail is not None for it in c.model.items())
    assert "Put 3 studies back" in window.statusBar().currentMessage()
    assert not window.undo_button.isVisibleTo(window) and not window.act_undo.isEnabled()


def test_ctrl_z_takes_back_the_last_action_first_then_the_ones_before(window, qtbot, kermany_samples, monkeypatch):
    """Ctrl+Z after a wrong verdict key put back a study removed long before, and left the
    verdict; then a verdict took the removal's Undo away. Now Ctrl+Z undoes the last action, a
    verdict as a removal, and the next Ctrl+Z the one before."""
    c = window.controller
    films = kermany_samples["NORMAL"][:3]
    window.open_paths(films)
    wait_idle(qtbot, c)
    gone = window.shown_items()[2].path
    window.study_list.select_key(c.model.key_of_path(gone))
    wait_idle(qtbot, c)
    window.remove_selected()
    on_screen = window.shown_items()[0]
    window.study_list.select_key(c.model.key_of_path(on_screen.path))
    wait_idle(qtbot, c)
    key = c.model.key_of_path(on_screen.path)
    clock = iter(["2026-12-02T03:00:00+00:00", "2026-12-02T03:00:07+00:00"])
    monkeypatch.setattr("inference.worklist.utc_now", lambda: next(clock))
    window.give_verdict("pneumonia")
    window.give_verdict("unsure")  # the wrong key
    assert c.model.item(key).record.verdict_at == "2026-12-02T03:00:07+00:00"
    assert "Ctrl+Z" in window.statusBar().currentMessage() and window.act_undo.text() == "Undo Verdict"
    window.act_undo.trigger()
    assert c.model.item(key).record.verdict == "pneumonia" and c.model.key_of_path(gone) is None
    assert c.model.item(key).record.verdict_at == "2026-12-02T03:00:00+00:00"  # as given, not at the undo
    assert "back to pneumonia" in window.statusBar().currentMessage() and window.act_undo.text() == "Undo Verdict"
    with Worklist(window.controller.worklist_path) as wl:
        assert {r.study_path: r.verdict for r in wl.records()}[str(on_screen.path)] == "pneumonia"
    window.act_undo.trigger()  # the first verdict
    assert c.model.item(key).record.verdict is None and window.act_undo.text() == "Undo Remove"
    assert c.model.key_of_path(gone) is None
    window.act_undo.trigger()  # the removal before the verdicts
    assert c.model.key_of_path(gone) is not None and "Put 1 study back" in window.statusBar().currentMessage()
    assert not window.act_undo.isEnabled()
    window.act_undo.trigger()  # nothing more: nothing changes
    assert c.model.key_of_path(gone) is not None and c.model.item(key).record.verdict is None


def test_one_removal_names_the_study(window, qtbot, kermany_samples):
    c = window.controller
    window.open_paths(kermany_samples["PNEUMONIA"][:2])
    wait_idle(qtbot, c)
    item = window.shown_items()[1]
    window.act_next.trigger()  # N: from the first study to the second, which alone is selected
    assert window.study_list.selected_keys() == [c.model.key_of_path(item.path)]
    window.remove_selected()
    assert window.statusBar().currentMessage().startswith(f"Removed {item.name} from the list and the worklist file")
    assert _counts(window) == (1, "1 study · 1 analysed", "1 of 1 analysed") and len(_stored(window)) == 1


# ------------------------------------------------------------------------------- focus
def _rules(stylesheet: str) -> dict[str, str]:
    """selector -> declarations of every rule in a Qt stylesheet."""
    rules = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", stylesheet):
        for selector in selectors.split(","):
            rules[" ".join(selector.split())] = body
    return rules


@pytest.mark.parametrize("selector", ["QListView:focus", "QTreeView:focus", "QTabBar::tab:focus", "QSlider:focus",
                                      "QComboBox:focus", "QPushButton:focus", "QCheckBox:focus"])
def test_the_stylesheet_rings_focused_controls_in_the_focus_colour(selector):
    rules = _rules(theme.STYLESHEET)
    assert selector in rules and theme.FOCUS in rules[selector], selector
    assert theme.FOCUS not in (theme.ACCENT, theme.BORDER)  # not a hover or a frame


def test_spin_boxes_show_their_arrows(qapp):
    """Once the stylesheet gave spin boxes a border, their buttons were empty dark squares (the
    wizard's target sensitivity): the application's stylesheet draws arrows from shipped PNGs."""
    from PySide6.QtGui import QImage

    from desktop.app import make_application

    make_application()  # the theme, as the app starts (the test QApplication)
    rules = _rules(qapp.styleSheet())
    for arrow in ("QDoubleSpinBox::up-arrow", "QDoubleSpinBox::down-arrow", "QSpinBox::up-arrow"):
        (path,) = re.findall(r'url\("([^"]+)"\)', rules[arrow])
        image = QImage(path)
        assert not image.isNull(), path  # shipped, and Qt reads it
        assert QColor(image.pixel(image.width() // 2, image.height() // 2)).lightness() > 180  # pale on the dark theme


def test_the_focused_study_list_shows_a_ring_and_its_current_row(window, qtbot, kermany_samples):
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:2])
    wait_idle(qtbot, c)
    view = window.study_list.view
    window.activateWindow()
    view.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(view.hasFocus)
    focused = view.grab().toImage()
    middle = focused.height() // 2
    assert QColor(focused.pixel(0, middle)) == QColor(theme.FOCUS)  # the ring around the list
    row = view.visualRect(view.currentIndex()).translated(view.viewport().pos())
    assert QColor(focused.pixel(row.left() + 1, row.center().y())) == QColor(theme.FOCUS)  # the current row
    window.viewer.setFocus()
    qtbot.waitUntil(lambda: not view.hasFocus())
    assert QColor(view.grab().toImage().pixel(0, middle)) != QColor(theme.FOCUS)


# ------------------------------------------------------------------------ window/level
def test_window_level_reads_as_whole_numbers_and_the_preset_box_follows(window, qtbot, real_dicom):
    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    box = window.preset_box
    assert box.currentData() == "default"

    mouse_drag(window.viewer, 60, 30)
    assert re.fullmatch(r"window: level -?\d+, width \d+", window.cursor_label.text()), window.cursor_label.text()
    assert box.currentIndex() == -1 and box.placeholderText() == f"Window: {CUSTOM_WINDOW}"

    window.apply_preset("lung")
    assert box.currentData() == "lung"
    mouse_drag(window.viewer, -20, 0)
    assert box.currentIndex() == -1
    window.apply_preset("lung")  # chosen again: the box names it again
    assert box.currentData() == "lung"
    window.act_reset.trigger()  # R: the study's own window
    assert box.currentData() == "default"


def test_right_drag_windows_in_window_level_mode_too(window, qtbot, real_dicom):
    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    viewer, display = window.viewer, c.display
    window.act_wl.trigger()  # W
    assert viewer.vb.wl_mode
    for button in (Qt.MouseButton.RightButton, Qt.MouseButton.LeftButton):
        view, level = viewer.vb.viewRect(), display.window
        mouse_drag(viewer, 50, 20, button)
        assert display.window != pytest.approx(level), button  # windowed...
        assert viewer.vb.viewRect() == view, button  # ...not zoomed or panned
    window.act_wl.trigger()  # W off: the left button pans, the right one still windows
    view, level = viewer.vb.viewRect(), display.window
    mouse_drag(viewer, 50, 20, Qt.MouseButton.LeftButton)
    assert viewer.vb.viewRect() != view and display.window == level
    mouse_drag(viewer, 50, 20)
    assert display.window != pytest.approx(level)


# ------------------------------------------------------------------------------- tags
def test_a_long_tag_value_wraps_and_is_whole_in_its_tooltip(qtbot):
    panel = TagsPanel()
    qtbot.addWidget(panel)
    fit_top_level(panel)  # a dock's content, shown here as a window of its own
    panel.resize(360, 400)
    panel.show()
    long = "Chest PA and lateral, follow-up of right lower lobe consolidation after antibiotics " * 2
    panel.set_tags([("(0008,0060)", "Modality", "CR"), ("(0008,1030)", "StudyDescription", long)], False)
    short_row, long_row = (panel.tree.topLevelItem(i) for i in range(2))
    qtbot.waitUntil(lambda: panel.tree.visualItemRect(long_row).height()
                    >= 2 * panel.tree.visualItemRect(short_row).height())
    assert all(long_row.toolTip(col) == f"StudyDescription: {long}" for col in range(3))


# ----------------------------------------------------------------------------- export
def test_export_opens_in_the_last_export_folder_and_remembers_it(window, qtbot, monkeypatch, tmp_path,
                                                                kermany_samples, app_settings):
    c = window.controller
    film = kermany_samples["PNEUMONIA"][0]
    window.open_paths([film])
    wait_idle(qtbot, c)
    exports = tmp_path / "exports"
    exports.mkdir()
    offered: list[Path] = []

    def save_as(parent, title, default, *args):  # noqa: ANN001, ARG001
        """The reader accepts the offered name, in the exports folder."""
        offered.append(Path(default))
        return str(exports / Path(default).name), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_as))
    window.act_export.trigger()
    assert offered[0].parent == film.parent  # before any export: the films' folder
    assert (exports / offered[0].name).is_file()
    (exports / offered[0].name).unlink()

    window.act_export.trigger()
    window.act_export_worklist.trigger()
    assert [p.parent for p in offered[1:]] == [exports, exports]
    assert all((exports / p.name).is_file() for p in offered[1:])
    app_settings.sync()
    reopened = AppSettings(QSettings(app_settings.q.fileName(), QSettings.Format.IniFormat))
    assert reopened.last_export_dir == str(exports)  # the next session starts there too


def test_a_row_shows_in_its_tooltip_what_it_elides(window, qtbot, real_dicom):
    c = window.controller
    window.open_paths([real_dicom])
    wait_idle(qtbot, c)
    (item,) = c.model.items()
    tip = c.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    line = metadata_line(item.metadata, c.model.show_identifiers)
    assert line and tip.splitlines() == [str(real_dicom), line, present(item.prediction).summary]


def test_the_note_about_a_film_shown_reduced_goes_when_another_film_is_shown(window, qtbot, tmp_path,
                                                                             kermany_samples):
    """'Shown at 3000x3000 px (1/2 of 6000x6000)' must not stay under the next film."""
    import numpy as np
    from PIL import Image

    from inference.loaders.pixels import DISPLAY_MAX_SIDE

    side = 2 * DISPLAY_MAX_SIDE + 2
    big = tmp_path / "big.png"
    Image.fromarray(np.tile(np.linspace(0, 255, side, dtype=np.uint8), (side, 1))).save(big)
    small = kermany_samples["NORMAL"][0]
    window.open_paths([big, small])
    wait_idle(qtbot, window.controller)
    window.study_list.select_key(window.controller.model.key_of_path(big))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Shown at "), timeout=20000)
    window.study_list.select_key(window.controller.model.key_of_path(small))
    qtbot.waitUntil(lambda: window.controller.context is not None and window.controller.context.item.path == small,
                    timeout=20000)
    assert window.statusBar().currentMessage() == ""
