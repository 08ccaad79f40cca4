"""The hot folder (inference/hot_folder.py): a file is taken once it stops growing, never
twice (not even after a restart), a replaced file is taken again, and the folder is only read.
(``lunglens serve --hot-folder`` end to end: tests/inference/test_dicom_node.py.)"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from inference.hot_folder import ANALYSED, STOPPED, UNREADABLE, FileKey, HotFolder, SeenFiles
from tests.conftest import REPO

PNG = (REPO / "resources" / "samples" / "sample-pneumonia.png").read_bytes()


class Collector:
    """Stands in for the analysis: records what it was given and finishes it at once."""

    def __init__(self, finish: bool = True, outcome: str = ANALYSED) -> None:
        self.taken: list[Path] = []
        self.finish = finish
        self.outcome = outcome
        self.unfinished: list[Callable[[str], None]] = []

    def __call__(self, path: Path, done: Callable[[str], None]) -> None:
        self.taken.append(path)
        if self.finish:
            done(self.outcome)
        else:
            self.unfinished.append(done)


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.rglob("*"))}


def test_a_file_is_taken_once_it_stops_growing_and_only_once(tmp_path: Path) -> None:
    hot, seen_file = tmp_path / "hot", tmp_path / "data" / "seen.jsonl"
    hot.mkdir()
    analysis = Collector()
    watch = HotFolder(hot, analysis, SeenFiles(seen_file), settle=2.0)
    film = hot / "film.png"
    film.write_bytes(PNG[:1000])  # still being copied
    assert watch.scan(now=0.0) == []
    with film.open("ab") as f:
        f.write(PNG[1000:])  # it grew
    assert watch.scan(now=1.0) == []
    assert watch.scan(now=2.5) == []  # unchanged for 1.5 s only
    assert watch.scan(now=3.1) == [film]
    assert watch.scan(now=10.0) == [] and watch.scan(now=20.0) == []
    assert analysis.taken == [film]
    assert stat.S_IMODE(seen_file.stat().st_mode) == 0o600

    # A restart remembers it; a file replaced under the same name is a new film.
    again = HotFolder(hot, analysis, SeenFiles(seen_file), settle=2.0)
    assert again.scan(now=0.0) == [] and again.scan(now=5.0) == []
    film.write_bytes(PNG + b"\0")
    os.utime(film, ns=(film.stat().st_atime_ns, film.stat().st_mtime_ns + 10**9))
    assert again.scan(now=6.0) == [] and again.scan(now=9.0) == [film]
    assert analysis.taken == [film, film]


def test_sub_folders_are_watched_and_the_folder_is_left_untouched(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    (hot / "day1").mkdir(parents=True)
    (hot / "a.png").write_bytes(PNG)
    (hot / "day1" / "b.png").write_bytes(PNG)
    (hot / "notes.txt").write_text("not a film")
    before = _snapshot(hot)
    analysis = Collector()
    watch = HotFolder(hot, analysis, SeenFiles(tmp_path / "seen.jsonl"), settle=1.0)
    watch.scan(now=0.0)
    assert sorted(p.name for p in watch.scan(now=2.0)) == ["a.png", "b.png"]
    assert _snapshot(hot) == before


def test_a_film_not_analysed_before_a_stop_is_taken_again(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / "a.png").write_bytes(PNG)
    parked = Collector(finish=False)
    watch = HotFolder(hot, parked, SeenFiles(tmp_path / "seen.jsonl"), settle=1.0)
    watch.scan(now=0.0)
    assert watch.scan(now=2.0) == [hot / "a.png"]
    assert watch.scan(now=4.0) == []  # in progress: not taken twice
    # The node stopped before the analysis: nothing was remembered, the next run takes it.
    later = HotFolder(hot, Collector(), SeenFiles(tmp_path / "seen.jsonl"), settle=1.0)
    later.scan(now=0.0)
    assert later.scan(now=2.0) == [hot / "a.png"]


def test_a_torn_line_in_the_memory_is_skipped(tmp_path: Path) -> None:
    seen_file = tmp_path / "seen.jsonl"
    seen = SeenFiles(seen_file)
    key = FileKey("/x/a.png", 10, 123)
    seen.add(key)
    with seen_file.open("a") as f:
        f.write('{"path": "/x/b.p')  # a crash mid-write
    assert key in SeenFiles(seen_file) and len(SeenFiles(seen_file)) == 1
    other = FileKey("/x/c.png", 11, 456)
    SeenFiles(seen_file).add(other)  # starts on a line of its own
    assert {key, other} <= set(SeenFiles(seen_file)._keys) and len(SeenFiles(seen_file)) == 2


def test_processed_files_move_out_only_when_asked(tmp_path: Path) -> None:
    hot, done_dir = tmp_path / "hot", tmp_path / "done"
    (hot / "ward").mkdir(parents=True)
    (done_dir / "ward").mkdir(parents=True)
    (done_dir / "ward" / "film.png").write_bytes(b"an earlier film of the same name")
    film = hot / "ward" / "film.png"
    film.write_bytes(PNG)
    analysis = Collector()
    watch = HotFolder(hot, analysis, SeenFiles(tmp_path / "seen.jsonl"), settle=1.0, move_to=done_dir)
    assert watch.scan(now=0.0) == [] and watch.scan(now=2.0) == [film]
    assert not film.exists() and (hot / "ward").is_dir()
    assert (done_dir / "ward" / "film-1.png").read_bytes() == PNG  # beside, never over, the earlier one
    assert (done_dir / "ward" / "film.png").read_bytes() == b"an earlier film of the same name"

    # A film the node stopped before analysing is neither remembered nor moved.
    late = hot / "late.png"
    late.write_bytes(PNG)
    parked = Collector(finish=False)
    watch = HotFolder(hot, parked, SeenFiles(tmp_path / "seen.jsonl"), settle=1.0, move_to=done_dir)
    assert watch.scan(now=0.0) == [] and watch.scan(now=2.0) == [late]
    parked.unfinished[0](STOPPED)
    assert late.exists() and not (done_dir / "late.png").exists()


def test_folders_named_relative_to_where_serve_started_still_move_films(tmp_path: Path, monkeypatch) -> None:
    """`serve --hot-folder inbox --move-processed done`: the films are listed under whole paths,
    and the move raised ValueError, which stopped the node's analysis thread."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "film.png").write_bytes(PNG)
    monkeypatch.chdir(tmp_path)
    watch = HotFolder(Path("inbox"), Collector(), SeenFiles(tmp_path / "seen.jsonl"), settle=1.0,
                      move_to=Path("done"))
    assert watch.scan(now=0.0) == [] and watch.scan(now=2.0) == [tmp_path / "inbox" / "film.png"]
    assert (tmp_path / "done" / "film.png").read_bytes() == PNG


def test_an_unreadable_file_stays_until_it_changes_then_moves_once_analysed(tmp_path: Path) -> None:
    """A film copied with pauses longer than the settle time is unreadable at first: moved out
    then, it would be finished outside the folder and never analysed."""
    hot, done_dir = tmp_path / "hot", tmp_path / "done"
    hot.mkdir()
    film = hot / "slow.png"
    film.write_bytes(PNG[:1000])  # the copy has paused
    first = Collector(outcome=UNREADABLE)
    watch = HotFolder(hot, first, SeenFiles(tmp_path / "seen.jsonl"), settle=1.0, move_to=done_dir)
    assert watch.scan(now=0.0) == [] and watch.scan(now=2.0) == [film]
    assert film.exists() and not done_dir.exists()  # stays
    assert watch.scan(now=4.0) == watch.scan(now=6.0) == []  # and is not read again while unchanged
    film.write_bytes(PNG)  # the copy finishes
    watch._submit = Collector()  # now it reads
    assert watch.scan(now=8.0) == [] and watch.scan(now=10.0) == [film]
    assert not film.exists() and (done_dir / "slow.png").read_bytes() == PNG


def test_serve_refuses_to_move_processed_files_into_the_hot_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    hot = tmp_path / "hot"
    hot.mkdir()
    for extra, says in ((["--hot-folder", str(hot), "--move-processed", str(hot / "done")], "inside the hot folder"),
                        (["--move-processed", str(tmp_path / "done")], "needs --hot-folder")):
        run = subprocess.run([sys.executable, "-m", "desktop.main", "serve", *extra], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and says in run.stderr, run.stderr
