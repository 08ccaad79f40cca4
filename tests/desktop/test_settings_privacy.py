"""The app's settings name the films opened last: only their user may read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from desktop.settings import AppSettings


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_the_settings_that_name_the_last_films_are_this_accounts_alone(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "LungLens"  # as ~/.config/LungLens, left open by a lax umask
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    ini = folder / "LungLens.conf"
    ini.write_text("[files]\nlast_dir=/films\n")
    ini.chmod(0o644)
    settings = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(ini.stat().st_mode) == 0o600
    settings.add_recent("/films/Smith_John_chest.dcm")  # a file name that names its patient
    settings.sync()
    assert "Smith_John" in ini.read_text()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(ini.stat().st_mode) & 0o077 == 0
