"""A hot folder: films dropped into a folder (a USB stick, a share) are analysed by themselves.

A file is taken only once it has stopped growing -- its size and modification time unchanged
for ``settle`` seconds -- so a film still being copied is never read half-written. Each file
is analysed once: the files done are remembered by path, size and modification time in a
private file in the data folder (:class:`SeenFiles`), so a restart does not analyse them
again, while a file replaced by another under the same name is. The folder itself is only
read -- nothing in it is moved, renamed or written -- unless the user asks for processed files to
be moved out (``move_to``, ``lunglens serve --move-processed DIR``): then each file, once
analysed, moves to the same relative place under ``move_to`` (an unreadable one stays, and is
analysed again if it changes).

Polling rather than inotify: it works the same on a USB stick, a network share and Windows,
and a few stat() calls a second cost nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .loaders import iter_study_files
from .userdirs import PRIVATE_FILE_MODE, data_dir, private_dir, tighten

log = logging.getLogger("lunglens.serve")


@dataclass(frozen=True)
class FileKey:
    """A file as it was when analysed: the same path with another size or time is a new file."""

    path: str
    size: int
    mtime_ns: int


class SeenFiles:
    """The files already analysed, one JSON line each, in a 0600 file of the data folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else data_dir() / "hot-folder-seen.jsonl"
        self._keys: set[FileKey] = set()
        self._lock = threading.Lock()
        try:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self._keys.add(FileKey(**json.loads(line)))
                except (ValueError, TypeError):
                    continue  # a line torn by a crash: that file is analysed again, no harm
        except FileNotFoundError:
            pass

    def __contains__(self, key: FileKey) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: FileKey) -> None:
        with self._lock:
            if key in self._keys:
                return
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0),
                         PRIVATE_FILE_MODE)
            try:
                tighten(self.path)
                size = os.fstat(fd).st_size
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a crash cut the last line short
                line = (json.dumps(key.__dict__) + "\n").encode("utf-8")
                os.write(fd, b"\n" + line if torn else line)
            finally:
                os.close(fd)
            self._keys.add(key)


@dataclass
class _Watch:
    """A file seen growing or waiting to settle."""

    size: int
    mtime_ns: int
    stable_since: float


# What became of a film handed to the analysis: read and analysed; not readable as it is (a
# broken file, or one still being copied after a pause longer than the settle time); or not
# analysed because the node stopped first.
ANALYSED, UNREADABLE, STOPPED = "analysed", "unreadable", "stopped"
Submit = Callable[[Path, Callable[[str], None]], None]  # (film, done(outcome))


class HotFolder:
    """Watches ``folder`` (and its sub-folders); :meth:`scan` once, or :meth:`run` until stopped."""

    def __init__(self, folder: Path, submit: Submit, seen: SeenFiles | None = None, settle: float = 2.0,
                 poll: float = 1.0, move_to: Path | None = None) -> None:
        # Whole paths, as the films it lists are named: a relative --hot-folder had made every
        # move fail, and the error stopped the node's analysis.
        self.folder = Path(os.path.abspath(folder))
        self.move_to = Path(os.path.abspath(move_to)) if move_to is not None else None
        self.seen = seen if seen is not None else SeenFiles()
        self.settle = settle
        self.poll = poll
        self._submit = submit
        self._watch: dict[Path, _Watch] = {}
        self._busy: set[FileKey] = set()  # submitted, not finished
        self._lock = threading.Lock()

    def scan(self, now: float | None = None) -> list[Path]:
        """One look at the folder; returns the files handed to the analysis this time."""
        now = time.monotonic() if now is None else now
        taken: list[Path] = []
        present: set[Path] = set()
        try:
            files = list(iter_study_files([self.folder], recursive=True))
        except OSError as exc:  # the stick was pulled out: try again at the next poll
            log.warning("hot folder %s cannot be read: %s", self.folder, exc)
            return taken
        for path in files:
            try:
                st = path.stat()
            except OSError:
                continue
            present.add(path)
            key = FileKey(str(path.resolve()), st.st_size, st.st_mtime_ns)
            with self._lock:
                if key in self.seen or key in self._busy:
                    continue
            watch = self._watch.get(path)
            if watch is None or (watch.size, watch.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._watch[path] = _Watch(st.st_size, st.st_mtime_ns, now)  # new, or still growing
                continue
            if now - watch.stable_since < self.settle or st.st_size == 0:
                continue
            del self._watch[path]
            with self._lock:
                self._busy.add(key)
            self._submit(path, lambda outcome, key=key, path=path: self._finished(key, outcome, path))
            taken.append(path)
        for gone in set(self._watch) - present:
            del self._watch[gone]
        return taken

    def _finished(self, key: FileKey, outcome: str, path: Path) -> None:
        """The analysis is over: remember the file as it is (a film that cannot be read would
        fail again until it changes), unless the node stopped before it was analysed; move it
        out, if asked to, only once analysed -- an unreadable file may be one still being
        copied, and moved away it would be finished outside the folder and never analysed."""
        with self._lock:
            self._busy.discard(key)
            if outcome != STOPPED:
                self.seen.add(key)
        if outcome == ANALYSED and self.move_to is not None:
            self._move(path)

    def _move(self, path: Path) -> None:
        """``path`` to the same relative place under :attr:`move_to`, never over another file
        (a name already taken gets a numbered suffix); a failure is said and the file stays."""
        try:
            target = self.move_to / path.relative_to(self.folder)
            n = 1
            while target.exists():
                target = target.with_name(f"{path.stem}-{n}{path.suffix}")
                n += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))  # a copy and delete across devices (a USB stick)
        except (OSError, ValueError) as exc:
            log.warning("could not move %s to %s: %s", path, self.move_to, exc)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.scan()
            stop.wait(self.poll)
