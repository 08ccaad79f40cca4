"""SIGTERM and SIGINT close the window as the user would: the real app, in its own process."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from inference.worklist import Worklist

from tests.fixtures.processes import running

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.mark.parametrize(("sig", "whole_group"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM to the app", "Ctrl+C: SIGINT to its process group"])
def test_a_signal_closes_the_window_and_keeps_the_result(tmp_path, kermany_samples, bundled_model, sig, whole_group):
    data, config = tmp_path / "data", tmp_path / "config"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(config), LUNGLENS_DATA_DIR=str(data))
    film = kermany_samples["PNEUMONIA"][0]
    audit = data / "audit.jsonl"
    with running([sys.executable, "-m", "desktop.main", str(film)], env=env, start_new_session=True) as proc:
        # The audit log records the analysis once its result is shown: the event loop is running.
        deadline = time.monotonic() + 180
        while not (audit.exists() and '"event":"analysis"' in audit.read_text(encoding="utf-8")):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no analysis in the audit log"
            time.sleep(0.2)
        # A terminal's Ctrl+C reaches the analysis process too, which must leave the stop to the window.
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "leaked semaphore" not in err, err
    # closeEvent ran: the window's geometry is saved, and the result stays in the worklist.
    settings = list(config.rglob("*.conf"))
    assert settings and "geometry=" in settings[0].read_text(encoding="utf-8")
    records = Worklist(data / "worklist.sqlite3").records()
    assert [r.study_path for r in records] == [str(film)]
