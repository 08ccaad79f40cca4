"""Build LungLens for distribution: the PyInstaller one-dir bundle, then (Linux) a .deb and a
portable .tar.gz, all into dist/.

    python packaging/build.py            # everything
    python packaging/build.py --if-stale # reuse dist/ when it is newer than every input
    python packaging/build.py --fast     # light compression, for CI
    python packaging/build.py --bundle-only

The .deb installs the bundle to /opt/lunglens with a /usr/bin/lunglens symlink, a desktop
entry and hicolor icons. It is built with ``dpkg-deb --root-owner-group`` so no fakeroot
is needed. Windows and macOS use the same spec; their installers are made by the recipes
beside this file (packaging/README.md).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
DIST = REPO / "dist"
WORK = REPO / "build"
BUNDLE = DIST / "lunglens"
INSTALL_PREFIX = "/opt/lunglens"

# Runtime libraries (and the data they bring: XKB keymaps, fontconfig's configuration) that Qt's
# xcb/wayland/EGL plugins need. Not libxcb-cursor0, which the xcb plugin needs since Qt 6.5 and a
# desktop install often lacks: the bundle carries it (:data:`BUNDLED_LIBRARIES`), so an offline PC
# installs the .deb without fetching it.
BUNDLED_LIBRARIES = ["libxcb-cursor.so.0"]
DEB_DEPENDS = [
    "libegl1",
    "libgl1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    # Qt's wayland platform plugin; without them Qt falls back to xcb through XWayland.
    "libwayland-client0",
    "libwayland-cursor0",
    "libwayland-egl1",
    "libglib2.0-0 | libglib2.0-0t64",
    "libc6 (>= 2.31)",
]

# Qt platform plugins the bundle must carry: the desktop's, and offscreen for the self-test.
PLATFORM_PLUGINS = {
    "linux": ["libqxcb.so", "libqwayland.so", "libqoffscreen.so"],
    "darwin": ["libqcocoa.dylib", "libqoffscreen.dylib"],
    "win32": ["qwindows.dll", "qoffscreen.dll"],
}

# Inputs whose change makes dist/ stale (see --if-stale).
INPUT_DIRS = ["inference", "desktop", "resources", "packaging"]
INPUT_FILES = ["pyproject.toml"]


@dataclass(frozen=True)
class Outputs:
    bundle: Path
    deb: Path
    tarball: Path


def version() -> str:
    """The project version from pyproject.toml (a regex: tomllib needs Python 3.11)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("pyproject.toml has no version")
    return match.group(1)


def deb_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def outputs() -> Outputs:
    ver = version()
    machine = platform.machine().lower()
    arch = deb_arch() if shutil.which("dpkg") else machine
    return Outputs(
        bundle=BUNDLE,
        deb=DIST / f"lunglens_{ver}_{arch}.deb",
        tarball=DIST / f"lunglens-{ver}-linux-{machine}.tar.gz",
    )


def newest_input_mtime() -> float:
    newest = 0.0
    for name in INPUT_DIRS:
        for path in (REPO / name).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    for name in INPUT_FILES:
        newest = max(newest, (REPO / name).stat().st_mtime)
    # A package installed into or removed from the venv changes site-packages' listing.
    newest = max(newest, Path(sysconfig.get_paths()["purelib"]).stat().st_mtime)
    return newest


def is_fresh(out: Outputs) -> bool:
    """True when the bundle, .deb and .tar.gz exist and are newer than every input."""
    files = [out.bundle / "lunglens", out.deb, out.tarball]
    if not all(f.exists() for f in files):
        return False
    return min(f.stat().st_mtime for f in files) > newest_input_mtime()


def check_model_present() -> None:
    """Refuse to build an app without its model: it could not classify anything."""
    models = REPO / "resources" / "models"
    manifests = [p for p in models.glob("*.json") if p.with_suffix(".onnx").exists()]
    if not manifests:
        raise SystemExit(
            f"no model in {models} (need <name>.onnx beside <name>.json): train or fetch it first (make train)"
        )


def run_pyinstaller() -> None:
    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--distpath", str(DIST), "--workpath", str(WORK / "pyinstaller"),
        str(PACKAGING / "lunglens.spec"),
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


# Loads each library given; prints "BROKEN <path>" for one the dynamic loader rejects.
_LOAD_CHECK = """
import ctypes, os, sys
for path in sys.argv[1:]:
    try:
        ctypes.CDLL(path, mode=os.RTLD_LAZY)
    except OSError as exc:
        if "ELF" in str(exc) or "page-aligned" in str(exc):
            print("BROKEN", str(exc).split(":")[0])
"""


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def strip_binaries(bundle: Path) -> tuple[int, list[str]]:
    """Strip symbol tables from the bundle's shared libraries (about -50 MB: libpython alone
    22 -> 5 MB), then put back the original of any library the loader rejects once
    stripped: strip breaks some patchelf-edited wheel libraries (numpy's OpenBLAS: "ELF load
    command address/offset not page-aligned"). Not the executable: its archive is appended.
    Returns (libraries stripped, names restored)."""
    internal = bundle / "_internal"
    libs = sorted(p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink() and _is_elf(p))
    backup = WORK / "strip-backup"
    shutil.rmtree(backup, ignore_errors=True)
    for lib in libs:
        target = backup / lib.relative_to(internal)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, target)
    subprocess.run(["strip", "--strip-unneeded", *map(str, libs)], check=True)
    restored: list[str] = []
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}
    for _ in range(5):  # a restored library can unmask another one behind it
        check = subprocess.run(
            [sys.executable, "-c", _LOAD_CHECK, *map(str, libs)], capture_output=True, text=True, env=env, check=True,
        )
        broken = {line.split(" ", 1)[1].strip() for line in check.stdout.splitlines() if line.startswith("BROKEN ")}
        names = {Path(b).name for b in broken} - set(restored)
        if not names:
            break
        for lib in libs:
            if lib.name in names:
                shutil.copy2(backup / lib.relative_to(internal), lib)
                restored.append(lib.name)
    else:
        raise SystemExit(f"stripped libraries still fail to load after restoring {restored}")
    shutil.rmtree(backup)
    return len(libs) - len(restored), sorted(restored)


def remove_dangling_symlinks(bundle: Path) -> list[str]:
    """PyInstaller links top-level names to libraries the spec pruned; drop those links."""
    removed = []
    for path in bundle.rglob("*"):
        if path.is_symlink() and not path.exists():
            path.unlink()
            removed.append(path.name)
    return removed


def check_bundle(bundle: Path) -> None:
    """Fail the build now for what would otherwise fail on the user's PC."""
    internal = bundle / "_internal"
    must = {
        "model": list((internal / "resources" / "models").glob("*.onnx")),
        "manifest": list((internal / "resources" / "models").glob("*.json")),
        "samples": list((internal / "resources" / "samples").glob("expected.json")),
        **{f"Qt {name} plugin": list(internal.rglob(f"platforms/{name}")) for name in PLATFORM_PLUGINS[sys.platform]},
        "onnxruntime": list(internal.rglob("onnxruntime/capi/onnxruntime_pybind11_state*")),
        "highdicom tables": list(internal.glob("highdicom/_standard/*.json")),
        **({name: list(internal.glob(name)) for name in BUNDLED_LIBRARIES} if sys.platform == "linux" else {}),
    }
    for dist in ("pylibjpeg", "pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle", "pydicom"):
        must[f"{dist} metadata"] = list(internal.glob(f"{dist}-*.dist-info/METADATA"))
    missing = [name for name, found in must.items() if not found]
    if missing:
        raise SystemExit(f"bundle {bundle} lacks: {', '.join(missing)}")
    for forbidden in ("torch", "training", "tests"):
        if (internal / forbidden).exists():
            raise SystemExit(f"bundle {bundle} contains {forbidden}/, which the app must not ship")


def desktop_entry() -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=LungLens",
        "GenericName=Chest X-ray triage",
        "Comment=Offline pneumonia triage for chest X-rays (decision support, not a diagnosis)",
        "Exec=lunglens %F",
        "Icon=lunglens",
        "Terminal=false",
        "Categories=Science;MedicalSoftware;",
        "MimeType=application/dicom;image/png;image/jpeg;",
        "Keywords=xray;x-ray;dicom;pneumonia;radiology;",
        "StartupWMClass=LungLens",
        "",
    ])


SERVE_UNIT = "lunglens-serve.service"
SERVE_DEFAULTS = "/etc/default/lunglens-serve"


def serve_unit() -> str:
    """The systemd unit of ``lunglens serve`` for headless use. Installed but never enabled
    nor started by the package: an administrator sets the options in SERVE_DEFAULTS, then
    ``systemctl enable --now lunglens-serve``. It runs as a throw-away system user whose only
    writable place is /var/lib/lunglens (the node's data folder: worklist, audit log, films
    received, outbox), and may open network sockets and nothing else."""
    return "\n".join([
        "[Unit]",
        "Description=LungLens DICOM node (chest X-ray triage; decision support, not a diagnosis)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"EnvironmentFile=-{SERVE_DEFAULTS}",
        "Environment=LUNGLENS_DATA_DIR=/var/lib/lunglens",
        "ExecStart=/usr/bin/lunglens serve $LUNGLENS_SERVE_OPTIONS",
        "DynamicUser=yes",
        "StateDirectory=lunglens",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "Restart=on-failure",
        "RestartSec=10",
        # The usual DICOM port, 104, is below 1024: the dynamic user may bind it, nothing more.
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def serve_defaults() -> str:
    """``/etc/default/lunglens-serve``: the node's options (a conffile: upgrades keep the admin's)."""
    return "\n".join([
        "# Options of `lunglens serve` (see lunglens serve --help), read by lunglens-serve.service.",
        "# The service is installed disabled: systemctl enable --now lunglens-serve",
        "# On the LAN, list the AE titles allowed to send, e.g.:",
        "#   LUNGLENS_SERVE_OPTIONS=--bind 0.0.0.0 --allow XRAY_ROOM1 --send-to PACS@192.168.1.10:104",
        "# A site profile made by `lunglens calibrate`, and its point. calibrate writes it for its",
        "# user alone (0600): copy it here readable by the service (install -m 0644 ...):",
        "#   --profile /etc/lunglens/clinic.profile.json --operating-point balanced",
        "# The service may write only its data folder (/var/lib/lunglens): a --move-processed folder",
        "# (and the --hot-folder it moves out of) elsewhere needs ReadWritePaths= in a drop-in",
        "# (systemctl edit lunglens-serve); a hot folder that is only read needs nothing.",
        "# How long films received over DICOM are kept once analysed (default: for ever):",
        "#   --keep-received 30",
        "LUNGLENS_SERVE_OPTIONS=--bind 127.0.0.1 --port 11112",
        "",
    ])


def prerm() -> str:
    """Removing the package stops and disables the DICOM node if someone enabled it (it was
    left running from a unit file that no longer exists). Patient data is never removed."""
    return "\n".join([
        "#!/bin/sh",
        "set -e",
        'if [ "$1" = remove ] && [ -d /run/systemd/system ]; then',
        f"    systemctl disable --now {SERVE_UNIT} >/dev/null 2>&1 || true",
        "fi",
        "",
    ])


def dir_size_kib(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) // 1024


def make_deb(bundle: Path, deb: Path, xz_level: int) -> None:
    root = WORK / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    opt = root / INSTALL_PREFIX.lstrip("/")
    shutil.copytree(bundle, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "lunglens").symlink_to(f"{INSTALL_PREFIX}/lunglens")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "lunglens.desktop").write_text(desktop_entry(), encoding="utf-8")
    icons = REPO / "resources" / "icons"
    hicolor = root / "usr" / "share" / "icons" / "hicolor"
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy2(icons / f"lunglens-{size}.png", target / "lunglens.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy2(icons / "lunglens.svg", hicolor / "scalable" / "apps" / "lunglens.svg")
    units = root / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / SERVE_UNIT).write_text(serve_unit(), encoding="utf-8")  # installed disabled: no postinst enables it
    defaults = root / SERVE_DEFAULTS.lstrip("/")
    defaults.parent.mkdir(parents=True)
    defaults.write_text(serve_defaults(), encoding="utf-8")
    doc = root / "usr" / "share" / "doc" / "lunglens"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "LungLens -- offline chest X-ray pneumonia triage. Decision support, not a diagnostic device.\n"
        "The bundled model was trained on Kermany, Zhang, Goldbaum (2018), Mendeley Data v2,\n"
        "doi:10.17632/rscbjbr9sj.2 (CC BY 4.0). Third-party licences of the bundled Python\n"
        f"packages are in {INSTALL_PREFIX}/_internal/*.dist-info and the Qt licence in PySide6.\n",
        encoding="utf-8",
    )
    debian = root / "DEBIAN"
    debian.mkdir()
    control = "\n".join([
        "Package: lunglens",
        f"Version: {version()}",
        "Section: science",
        "Priority: optional",
        f"Architecture: {deb_arch()}",
        f"Installed-Size: {dir_size_kib(root)}",
        f"Depends: {', '.join(DEB_DEPENDS)}",
        "Maintainer: LungLens developers <lunglens@localhost>",
        "Description: offline chest X-ray pneumonia triage",
        " Opens PNG, JPEG and DICOM chest radiographs, runs a bundled neural network on the",
        " CPU and shows a calibrated pneumonia probability with a heat-map of the regions that raised the score.",
        " Works without any network. Decision support, not a diagnostic device.",
        "",
    ])
    (debian / "control").write_text(control, encoding="utf-8")
    (debian / "conffiles").write_text(f"{SERVE_DEFAULTS}\n", encoding="utf-8")
    (debian / "prerm").write_text(prerm(), encoding="utf-8")
    (debian / "prerm").chmod(0o755)
    for path in root.rglob("*"):  # dpkg wants 0755 dirs and no group/world-writable files
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    deb.unlink(missing_ok=True)
    cmd = ["dpkg-deb", "--root-owner-group", "-Zxz", f"-z{xz_level}", "--build", str(root), str(deb)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(root)


def make_tarball(bundle: Path, tarball: Path, gzip_level: int) -> None:
    tarball.unlink(missing_ok=True)

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    top = f"lunglens-{version()}"
    with tarfile.open(tarball, "w:gz", compresslevel=gzip_level) as tar:
        tar.add(bundle, arcname=top, filter=owned_by_root)
        text = tarball_readme(top).encode("utf-8")
        info = owned_by_root(tarfile.TarInfo(f"{top}/README.txt"))
        info.size, info.mode, info.mtime = len(text), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(text))


def tarball_readme(top: str) -> str:
    """What the portable archive's user needs without a package manager (it held no word of it)."""
    return "\n".join([
        f"LungLens {version()} -- offline chest X-ray pneumonia triage. Decision support, not a diagnosis.",
        "",
        f"Run:        {top}/lunglens  [FILES...]        (the window; --help lists the commands)",
        f"Check:      {top}/lunglens self-test",
        "Uninstall:  delete this folder. Patient data is kept apart and is never deleted by LungLens:",
        "            ~/.local/share/LungLens (worklist, audit log, site profiles, films received by the",
        "            DICOM node) and ~/.config/LungLens (settings); delete them on purpose when the PC",
        "            leaves service, with whatever you exported elsewhere.",
        "Network:    none, except a DICOM node you switch on (Settings -> DICOM node, or lunglens serve).",
        "",
    ])


def mib(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else dir_size_kib(path) * 1024
    return f"{size / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--if-stale", action="store_true", help="do nothing when dist/ is newer than every input")
    parser.add_argument("--bundle-only", action="store_true", help="only the PyInstaller bundle, no .deb/.tar.gz")
    parser.add_argument(
        "--fast", action="store_true",
        help="light compression (xz -1, gzip -1): same contents, minutes faster, ~15%% bigger files (CI)",
    )
    args = parser.parse_args(argv)

    out = outputs()
    if args.if_stale and is_fresh(out):
        print(f"dist/ is up to date: {out.deb.name}, {out.tarball.name}")
        return 0
    check_model_present()
    started = time.monotonic()
    run_pyinstaller()
    dangling = remove_dangling_symlinks(out.bundle)
    print(f"removed {len(dangling)} links to pruned libraries: {', '.join(dangling) or 'none'}")
    if sys.platform == "linux" and shutil.which("strip"):
        stripped, restored = strip_binaries(out.bundle)
        print(f"stripped {stripped} libraries; left unstripped (strip breaks them): {', '.join(restored) or 'none'}")
    check_bundle(out.bundle)
    print(f"bundle: {out.bundle} ({mib(out.bundle)}) in {time.monotonic() - started:.0f} s", flush=True)
    if args.bundle_only or sys.platform != "linux":
        return 0
    if not shutil.which("dpkg-deb"):
        raise SystemExit("dpkg-deb not found: apt-get install dpkg-dev (needed for the .deb)")
    # xz -6 (dpkg's default) gives the smallest installer but takes minutes on 2 cores.
    make_deb(out.bundle, out.deb, xz_level=1 if args.fast else 6)
    make_tarball(out.bundle, out.tarball, gzip_level=1 if args.fast else 6)
    print(f"deb: {out.deb} ({mib(out.deb)})")
    print(f"tar.gz: {out.tarball} ({mib(out.tarball)})")
    print(f"total build time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
