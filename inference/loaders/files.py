"""Which files to try: folder expansion and a cheap "could this be a study?" check.

Folders of studies are big (thousands of files, DICOMs often without an extension), so
expansion never opens a file: it skips hidden files and names that are obviously not
images. `is_candidate` is the stricter check, reading only a file's first bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from inference.loaders.sniff import HEAD_SIZE, sniff_format

# Extensions that are never a radiograph; anything else (including no extension and the
# numeric "extensions" of DICOM files named by UID) is worth trying.
NON_CANDIDATE_SUFFIXES = frozenset(
    ".txt .md .rst .csv .tsv .json .xml .html .htm .pdf .doc .docx .xls .xlsx .ppt .pptx "
    ".rtf .odt .ini .cfg .log .yaml .yml .toml .py .sh .bat .exe .dll .so .dylib .zip "
    ".gz .tgz .bz2 .xz .7z .rar .tar .db .sqlite .lnk .tmp .bak .part .onnx .mp3 .wav "
    ".mp4 .avi .mov .mkv .gif .svg .ico .css .js".split()
)
# Files that live in study folders but hold no image (DICOMDIR is an index).
NON_CANDIDATE_NAMES = frozenset({"dicomdir", "thumbs.db", "desktop.ini", "lockfile"})

_WINDOWS_HIDDEN = 0x2


def is_candidate(path: str | os.PathLike[str]) -> bool:
    """True when the file's first bytes say DICOM or a supported raster image."""
    return sniff_file(path) is not None


def sniff_file(path: str | os.PathLike[str]) -> str | None:
    """What the file's first bytes say it is ("DICOM", "PNG", ...), or None (unreadable too)."""
    try:
        with open(path, "rb") as fh:
            return sniff_format(fh.read(HEAD_SIZE))
    except OSError:
        return None


def iter_study_files(
    paths: Iterable[str | os.PathLike[str]], recursive: bool = False
) -> Iterator[Path]:
    """Files to try loading, in a stable order, without opening any of them.

    A file named explicitly is always yielded (even a missing one, so the caller reports
    it); a folder yields its visible candidate files in natural name order (IM2 before
    IM10), then, with ``recursive``, its visible sub-folders' files in the same order,
    following symlinked folders once (cycles are cut). Paths are absolute (not resolved: a
    link is a study of its own): a film the worklist keeps under a path relative to where a
    command ran was stored again from elsewhere, and "no longer available" to a window
    started in another folder.
    """
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if path.is_dir():
            yield from _walk(path, recursive, _visited(path))
        else:
            yield path


def _visited(folder: Path) -> set[tuple[int, int]]:
    """The folders a walk has entered, by (device, inode): a symlinked folder is followed once,
    and a link back up the tree (a cycle) is not followed at all."""
    try:
        st = os.stat(folder)
    except OSError:
        return set()
    return {(st.st_dev, st.st_ino)}


def _walk(folder: Path, recursive: bool, seen: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not _is_hidden(e)]
    except OSError:
        yield folder  # an unreadable folder must not stop the batch, nor be passed over unsaid:
        return  # loading it names it with the reason
    entries.sort(key=lambda e: _natural_key(e.name))
    subdirs = []
    for entry in entries:
        try:
            if entry.is_dir():  # follows a symlinked folder; `seen` keeps that finite
                subdirs.append(entry)
                continue
            is_file = entry.is_file()
        except OSError:
            continue
        if is_file and _worth_trying(entry.name):
            yield Path(entry.path)
    if recursive:
        for entry in subdirs:
            try:
                st = os.stat(entry.path)  # not DirEntry.stat(): no inode numbers on Windows
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            yield from _walk(Path(entry.path), recursive, seen)


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name == "nt":  # on Windows the attribute comes with the listing: no extra I/O
        try:
            return bool(getattr(entry.stat(), "st_file_attributes", 0) & _WINDOWS_HIDDEN)
        except OSError:
            return True
    return False


def _worth_trying(name: str) -> bool:
    lower = name.lower()
    if lower in NON_CANDIDATE_NAMES or lower.endswith("~"):
        return False
    return os.path.splitext(lower)[1] not in NON_CANDIDATE_SUFFIXES


_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[list[str | int], str]:
    # re.split with a group puts text at even positions and digit runs at odd ones, so
    # two keys always compare str with str and int with int.
    parts = _DIGITS.split(name.casefold())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name
