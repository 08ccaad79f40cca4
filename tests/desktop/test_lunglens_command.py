"""``lunglens``: one argparse parser with a subcommand per job, each with its own --help; the
window when no command is named; the headless commands never import Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.main import COMMANDS
from desktop.main import main as lunglens
from inference import __version__
from inference.audit import AuditLog

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command_and_the_window(capsys):
    assert lunglens(["--help"]) == 0
    out = capsys.readouterr().out
    assert set(COMMANDS) == {"open", "classify", "report", "calibrate", "audit", "serve", "self-test"}
    for name, summary in COMMANDS.items():
        assert f"    {name}" in out and summary.split()[0] in out
    assert "lunglens [PATHS ...] [--screenshot OUT.png [--size WxH]]" in out
    assert "lunglens --self-test is lunglens self-test" in out


@pytest.mark.parametrize("command", [["open"], ["classify"], ["report"], ["calibrate"], ["audit"], ["audit", "verify"],
                                     ["serve"], ["self-test"]], ids=lambda c: " ".join(c))
def test_each_command_has_its_own_help(command, capsys):
    assert lunglens([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lunglens {' '.join(command)}")


def test_exit_statuses_are_documented_where_they_differ(capsys):
    for command in (["classify"], ["report"], ["calibrate"], ["audit", "verify"], ["serve"]):
        assert lunglens([*command, "--help"]) == 0
        assert "exit status:" in capsys.readouterr().out


def test_version_and_usage_errors(capsys):
    assert lunglens(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"LungLens {__version__}"
    assert lunglens(["classify"]) == 2  # no PATH
    assert "the following arguments are required: PATH" in capsys.readouterr().err
    assert lunglens(["audit"]) == 2  # no action
    assert lunglens(["report", "x.dcm"]) == 2  # nothing to write
    assert "nothing to write" in capsys.readouterr().err
    # An unknown option is said by the command it was given to, with that command's usage.
    assert lunglens(["classify", "--bogus", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lunglens classify") and "lunglens classify: error: unrecognized arguments: --bogus" in err


def _qt_modules_after(argv: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run ``lunglens ARGV`` in a fresh interpreter; its exit status and the Qt modules it imported."""
    probe = (
        "import json, sys\n"
        "from desktop.main import main\n"
        f"code = main({argv!r})\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'shiboken6', 'pyqtgraph', 'superqt'})\n"
        "print(json.dumps({'code': code, 'qt': qt}))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout, run.stderr
    verdict = json.loads(run.stdout.splitlines()[-1])
    return verdict["code"], verdict["qt"], run.stdout + run.stderr


def test_classify_calibrate_and_audit_never_import_qt(tmp_path, kermany_samples):
    """(classify on a real study: tests/inference/test_cli.py.)"""
    log = AuditLog(tmp_path / "audit.jsonl")
    log.log_export("worklist", "csv", "x.csv")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["LUNGLENS_DATA_DIR"] = str(tmp_path / "data")
    code, qt, out = _qt_modules_after(["audit", "verify", str(log.path)], env)
    assert (code, qt) == (0, []) and "Intact" in out
    site = tmp_path / "site" / "NORMAL"
    site.mkdir(parents=True)
    for film in kermany_samples["NORMAL"][:3]:
        (site / film.name).symlink_to(film)
    code, qt, out = _qt_modules_after(["calibrate", str(site.parent), "--out", str(tmp_path / "p.json")], env)
    assert (code, qt) == (2, []) and "all 3 labelled films are NORMAL" in out
    code, qt, _ = _qt_modules_after(["classify", "--help"], env)
    assert (code, qt) == (0, [])
    code, qt, _ = _qt_modules_after(["serve", "--bind", "0.0.0.0"], env)  # refused: LAN without --allow
    assert (code, qt) == (2, [])


def test_the_old_self_test_spelling_still_runs_the_self_test(capsys):
    assert lunglens(["--self-test", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: lunglens self-test")
