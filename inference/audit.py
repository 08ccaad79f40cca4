"""The append-only audit trail: who analysed what, with which model, and what left the app.

One JSON object per line in the user data directory. Studies are named by their pixel
SHA-256 only -- never by patient name, ID, accession number, UID or file path -- so the log
can be handed to an auditor as it is. Each line is written with one ``write`` call and
fsynced; reading skips damaged lines and counts them, so a torn line never stops the app.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .userdirs import audit_log_path
from .worklist import WorklistRecord, utc_now


def current_user() -> str:
    """The OS account running LungLens ("unknown" when the platform cannot say)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 -- getuser raises OSError/KeyError depending on platform
        return "unknown"


@dataclass
class AuditEntries:
    """What :meth:`AuditLog.read` found: the readable entries and how many lines were damaged."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    damaged: int = 0


class AuditLog:
    """Appends events to the log file. One instance may be shared between threads."""

    def __init__(self, path: str | Path | None = None, app_version: str = __version__) -> None:
        self.path = Path(path) if path is not None else audit_log_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.app_version = app_version
        self._lock = threading.Lock()

    def _base(self, event: str) -> dict[str, Any]:
        return {"time": utc_now(), "event": event, "user": current_user(), "app_version": self.app_version}

    def log_analysis(self, record: WorklistRecord, cached: bool = False) -> dict[str, Any]:
        """One analysis, with the model and the site profile that produced it. ``cached``: the
        result came from the worklist, not a new inference."""
        entry = self._base("analysis")
        entry.update(
            cached=cached,
            model_name=record.model_name,
            model_version=record.model_version,
            model_sha256=record.model_sha256,
            profile_name=record.profile.name if record.profile else None,
            profile_sha256=record.profile.sha256 if record.profile else None,
            provider=record.provider,
            pixel_sha256=record.pixel_sha256,
            probability=round(record.probability, 6),
            threshold=record.threshold,
            operating_point=record.operating_point,
            label=record.label,
            in_scope=record.in_scope,
            warnings=list(record.warnings),
        )
        self._append(entry)
        return entry

    def log_export(
        self,
        what: str,
        fmt: str,
        destination: str | Path,
        pixel_sha256: list[str] | None = None,
        with_identifiers: bool = False,
    ) -> dict[str, Any]:
        """Something left the app: ``what`` ("report", "secondary_capture", "worklist"),
        ``fmt`` ("pdf", "dicom", "csv", "json"), the destination's file name (not its folder),
        the studies' pixel hashes and whether patient identifiers were included."""
        entry = self._base("export")
        entry.update(
            what=what,
            format=fmt,
            destination=Path(destination).name,
            pixel_sha256=list(pixel_sha256 or []),
            with_identifiers=with_identifiers,
        )
        self._append(entry)
        return entry

    def _append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            fd = os.open(self.path, flags, 0o600)
            try:
                # A line torn by a crash has no newline: start afresh so only it stays damaged.
                if os.fstat(fd).st_size:
                    os.lseek(fd, -1, os.SEEK_END)
                    if os.read(fd, 1) != b"\n":
                        line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> AuditEntries:
        """Every readable entry, oldest first, and the number of damaged lines skipped."""
        result = AuditEntries()
        for entry in self._lines():
            if entry is None:
                result.damaged += 1
            else:
                result.entries.append(entry)
        return result

    def _lines(self) -> Iterator[dict[str, Any] | None]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for raw in data.splitlines():
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                yield None
                continue
            yield entry if isinstance(entry, dict) else None
