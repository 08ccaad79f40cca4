"""A GUI session never touches the network: with sockets refused in the window's process and
in its spawned analysis process, and inside a network namespace with no network at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desktop.gui_helpers import wait_idle
from tests.fixtures.no_network import LOG_ENV, guarded_env, install

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def guard(monkeypatch, tmp_path: Path) -> Path:
    """The guard in this process and, through PYTHONPATH, in every Python it starts."""
    folder = tmp_path / "guard"
    for key, value in guarded_env(folder).items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    install(monkeypatch.setattr)
    return folder


@pytest.fixture
def guarded_window(guard: Path, qtbot, app_settings, bundled_model, qapp) -> Iterator:
    """The real main window, built only after the guard is in place (it spawns its analysis process)."""
    from desktop.app import make_application
    from desktop.controller import StudyController
    from desktop.widgets.qt_main_window import MainWindow

    make_application()
    controller = StudyController(app_settings)
    win = MainWindow(controller)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
    assert controller.worker.shutdown(10.0), "background threads did not stop"


def test_gui_session_with_sockets_refused(guard: Path, guarded_window, qtbot, real_dicom: Path,
                                          kermany_samples: dict[str, list[Path]]) -> None:  # fmt: skip
    c = guarded_window.controller
    paths = [real_dicom, kermany_samples["PNEUMONIA"][0]]
    guarded_window.open_paths(paths)
    qtbot.waitUntil(lambda: c.model.rowCount() == len(paths), timeout=30_000)
    wait_idle(qtbot, c)
    items = {it.path: it for it in c.model.items()}
    for path in paths:
        p = items[path].prediction
        assert p is not None, f"no result for {path.name}"
        assert 0.0 <= p.probability <= 1.0

    log = Path(os.environ[LOG_ENV])
    assert not log.exists(), f"network attempts: {log.read_text()}"
    children = [json.loads(f.read_text()) for f in (guard / "reports").glob("guard-*.json")]
    assert children, "the guard was not installed in the analysis process"


def test_gui_inside_a_network_namespace(tmp_path: Path, real_dicom: Path) -> None:
    """``lunglens --screenshot`` (open, analyse, show, save) works with no network namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.strip() or probe.returncode}")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    out = tmp_path / "shot.png"
    run = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "desktop.main", "--screenshot", str(out), "--size", "1024x700",
         str(real_dicom)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.stat().st_size > 20_000
