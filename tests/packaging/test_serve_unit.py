"""The .deb's systemd unit for ``lunglens serve`` (packaging/build.py): valid for systemd,
runs the node as a throw-away user confined to its state folder, installed disabled, and
stopped by SIGTERM (which the node obeys within seconds: tests/inference/test_dicom_node.py).
The .deb itself, with the unit in it, is built and installed by tests/packaging/test_frozen.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "packaging"))

import build  # noqa: E402  (packaging/build.py)


def test_the_unit_runs_the_node_confined_and_is_not_enabled_by_the_package() -> None:
    unit = build.serve_unit()
    lines = set(unit.splitlines())
    assert "ExecStart=/usr/bin/lunglens serve $LUNGLENS_SERVE_OPTIONS" in lines
    assert {"DynamicUser=yes", "StateDirectory=lunglens", "Environment=LUNGLENS_DATA_DIR=/var/lib/lunglens",
            "KillSignal=SIGTERM", "ProtectSystem=strict", "UMask=0077"} <= lines
    # The usual DICOM port, 104: a dynamic user without it could not bind, and restarted every 10 s.
    assert {"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"} <= lines
    assert f"EnvironmentFile=-{build.SERVE_DEFAULTS}" in lines
    defaults = build.serve_defaults()
    assert "LUNGLENS_SERVE_OPTIONS=--bind 127.0.0.1 --port 11112" in defaults.splitlines()  # loopback by default
    # Disabled by default: the package has no maintainer script that could enable or start it.
    source = (REPO / "packaging" / "build.py").read_text(encoding="utf-8")
    assert '"postinst"' not in source and '"preinst"' not in source


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / build.SERVE_UNIT
    unit.write_text(build.serve_unit().replace("/usr/bin/lunglens", "/bin/true"), encoding="utf-8")
    run = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (run.stdout + run.stderr).splitlines()
                if build.SERVE_UNIT in line and "network-online.target" not in line]
    assert problems == [], run.stdout + run.stderr
