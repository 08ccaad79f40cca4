"""LungLens never phones home: ONNX Runtime's own telemetry is switched off in every process.

ONNX Runtime's official wheels collect telemetry on Linux too (since 1.29): on first use a
device identifier and an event queue appear under ``~/.cache/Microsoft/DeveloperTools``, and
an uploader sends them to Microsoft (the frozen app looked the server's name up ten times in
90 s). The queue on disk is the witness used here: it exists exactly when the telemetry has
started. Each command runs in a fresh HOME and an environment of its own, without the variables
by which ONNX Runtime recognises a CI machine (``CI``, ``GITHUB_ACTIONS``, ...: there it stays
quiet by itself, which is how this went unseen).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

MODEL = REPO / "resources" / "models" / "lunglens-cxr.onnx"
SAMPLE = REPO / "resources" / "samples" / "sample-pneumonia.png"
def _env(home: Path) -> dict[str, str]:
    """A user's session, built from nothing: no CI variable and no ORT_DISABLE_TELEMETRY inherited."""
    home.mkdir()
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(home),
            "LUNGLENS_DATA_DIR": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(home), "QT_QPA_PLATFORM": "offscreen"}


def _telemetry(home: Path) -> list[str]:
    folder = home / ".cache" / "Microsoft"
    return sorted(str(p.relative_to(home)) for p in folder.rglob("*")) if folder.exists() else []


def test_onnx_runtime_by_itself_starts_its_telemetry_here(tmp_path: Path) -> None:
    """The witness works: plain ONNX Runtime, in the same environment, writes its queue."""
    home = tmp_path / "home"
    run = subprocess.run([sys.executable, "-c", "import onnxruntime as o, sys; "
                          f"o.InferenceSession({str(MODEL)!r}, providers=['CPUExecutionProvider'])"],
                         env=_env(home), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert any(name.endswith("deviceid") for name in _telemetry(home)), (
        "this ONNX Runtime no longer writes a telemetry queue: the tests below have lost their witness")


def test_classify_and_the_window_with_its_analysis_process_start_no_telemetry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    classify = subprocess.run([sys.executable, "-m", "desktop.main", "classify", str(SAMPLE), "--json"],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert classify.returncode == 0, classify.stderr
    window = subprocess.run([sys.executable, "-m", "desktop.main", str(SAMPLE), "--screenshot",
                             str(tmp_path / "shot.png"), "--size", "800x600"],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert window.returncode == 0, window.stderr
    assert (tmp_path / "shot.png").stat().st_size > 0
    assert _telemetry(home) == []


def test_the_dicom_node_starts_no_telemetry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    serve = subprocess.Popen([sys.executable, "-m", "desktop.main", "serve", "--port", "0"], env=_env(home),
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.endswith("lunglens serve: ready") for line in lines):
            line = serve.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.strip())
        assert any(line.endswith("lunglens serve: ready") for line in lines), lines
        time.sleep(1.0)
    finally:
        serve.terminate()
        serve.communicate(timeout=30)
    assert _telemetry(home) == []
