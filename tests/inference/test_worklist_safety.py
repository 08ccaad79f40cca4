"""Nothing a user keeps is thrown away, nothing private is left readable.

A healthy worklist that another process keeps locked, or that sits on a read-only mount, is
refused with the reason and left exactly as it is; only a file that is not a database or
fails its integrity check is set aside, and the user is told what was kept where. Every
file LungLens creates for the user is private from its creation, whatever the umask.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from inference import userdirs
from inference import worklist as worklist_module
from inference.audit import AuditLog
from inference.hashing import pixel_sha256
from inference.profile_library import keep
from inference.worklist import (
    Worklist,
    WorklistLocked,
    WorklistReadOnly,
    WorklistRecord,
)
from tests.fixtures.tiny_model import tiny_profile
from tests.inference.workflow_fixtures import MODEL, prediction_for, raster_study

REPO = Path(__file__).resolve().parents[2]

_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")  # the write lock, as a tool or another LungLens mid-commit holds it
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


@contextmanager
def write_lock_held(path: Path, seconds: float = 15.0) -> Iterator[None]:
    """Another process holds the worklist's write lock until the block ends (or ``seconds``)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def _record(path: Path) -> WorklistRecord:
    study = raster_study(path)
    return WorklistRecord.from_prediction(study, prediction_for(study, 0.6), pixel_sha256(study))


def _listing(folder: Path) -> dict[str, int]:
    """The folder's database files and their inodes: renaming or replacing one changes this."""
    return {p.name: p.stat().st_ino for p in folder.iterdir() if p.name.startswith("wl.sqlite3") and
            not p.name.endswith(("-wal", "-shm"))}


@pytest.fixture
def stored(tmp_path, kermany_samples) -> tuple[Path, list[int]]:
    """A healthy worklist with three results, closed; and their row ids."""
    path = tmp_path / "lists" / "wl.sqlite3"
    with Worklist(path) as wl:
        ids = [wl.add(_record(f)).id for f in kermany_samples["NORMAL"][:3]]
    return path, ids


def test_a_list_another_process_keeps_locked_is_refused_and_kept_whole(stored, monkeypatch):
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 0.5)
    path, ids = stored
    before = _listing(path.parent)
    with write_lock_held(path):
        started = time.monotonic()
        with pytest.raises(WorklistLocked, match="another program has kept the worklist locked for more than 0.5 s"):
            Worklist(path)
        assert 0.4 < time.monotonic() - started < 5  # it waited the busy timeout, then gave up
        # A writer does not block readers (WAL): `lunglens calibrate --from-worklist` still reads it.
        with Worklist(path, read_only=True) as reader:
            assert [r.id for r in reader.records()] == ids
    assert _listing(path.parent) == before  # nothing renamed, nothing replaced, nothing set aside
    with Worklist(path) as wl:
        assert [r.id for r in wl.records()] == ids


def test_a_lock_taken_while_the_list_is_open_is_reported_not_waited_for_forever(stored, kermany_samples,
                                                                                 monkeypatch):
    monkeypatch.setattr(worklist_module, "BUSY_TIMEOUT_S", 0.3)
    path, ids = stored
    with Worklist(path, open_timeout=5.0) as wl:  # a long wait to open; then each operation waits 0.3 s
        with write_lock_held(path):
            with pytest.raises(WorklistLocked) as err:
                wl.add(_record(kermany_samples["PNEUMONIA"][0]))
            assert "Nothing in it was changed" in err.value.carrying_on()
        assert [r.id for r in wl.records()] == ids


def _can_mount_read_only() -> str:
    """"" when this process may make a private read-only bind mount, else why not."""
    if not shutil.which("unshare"):
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind / /mnt 2>&1 || true; true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m is not permitted here ({(probe.stderr or probe.stdout).strip()})"
    return ""


_READ_ONLY_PROBE = textwrap.dedent(
    """
    import json, sys
    from inference.worklist import Worklist, WorklistError
    out = {}
    try:
        Worklist(sys.argv[1]).close()
        out["opened"] = "read-write"
    except WorklistError as err:
        out["refused"] = [type(err).__name__, str(err)]
    with Worklist(sys.argv[1], read_only=True) as wl:
        out["rows"] = [r.id for r in wl.records()]
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("left_by_a_crash", [False, True], ids=["closed", "wal-left-by-a-crash"])
def test_a_list_on_a_read_only_mount_is_refused_kept_whole_and_still_readable(stored, left_by_a_crash):
    reason = _can_mount_read_only()
    if reason:
        pytest.skip(f"a read-only mount is needed (as root in CI, chmod does not stop writes): {reason}")
    path, ids = stored
    if left_by_a_crash:  # results still in the -wal, with its -shm beside it
        code = f"import os; from inference.worklist import Worklist; Worklist({str(path)!r}); os._exit(0)"
        subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
        assert Path(f"{path}-wal").exists()
    before = _listing(path.parent)
    folder = str(path.parent)
    script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder} && "
              f"exec {sys.executable} -c '{_READ_ONLY_PROBE}' {path}")
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["refused"][0] == WorklistReadOnly.__name__
    assert "read-only file system" in out["refused"][1]
    assert out["rows"] == ids  # every row kept and readable
    assert _listing(path.parent) == before


def test_a_damaged_database_fails_its_integrity_check_and_is_set_aside(stored):
    path, _ = stored
    data = bytearray(path.read_bytes())
    data[100:1024] = b"\xa5" * 924  # page 1 after the header: the schema itself
    path.write_bytes(bytes(data))
    with Worklist(path) as wl:
        assert wl.set_aside is not None and wl.set_aside.problem
        (kept,) = wl.set_aside.files
        assert kept.read_bytes() == bytes(data)  # kept byte for byte
        assert f"It was kept as {kept}" in wl.set_aside.message()
        assert len(wl) == 0


def test_every_file_is_private_from_its_creation_whatever_the_umask(tmp_path, monkeypatch, kermany_samples):
    data = tmp_path / "fresh" / "LungLens"
    monkeypatch.setenv(userdirs.ENV_OVERRIDE, str(data))
    old = os.umask(0)  # a umask that would leave everything world-readable (and writable)
    try:
        assert userdirs.data_dir() == data
        with Worklist() as wl:
            wl.add(_record(kermany_samples["NORMAL"][0]))
            journals = [Path(f"{wl.path}{s}") for s in ("-wal", "-shm")]
            assert all(j.exists() for j in journals)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (wl.path, *journals)}
        AuditLog().log_export("worklist", "csv", "x.csv")
        kept = keep(tiny_profile(MODEL), stem="clinic")
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes == {"worklist.sqlite3": 0o600, "worklist.sqlite3-wal": 0o600, "worklist.sqlite3-shm": 0o600}
    assert stat.S_IMODE((data / "audit.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in kept.parent.iterdir()} == {
        "clinic.profile.json": 0o600, "clinic.roc.png": 0o600, "clinic.reliability.png": 0o600}


def test_files_an_older_lunglens_left_readable_are_made_private(tmp_path, monkeypatch):
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    monkeypatch.setenv(userdirs.ENV_OVERRIDE, str(data))
    Worklist().close()
    (data / "audit.jsonl").write_text("")
    for name in ("worklist.sqlite3", "audit.jsonl"):
        (data / name).chmod(0o644)
    Worklist().close()
    AuditLog().log_export("worklist", "csv", "x.csv")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {n: stat.S_IMODE((data / n).stat().st_mode) for n in ("worklist.sqlite3", "audit.jsonl")} == {
        "worklist.sqlite3": 0o600, "audit.jsonl": 0o600}


def test_a_shared_folder_is_never_closed(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    userdirs.tighten(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_results_made_while_the_worklist_is_locked_are_saved_once_it_is_free(tmp_path, kermany_samples,
                                                                             monkeypatch) -> None:
    """The store gave a locked list up for the session: a 30 s lock 20 s into a batch of 5,961
    saved 2,035 results. It now holds them, tries again, and saves them when the lock goes."""
    from inference import result_store
    from inference.result_store import ResultStore

    path = tmp_path / "wl.sqlite3"
    Worklist(path).close()
    monkeypatch.setattr(result_store, "RETRY_LOCKED_S", 0.0)
    said: list[str] = []
    recovered: list[tuple[str, list[WorklistRecord]]] = []
    first, second, third = (_record(f) for f in kermany_samples["NORMAL"][:3])
    with write_lock_held(path):
        store = ResultStore(path, tmp_path / "audit.jsonl", said.append, open_timeout=0.2,
                            recovered=lambda message, saved: recovered.append((message, saved)))
        assert store.worklist is None and "saves them in it once it is free" in said[-1]
        assert store.keep(first).id is None and store.keep(second).id is None
        assert len(store.held) == 2
    assert store.keep(third).id is not None  # tried again: free, and the two held are saved first
    assert store.held == []
    (message, saved), = recovered
    assert message.endswith("free again: the 2 results made while it was locked are saved in it now.")
    store.close()
    with Worklist(path) as wl:
        assert [r.study_path for r in wl.records()] == [first.study_path, second.study_path, third.study_path]
        # The window is given the rows as saved, so it lists them by id without a query of its own.
        assert [(r.id, r.study_path, r.thumbnail) for r in saved] == [(r.id, r.study_path, None)
                                                                     for r in wl.records()[:2]]
        assert all(r.thumbnail is not None for r in wl.records()) == (first.thumbnail is not None)


def test_what_is_still_held_at_the_end_is_tried_once_more_and_said_if_it_cannot_be_saved(
        tmp_path, kermany_samples) -> None:
    from inference.result_store import ResultStore

    path = tmp_path / "wl.sqlite3"
    Worklist(path).close()
    said: list[str] = []
    with write_lock_held(path):
        store = ResultStore(path, tmp_path / "audit.jsonl", said.append, open_timeout=0.2)
        store.keep(_record(kermany_samples["NORMAL"][0]))
        store.close()
    assert said[-1].startswith("1 result could not be saved in the worklist") and "locked to the end" in said[-1]
    assert len(Worklist(path)) == 0


def test_held_results_saved_before_the_lock_came_back_are_told_with_the_rest(tmp_path, kermany_samples,
                                                                            monkeypatch) -> None:
    """The lock returned halfway through saving what was held: those saved before it were
    never told, and the window kept them as unsaved (no verdict possible) for the session."""
    from inference import result_store
    from inference.result_store import ResultStore

    path = tmp_path / "wl.sqlite3"
    Worklist(path).close()
    monkeypatch.setattr(result_store, "RETRY_LOCKED_S", 0.0)
    recovered: list[list[WorklistRecord]] = []
    first, second, third = (_record(f) for f in kermany_samples["NORMAL"][:3])
    with write_lock_held(path):
        store = ResultStore(path, tmp_path / "audit.jsonl", lambda _: None, open_timeout=0.2,
                            recovered=lambda message, saved: recovered.append(saved))
        store.keep(first)
        store.keep(second)
    add, calls = Worklist.add, []

    def locked_at_the_second(wl, record):  # type: ignore[no-untyped-def]
        calls.append(record.study_path)
        if len(calls) == 2:
            raise WorklistLocked("locked again")
        return add(wl, record)

    monkeypatch.setattr(Worklist, "add", locked_at_the_second)
    store.keep(third)  # the first held one is saved, then the lock is back: held again
    assert recovered == [] and [r.study_path for r in store.held] == [second.study_path, third.study_path]
    monkeypatch.setattr(Worklist, "add", add)
    store.close()  # the last try saves the rest, and tells every one saved
    (saved,) = recovered
    assert [r.study_path for r in saved] == [first.study_path, second.study_path, third.study_path]
    assert all(r.id is not None for r in saved)
