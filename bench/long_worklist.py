"""The window on a long-used worklist: how soon it shows, how long the list takes to fill, and
the longest the GUI thread stood still meanwhile.

    .venv/bin/python bench/long_worklist.py [--rows 10000]

Stores ROWS results (one site film's record under ROWS file names, each with a thumbnail)
in a worklist in a temporary data folder, then opens the window on it as ``lunglens`` does
(offscreen) and prints: the seconds until the window is shown, until a study is on screen,
until every row is listed, the longest gap between the ticks of a 10 ms timer on the GUI
thread from the window's showing to the full list, and the window's memory then -- first with every row listed on the GUI thread before the window
shows, as LungLens did before the read moved to a thread of its own, then as it does now:
the two in one run, each in a process of its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SITE_FILM = REPO.parent / "shared/data/kermany-cxr-224/site-sample/NORMAL"


def fill(data: Path, rows: int) -> None:
    """ROWS results of one film under ROWS names, thumbnails included, in data/worklist.sqlite3."""
    from inference.engine import Engine
    from inference.hashing import pixel_sha256
    from inference.loaders import load_study
    from inference.thumbnail import make_thumbnail
    from inference.worklist import Worklist, WorklistRecord

    film = sorted(SITE_FILM.iterdir())[0]
    study = load_study(film)
    record = WorklistRecord.from_prediction(study, Engine.load(provider="cpu").predict(study), pixel_sha256(study),
                                            make_thumbnail(study))
    with Worklist(data / "worklist.sqlite3") as wl:
        for i in range(rows):
            wl.add(replace(record, study_path=str(film.with_name(f"{i}-{film.name}")), pixel_sha256=f"{i:064x}"))


def _rss_mb() -> float:
    """The process's resident memory now (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(at_once: bool) -> None:
    """In a fresh process (LUNGLENS_DATA_DIR set by the caller): print the three figures."""
    import numpy as np
    from PySide6.QtCore import QTimer

    from desktop import controller as controller_module
    from desktop.app import make_application, settle_memory
    from desktop.controller import StudyController
    from desktop.settings import AppSettings
    from desktop.widgets.qt_main_window import MainWindow

    if at_once:
        controller_module.RESTORE_AT_ONCE_UP_TO = 10**9
    app = make_application()
    t0 = time.perf_counter()
    controller = StudyController(AppSettings())
    window = MainWindow(controller)
    settle_memory()
    window.show()
    app.processEvents()
    shown = time.perf_counter() - t0
    ticks: list[float] = [time.perf_counter()]
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    on_screen = shown if window.study_list.current_key() else None
    while not controller.idle:
        app.processEvents()
        if on_screen is None and window.study_list.current_key():
            on_screen = time.perf_counter() - t0
        time.sleep(0.002)
    app.processEvents()
    listed = time.perf_counter() - t0
    gap = float(np.diff([*ticks, time.perf_counter()]).max())
    print(f"{'at once' if at_once else 'in the background':<18} window shown {shown:5.2f} s   "
          f"a study on screen {on_screen or listed:5.2f} s   all {controller.model.rowCount():,} listed {listed:5.2f} s   "
          f"longest GUI-thread gap {gap:4.2f} s   memory {_rss_mb():.0f} MB")
    controller.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--measure", choices=("background", "at-once"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        measure(args.measure == "at-once")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        t = time.perf_counter()
        fill(data, args.rows)
        print(f"{args.rows:,} results stored in {time.perf_counter() - t:.0f} s")
        env = {**os.environ, "LUNGLENS_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(Path(tmp) / "config"),
               "QT_QPA_PLATFORM": "offscreen"}
        for how in ("at-once", "background"):
            subprocess.run([sys.executable, __file__, "--measure", how], env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
