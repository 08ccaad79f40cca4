"""The append-only, tamper-evident audit trail: who analysed what, with which model, what left
the app, which verdicts readers gave and who changed the rule that decides.

One JSON object per line in the user data directory (0600). Studies are named by their pixel
SHA-256 only -- never by patient name, ID, accession number, UID or file path -- so the log
can be handed to an auditor as it is. Each line is written with one ``write`` call and
fsynced; reading skips damaged lines and counts them, so a torn line never stops the app.

Each line carries ``prev_sha256``, the SHA-256 of the line before it (:data:`GENESIS` for a
log's first line), so a line changed, removed or inserted later breaks the chain at that
point (:meth:`AuditLog.verify`, ``lunglens audit verify``). The chain cannot stop someone
who rewrites every line after the one they changed, nor show that lines were cut off the
end: for that, note the SHA-256 of the last line (:attr:`ChainReport.head`) somewhere else;
a later check then proves that nothing up to that line has changed. Lines written before
the chain existed are reported as unchained, not as broken.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .decision import OperatingPoint, tidy_number
from .profile import ProfileInfo
from .userdirs import PRIVATE_FILE_MODE, audit_log_path, private_dir, tighten
from .worklist import WorklistRecord, utc_now

CHAIN_FIELD = "prev_sha256"
GENESIS = "0" * 64  # the link of a log's first line: nothing came before it
_TAIL_CHUNK = 4096  # bytes read back from the end at a time to find the last line
_WINDOWS_LOCK_OFFSET = 1 << 40  # msvcrt locks a byte range: one far past any real log's end


def current_user() -> str:
    """The OS account running LungLens ("unknown" when the platform cannot say)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 -- getuser raises OSError/KeyError depending on platform
        return "unknown"


def line_hash(line: bytes) -> str:
    """The link to ``line`` (its bytes without the newline) that the next line carries."""
    return hashlib.sha256(line).hexdigest()


@dataclass
class AuditEntries:
    """What :meth:`AuditLog.read` found: the readable entries and how many lines were damaged."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    damaged: int = 0


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found. Line numbers count from 1, as an editor shows them."""

    lines: int  # lines in the log (a last line cut short included)
    unchained: int  # lines at the start written before the log was chained (they cannot be checked)
    broken_at: int = 0  # the first line whose link does not match; 0 when the chain holds
    problem: str = ""  # why that line breaks the chain
    unreadable: tuple[int, ...] = ()  # lines that are not JSON: writes cut short by a crash
    head: str = ""  # SHA-256 of the last line: keep it elsewhere to detect lines cut off the end later

    @property
    def ok(self) -> bool:
        return self.broken_at == 0

    def summary(self) -> str:
        """One paragraph for the CLI and Help -> Audit log."""
        if self.broken_at:
            return f"BROKEN at line {self.broken_at}: {self.problem}."
        if self.lines == 0:
            return "Empty: nothing has been logged yet."
        if self.unchained >= self.lines:
            text = (f"Unchained: its {self.lines} lines were written before LungLens chained the audit log, "
                    f"so they cannot be checked; the lines added from now on are chained.")
        elif self.unchained:
            text = (f"Intact from line {self.unchained + 1} to line {self.lines}; unchained up to line "
                    f"{self.unchained} (written before LungLens chained the audit log, so not checkable).")
        else:
            text = ("Intact: its one line begins the chain." if self.lines == 1
                    else f"Intact: all {self.lines} lines are linked, each to the one before it.")
        if self.unreadable:
            several = len(self.unreadable) > 1
            text += (f" Unreadable line{'s' if several else ''} {', '.join(map(str, self.unreadable))}: written only "
                     f"in part (e.g. during a crash); the line after {'each' if several else 'it'}, if any, links "
                     f"{'their' if several else 'its'} bytes.")
        return text


def verify_chain(data: bytes) -> ChainReport:
    """Check every link of a log's bytes; stops at the first line that breaks the chain."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    unreadable: list[int] = []
    first_chained = 0
    for number, raw in enumerate(lines, 1):
        entry = _parse(raw)
        if entry is None:
            unreadable.append(number)  # its bytes are what the next line's link covers
            continue
        link = entry.get(CHAIN_FIELD)
        if link is None:
            if first_chained:
                return _broken(lines, number, unreadable, "it has no link to the line before it (it was inserted, "
                                                          "or written by a LungLens without the chain)")
            continue
        expected = GENESIS if number == 1 else line_hash(lines[number - 2])
        if link != expected:
            return _broken(lines, number, unreadable, _mismatch(number, link))
        first_chained = first_chained or number
    unchained = first_chained - 1 if first_chained else len(lines)
    return ChainReport(len(lines), unchained, unreadable=tuple(n for n in unreadable if n > unchained),
                       head=line_hash(lines[-1]) if lines else "")


def _mismatch(number: int, link: Any) -> str:
    if number == 1:
        return "it links to a line that is not there (lines were removed from the start of the log)"
    if link == GENESIS:
        return "it claims to be the first line of a log (the lines before it were added in front of it)"
    return f"its link does not match line {number - 1} (line {number - 1} was changed or removed, or this line inserted)"


def _broken(lines: list[bytes], number: int, unreadable: list[int], problem: str) -> ChainReport:
    return ChainReport(len(lines), 0, broken_at=number, problem=f"line {number}: {problem}",
                       unreadable=tuple(unreadable), head=line_hash(lines[-1]))


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None for a damaged one."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


class AuditLog:
    """Appends events to the log file. One instance may be shared between threads, and any
    number of processes may append to the same file (an OS file lock orders their lines)."""

    def __init__(self, path: str | Path | None = None, app_version: str = __version__) -> None:
        """Nothing is created until the first event: a data folder that cannot be written is
        reported when something is logged, not when the log is set up."""
        self.path = Path(path) if path is not None else audit_log_path(create=False)
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
            probability=tidy_number(record.probability),
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
        anonymized: bool = False,
    ) -> dict[str, Any]:
        """Something left the app: ``what`` ("report", "secondary_capture", "worklist"),
        ``fmt`` ("pdf", "dicom", "csv", "json"), the destination's file name (not its folder),
        the studies' pixel hashes, whether patient identifiers were included and whether it
        was anonymized for teaching (no identifiers, dates or file names; new UIDs)."""
        entry = self._base("export")
        entry.update(
            what=what,
            format=fmt,
            destination=Path(destination).name,
            pixel_sha256=list(pixel_sha256 or []),
            with_identifiers=with_identifiers,
            anonymized=anonymized,
        )
        self._append(entry)
        return entry

    def log_verdict(self, record: WorklistRecord) -> dict[str, Any]:
        """The reader's verdict on a stored result as it now stands (None: withdrawn). Local
        performance and a calibration on the worklist's verdicts rest on them: who gave which,
        and when, is on record."""
        entry = self._base("verdict")
        entry.update(verdict=record.verdict, verdict_at=record.verdict_at, pixel_sha256=record.pixel_sha256,
                     model_sha256=record.model_sha256)
        self._append(entry)
        return entry

    def log_decision_rule(self, profile: ProfileInfo, operating: OperatingPoint) -> dict[str, Any]:
        """The site profile and operating point that decide from now on: who moved the review
        threshold, to what, and when (Settings, the calibration wizard)."""
        entry = self._base("decision_rule")
        entry.update(profile_name=profile.name, profile_sha256=profile.sha256, operating_point=operating.name,
                     threshold=operating.threshold)
        self._append(entry)
        return entry

    def _append(self, entry: dict[str, Any]) -> None:
        """Link ``entry`` to the last line and append it (``entry`` gains :data:`CHAIN_FIELD`)."""
        with self._lock:
            private_dir(self.path.parent)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            fd = os.open(self.path, flags, PRIVATE_FILE_MODE)
            try:
                tighten(self.path)  # a log an older LungLens created readable by others
                with _exclusive(fd):
                    last, torn = _last_line(fd)
                    entry[CHAIN_FIELD] = GENESIS if last is None else line_hash(last)
                    line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
                    # A line torn by a crash has no newline: end it, so only it stays damaged.
                    os.write(fd, b"\n" + line if torn else line)
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

    def verify(self) -> ChainReport:
        """Check the chain of the whole file (:func:`verify_chain`); a missing log is empty.
        Raises OSError when the file cannot be read."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        return verify_chain(data)

    def _lines(self) -> Iterator[dict[str, Any] | None]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for raw in data.splitlines():
            if raw.strip():
                yield _parse(raw)


def _last_line(fd: int) -> tuple[bytes | None, bool]:
    """The file's last line without its newline (None for an empty file), and whether it was
    cut short (the file does not end with a newline). Reads back from the end only."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, False
    torn = _read_at(fd, size - 1, 1) != b"\n"
    end = size if torn else size - 1
    tail = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        tail = _read_at(fd, start, end - start) + tail
        newline = tail.rfind(b"\n")
        if newline >= 0:
            return tail[newline + 1:], torn
        end = start
    return tail, torn


def _read_at(fd: int, offset: int, size: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """Hold the log's OS lock from reading its last line to appending the next, so two
    processes (the window and its analysis process, a CLI run) never link two lines to the
    same one. Windows locks byte ranges, and a locked byte cannot be read by others: the lock
    sits far past the end of the file, where no reader looks."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s, then OSError
        try:
            yield
        finally:
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
