"""The installer, proven: build the frozen bundle and the .deb, install the .deb into a scratch
root with ``dpkg -x``, and run the installed app from there -- the self-test and a
screenshot with a study -- without network (``unshare -n``) and without a display.

Slow (the build takes minutes; it is reused when dist/ is newer than every input) but run
in CI: this is the only test that sees what a user's PC gets.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_build_module():
    """packaging/build.py under its own name ("build" is also a PyPI package)."""
    spec = importlib.util.spec_from_file_location("lunglens_build", REPO / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


_build = _load_build_module()
DEB_DEPENDS = _build.DEB_DEPENDS
Outputs = _build.Outputs
outputs = _build.outputs

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 1500  # seconds; a cold build here takes a few minutes


def _network_isolation() -> tuple[list[str], str]:
    """The ``unshare -n`` prefix when this machine allows it, else [] and why not."""
    if not shutil.which("unshare"):
        return [], "unshare not installed (util-linux)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return [], f"unshare -n not permitted here: {probe.stderr.strip() or probe.returncode}"
    return ["unshare", "-n"], ""


NO_NET, NO_NET_REASON = _network_isolation()


@pytest.fixture(scope="session")
def built() -> Outputs:
    if not shutil.which("dpkg-deb"):
        pytest.fail("dpkg-deb missing: apt-get install dpkg-dev (the CI script installs it)")
    proc = subprocess.run(
        [sys.executable, str(REPO / "packaging" / "build.py"), "--if-stale", "--fast"],
        cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    print(proc.stdout[-800:])
    return outputs()


@pytest.fixture(scope="session")
def root(built: Outputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg", "-x", str(built.deb), str(target)], check=True)
    return target


@pytest.fixture()
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No source tree, no venv, a fresh home: only what the installed app carries."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
    }


def telemetry_queue(env: dict[str, str]) -> list[Path]:
    """What ONNX Runtime's telemetry wrote in the fresh home (its device id and event queue):
    nothing, as the app sets its opt-out (see tests/inference/test_no_telemetry.py)."""
    return list((Path(env["HOME"]) / ".cache" / "Microsoft").rglob("*"))


def run_installed(root: Path, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    exe = root / "opt" / "lunglens" / "lunglens"
    return subprocess.run([*NO_NET, str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_deb_installs_app_command_desktop_entry_and_icons(built: Outputs, root: Path) -> None:
    exe = root / "opt" / "lunglens" / "lunglens"
    assert exe.is_file() and os.access(exe, os.X_OK)
    link = root / "usr" / "bin" / "lunglens"
    assert link.is_symlink() and os.readlink(link) == "/opt/lunglens/lunglens"
    entry = (root / "usr" / "share" / "applications" / "lunglens.desktop").read_text()
    assert "Exec=lunglens %F" in entry and "Icon=lunglens" in entry
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(root / "usr/share/applications/lunglens.desktop")],
                               capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    for size in (16, 48, 256):
        assert (root / f"usr/share/icons/hicolor/{size}x{size}/apps/lunglens.png").is_file()
    assert (root / "usr/share/icons/hicolor/scalable/apps/lunglens.svg").is_file()
    depends = subprocess.run(["dpkg-deb", "-f", str(built.deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    # libxcb-cursor0, which Qt's xcb plugin needs and a desktop install often lacks, is carried
    # by the bundle rather than required: an offline PC without it could not install the .deb.
    assert "libxcb-cursor0" not in depends and depends.strip() == ", ".join(DEB_DEPENDS)
    assert (root / "opt" / "lunglens" / "_internal" / "libxcb-cursor.so.0").is_file()
    # Removing the package stops and disables the DICOM node someone enabled; it removes no data.
    control = subprocess.run(["dpkg-deb", "--info", str(built.deb), "prerm"], capture_output=True, text=True,
                             check=True).stdout
    assert "systemctl disable --now lunglens-serve.service" in control and "rm " not in control


def test_deb_dependencies_resolve_from_the_distribution(built: Outputs) -> None:
    """Every Depends names a real package of this distribution (apt-get simulates, installs nothing)."""
    if not shutil.which("apt-get"):
        pytest.skip("not a Debian/Ubuntu machine: apt-get missing")
    proc = subprocess.run(["apt-get", "install", "--simulate", "--no-install-recommends", str(built.deb)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Inst lunglens" in proc.stdout


def test_bundle_ships_no_training_stack_or_test_data(root: Path) -> None:
    internal = root / "opt" / "lunglens" / "_internal"
    names = {p.name for p in internal.iterdir()}
    for forbidden in ("torch", "training", "tests", "pytest", "onnx", "tkinter", "matplotlib", "scipy", "cv2", "opencv_python_headless.libs"):
        assert forbidden not in names, forbidden
    assert not list(internal.rglob("*.pt")) and not list(internal.rglob("*.pth"))
    assert not list(internal.rglob("*.jpeg")), "training images must never ship"
    # pylibjpeg finds its decoders through the plugins' entry points: their metadata must ship.
    assert list(internal.glob("pylibjpeg-*.dist-info/METADATA"))
    for dist in ("pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle"):
        assert list(internal.glob(f"{dist}-*.dist-info/entry_points.txt")), dist


def test_tarball_holds_the_same_bundle(built: Outputs) -> None:
    with tarfile.open(built.tarball) as tar:
        names = set(tar.getnames())
    top = next(iter(names)).split("/")[0]
    assert top.startswith("lunglens-")
    assert f"{top}/lunglens" in names
    assert any(n.startswith(f"{top}/_internal/resources/models/") and n.endswith(".onnx") for n in names)
    # Without a package manager the archive is all the IT person has: how to run, check and remove it.
    with tarfile.open(built.tarball) as tar:
        readme = tar.extractfile(f"{top}/README.txt").read().decode("utf-8")  # type: ignore[union-attr]
    assert f"{top}/lunglens self-test" in readme and "Uninstall:  delete this folder" in readme
    assert "~/.local/share/LungLens" in readme


def test_network_isolation_is_available() -> None:
    if not NO_NET:
        pytest.skip(f"frozen runs were not network-isolated: {NO_NET_REASON}")
    assert NO_NET == ["unshare", "-n"]


def test_installed_self_test_passes_offline(root: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_installed(root, ["--self-test"], clean_env, tmp_path)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert "ALL CHECKS PASSED" in proc.stdout
    assert "frozen: yes" in proc.stdout
    assert proc.stdout.count("PASS  decode ") >= 10
    assert "PASS  main window" in proc.stdout
    assert "Traceback" not in report


def test_installed_self_test_passes_on_x11(root: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    """The xcb platform plugin and its libraries load (offscreen proves none of that)."""
    if not shutil.which("xvfb-run"):
        pytest.skip("xvfb-run not installed (apt-get install xvfb xauth): xcb not exercised")
    env = {k: v for k, v in clean_env.items() if k != "QT_QPA_PLATFORM"}
    exe = root / "opt" / "lunglens" / "lunglens"
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *NO_NET, str(exe), "--self-test"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on Qt platform 'xcb'" in proc.stdout and "ALL CHECKS PASSED" in proc.stdout


def test_installed_self_test_passes_on_wayland(root: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    """The wayland platform plugin loads, on Weston's headless compositor."""
    if not shutil.which("weston"):
        pytest.skip("weston not installed (apt-get install weston): the wayland plugin is not exercised")
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = {**clean_env, "XDG_RUNTIME_DIR": str(runtime), "WAYLAND_DISPLAY": "lunglens-test", "QT_QPA_PLATFORM": "wayland"}
    compositor = subprocess.Popen(
        ["weston", "--backend=headless-backend.so", "--socket=lunglens-test", "--idle-time=0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if (runtime / "lunglens-test").exists() or compositor.poll() is not None:
                break
            time.sleep(0.1)
        assert (runtime / "lunglens-test").exists(), "weston did not start"
        proc = run_installed(root, ["--self-test"], env, tmp_path)
    finally:
        compositor.terminate()
        compositor.wait(timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on Qt platform 'wayland'" in proc.stdout and "ALL CHECKS PASSED" in proc.stdout


def test_installed_headless_commands_classify_and_report(
    root: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """`classify` and `calibrate` (no Qt) and `report` (PDF through Qt, DICOM SC through highdicom) frozen."""
    samples = root / "opt/lunglens/_internal/resources/samples"
    proc = run_installed(root, ["classify", str(samples / "sample-normal.png"), str(samples / "sample-pneumonia.dcm")],
                         clean_env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "sample-" in line]
    assert len(rows) == 2 and "Below the review threshold" in rows[0] and "Above the review threshold" in rows[1], \
        proc.stdout
    one_class = tmp_path / "site" / "NORMAL"
    one_class.mkdir(parents=True)
    (one_class / "a.png").symlink_to(samples / "sample-normal.png")
    proc = run_installed(root, ["calibrate", str(tmp_path / "site"), "--out", str(tmp_path / "site.profile.json")],
                         clean_env, tmp_path)
    assert proc.returncode == 2 and "all 1 labelled films are NORMAL" in proc.stderr, proc.stdout + proc.stderr
    pdf, sc = tmp_path / "report.pdf", tmp_path / "report.dcm"
    proc = run_installed(root, ["report", "--pdf", str(pdf), "--dicom-sc", str(sc), str(samples / "sample-pneumonia.dcm")],
                         clean_env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")
    ds = pydicom.dcmread(sc)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    assert ds.pixel_array.shape[:2] == (ds.Rows, ds.Columns)
    assert not telemetry_queue(clean_env)


def test_installed_app_screenshots_a_study_offline(root: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    study = root / "opt/lunglens/_internal/resources/samples/sample-pneumonia.dcm"
    shot = tmp_path / "shot.png"
    proc = run_installed(root, ["--screenshot", str(shot), str(study)], clean_env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None, f"no screenshot written: {proc.stdout}{proc.stderr}"
    assert image.shape[0] >= 400 and image.shape[1] >= 600
    # A real window with an image and a heat-map has many colours, not a blank fill.
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 200, f"screenshot looks empty ({len(colours)} colours)"
    assert not telemetry_queue(clean_env)
