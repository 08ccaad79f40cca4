"""The architecture boundary (import-linter): inference/ never imports Qt, desktop or torch,
and the app (inference/ and desktop/) never imports OpenCV."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / ("lint-imports.exe" if sys.platform == "win32" else "lint-imports")
    assert lint_imports.exists(), f"import-linter is not installed in this environment ({lint_imports})"
    result = subprocess.run([str(lint_imports)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "inference has no Qt, no desktop, no torch and no OpenCV KEPT" in result.stdout
    assert "the app never imports torch, the training code or OpenCV KEPT" in result.stdout


def test_the_contracts_catch_an_opencv_import(tmp_path: Path) -> None:
    """The check above can fail: a copy of the code with one `import cv2` added breaks it."""
    for package in ("inference", "desktop", "training"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pt", "*.txt", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "inference" / "_probe.py").write_text("import cv2\n")
    lint_imports = Path(sys.executable).parent / ("lint-imports.exe" if sys.platform == "win32" else "lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # ahead of the editable install of the real tree
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    assert "inference has no Qt, no desktop, no torch and no OpenCV BROKEN" in result.stdout
    assert "inference._probe -> cv2" in result.stdout
