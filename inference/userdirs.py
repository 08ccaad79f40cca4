"""Where LungLens keeps what it writes for the user: the worklist database, the audit log
and the site profiles the user added.

One place for every per-user file so Settings can show it and tests can redirect it
(``LUNGLENS_DATA_DIR``) without touching the real profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "LungLens"
ENV_OVERRIDE = "LUNGLENS_DATA_DIR"


def data_dir(create: bool = True) -> Path:
    """The per-user data directory (``LUNGLENS_DATA_DIR`` overrides the platform default)."""
    override = os.environ.get(ENV_OVERRIDE)
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def worklist_path() -> Path:
    """The SQLite worklist database."""
    return data_dir() / "worklist.sqlite3"


def audit_log_path() -> Path:
    """The append-only JSON-lines audit log."""
    return data_dir() / "audit.jsonl"


def profiles_dir() -> Path:
    """The site profiles imported into the app or made by its calibration wizard.

    Private to the user (0700; the files in it are written 0600): a profile decides which
    studies are flagged, so only this account should be able to swap one in.
    """
    path = data_dir() / "profiles"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is ignored when the folder already existed
    return path
