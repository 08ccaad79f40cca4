"""Stepping through large films after a batch: how long N takes to put the next film on screen,
with the film after the one on screen decoded ahead (as LungLens does) and without.

    .venv/bin/python bench/stepping.py [--films 20] [--dwell 2.0] [--passes 2]

Writes FILMS training films upsampled to 2,500 x 3,000 in a 12-bit range as JPEG 2000
lossless DICOM (the slowest usual decode, see bench/load.py), opens them in the window
(offscreen, in a temporary data folder), waits for the batch, then steps through them in the
order opened: DWELL seconds on each film (a reader looking at it), then N, timing from the key
to the film on screen. The window's decode cache holds fewer films than FILMS, so without
reading ahead every N waits for a decode. Read-ahead off and on alternate, PASSES times each,
in one run; the median and the slowest step of each pass are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAIN = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "train" / "NORMAL"


def make_films(folder: Path, n: int) -> list[Path]:
    from tests.fixtures.dicom_factory import radiograph_12bit, read_gray, write_dicom

    sources = sorted(TRAIN.glob("*.jpeg"))[:n]
    return [write_dicom(folder / f"film{i:02d}.dcm", radiograph_12bit(read_gray(src), (3000, 2500)),
                        "j2k-lossless", bits_stored=12) for i, src in enumerate(sources)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=20)
    parser.add_argument("--dwell", type=float, default=2.0, help="seconds on each film before N")
    parser.add_argument("--passes", type=int, default=2, help="passes of each kind, alternating")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LUNGLENS_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        films = make_films(Path(tmp), args.films)
        return run(films, args.dwell, args.passes)


def run(films: list[Path], dwell: float, passes: int) -> int:
    from desktop.app import make_application
    from desktop.controller import StudyController
    from desktop.settings import AppSettings
    from desktop.widgets.qt_main_window import MainWindow

    app = make_application()
    controller = StudyController(AppSettings())
    window = MainWindow(controller)
    window.show()

    def wait(until, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.002)

    def on_screen() -> bool:
        ctx = controller.context
        return ctx is not None and ctx.study is not None and ctx.key == window.study_list.current_key()

    def linger(seconds: float) -> None:
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() >= end)

    t0 = time.perf_counter()
    window.open_paths(films)
    wait(lambda: controller.idle)
    print(f"{len(films)} films of 2,500 x 3,000 px (JPEG 2000 lossless DICOM) analysed in "
          f"{time.perf_counter() - t0:.1f} s; {dwell:.1f} s on each film before N")
    window.study_list.proxy.set_mode("opened")
    print(f"{'pass':>4s}  {'read-ahead':10s} {'median N ms':>12s} {'slowest N ms':>13s}")
    for i in range(passes * 2):
        ahead = i % 2 == 1
        controller.read_ahead = ahead
        window.study_list.select_row(0)
        wait(on_screen)
        steps = []
        for _ in range(len(films) - 1):
            linger(dwell)
            start = time.perf_counter()
            window.study_list.step(1)
            wait(on_screen)
            steps.append((time.perf_counter() - start) * 1000)
        print(f"{i + 1:>4d}  {'on' if ahead else 'off':10s} {statistics.median(steps):12.0f} {max(steps):13.0f}")
    window.close()
    controller.worker.shutdown(10.0)
    if hasattr(os, "getloadavg"):
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
