"""Decode + preprocess time per study format (prints figures; not a test).

A real training radiograph is upsampled to 2,500x3,000 in a 12-bit range (16-bit
container) and written as uncompressed DICOM, JPEG lossless, JPEG 2000 and RLE; a
1,024x1,024 8-bit PNG stands for the common screenshot-or-export case. Each file is loaded
with inference.loaders.load_study and fed to inference.preprocess.preprocess, and the
median of several runs is printed. Targets: uncompressed and PNG < 60 ms, JPEG 2000 < 1 s.

    .venv/bin/python bench/load.py [--runs N]
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

import cv2  # noqa: E402

from inference.loaders import load_study  # noqa: E402
from inference.preprocess import PreprocessSpec, preprocess  # noqa: E402
from tests.fixtures.dicom_factory import radiograph_12bit, read_gray, write_dicom, write_raster  # noqa: E402

KERMANY = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "train" / "PNEUMONIA"
TARGET_MS = {"uncompressed": 60.0, "png-1024-8bit": 60.0, "jpeg-2000": 1000.0, "jpeg-2000-lossy": 1000.0}


def make_files(folder: Path) -> dict[str, Path]:
    source = sorted(KERMANY.glob("*.jpeg"))[0]
    gray = read_gray(source)
    film = radiograph_12bit(gray, (3000, 2500))
    files = {
        "uncompressed": write_dicom(folder / "explicit.dcm", film, "explicit", bits_stored=12),
        "jpeg-lossless": write_dicom(folder / "jpegll.dcm", film, "jpeg-lossless-sv1", bits_stored=12),
        "jpeg-2000": write_dicom(folder / "j2k.dcm", film, "j2k-lossless", bits_stored=12),
        "jpeg-2000-lossy": write_dicom(folder / "j2kl.dcm", film, "j2k", bits_stored=12),
        "rle": write_dicom(folder / "rle.dcm", film, "rle", bits_stored=12),
    }
    png = cv2.resize(gray, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    files["png-1024-8bit"] = write_raster(folder / "film.png", png)
    return files


def time_one(path: Path, runs: int) -> tuple[float, float, float, float]:
    """Median (load, preprocess, total, total CPU) in ms after one warm-up run.

    CPU time is printed too: on a shared machine wall time mostly measures the neighbours.
    """
    spec = PreprocessSpec()
    load_study(path)
    loads, preps, cpus = [], [], []
    for _ in range(runs):
        c0 = time.process_time()
        t0 = time.perf_counter()
        study = load_study(path)
        t1 = time.perf_counter()
        preprocess(study.pixels, spec)
        t2 = time.perf_counter()
        cpus.append((time.process_time() - c0) * 1000)
        loads.append((t1 - t0) * 1000)
        preps.append((t2 - t1) * 1000)
    totals = [a + b for a, b in zip(loads, preps)]
    return (statistics.median(loads), statistics.median(preps), statistics.median(totals),
            statistics.median(cpus))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
        print(f"{'format':16s} {'size':>10s} {'MB':>6s} {'load ms':>8s} {'prep ms':>8s} "
              f"{'total ms':>9s} {'cpu ms':>7s}  target (on total)")
        for name, path in files.items():
            load_ms, prep_ms, total_ms, cpu_ms = time_one(path, args.runs)
            study = load_study(path)
            h, w = study.shape
            target = TARGET_MS.get(name)
            verdict = "" if target is None else f"< {target:.0f} ms {'OK' if total_ms < target else 'MISSED'}"
            mb = path.stat().st_size / 1e6
            print(f"{name:16s} {w:>4d}x{h:<5d} {mb:6.1f} {load_ms:8.1f} {prep_ms:8.1f} "
                  f"{total_ms:9.1f} {cpu_ms:7.1f}  {verdict}")
    print(f"(median of {args.runs} runs after a warm-up; load = load_study, prep = preprocess(PreprocessSpec()))")
    if hasattr(os, "getloadavg"):
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
