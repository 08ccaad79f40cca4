"""Benchmark the shipped LungLens: sizes of what a user downloads and installs, and how fast
the frozen app starts. Prints figures; asserts nothing (targets are printed beside them).

    python bench/package.py [--runs 3] [--drop-caches] [--xvfb]

Uses dist/ from ``make package`` (run it first). The .deb is extracted with ``dpkg -x`` into
a scratch root and the app is run from there, as it is installed.

- installed size: ``du`` of the extracted /opt/lunglens;
- installer size: the .deb (and the portable .tar.gz);
- first window: with ``--xvfb`` (needs Xvfb and xwininfo), launch of ``lunglens`` on a
  virtual X server until its window is mapped (IsViewable) -- what a user sees; without it,
  offscreen, ``lunglens --screenshot OUT.png`` with no study, launch until the process has
  grabbed its window and exited (an upper bound);
- result shown: ``lunglens --screenshot OUT.png STUDY`` with one compressed DICOM, launch
  until the result is on screen, grabbed and the process has exited (an upper bound).

``--drop-caches`` (root) empties the page cache before each run for a true cold start;
without it the first run is the coldest and the rest are warm.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load_build_module():
    """packaging/build.py under its own name ("build" is also a PyPI package)."""
    spec = importlib.util.spec_from_file_location("lunglens_build", REPO / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


_build = _load_build_module()
outputs = _build.outputs

# The targets: sizes in MB (10^6 bytes), times in seconds.
TARGETS = {"installed": 350, "installer": 150, "first_window": 3.0, "result": 5.0}
MB_PER_MIB = 1.048576


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def du_bytes(path: Path) -> int:
    """Disk usage like ``du -sb``: real files, symlinks not followed."""
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """A private X server; returns it and its DISPLAY."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    data = b""
    while not data.endswith(b"\n"):  # Xvfb writes "N\n"; closing early kills it (EPIPE)
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    number = data.decode().strip()
    if not number or server.poll() is not None:
        raise SystemExit("Xvfb did not start")
    return server, f":{number}"


def time_to_window(exe: Path, env: dict[str, str], cold: bool) -> float:
    """Launch the GUI and poll X until a window titled LungLens is viewable."""
    if cold:
        drop_caches()
    t0 = time.perf_counter()
    app = subprocess.Popen([str(exe)], env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while time.perf_counter() - t0 < 60:
            probe = subprocess.run(["xwininfo", "-name", "LungLens"], env=env, capture_output=True, text=True)
            if "IsViewable" in probe.stdout:
                return time.perf_counter() - t0
            if app.poll() is not None:
                raise SystemExit(f"lunglens exited ({app.returncode}) before showing a window:\n{app.stderr.read()}")
            time.sleep(0.02)
        raise SystemExit("no LungLens window within 60 s")
    finally:
        try:
            os.killpg(app.pid, 15)  # the app and its analysis process
        except ProcessLookupError:
            pass
        app.wait(timeout=30)


def timed_run(cmd: list[str], env: dict[str, str], cold: bool) -> float:
    if cold:
        drop_caches()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true", help="cold page cache before each run (root)")
    parser.add_argument("--xvfb", action="store_true", help="run on Xvfb (xcb) instead of offscreen")
    args = parser.parse_args(argv)

    out = outputs()
    if not out.deb.exists():
        raise SystemExit(f"{out.deb} not found: run `make package` first")
    with tempfile.TemporaryDirectory(prefix="lunglens-bench-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["dpkg", "-x", str(out.deb), str(root)], check=True)
        app_dir = root / "opt" / "lunglens"
        exe = app_dir / "lunglens"
        sample = app_dir / "_internal" / "resources" / "samples" / "sample-pneumonia.dcm"
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "LANG": "C.UTF-8",
        }
        shot = str(Path(tmp) / "shot.png")
        server = None
        try:
            if args.xvfb:
                if not (shutil.which("Xvfb") and shutil.which("xwininfo")):
                    raise SystemExit("--xvfb needs Xvfb and xwininfo (apt-get install xvfb x11-utils)")
                server, env["DISPLAY"] = start_xvfb()
                first = [time_to_window(exe, env, args.drop_caches) for _ in range(args.runs)]
            else:
                env["QT_QPA_PLATFORM"] = "offscreen"
                first = [timed_run([str(exe), "--screenshot", shot], env, args.drop_caches) for _ in range(args.runs)]
            result = [
                timed_run([str(exe), "--screenshot", shot, str(sample)], env, args.drop_caches)
                for _ in range(args.runs)
            ]
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
        installed = mib(du_bytes(app_dir))

    deb, tgz = mib(out.deb.stat().st_size), mib(out.tarball.stat().st_size) if out.tarball.exists() else float("nan")
    cache = "page cache dropped before each run" if args.drop_caches else "first run coldest, then warm"
    display = "Xvfb (xcb), first window = mapped" if args.xvfb else "offscreen, first window = screenshot+exit"

    def verdict(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER TARGET"

    print(f"LungLens package benchmark ({out.deb.name}; {os.cpu_count()} CPUs; display {display}; {cache})")
    for label, size, key in (("installed size (/opt/lunglens)", installed, "installed"), ("installer .deb", deb, "installer")):
        mb = size * MB_PER_MIB
        print(f"{label + ':':<32}{size:7.1f} MiB = {mb:5.1f} MB  target <= {TARGETS[key]} MB {verdict(mb, TARGETS[key])}")
    print(f"portable .tar.gz:               {tgz:7.1f} MiB")
    for name, runs, key in (("first window", first, "first_window"), ("file to result", result, "result")):
        worst = max(runs)
        print(
            f"{name:<15}: first {runs[0]:.2f} s, median {statistics.median(runs):.2f} s, "
            f"max {worst:.2f} s over {len(runs)} runs  target <= {TARGETS[key]} s {verdict(worst, TARGETS[key])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
