"""kill -9 in the middle of a batch loses no finished result.

The real app runs in its own process (offscreen) on 40 real radiographs; once some results
are committed it is killed with SIGKILL: either its whole process group -- the window and
its analysis process at once, so nothing gets a chance to flush -- or the window alone (the
analysis process then notices and exits by itself). A new window on the same data
directory must then list every result the worklist holds, and opening the folder again
must answer those from the worklist and analyse only the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop.models.study_item import Status
from inference.audit import AuditLog
from inference.worklist import Worklist
from tests.conftest import KERMANY_TRAIN
from tests.desktop.gui_helpers import wait_idle

pytestmark = [pytest.mark.gui, pytest.mark.slow]

N_STUDIES = 40
KILL_AFTER = 5  # committed results


def _committed(db: Path) -> int:
    """Rows in the worklist, read without touching it (another process is writing)."""
    if not db.exists():
        return 0
    try:
        # Closed at once: a reader left open would keep the dead writer's WAL index alive, and
        # the next reader would not recover the last commit from the WAL file.
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may never be reaped in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait_gone(pids: list[int], message: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the analysis process through /proc")
@pytest.mark.parametrize("victim", ["process group", "window only"])
def test_kill_9_mid_batch_loses_no_committed_result(victim, qtbot, app_settings, isolated_user_dirs, tmp_path,
                                                    bundled_model):
    data = isolated_user_dirs
    folder = tmp_path / "batch"
    folder.mkdir()
    sources = sorted(KERMANY_TRAIN.joinpath("NORMAL").glob("*.jpeg"))[:N_STUDIES]
    assert len(sources) == N_STUDIES, "shared data missing"
    for i, src in enumerate(sources):
        (folder / f"study-{i:03d}.jpeg").symlink_to(src)

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LUNGLENS_DATA_DIR=str(data),
               XDG_CONFIG_HOME=str(tmp_path / "crash-config"))
    app = subprocess.Popen([sys.executable, "-m", "desktop.main", str(folder)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    db = data / "worklist.sqlite3"
    try:
        deadline = time.monotonic() + 180
        while _committed(db) < KILL_AFTER:
            assert app.poll() is None, app.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the app committed no results in time"
            time.sleep(0.02)
        seen_before_kill = _committed(db)
        helpers = _children(app.pid)  # the analysis process (and multiprocessing's tracker)
        if victim == "window only":
            os.kill(app.pid, signal.SIGKILL)
            app.wait(30)
            _wait_gone(helpers, "the analysis process outlived the window")  # it notices and exits
    finally:
        os.killpg(app.pid, signal.SIGKILL)  # the window and its analysis process, at once
        app.wait(30)
        app.stderr.close()
    assert app.returncode == -signal.SIGKILL
    # A process killed inside fsync dies when the call returns: read the list once all are gone.
    _wait_gone(helpers, "a killed process did not die")

    with Worklist(db) as wl:  # opening it recovers the WAL as the next app start would
        stored = {r.study_path: r for r in wl.records()}
    n = len(stored)
    print(f"\n{victim}: killed after {seen_before_kill} committed results; {n} in the worklist after the kill")
    assert n >= seen_before_kill
    if victim == "process group":
        assert n < N_STUDIES, "the batch was not interrupted"
    analyses = [e for e in AuditLog(data / "audit.jsonl").read().entries if e["event"] == "analysis"]
    assert len(analyses) >= n  # each analysis is audited before it is committed

    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    win = MainWindow(StudyController(app_settings))
    qtbot.addWidget(win)
    win.show()
    c = win.controller
    restored = {str(it.path): it for it in c.model.items()}
    assert set(restored) == set(stored)
    for path, record in stored.items():
        assert restored[path].status is Status.DONE
        assert restored[path].prediction.probability == record.probability

    # Opening the folder again: the committed studies come from the worklist, the rest run.
    win.open_paths([folder])
    wait_idle(qtbot, c, 300_000)
    items = c.model.items()
    assert len(items) == N_STUDIES and all(it.status is Status.DONE for it in items)
    cached = {str(it.path): it for it in items if it.cached}
    assert set(stored) <= set(cached)
    # Any other study answered from the worklist has exactly the pixels of a committed one
    # (the public data set has a few duplicate images).
    committed_pixels = {r.pixel_sha256 for r in stored.values()}
    assert all(it.record.pixel_sha256 in committed_pixels for path, it in cached.items() if path not in stored)
    assert all(not it.cached for it in items if it.record.pixel_sha256 not in committed_pixels)
    win.close()
    assert c.worker.shutdown(10.0)
