"""Fixtures for the desktop tests: a throw-away settings file and data directory, the window,
real studies in tmp.

Every test gets its own LUNGLENS_DATA_DIR (worklist + audit log) and its own QSettings
location, so no test touches the user's real files and no test sees another's worklist."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest



@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory (and QSettings location) for this test alone; returns the data dir."""
    from PySide6.QtCore import QSettings

    data = tmp_path / "lunglens-data"
    monkeypatch.setenv("LUNGLENS_DATA_DIR", str(data))
    config = tmp_path / "lunglens-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))  # subprocesses started by the test
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(config))
    return data


@pytest.fixture
def app_settings(tmp_path: Path):
    """AppSettings on a temporary INI file: tests never touch the user's real settings."""
    from PySide6.QtCore import QSettings

    from desktop.settings import AppSettings

    return AppSettings(QSettings(str(tmp_path / "lunglens-settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    """The real model in resources/models; the end-to-end tests are meaningless without it."""
    from inference.engine import find_manifest
    from inference.errors import ModelError

    try:
        return find_manifest()
    except ModelError as err:
        pytest.fail(f"the bundled model is missing: {err}")


@pytest.fixture
def window(qtbot, app_settings, bundled_model, qapp) -> Iterator:
    """The real main window with the real engine, themed as the app themes it."""
    from desktop.app import make_application, settle_memory
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    make_application()  # theme + pyqtgraph options on the test QApplication
    controller = StudyController(app_settings)
    win = MainWindow(controller)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    settle_memory()  # as main() does once the window exists
    yield win
    win.close()
    assert controller.worker.shutdown(10.0), "background threads did not stop"


@pytest.fixture
def study_copies(tmp_path: Path, kermany_samples) -> callable:
    """make(n) -> a folder of ``n`` real Kermany radiographs (symbolic links, cycled)."""

    def make(n: int, name: str = "batch") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        sources = [p for label in ("NORMAL", "PNEUMONIA") for p in kermany_samples[label]]
        for i in range(n):
            src = sources[i % len(sources)]
            os.symlink(src, folder / f"study-{i:04d}{src.suffix}")
        return folder

    return make
