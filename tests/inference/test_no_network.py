"""LungLens never touches the network: classification works with every socket refused,
inside a network namespace with no network at all, and downloads nothing.

The guard (tests/fixtures/no_network.py) refuses internet sockets, name resolution and
connections, and logs every attempt so that one a library swallows still fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from inference.engine import Engine
from inference.loaders import load_study
from tests.fixtures.no_network import LOG_ENV, NetworkBlocked, guarded_env, install

REPO = Path(__file__).resolve().parents[2]
# A download would be big; what the app may write (settings, audit log) is small.
MAX_WRITTEN_BYTES = 1_000_000


@pytest.fixture
def inputs(kermany_samples: dict[str, list[Path]], real_dicom: Path) -> list[Path]:
    return [kermany_samples["NORMAL"][0], kermany_samples["PNEUMONIA"][0], real_dicom]


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]


def _run_cli(paths: list[Path], env: dict[str, str], cwd: Path, prefix: list[str] | None = None,
             options: tuple[str, ...] = ()):
    cmd = [*(prefix or []), sys.executable, "-m", "desktop.main", "classify", "--json", "--threads", "1", *options,
           *map(str, paths)]  # fmt: skip
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _home_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """Point every per-user folder at ``home`` so that whatever the run writes can be listed."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_DATA_HOME=str(home / ".local" / "share"), XDG_STATE_HOME=str(home / ".local" / "state"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    return env


def test_engine_and_loaders_classify_with_sockets_refused(monkeypatch, tmp_path: Path, inputs: list[Path]) -> None:
    log = tmp_path / "attempts.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    install(monkeypatch.setattr)
    with pytest.raises(NetworkBlocked):  # the guard really is in place
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    log.unlink()

    engine = Engine.load(threads=1)
    for path in inputs:
        p = engine.predict(load_study(path))
        assert 0.0 <= p.probability <= 1.0 and p.label in ("NORMAL", "PNEUMONIA")
        assert p.attribution is not None and p.attribution.grid.shape == (14, 14)
    assert not log.exists(), log.read_text()


def test_cli_in_a_guarded_process_downloads_nothing(tmp_path: Path, inputs: list[Path]) -> None:
    guard = tmp_path / "guard"
    home = tmp_path / "home"
    env = _home_env(guarded_env(guard), home)
    watched = [REPO / "resources"]  # where a fetched model would land, besides the redirected HOME
    before = {p: p.stat().st_mtime_ns for d in watched for p in d.rglob("*") if "__pycache__" not in p.parts}

    run = _run_cli(inputs, env, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    records = _records(run.stdout)
    assert [Path(r["path"]) for r in records] == inputs
    assert all(r["ok"] and 0.0 <= r["probability"] <= 1.0 for r in records), records
    reports = guard / "reports"
    assert list(reports.glob("guard-*.json")), "the guard was not installed in the CLI process"
    loaded = [json.loads(f.read_text()) for f in reports.glob("modules-*.json")]
    assert loaded and all(m == [] for m in loaded), f"HTTP client libraries imported: {loaded}"
    assert not (guard / "attempts.log").exists(), (guard / "attempts.log").read_text()

    after = {p: p.stat().st_mtime_ns for d in watched for p in d.rglob("*") if "__pycache__" not in p.parts}
    assert after == before, "the run changed files of the installation"
    written = [p for p in home.rglob("*") if p.is_file()]
    big = [(str(p), p.stat().st_size) for p in written if p.stat().st_size > MAX_WRITTEN_BYTES]
    assert not big, f"large files written at run time (a download?): {big}"
    assert not list(tmp_path.glob("*.onnx")) and not list(home.rglob("*.onnx"))


def _unshare_problem() -> str | None:
    """Why ``unshare -n`` cannot be used here, or None if it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here: {probe.stderr.strip() or probe.returncode}"
    return None


def test_cli_inside_a_network_namespace_gives_the_same_results(tmp_path: Path, inputs: list[Path]) -> None:
    problem = _unshare_problem()
    if problem:
        pytest.skip(problem)
    env = _home_env(dict(os.environ), tmp_path / "home")
    # Inside the namespace there is no route anywhere: prove it before relying on it.
    probe = subprocess.run(
        ["unshare", "-n", sys.executable, "-c",
         "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower(), probe.stderr

    # Without the worklist, or the second run would answer every study from the first's results.
    normal = _run_cli(inputs, env, cwd=tmp_path, options=("--no-worklist",))
    isolated = _run_cli(inputs, env, cwd=tmp_path, prefix=["unshare", "-n"], options=("--no-worklist",))
    assert normal.returncode == 0, normal.stderr
    assert isolated.returncode == 0, isolated.stderr

    def comparable(stdout: str) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "timings_ms"} for r in _records(stdout)]

    assert len(_records(normal.stdout)) == len(inputs)
    assert comparable(isolated.stdout) == comparable(normal.stdout)
