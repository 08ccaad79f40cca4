"""Where LungLens keeps what it writes for the user: the worklist database, the audit log
and the site profiles the user added -- and how those files are kept private.

One place for every per-user file so Settings can show it and tests can redirect it
(``LUNGLENS_DATA_DIR``) without touching the real profile.

The worklist holds patient names and IDs, so the data folder is the user's alone (0700) and
every file LungLens creates in it is 0600 *from its creation*: a file created 0644 and
chmodded afterwards is readable by anyone who opens it in between. Folders and files an
older LungLens left readable are tightened when met. What the user exports elsewhere (a
PDF, a DICOM file, a CSV, a picture) is written 0600 as well, by the helpers here: it
carries patient data too, and sharing it is the user's choice to make. On Windows the modes
mean nothing and the folder's ACL (the user's profile) is what keeps it private.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TextIO

import platformdirs

APP_NAME = "LungLens"
ENV_OVERRIDE = "LUNGLENS_DATA_DIR"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def data_dir(create: bool = True) -> Path:
    """The per-user data directory (``LUNGLENS_DATA_DIR`` overrides the platform default),
    created private (0700) when ``create``."""
    override = os.environ.get(ENV_OVERRIDE)
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if create:
        private_dir(path)
    return path


def worklist_path(create: bool = True) -> Path:
    """The SQLite worklist database (its folder created when ``create``)."""
    return data_dir(create) / "worklist.sqlite3"


def audit_log_path(create: bool = True) -> Path:
    """The append-only JSON-lines audit log (its folder created when ``create``)."""
    return data_dir(create) / "audit.jsonl"


def profiles_dir() -> Path:
    """The site profiles imported into the app or made by its calibration wizard.

    Private like the rest of the data folder: a profile decides which studies are flagged,
    so only this account should be able to swap one in.
    """
    return private_dir(data_dir() / "profiles")


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this account can enter (created 0700, with its parents)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tighten(path)  # mkdir's mode does not apply to a folder that already existed
    return path


def tighten(path: Path) -> None:
    """Take group and other access away from a file or folder of this account that an older
    LungLens (or a lax umask) left open. Nothing happens to what another account owns, nor to
    a shared folder (sticky or world-writable, like /tmp): closing that would break others."""
    if os.name != "posix":
        return
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    shared = stat.S_ISDIR(st.st_mode) and mode & (stat.S_ISVTX | stat.S_IWOTH)
    if mode & 0o077 and st.st_uid == os.getuid() and not shared:
        try:
            path.chmod(mode & ~0o077)
        except OSError as exc:
            if exc.errno != errno.EROFS:  # read-only: whoever writes there next says so, with the reason
                raise


def create_private(path: Path) -> bool:
    """Create ``path`` empty and 0600 unless it exists (an existing one is tightened);
    True when this call created it. Racing creators are fine: exactly one creates it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE_MODE)
    except FileExistsError:
        tighten(path)
        return False
    os.close(fd)
    return True


def open_private(path: Path, encoding: str = "utf-8", newline: str | None = None) -> TextIO:
    """Open ``path`` for writing text, emptied, 0600 from its creation (an existing file is
    tightened): for outputs written as they come, such as ``classify --csv``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), PRIVATE_FILE_MODE)
    tighten(Path(path))
    return os.fdopen(fd, "w", encoding=encoding, newline=newline)


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> Path:
    """Replace ``path`` with ``data`` atomically and durably (on disk before it is named), the
    new file created with ``mode`` (less the umask). Whatever stops the write -- a full disk,
    Ctrl+C, SIGTERM -- leaves the old ``path`` as it was and no ``.tmp`` beside it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover from a crash may carry another mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_private(path: Path, data: bytes) -> Path:
    """:func:`write_atomically`, the new file 0600 from its creation."""
    return write_atomically(path, data, PRIVATE_FILE_MODE)
