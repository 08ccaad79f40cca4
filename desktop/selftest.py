"""``lunglens --self-test``: prove that this installation works, offline, in one command.

It is meant for the PC an installer was just run on (and for CI on the frozen build), where
what breaks is packaging, not code: a pixel-data plugin that was not bundled, a Qt platform
plugin that cannot load, a model file damaged on the USB stick. So it exercises the real
paths of the app on the bundled samples (resources/samples, made by
packaging/make_samples.py) and prints one PASS/FAIL line per check:

- the model loads and its SHA-256 matches the manifest (Engine.load verifies it);
- each sample radiograph (PNG and compressed DICOM) is classified with its known label, and
  with the probability recorded when the samples were made if the model is the same;
- each per-syntax DICOM decodes to its reference pixels (exactly when lossless);
- the main window opens (offscreen when there is no display).

Exit status 0 only if every check passed. Options: ``--provider NAME`` (auto, cpu, cuda,
directml, coreml), ``--no-gui`` (skip the window check, e.g. over SSH without Qt libraries;
the report then says it was skipped and the exit status is 2, never 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from inference.paths import resources_dir  # stdlib only: numpy & co. are imported by the checks

if TYPE_CHECKING:
    from inference.engine import Engine

# A rerun of the same model on the same pixels may differ by float rounding across CPUs
# and ONNX Runtime builds, never by more than this.
PROBABILITY_TOLERANCE = 1e-3
EXIT_SKIPPED = 2


class CheckFailed(Exception):
    """A check found something wrong; the message says what, naming the file."""


def require(condition: bool, message: str) -> None:
    """Like assert, but never stripped by ``python -O``."""
    if not condition:
        raise CheckFailed(message)


@dataclass
class Check:
    name: str
    passed: bool | None  # None: skipped
    detail: str

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


def _guard(name: str, fn: Callable[[], str]) -> Check:
    """Run one check; any exception is a FAIL with its message (and the frame it came from)."""
    try:
        return Check(name, True, fn())
    except CheckFailed as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 -- a self-test reports every failure, it never crashes
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Check(name, False, f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})")


def versions() -> dict[str, str]:
    """Versions of what a support call needs to know, read without importing Qt."""
    import numpy as np
    import onnxruntime
    import PIL
    import pydicom

    import inference

    out = {
        "lunglens": inference.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "frozen": "yes" if getattr(sys, "frozen", False) else "no (source tree)",
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "pydicom": pydicom.__version__,
    }
    try:
        from importlib.metadata import version

        out["PySide6"] = version("PySide6-Essentials")
    except Exception:  # noqa: BLE001 -- metadata may be absent in odd installs; it is information only
        out["PySide6"] = "unknown"
    return out


def load_expected(samples: Path) -> dict:
    path = samples / "expected.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the installation is incomplete)")
    return json.loads(path.read_text(encoding="utf-8"))


def check_classification(engine: Engine, samples: Path, expected: dict, entry: dict) -> str:
    """Load a sample through the app's loader, classify it, compare with what was recorded."""
    from inference.loaders import load_study
    from inference.providers import friendly_name

    path = samples / entry["file"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    require(digest == entry["sha256"], f"{entry['file']}: file differs from the one shipped (sha256 {digest[:12]}...)")
    study = load_study(path)
    t0 = time.perf_counter()
    pred = engine.predict(study)
    ms = (time.perf_counter() - t0) * 1000
    detail = f"{pred.label} p={pred.probability:.3f} (threshold {pred.threshold:.3f}, {ms:.0f} ms, {friendly_name(pred.provider)})"
    require(pred.label == entry["label"], f"{entry['file']}: expected {entry['label']}, got {detail}")
    if engine.manifest.sha256.lower() == expected["model"]["sha256"].lower():
        diff = abs(pred.probability - entry["probability"])
        require(diff <= PROBABILITY_TOLERANCE, (
            f"{entry['file']}: p={pred.probability:.6f}, but this model gave {entry['probability']:.6f} "
            f"when the samples were made (difference {diff:.2g})"
        ))
        detail += ", matches the recorded probability"
    else:
        detail += ", recorded probability not compared (samples made with another model)"
    return detail


def check_decode(samples: Path, entry: dict) -> str:
    """Decode one per-syntax DICOM through the app's loader and compare with its reference."""
    import numpy as np
    import pydicom
    from PIL import Image

    from inference.loaders import load_study

    path = samples / entry["file"]
    try:
        with Image.open(samples / entry["reference"]) as im:
            reference = np.asarray(im)
    except OSError as exc:
        raise CheckFailed(f"{entry['reference']}: reference image missing or unreadable ({exc})") from exc
    study = load_study(path)
    require(study.shape == reference.shape, f"{entry['file']}: decoded {study.shape}, expected {reference.shape}")
    error = float(np.abs(study.pixels.astype(np.float64) - reference.astype(np.float64)).mean())
    require(error <= entry["max_mean_abs_error"], (
        f"{entry['file']}: mean abs error {error:.3f} > {entry['max_mean_abs_error']} "
        f"({'must be exact' if entry['lossless'] else 'lossy bound'})"
    ))
    kind = "exact" if entry["lossless"] else f"mean abs error {error:.2f}"
    uid = pydicom.uid.UID(entry["transfer_syntax"])
    if not uid.is_compressed:
        return f"{entry['name']}: {kind}; native pixel data, no plugin needed"
    plugins = pydicom.pixels.get_decoder(uid).available_plugins
    return f"{entry['name']}: {kind}; pydicom plugins available: {', '.join(plugins) or 'none'}"


def check_main_window() -> str:
    """Open the real main window, show it, let it paint, close it."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display: still prove the widgets build
    from PySide6.QtWidgets import QApplication

    from desktop.app import make_application
    from desktop.controller import StudyController
    from desktop.settings import AppSettings
    from desktop.widgets.qt_main_window import MainWindow

    app = make_application()  # as `lunglens` does: same theme, same settings
    # The window restores and writes the worklist: point it at a scratch folder so a
    # self-test never reads or changes the user's real worklist and audit log.
    saved_data_dir = os.environ.get("LUNGLENS_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="lunglens-selftest-") as scratch:
        os.environ["LUNGLENS_DATA_DIR"] = scratch
        t0 = time.perf_counter()
        window = MainWindow(StudyController(AppSettings()))
        window.show()
        app.processEvents()
        ms = (time.perf_counter() - t0) * 1000
        try:
            require(window.isVisible(), "the main window did not become visible")
            pixmap = window.grab()
            require(not pixmap.isNull() and pixmap.width() > 100, "the main window rendered nothing")
            return (
                f"'{window.windowTitle()}' {pixmap.width()}x{pixmap.height()} shown in {ms:.0f} ms "
                f"on Qt platform '{QApplication.platformName()}'"
            )
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
            if saved_data_dir is None:
                os.environ.pop("LUNGLENS_DATA_DIR", None)
            else:
                os.environ["LUNGLENS_DATA_DIR"] = saved_data_dir


def run_checks(samples: Path, provider: str, gui: bool) -> list[Check]:
    from inference import providers
    from inference.engine import Engine

    checks: list[Check] = []
    try:
        expected = load_expected(samples)
    except (OSError, ValueError) as exc:
        return [Check("samples", False, str(exc))]

    engine_box: list[Engine] = []

    def model() -> str:
        engine = Engine.load(provider=provider)
        engine_box.append(engine)
        m = engine.manifest
        warn = f"; warnings: {'; '.join(engine.warnings)}" if engine.warnings else ""
        return (
            f"{m.name} {m.version} sha256 {m.sha256[:16]}... verified, loaded in {engine.load_ms:.0f} ms; "
            f"providers available: {', '.join(map(providers.friendly_name, providers.available_providers()))}; "
            f"used: {providers.friendly_name(engine.provider)}{warn}"
        )

    checks.append(_guard("model", model))
    for entry in expected.get("classify", []):
        name = f"classify {entry['file']}"
        if not engine_box:
            checks.append(Check(name, False, "no model loaded"))
            continue
        checks.append(_guard(name, lambda e=entry: check_classification(engine_box[0], samples, expected, e)))
    for entry in expected.get("decode", []):
        checks.append(_guard(f"decode {entry['file']}", lambda e=entry: check_decode(samples, e)))
    if not expected.get("classify") or not expected.get("decode"):
        checks.append(Check("samples", False, f"{samples / 'expected.json'} lists no classify or decode samples"))
    if gui:
        checks.append(_guard("main window", check_main_window))
    else:
        checks.append(Check("main window", None, "skipped (--no-gui)"))
    return checks


def report(checks: list[Check], info: dict[str, str], seconds: float) -> str:
    lines = ["LungLens self-test", *(f"  {k}: {v}" for k, v in info.items()), ""]
    lines += [f"{c.status}  {c.name}: {c.detail}" for c in checks]
    failed = sum(c.passed is False for c in checks)
    skipped = sum(c.passed is None for c in checks)
    passed = sum(c.passed is True for c in checks)
    verdict = "ALL CHECKS PASSED" if not failed and not skipped else f"{failed} FAILED, {skipped} SKIPPED"
    lines += ["", f"{passed} passed, {failed} failed, {skipped} skipped in {seconds:.1f} s: {verdict}"]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lunglens self-test``'s options (also spelt ``lunglens --self-test``)."""
    parser.description = "Check this LungLens installation: model, samples, every DICOM codec, the window."
    parser.epilog = "exit status: 0 every check passed, 1 a check failed, 2 a check was skipped (--no-gui)"
    from inference.commands import add_provider_arguments  # no ONNX Runtime: a missing one is a FAIL line

    add_provider_arguments(parser, threads=False)
    parser.add_argument("--no-gui", action="store_true", help="skip the main-window check (exit status 2)")
    parser.add_argument("--samples", type=Path, default=None, help="samples folder (default: the bundled one)")


def main(args: list[str]) -> int:
    """The self-test with ``args`` (the arguments after ``self-test``), as ``lunglens`` runs it."""
    from inference.commands import run_standalone

    return run_standalone(sys.modules[__name__], "self-test", ["self-test", *args])


def run(opts: argparse.Namespace, parser: argparse.ArgumentParser) -> int:  # noqa: ARG001 -- the subcommand interface
    """Run every check and print the report; the exit status says whether all passed."""
    t0 = time.perf_counter()
    samples = opts.samples or resources_dir() / "samples"
    info: dict[str, str] = {}

    def libraries() -> str:  # an unimportable library is exactly what a broken bundle shows
        from PIL import features

        info.update(versions())
        require(bool(features.check("freetype2")), "Pillow has no FreeType: the DICOM capture's text cannot be drawn")
        return "numpy, Pillow (with FreeType), pydicom, ONNX Runtime import"

    checks = [_guard("libraries", libraries), *run_checks(samples, opts.provider, gui=not opts.no_gui)]
    print(report(checks, info, time.perf_counter() - t0), flush=True)
    if any(c.passed is False for c in checks):
        return 1
    return EXIT_SKIPPED if any(c.passed is None for c in checks) else 0
