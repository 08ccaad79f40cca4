"""Where the data lives (Settings) and how calibrated the model is (About -> Calibration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_settings_show_where_the_worklist_and_audit_log_are(window, qtbot, monkeypatch, isolated_user_dirs):
    from desktop.widgets.qt_settings_dialog import SettingsDialog

    opened: list[SettingsDialog] = []
    monkeypatch.setattr(SettingsDialog, "exec", lambda self: opened.append(self) or 0)
    window.act_settings.trigger()  # the menu's own path
    (dlg,) = opened
    qtbot.addWidget(dlg)
    assert dlg.worklist_path.text() == str(isolated_user_dirs / "worklist.sqlite3")
    assert dlg.audit_path.text() == str(isolated_user_dirs / "audit.jsonl")
    for label in (dlg.worklist_path, dlg.audit_path):
        assert label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert dlg.apply() == set()  # read-only: showing the paths changes nothing


def test_about_dialog_embeds_the_reliability_diagram(window, qtbot):
    from desktop.widgets.qt_about_dialog import AboutDialog

    c = window.controller
    dlg = AboutDialog(c.manifest, c.profile, Path("resources/models/MODEL_CARD.md").resolve(), window)
    qtbot.addWidget(dlg)
    assert [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())] == ["Site profile", "Model card"]
    shown = [b for b in c.profile.reliability if b["count"] > 0]
    assert dlg.reliability.bins == shown and shown
    assert dlg.reliability.ece == c.profile.metrics["ece_after"]
