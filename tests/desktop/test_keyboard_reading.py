"""A night's reading by keyboard: what a tired reader's keys reach, and what each says back."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop.models.study_item import Status
from tests.desktop.gui_helpers import wait_idle


def _focus_home(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.activateWindow()
    window.study_list.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.study_list.view)


def test_tab_reaches_only_what_is_seen(window, qtbot, kermany_samples):  # type: ignore[no-untyped-def]
    """Tab stopped on the DICOM tags panel lying under the Result tab (typed keys vanished into
    its filter) and on the opacity slider's frame, where Right set the heat-map to 1 %."""
    c = window.controller
    window.open_paths(kermany_samples["PNEUMONIA"][:2])
    wait_idle(qtbot, c)
    window.study_list.select_row(0)
    wait_idle(qtbot, c)
    _focus_home(window, qtbot)
    stops = []
    for _ in range(12):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        stops.append(QApplication.focusWidget())
    assert window.tags.filter not in stops and window.tags.tree not in stops
    assert window.overlay_controls.opacity not in stops  # the frame; the slider inside is a stop
    slider = next(w for w in stops if w.parent() is window.overlay_controls.opacity)
    assert window.viewer in stops and window.result_dock.widget() in stops
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert round(c.display.opacity * 100) == 46  # one step up from 45, not the frame's own 1
    # Chosen, the tags tab is reachable again.
    window.tags_dock.raise_()
    qtbot.waitUntil(lambda: window.tags.filter.focusPolicy() != Qt.FocusPolicy.NoFocus)


def test_the_cancel_button_asks_before_it_stops_the_batch(window, qtbot, study_copies, monkeypatch):  # type: ignore[no-untyped-def]
    """Space on the focused Cancel button stopped 292 studies without a word, where Esc asks."""
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    c = window.controller
    window.open_paths([study_copies(40)])
    qtbot.waitUntil(lambda: c.busy)
    window.cancel_button.click()
    assert asked and "Stop analysing?" in asked[0]
    wait_idle(qtbot, c)
    assert c.model.counts()[Status.CANCELLED] == 0 and c.model.counts()[Status.DONE] == 40  # "No": it went on


def test_verdict_keys_say_what_they_did_and_why_not(window, qtbot, kermany_samples, monkeypatch):  # type: ignore[no-untyped-def]
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:2])
    wait_idle(qtbot, c)
    window.study_list.select_row(0)
    wait_idle(qtbot, c)
    window.give_verdict(None)  # Shift+W with nothing given
    assert window.statusBar().currentMessage().endswith("has no verdict to withdraw")
    assert not window.act_undo.isEnabled()
    # A worklist gone (locked by another program): the verdict is not kept, and it says so.
    monkeypatch.setattr(c, "worklist", None)
    window.give_verdict("pneumonia")
    assert window.statusBar().currentMessage().startswith("Verdict not saved")
    assert "saves them" not in window.statusBar().currentMessage()


def test_the_ends_of_the_list_are_said(window, qtbot, kermany_samples):  # type: ignore[no-untyped-def]
    """N on the last study said nothing: the end of the list read as a hang."""
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:2])
    wait_idle(qtbot, c)
    window.study_list.select_row(1)
    wait_idle(qtbot, c)
    window.act_next.trigger()
    assert window.statusBar().currentMessage() == "This is the last study in the list"
    window.study_list.select_row(0)
    window.act_prev.trigger()
    assert window.statusBar().currentMessage() == "This is the first study in the list"


def _wheel_down(widget) -> None:  # type: ignore[no-untyped-def]
    """One notch of a wheel over the middle of ``widget``."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    QApplication.sendEvent(widget, QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120),
                                               Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                               Qt.ScrollPhase.NoScrollPhase, False))


def test_a_wheel_passing_over_the_sort_box_does_not_re_sort(window, qtbot, kermany_samples):  # type: ignore[no-untyped-def]
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:2] + kermany_samples["PNEUMONIA"][:1])
    wait_idle(qtbot, c)
    _focus_home(window, qtbot)
    box = window.study_list.sort_box
    # A real wheel focuses a WheelFocus widget before any filter sees it (sendEvent cannot show it).
    assert box.focusPolicy() == window.preset_box.focusPolicy() == Qt.FocusPolicy.StrongFocus
    before = box.currentText()
    _wheel_down(box)
    assert box.currentText() == before
    box.setFocus()  # chosen, it turns as a box does
    qtbot.waitUntil(box.hasFocus)
    _wheel_down(box)
    assert box.currentText() != before


def test_window_and_level_by_keys(window, qtbot, kermany_samples):  # type: ignore[no-untyped-def]
    """The mouse drag had been the only way to brighten a film or raise its contrast."""
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:1])
    wait_idle(qtbot, c)
    _focus_home(window, qtbot)
    start = c.display.window
    qtbot.keyClick(window.study_list.view, Qt.Key.Key_Equal)  # brighter: a lower level
    assert c.display.window[0] < start[0] and c.display.window[1] == start[1]
    qtbot.keyClick(window.study_list.view, Qt.Key.Key_BracketRight)  # more contrast: a narrower window
    assert c.display.window[1] < start[1]
    assert window.preset_box.currentIndex() == -1  # the box says the window is set by hand
    qtbot.keyClick(window.study_list.view, Qt.Key.Key_R)
    assert c.display.window == start
    c.display.set_invert(True)
    qtbot.keyClick(window.study_list.view, Qt.Key.Key_Equal)  # inverted, brighter is a higher level
    assert c.display.window[0] > start[0]


def test_a_verdict_is_undone_on_its_study_after_the_study_was_removed_and_put_back(window, qtbot, kermany_samples):  # type: ignore[no-untyped-def]
    """The put-back study is listed under a new key: the verdict's Undo had said "Select a
    study first" and was gone."""
    c = window.controller
    window.open_paths(kermany_samples["NORMAL"][:2])
    wait_idle(qtbot, c)
    window.study_list.select_row(0)
    wait_idle(qtbot, c)
    path = c.context.item.path
    window.give_verdict("pneumonia")
    window.remove_selected()
    assert c.model.key_of_path(path) is None
    window.act_undo.trigger()  # the removal
    assert c.model.key_of_path(path) is not None
    assert c.model.item(c.model.key_of_path(path)).record.verdict == "pneumonia"
    window.act_undo.trigger()  # the verdict, on the study as listed now
    assert c.model.item(c.model.key_of_path(path)).record.verdict is None
    assert window.statusBar().currentMessage() == f"Verdict on {path.name} withdrawn"
