"""Where LungLens keeps what it writes for the user: the worklist database and the audit log.

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
