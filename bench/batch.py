"""Batch triage benchmark: studies per second and memory, through the CLI and the app's worker.

    .venv/bin/python bench/batch.py [--n 500] [--only cli|worker] [--sets dicom,png]
                                    [--threads N] [--keep DIR] [--matrix]

Makes N 1,024x1,024 JPEG-baseline DICOMs and N 1,024x1,024 PNGs from real Kermany training
images (upsampled) in a temporary folder, then runs each set

  * through the CLI: ``lunglens classify DIR --json`` with its default flags in a subprocess,
    timing each result line as it arrives and reading the child's RSS from /proc as it goes
    (Linux); then the same command again, which answers every study from the worklist the
    first run filled (each CLI run gets a fresh, empty data folder: LUNGLENS_DATA_DIR);
  * through the app's worker (desktop.worker.StudyWorker, the same object the window uses)
    in a subprocess with a QCoreApplication event loop (the worker runs its analysis in a
    child process of its own: memory is summed over the whole process tree); then, in another
    such subprocess, the time to show a study (the worker's view) after 20 are analysed: the
    last one (the batch has just decoded it), the first (decoded again) and the first again.

Reported for the CLI, from one run: studies/s for the whole command (start to exit: start-up,
model loading and the last write included -- what a user waits for) and in the batch (first
result to last); the cached rerun's whole-command rate; CPU time per study (hardly changed
by other processes competing for the cores, so it bounds what an idle machine reaches); peak
RSS (wait4 ru_maxrss, and the process tree's sum sampled at each result); RSS and anonymous
RSS after 50 and after N results; the mean per-stage times the engine reports.
``--threads N`` passes ONNX Runtime's thread count to the CLI (default: the thread policy's,
inference/threads.py). ``--matrix`` instead times the whole command on the DICOM set under
several thread policies (ONNX Runtime threads and spinning, BLAS threads, decode threads),
interleaved, which is how the policy in inference/threads.py was chosen.
Targets (issues 5 and 14, on the 2-core machine): >= 45 studies/s for the whole command on
the DICOMs, peak RSS <= 1 GB, RSS after N within 100 MB of RSS after 50. The bundled model is
used unless LUNGLENS_RESOURCES points elsewhere. Other processes on the machine slow it down:
the figures are only as quiet as the machine was (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KERMANY = REPO.parent / "shared" / "data" / "kermany-cxr-224" / "train"
SIZE = 1024
TARGET_RATE, TARGET_PEAK_MB, TARGET_GROWTH_MB = 45.0, 1024.0, 100.0


# ------------------------------------------------------------------------- data
def source_images(n: int) -> list[Path]:
    files = sorted((KERMANY / "NORMAL").glob("*.jpeg")) + sorted((KERMANY / "PNEUMONIA").glob("*.jpeg"))
    if len(files) < n:
        sys.exit(f"bench/batch.py: need {n} images in {KERMANY}, found {len(files)}")
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def upsampled(path: Path):
    import cv2

    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)


def write_jpeg_dicom(path: Path, pixels, index: int) -> None:
    """A CR image, 8-bit MONOCHROME2, pixel data JPEG baseline (process 1), like the real one."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ComputedRadiographyImageStorage, JPEGBaseline8Bit, generate_uid

    ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, 0])
    assert ok
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientAge, ds.PatientSex = f"BENCH^{index}", f"B{index:05d}", "004Y", "O"
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "AP"
    ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.PixelData = encapsulate([jpeg.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def make_sets(work: Path, n: int) -> dict[str, Path]:
    import cv2

    dicom_dir, png_dir = work / "dicom", work / "png"
    if len(list(dicom_dir.glob("*.dcm"))) == n and len(list(png_dir.glob("*.png"))) == n:
        return {"dicom": dicom_dir, "png": png_dir}
    for d in (dicom_dir, png_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, src in enumerate(source_images(n)):
        px = upsampled(src)
        write_jpeg_dicom(dicom_dir / f"IM{i:04d}.dcm", px, i)
        cv2.imwrite(str(png_dir / f"IM{i:04d}.png"), px)
    print(f"made {n} DICOMs + {n} PNGs of {SIZE}x{SIZE} in {time.perf_counter() - t0:.1f} s under {work}")
    return {"dicom": dicom_dir, "png": png_dir}


# ---------------------------------------------------------------------- measuring
def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the app's worker runs its analysis in a child)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, p in parent_of.items() if p in frontier]
        tree += frontier
    return tree


def rss_mb(pids: list[int]) -> tuple[float, float] | None:
    """(VmRSS, RssAnon) in MB summed over ``pids``. RssAnon -- heap, arrays, buffers -- is
    what a leak grows; VmRSS also counts mapped library pages, which the kernel may drop and
    re-read at will (this machine runs DAMON proactive reclaim), so it can even shrink."""
    total = [0.0, 0.0]
    found = False
    for pid in pids:
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
            )
            total[0] += int(fields["VmRSS"].split()[0]) / 1024.0
            total[1] += int(fields["RssAnon"].split()[0]) / 1024.0
            found = True
        except (OSError, KeyError, ValueError):
            continue
    return (total[0], total[1]) if found else None


def run_child(cmd: list[str], n: int, parse, env_extra: dict[str, str] | None = None) -> dict:
    """Run ``cmd``, timing each result line; ``parse(line)`` -> dict or None (not a result)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    t_start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    stamps: list[float] = []
    tree = [proc.pid]
    rss: list[tuple[float, float] | None] = []
    results: list[dict] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        item = parse(line)
        if item is None:
            continue
        stamps.append(time.perf_counter())
        if len(results) % 10 == 0:
            tree = descendants(proc.pid)
        rss.append(rss_mb(tree))
        results.append(item)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read() if proc.stderr else ""
    t_end = time.perf_counter()
    if len(results) != n:
        raise RuntimeError(f"{cmd[2:5]}: {len(results)} results of {n} (exit {proc.returncode}): {stderr[-2000:]}")
    at50 = next((r for r in rss[49:] if r is not None), None)
    at_end = next((r for r in reversed(rss) if r is not None), None)
    return {
        "ok": sum(1 for r in results if r.get("ok")),
        "cached": sum(1 for r in results if r.get("cached")),
        "rate": (n - 1) / (stamps[-1] - stamps[0]),
        "overall_rate": n / (t_end - t_start),
        "wall_s": t_end - t_start,
        "first_result_s": stamps[0] - t_start,
        "peak_mb": usage.ru_maxrss / 1024.0,  # the largest single process of the tree
        "peak_tree_mb": max((r[0] for r in rss if r is not None), default=0.0),
        # CPU seconds per study (start-up included): unlike the rate, hardly changed by other
        # processes competing for the cores, so it bounds what an idle machine would reach.
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000.0 / n,
        "rss50_mb": at50,
        "rss_end_mb": at_end,
        "stages": mean_stages(results),
        "exit": proc.returncode,
    }


def mean_stages(results: list[dict]) -> dict[str, float]:
    sums: dict[str, float] = {}
    count = 0
    for r in results:
        t = r.get("timings_ms")
        if not t:
            continue
        count += 1
        for k, v in t.items():
            if k != "load":
                sums[k] = sums.get(k, 0.0) + float(v)
    return {k: v / count for k, v in sums.items()} if count else {}


def parse_json_line(line: str) -> dict | None:
    line = line.strip()
    return json.loads(line) if line.startswith("{") else None


def bench_cli(folder: Path, n: int, threads: int | None = None) -> tuple[dict, dict]:
    """The whole command with its default flags (``--threads`` only if given), on an empty
    worklist; then again, answered from the worklist the first run filled."""
    cmd = [sys.executable, "-m", "desktop.main", "classify", str(folder), "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    data = tempfile.mkdtemp(prefix="lunglens-bench-data-")
    try:
        fresh = run_child(cmd, n, parse_json_line, {"LUNGLENS_DATA_DIR": data})
        cached = run_child(cmd, n, parse_json_line, {"LUNGLENS_DATA_DIR": data})
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return fresh, cached


# The CLI under a given thread policy: inference.threads is patched before the engine imports it.
_POLICY_CHILD = """
import json, sys
import inference.threads as t
cfg = json.loads(sys.argv[1])
if not cfg["blas"]:
    t.limit_blas = lambda: None
t.policy = lambda threads=None, cores=None: t.ThreadPolicy(intra_op=cfg["intra"], decoders=cfg["decoders"],
                                                          spinning=cfg["spin"])
from desktop.main import main
sys.exit(main(sys.argv[2:]))
"""

# (label, ONNX Runtime intra-op threads (0: its default, one per core), decode threads,
#  BLAS held to one thread, ONNX Runtime threads spin-wait)
POLICIES = [
    ("ORT default + spinning, BLAS default, 1 decoder (before issue 14)", 0, 1, False, True),
    ("ORT 2, BLAS default, 1 decoder", 2, 1, False, False),
    ("ORT 2, BLAS 1, 1 decoder", 2, 1, True, False),
    ("ORT 1, BLAS 1, 1 decoder", 1, 1, True, False),
    ("ORT 1, BLAS 1, 2 decoders", 1, 2, True, False),
    ("ORT 2, BLAS 1, 2 decoders", 2, 2, True, False),
    ("ORT 1, BLAS 1, 1 decoder, spinning", 1, 1, True, True),
]


def bench_matrix(folder: Path, n: int, rounds: int) -> None:
    """Whole-command studies/s under each policy, ``rounds`` times interleaved (medians)."""
    rates: dict[str, list[float]] = {p[0]: [] for p in POLICIES}
    cpu: dict[str, list[float]] = {p[0]: [] for p in POLICIES}
    for _ in range(rounds):
        for label, intra, decoders, blas, spin in POLICIES:
            cfg = json.dumps({"intra": intra, "decoders": decoders, "blas": blas, "spin": spin})
            cmd = [sys.executable, "-c", _POLICY_CHILD, cfg, "classify", str(folder), "--json", "--no-worklist"]
            r = run_child(cmd, n, parse_json_line)
            rates[label].append(r["overall_rate"])
            cpu[label].append(r["cpu_ms"])
            print(f"  {label}: {r['overall_rate']:.1f} studies/s, {r['cpu_ms']:.0f} ms CPU a study "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"| policy | whole command, studies/s (median of {rounds}) | CPU ms a study |")
    print("| --- | ---: | ---: |")
    for label, *_ in POLICIES:
        print(f"| {label} | {statistics.median(rates[label]):.1f} | {statistics.median(cpu[label]):.0f} |")


def bench_worker(folder: Path, n: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker-child", str(folder)]

    def parse(line: str):
        return json.loads(line[7:]) if line.startswith("RESULT ") else None

    return run_child(cmd, n, parse)


VIEWED_BATCH = 20  # studies analysed before the views are timed: more than the decoded cache holds


def bench_views(folder: Path) -> dict[str, float]:
    """Milliseconds from asking the app's worker for a study on screen to having it: one the
    batch has just decoded, one it decoded long ago, and that one again."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker-child", str(folder), "--views"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    views = [json.loads(line[5:]) for line in out.stdout.splitlines() if line.startswith("VIEW ")]
    if out.returncode != 0 or len(views) != 3:
        raise RuntimeError(f"views: exit {out.returncode}: {out.stderr[-2000:]}")
    return {v["which"]: v["ms"] for v in views}


def worker_child(folder: Path, views: bool = False) -> int:
    """Runs in the subprocess: the app's StudyWorker over every file, one line per result; with
    ``views``, over the first VIEWED_BATCH files, then three views timed (see bench_views)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QTimer

    from desktop.analysis_messages import EngineFailed, Failed, Finished
    from desktop.worker import StudyWorker

    app = QCoreApplication([])
    files = sorted(folder.iterdir())[:VIEWED_BATCH] if views else sorted(folder.iterdir())
    done = 0
    worker = StudyWorker(provider="cpu")
    plan = [("last analysed (decoded by the batch)", files[-1]), ("first analysed (decoded again)", files[0]),
            ("first analysed, asked again", files[0])]
    asked = 0.0

    def next_view() -> None:
        nonlocal asked
        if not plan:
            QTimer.singleShot(0, app.quit)
            return
        asked = time.perf_counter()
        worker.load_for_view(len(plan), plan[0][1])

    def viewed(token: int, study) -> None:
        which, _ = plan.pop(0)
        print("VIEW " + json.dumps({"which": which, "ms": (time.perf_counter() - asked) * 1000}), flush=True)
        next_view()

    def finish() -> None:
        nonlocal done
        done += 1
        if done == len(files):
            QTimer.singleShot(0, next_view if views else app.quit)

    def on_report(r) -> None:
        if isinstance(r, Finished):
            print("RESULT " + json.dumps({"ok": True, "key": r.key, "timings_ms": r.prediction.timings_ms}), flush=True)
            finish()
        elif isinstance(r, Failed):
            print("RESULT " + json.dumps({"ok": False, "key": r.key, "error": r.reason}), flush=True)
            finish()
        elif isinstance(r, EngineFailed):
            print(f"engine failed: {r.reason}", file=sys.stderr)
            app.exit(1)

    worker.report.connect(on_report)
    worker.view_loaded.connect(viewed)
    worker.view_failed.connect(lambda token, reason: (print(reason, file=sys.stderr), app.exit(1)))
    worker.submit(list(enumerate(files)))
    code = app.exec()
    worker.shutdown()
    return code


# --------------------------------------------------------------------------- main
def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(name: str, r: dict, is_dicom: bool, cached: dict | None = None) -> None:
    at50, at_end = r["rss50_mb"], r["rss_end_mb"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()) or "n/a"
    rate_note = (f" [target >= {TARGET_RATE:.0f}: {verdict(r['overall_rate'] >= TARGET_RATE)}]"
                 if is_dicom and cached is not None else "")
    print(f"{name}:")
    print(f"  results ok          {r['ok']}  (exit {r['exit']})")
    print(f"  studies/s           {r['overall_rate']:.1f} whole command{rate_note} ({r['wall_s']:.1f} s, first "
          f"result after {r['first_result_s']:.1f} s); {r['rate']:.1f} in the batch (first result to last)")
    if cached is not None:
        print(f"  rerun, cached       {cached['overall_rate']:.1f} studies/s whole command "
              f"({cached['cached']} of {cached['ok']} answered from the worklist, {cached['wall_s']:.1f} s)")
    ceiling = (os.cpu_count() or 1) * 1000.0 / r["cpu_ms"]
    print(f"  CPU per study       {r['cpu_ms']:.1f} ms (user+sys, start-up included) -> at most "
          f"{ceiling:.0f} studies/s on {os.cpu_count()} idle cores")
    peak = max(r["peak_mb"], r["peak_tree_mb"])
    print(f"  peak RSS            {peak:.0f} MB [target <= {TARGET_PEAK_MB:.0f}: {verdict(peak <= TARGET_PEAK_MB)}] "
          f"(largest process {r['peak_mb']:.0f} MB by wait4; all processes {r['peak_tree_mb']:.0f} MB sampled per result)")
    if at50 is not None and at_end is not None:
        growth = at_end[1] - at50[1]
        print(f"  RSS after 50 / end  {at50[0]:.0f} / {at_end[0]:.0f} MB; anonymous {at50[1]:.0f} / {at_end[1]:.0f} MB, "
              f"growth {growth:+.0f} MB [target <= {TARGET_GROWTH_MB:.0f}: {verdict(growth <= TARGET_GROWTH_MB)}]")
    print(f"  mean ms per study   {stages}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="studies per set (default 500)")
    ap.add_argument("--only", choices=["cli", "worker"], default=None)
    ap.add_argument("--sets", default="dicom,png", help="comma-separated: dicom,png")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for the CLI (default: the policy's)")
    ap.add_argument("--matrix", action="store_true", help="time the whole command under several thread policies")
    ap.add_argument("--rounds", type=int, default=2, help="with --matrix: interleaved rounds (default 2)")
    ap.add_argument("--keep", type=Path, default=None, help="make/reuse the studies in this folder")
    ap.add_argument("--worker-child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--views", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_child is not None:
        return worker_child(args.worker_child, args.views)

    work = args.keep or Path(tempfile.mkdtemp(prefix="lunglens-batch-"))
    try:
        sets = make_sets(work, args.n)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
        if args.matrix:
            bench_matrix(sets["dicom"], args.n, args.rounds)
            print(f"load average {os.getloadavg()[0]:.1f} at end")
            return 0
        for kind in args.sets.split(","):
            for how in ("cli", "worker"):
                if args.only and how != args.only:
                    continue
                try:
                    r, cached = (bench_cli(sets[kind], args.n, args.threads) if how == "cli"
                                 else (bench_worker(sets[kind], args.n), None))
                except (RuntimeError, ImportError) as exc:
                    print(f"{how} / {kind}: could not run: {exc}")
                    continue
                report(f"{how} / {args.n} {SIZE}x{SIZE} {'JPEG-baseline DICOMs' if kind == 'dicom' else 'PNGs'}", r,
                       kind == "dicom", cached)
                if how == "worker":
                    try:
                        views = bench_views(sets[kind])
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"  views: could not run: {exc}")
                    else:
                        print("  study on screen     " + "; ".join(f"{k} {v:.0f} ms" for k, v in views.items())
                              + f" (after {VIEWED_BATCH} analysed)")
        print(f"load average {os.getloadavg()[0]:.1f} at end")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
