"""Memory on a huge raster: peak RSS of classify and report on a 20,000 x 20,000 PNG.

    .venv/bin/python bench/huge.py [--side 20000] [--keep DIR]

Makes a SIDE x SIDE 8-bit PNG of a Kermany chest film (upsampled) in a temporary folder, then
runs, each in its own process with an empty data folder,

  * ``lunglens classify FILE --json --no-worklist``
  * ``lunglens classify FILE --json --cam-dir D --cam-all`` (a heat-map PNG drawn)
  * ``lunglens report FILE --pdf OUT.pdf --dicom-sc OUT.dcm``

and prints for each its wall time, the peak RSS of the command and its decode worker summed
(sampled from /proc every 50 ms), the largest single process's (wait4) and the size of what
it wrote. Targets (issue 14): peak <= 1.5 GB for classify and report, Secondary Capture <= 50 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch import KERMANY, REPO, descendants, rss_mb

TARGET_PEAK_MB, TARGET_SC_MB = 1536.0, 50.0


def make_png(path: Path, side: int) -> None:
    from PIL import Image

    source = sorted((KERMANY / "PNEUMONIA").glob("*.jpeg"))[0]
    with Image.open(source) as im:
        im.convert("L").resize((side, side), Image.Resampling.BILINEAR).save(path, compress_level=6)


def peak_of(cmd: list[str], data_dir: Path) -> tuple[int, float, float, float, str]:
    """(exit status, wall s, peak RSS of the process tree in MB, largest process's in MB, the
    end of its stderr). The largest process is wait4's ru_maxrss: the command or a child it
    reaped (its decode worker, reaped at exit)."""
    env = dict(os.environ, LUNGLENS_DATA_DIR=str(data_dir))
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak, tree = 0.0, [proc.pid]
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree = descendants(proc.pid)
            now = rss_mb(tree)
            peak = max(peak, now[0] if now else 0.0)
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-500:]
    return proc.returncode, time.perf_counter() - started, peak, usage.ru_maxrss / 1024.0, tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=20_000)
    ap.add_argument("--keep", type=Path, default=None, help="make/reuse the PNG in this folder")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="lunglens-huge-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        png = work / f"huge{args.side}.png"
        if not png.is_file():
            make_png(png, args.side)
        print(f"{png.name}: {png.stat().st_size / 1e6:.1f} MB, {args.side:,}² px; "
              f"load average {os.getloadavg()[0]:.1f}")
        lunglens = [sys.executable, "-m", "desktop.main"]
        out = work / "out"
        runs = {
            "classify --json --no-worklist": [*lunglens, "classify", str(png), "--json", "--no-worklist"],
            "classify --json --cam-dir D --cam-all": [*lunglens, "classify", str(png), "--json", "--cam-dir",
                                                      str(out / "cam"), "--cam-all"],
            "report --pdf --dicom-sc": [*lunglens, "report", str(png), "--pdf", str(out / "r.pdf"),
                                        "--dicom-sc", str(out / "sc.dcm")],
        }
        for name, cmd in runs.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            with tempfile.TemporaryDirectory(prefix="lunglens-huge-data-") as data:
                code, wall, peak, largest, stderr = peak_of(cmd, Path(data))
            written = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(out.rglob("*"))
                                if p.is_file()) or "nothing"
            ok = "ok" if peak <= TARGET_PEAK_MB else "MISSED"
            print(f"{name}: exit {code}, {wall:.1f} s, peak RSS {peak:,.0f} MB all processes [target <= "
                  f"{TARGET_PEAK_MB:,.0f}: {ok}] (largest process {largest:,.0f} MB); wrote {written}")
            if code != 0:
                print(f"  stderr: {stderr}")
            sc = out / "sc.dcm"
            if sc.is_file():
                size = sc.stat().st_size / 2**20
                print(f"  Secondary Capture {size:.1f} MB [target <= {TARGET_SC_MB:.0f}: "
                      f"{'ok' if size <= TARGET_SC_MB else 'MISSED'}]")
        print(f"load average {os.getloadavg()[0]:.1f} at end")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
