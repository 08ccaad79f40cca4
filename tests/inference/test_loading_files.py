"""Folder expansion and the cheap candidate check."""

from __future__ import annotations

import builtins
import os
import time

import numpy as np
import pytest

from inference.loaders import is_candidate, iter_study_files, load_study
from tests.fixtures.dicom_factory import write_dicom, write_raster
from tests.fixtures.unlistable import refuse_listing


def _tree(root, film12, kermany_gray):
    write_dicom(root / "IM10", film12, bits_stored=12)  # DICOM without extension
    write_dicom(root / "IM2", film12, bits_stored=12)
    write_raster(root / "chest.png", kermany_gray)
    write_dicom(root / ".hidden.dcm", film12, bits_stored=12)
    (root / "notes.txt").write_text("not a study")
    (root / "report.pdf").write_bytes(b"%PDF-1.4")
    (root / "DICOMDIR").write_bytes(b"\0" * 200)
    (root / "sub").mkdir()
    write_dicom(root / "sub" / "a.dcm", film12, bits_stored=12)
    (root / ".git").mkdir()
    (root / ".git" / "config.dcm").write_bytes(b"x")


def test_folder_expansion_is_sorted_and_skips_hidden_and_non_candidates(tmp_path, film12, kermany_gray):
    _tree(tmp_path, film12, kermany_gray)
    flat = [p.relative_to(tmp_path).as_posix() for p in iter_study_files([tmp_path])]
    assert flat == ["chest.png", "IM2", "IM10"]  # natural order, case-insensitive
    deep = [p.relative_to(tmp_path).as_posix() for p in iter_study_files([tmp_path], recursive=True)]
    assert deep == ["chest.png", "IM2", "IM10", "sub/a.dcm"]
    assert all(load_study(p).pixels.ndim == 2 for p in iter_study_files([tmp_path], recursive=True))


def test_symlinked_folders_are_followed_once_and_cycles_cut(tmp_path, film12):
    studies = tmp_path / "archive"
    (studies / "2024").mkdir(parents=True)
    write_dicom(studies / "2024" / "a.dcm", film12, bits_stored=12)
    root = tmp_path / "incoming"
    root.mkdir()
    (root / "linked").symlink_to(studies / "2024", target_is_directory=True)
    (root / "linked-again").symlink_to(studies / "2024", target_is_directory=True)  # the same folder
    (root / "loop").symlink_to(root, target_is_directory=True)  # back up the tree
    found = [p.relative_to(root).as_posix() for p in iter_study_files([root], recursive=True)]
    assert found == ["linked/a.dcm"]  # once, and the walk ends
    assert [p.name for p in iter_study_files([root])] == []  # not recursive: no sub-folders at all


def test_explicit_files_are_kept_in_input_order_even_odd_ones(tmp_path, film12, kermany_gray):
    _tree(tmp_path, film12, kermany_gray)
    inputs = [tmp_path / "notes.txt", tmp_path / "missing.dcm", tmp_path / "sub", tmp_path / "IM2"]
    assert list(iter_study_files(inputs)) == [
        tmp_path / "notes.txt", tmp_path / "missing.dcm", tmp_path / "sub" / "a.dcm", tmp_path / "IM2",
    ]


def test_is_candidate_sniffs_content(tmp_path, film12, kermany_gray):
    _tree(tmp_path, film12, kermany_gray)
    bare = write_dicom(tmp_path / "bare", film12, bits_stored=12, no_file_meta=True)
    renamed_pdf = tmp_path / "scan.dcm"
    renamed_pdf.write_bytes(b"%PDF-1.7 ...")
    assert is_candidate(tmp_path / "IM2") and is_candidate(tmp_path / "chest.png") and is_candidate(bare)
    assert not is_candidate(renamed_pdf) and not is_candidate(tmp_path / "notes.txt")
    assert not is_candidate(tmp_path / "sub") and not is_candidate(tmp_path / "nothing-here")


def test_ten_thousand_files_expand_fast_without_opening_any(tmp_path, monkeypatch):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"IM{i}").touch()
    for i in range(50):
        (folder / f"skip{i}.txt").touch()

    def no_open(*args, **kwargs):
        raise AssertionError(f"iter_study_files opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", no_open)
    start = time.perf_counter()
    found = list(iter_study_files([folder]))
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    assert len(found) == 10_000
    assert [p.name for p in found[:3]] == ["IM0", "IM1", "IM2"] and found[-1].name == "IM9999"
    assert elapsed < 5.0, f"expanding 10,000 files took {elapsed:.1f} s"  # a hang guard, not a benchmark
    assert not any(is_candidate(p) for p in found[:2000])  # empty files are not studies
    assert np.all(np.diff([int(p.name[2:]) for p in found]) == 1)


def test_a_folder_that_cannot_be_listed_is_named_with_its_reason_not_passed_over(tmp_path, monkeypatch):
    """It was skipped without a word (exit 0), and given directly it read "is a folder, not an
    image". CI runs as root, whom no permission stops, so the refusal is the OS call's."""
    from inference.errors import FileAccessError

    (tmp_path / "a.png").write_bytes(b"")
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_listing(monkeypatch, locked)
    assert list(iter_study_files([tmp_path], recursive=True)) == [tmp_path / "a.png", locked]
    with pytest.raises(FileAccessError, match="permission denied: the folder cannot be read"):
        load_study(locked)


def test_a_pipe_is_named_as_one_and_never_read(tmp_path):
    """It read "file is empty (0 bytes)"; reading it would wait for a writer for ever."""
    from inference.errors import NotAnImageError

    fifo = tmp_path / "scan.dcm"
    os.mkfifo(fifo)
    with pytest.raises(NotAnImageError, match="is not a file but a pipe, socket or device"):
        load_study(fifo)
