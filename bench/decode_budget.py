"""What the decode budget costs a normal study (prints figures; not a test).

Loads the real 1,024² JPEG-baseline chest CR (and a 3,000 x 2,500 12-bit JPEG 2000 film made
from a training image) with ``load_study`` in four ways, interleaved round-robin so that
the neighbours' load on a shared machine hits every way alike:

- in-process: the codec runs in the calling thread (header checks only, no ceiling);
- persistent worker: the shipped way (inference/loaders/budget.py), a forked worker reused;
- fork per decode: a fresh forked worker for every study (reaped after it);
- spawn per decode: a fresh interpreter importing the decoders, timed on its own.

    .venv/bin/python bench/decode_budget.py [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.loaders import budget, load_study  # noqa: E402
from tests.conftest import KERMANY_TRAIN, REAL_DICOM  # noqa: E402
from tests.fixtures.dicom_factory import radiograph_12bit, read_gray, write_dicom  # noqa: E402


def in_process(path: Path) -> None:
    budget._CAN_FORK = False
    try:
        load_study(path)
    finally:
        budget._CAN_FORK = True


def persistent(path: Path) -> None:
    load_study(path)


def fork_per_decode(path: Path) -> None:
    kept, budget._idle[:] = list(budget._idle), []  # leave the persistent worker alone
    try:
        load_study(path)
        budget._stop_workers()
    finally:
        budget._idle[:] = kept


WAYS: dict[str, Callable[[Path], None]] = {
    "in-process": in_process,
    "persistent worker": persistent,
    "fork per decode": fork_per_decode,
}


def spawn_ms(runs: int) -> float:
    """A fresh interpreter importing what a decode needs: the floor of spawn per decode."""
    code = "import inference.loaders, pydicom.pixels, PIL.Image, libjpeg, openjpeg"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        film = radiograph_12bit(read_gray(sorted((KERMANY_TRAIN / "PNEUMONIA").glob("*.jpeg"))[0]), (3000, 2500))
        files = {
            "JPEG baseline 1024² (real CR)": REAL_DICOM,
            "JPEG 2000 3000x2500 12-bit": write_dicom(Path(tmp) / "j2k.dcm", film, "j2k-lossless", bits_stored=12),
        }
        print(f"{'study':30s} {'way':18s} {'median ms':>9s} {'mean ms':>8s} {'CPU ms':>7s}")
        for label, path in files.items():
            runs = args.runs if "1024" in label else max(10, args.runs // 10)
            wall: dict[str, list[float]] = {w: [] for w in WAYS}
            cpu: dict[str, list[float]] = {w: [] for w in WAYS}
            for way in WAYS.values():  # warm-up: imports, the first fork
                way(path)
            for _ in range(runs):
                for name, way in WAYS.items():
                    c0, t0 = time.process_time(), time.perf_counter()
                    way(path)
                    wall[name].append((time.perf_counter() - t0) * 1000)
                    cpu[name].append((time.process_time() - c0) * 1000)
            for name in WAYS:
                print(f"{label:30s} {name:18s} {statistics.median(wall[name]):9.1f} "
                      f"{statistics.mean(wall[name]):8.1f} {statistics.median(cpu[name]):7.1f}")
    print(f"{'(any)':30s} {'spawn per decode':18s} {spawn_ms(5):9.1f}  (interpreter + imports only)")
    print("CPU ms is the calling process's only: a worker's decode does not count there.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
