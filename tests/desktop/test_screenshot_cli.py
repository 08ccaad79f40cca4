"""``lunglens --screenshot``: the real command, in its own process, as the README uses it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_screenshot_waits_for_results_and_exits_zero(tmp_path, real_dicom, kermany_samples, bundled_model):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               LUNGLENS_DATA_DIR=str(tmp_path / "data"))
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM" * 10)
    args = [sys.executable, "-m", "desktop.main", "--screenshot", str(out), "--size", "1280x800",
            str(real_dicom), str(kermany_samples["PNEUMONIA"][0]), str(bad)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1280, 800)
    # Not a blank window: the dark theme plus a radiograph and coloured results.
    colours = {img.pixel(x, y) for x in range(0, 1280, 16) for y in range(0, 800, 16)}
    assert len(colours) > 200


def test_bad_size_is_a_clear_error(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-m", "desktop.main", "--screenshot", str(tmp_path / "x.png"),
                           "--size", "big"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--size must look like 1440x900" in proc.stderr


def test_missing_model_is_not_a_successful_screenshot(tmp_path, real_dicom):
    empty = tmp_path / "resources"
    (empty / "models").mkdir(parents=True)
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               LUNGLENS_RESOURCES=str(empty))
    proc = subprocess.run([sys.executable, "-m", "desktop.main", "--screenshot", str(out), str(real_dicom)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "model is not available" in proc.stderr and "Traceback" not in proc.stderr
    assert out.is_file()  # the window (with its "model unavailable" banner) is still pictured
