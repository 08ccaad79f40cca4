"""``pip install .`` (a normal, non-editable wheel) gives a LungLens that finds its model and
samples through importlib.resources and classifies from any folder.

The wheel is built from a copy of the source tree (nothing is written into the checkout)
and installed into a fresh venv without its dependencies; those come from the test's own
environment through a .pth file, so the test needs no network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from setuptools import find_packages

REPO = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_listed_packages_miss_none_of_the_source_tree():
    listed = set(_project()["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(REPO), include=["inference*", "desktop*", "training*"]))
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_exactly_one_onnx_runtime_comes_from_each_extra():
    project = _project()["project"]
    runtimes = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml")

    def names(requirements: list[str]) -> set[str]:
        return {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for r in requirements}

    assert not names(project["dependencies"]) & set(runtimes)  # the base pulls in none
    extras = project["optional-dependencies"]
    assert {extra: names(extras[extra]) & set(runtimes) for extra in ("cpu", "gpu", "directml")} == {
        "cpu": {"onnxruntime"}, "gpu": {"onnxruntime-gpu"}, "directml": {"onnxruntime-directml"}}
    assert project["license"] == "LicenseRef-Proprietary"  # an SPDX expression, not a table


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_classifies_a_sample(tmp_path):
    source = tmp_path / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "checkpoints", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("inference", "desktop", "training", "resources"):
        shutil.copytree(REPO / folder, source / folder, ignore=junk, symlinks=True)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("lunglens-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies (numpy, ONNX Runtime, pydicom...) from this environment, after the venv's own.
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing may be found through it
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LUNGLENS_RESOURCES", "PYTHONPATH")}
    env["LUNGLENS_DATA_DIR"] = str(tmp_path / "data")
    where = subprocess.run([str(python), "-c", "import inference; from inference.paths import resources_dir; "
                            "print(inference.__file__); print(resources_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    resources = Path(where[1])
    assert resources.name == "lunglens_resources" and (resources / "models" / "lunglens-cxr.onnx").is_file()

    expected = json.loads((resources / "samples" / "expected.json").read_text(encoding="utf-8"))
    entry = next(e for e in expected["classify"] if e["file"].endswith(".png"))
    run = subprocess.run([str(venv / "bin" / "lunglens"), "classify", "--json", str(resources / "samples" / entry["file"])],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (result,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert result["ok"] and result["label"] == entry["label"]
