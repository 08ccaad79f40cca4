"""Hostile files through ``lunglens classify --json``: outcome table and peak memory (not a test).

Writes seeded cases of every family of tests/fixtures/hostile.py (issue 18), runs the real
command on each in its own process (``--workers`` at a time) and sorts the outcomes:

- classified: ``ok: true`` for a file whose pixel data agrees with its header;
- clean error: ``ok: false`` with a reason, nothing resembling a traceback or panic on stderr;
- over budget: an answer, but after more than ``--seconds`` or above ``--rss-mb``;
- hang: no answer within ``--timeout`` (killed);
- crash: no JSON line, a traceback or panic on stderr, or ``ok: true`` for a file that
  contradicts its header (garbage classified).

Peak RSS is the largest of the command and its decode workers (``wait4``: the command reaps
its workers at exit), as ``/usr/bin/time -v`` reports it; "peak total" is the largest sum of
their RSS, sampled every 20 ms from /proc.

    .venv/bin/python bench/fuzz.py --cases 2000 [--families j2k-siz,png-bomb] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.hostile import FAMILIES, HEAVY, HostileCase, make_case  # noqa: E402

LUNGLENS = REPO / ".venv" / "bin" / "lunglens"
OUTCOMES = ("classified", "clean error", "over budget", "hang", "crash")
# What a Python traceback, a Rust panic or a C++ abort looks like on stderr.
NOISE = re.compile(r"Traceback \(most recent call last\)|panicked at|RUST_BACKTRACE|terminate called|Aborted")


@dataclass(frozen=True)
class Run:
    case: HostileCase
    outcome: str
    seconds: float
    rss_mb: float
    total_mb: float
    detail: str


def run_one(case: HostileCase, timeout: float, seconds: float, rss_mb: float, limit_gb: float | None) -> Run:
    """``lunglens classify --json FILE`` in a child process; its wall time and peak RSS."""
    def cap() -> None:  # only for measuring the unbounded loader without endangering the machine
        if limit_gb:
            limit = int(limit_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(LUNGLENS), "classify", "--json", str(case.path)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, preexec_fn=cap)
        hung = False
        total = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            total = max(total, tree_rss_mb(proc.pid))
            if time.perf_counter() - start > timeout:
                hung = True
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: stop Popen waiting again
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    peak = usage.ru_maxrss / 1024
    total = max(total, peak)
    if hung:
        return Run(case, "hang", elapsed, peak, total, f"killed after {timeout:.0f} s")
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if len(lines) != 1:
        return Run(case, "crash", elapsed, peak, total, f"exit {proc.returncode}, no JSON line: {stderr[-300:]!r}")
    result = json.loads(lines[0])
    if NOISE.search(stderr):
        return Run(case, "crash", elapsed, peak, total, f"stderr: {stderr[-300:]!r}")
    if result["ok"] and case.contradicts:
        return Run(case, "crash", elapsed, peak, total, "garbage classified: the stream contradicts its header")
    if elapsed > seconds or peak > rss_mb:
        return Run(case, "over budget", elapsed, peak, total, result.get("error", "classified"))
    return Run(case, "classified" if result["ok"] else "clean error", elapsed, peak, total, result.get("error", ""))


def tree_rss_mb(root: int) -> float:
    """The summed RSS of ``root`` and its descendants now (0 where /proc cannot tell)."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(entry))
        rss[int(entry)] = int(fields[21])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def plan(cases: int, families: list[str], heavy_share: float) -> list[str]:
    """Family of each case: heavy families (seconds each before the fix) get a smaller share."""
    light = [f for f in families if f not in HEAVY]
    heavy = [f for f in families if f in HEAVY]
    n_heavy = round(cases * heavy_share) if heavy and light else (cases if heavy else 0)
    return [heavy[i % len(heavy)] for i in range(n_heavy)] + [light[i % len(light)] for i in range(cases - n_heavy)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, from tests/fixtures/hostile.py")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--workers", type=int, default=2, help="files run at once")
    parser.add_argument("--heavy-share", type=float, default=0.05, help="share of cases from the bomb families")
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per file (issue 18)")
    parser.add_argument("--rss-mb", type=float, default=1536.0, help="peak RSS budget per file (issue 18)")
    parser.add_argument("--timeout", type=float, default=60.0, help="kill a file's run after this long: a hang")
    parser.add_argument("--limit-gb", type=float, default=None,
                        help="address-space cap on each run (to measure an unbounded loader safely)")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families: {', '.join(sorted(unknown))}")

    rng = np.random.default_rng(args.seed)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="lunglens-fuzz-") as tmp:
        def one(item: tuple[int, str]) -> Run:
            index, family = item
            folder = Path(tmp) / f"{index:05d}"
            case = make_case(family, folder, np.random.default_rng([args.seed, index]))
            run = run_one(case, args.timeout, args.seconds, args.rss_mb, args.limit_gb)
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
            if args.verbose:
                print(f"{index:5d} {family:20s} {run.outcome:12s} {run.seconds:6.2f} s {run.rss_mb:7.0f} MB "
                      f"{run.total_mb:7.0f} MB {run.detail[:100]}", flush=True)
            return run

        order = list(enumerate(plan(args.cases, families, args.heavy_share)))
        rng.shuffle(order)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            runs = list(pool.map(one, order))
    print_table(runs)
    bad = [r for r in runs if r.outcome in ("over budget", "hang", "crash")]
    for r in bad[:20]:
        print(f"  {r.outcome}: {r.case.family} {r.seconds:.1f} s {r.rss_mb:.0f} MB: {r.detail[:200]}")
    return 1 if bad else 0


def print_table(runs: list[Run]) -> None:
    by_family: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_family[r.case.family].append(r)
    header = f"{'family':20s} {'cases':>5s} " + " ".join(f"{o:>11s}" for o in OUTCOMES)
    print(header + f" {'max s':>6s} {'peak RSS MB':>11s} {'peak total MB':>13s}")
    for family in sorted(by_family):
        rs = by_family[family]
        counts = Counter(r.outcome for r in rs)
        print(f"{family:20s} {len(rs):5d} " + " ".join(f"{counts[o]:11d}" for o in OUTCOMES)
              + f" {max(r.seconds for r in rs):6.1f} {max(r.rss_mb for r in rs):11.0f}"
              + f" {max(r.total_mb for r in rs):13.0f}")
    counts = Counter(r.outcome for r in runs)
    print(f"{'all':20s} {len(runs):5d} " + " ".join(f"{counts[o]:11d}" for o in OUTCOMES)
          + f" {max(r.seconds for r in runs):6.1f} {max(r.rss_mb for r in runs):11.0f}"
          + f" {max(r.total_mb for r in runs):13.0f}")


if __name__ == "__main__":
    sys.exit(main())
