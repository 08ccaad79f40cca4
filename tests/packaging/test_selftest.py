"""``lunglens --self-test`` in the source tree: passes on the real model and samples, and
fails (exit 1, a FAIL line naming the file) when a sample is damaged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from desktop.selftest import main as selftest_main
from inference.paths import resources_dir

pytestmark = pytest.mark.gui


def test_self_test_passes_on_the_bundled_samples(qapp, capsys) -> None:
    code = selftest_main([])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ALL CHECKS PASSED" in out
    assert "FAIL" not in out
    assert "providers available: " in out and "used: CPU" in out and "ExecutionProvider" not in out
    assert out.count("PASS  decode ") >= 10
    assert "PASS  main window" in out


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")  # pydicom, on the cut file
def test_self_test_fails_on_a_damaged_dicom(qapp, capsys, tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    shutil.copytree(resources_dir() / "samples", samples)
    victim = samples / "syntaxes" / "jpeg2000-lossless.dcm"
    data = bytearray(victim.read_bytes())
    victim.write_bytes(bytes(data[: len(data) - 600]))  # cut into the compressed frame
    code = selftest_main(["--samples", str(samples), "--no-gui"])
    out = capsys.readouterr().out
    assert code == 1, out
    fail_lines = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fail_lines) == 1 and "jpeg2000-lossless.dcm" in fail_lines[0], out
    assert "Traceback" not in out


def test_self_test_without_gui_never_reports_success(capsys) -> None:
    code = selftest_main(["--no-gui"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert "SKIP  main window" in out and "ALL CHECKS PASSED" not in out
