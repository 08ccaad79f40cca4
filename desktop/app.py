"""``lunglens [open] [PATHS...]`` and ``lunglens --screenshot OUT.png [PATHS...]``: the GUI.

Screenshot mode opens the paths, waits until every result is shown, shows the most
suspicious study, saves a picture of the window and exits -- for the README and for checks.
The ``lunglens`` command (desktop/main.py) runs it when no other command is named.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path


from inference import __version__
from inference.loaders import budget
from inference.threads import limit_blas

SCREENSHOT_TIMEOUT_S = 600.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The window's options (``lunglens open``, and ``lunglens`` without a command)."""
    p.description = ("Open the LungLens window (the default when no command is named): chest X-ray pneumonia "
                     "triage, decision support, not a diagnostic device.")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS", help="studies or folders to open (folders recursively)")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="open PATHS, wait for every result, save a screenshot of the window and exit")
    p.add_argument("--size", default="1440x900", metavar="WxH", help="window size for --screenshot")


def make_application(argv: list[str] | None = None):  # noqa: ANN201 -- QApplication, imported late
    """The QApplication with high-DPI and the dark theme (reuses an existing one, e.g. in tests)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from . import pgsetup  # noqa: F401 -- pyqtgraph options before any view exists
    from .settings import APPLICATION, ORGANIZATION
    from .theme import apply_dark_theme

    # Hand the GIL over every 2 ms (default 5 ms) so the GUI thread waits less for
    # loader and inference threads running Python code.
    sys.setswitchinterval(0.002)
    # The window's own matrix work is small (the heat-map's bicubic upsampling, windowing): one
    # BLAS thread does it fastest. With OpenBLAS's default pool, its workers spun against the
    # analysis process on 2 cores and a 768-pixel heat-map took 17 ms instead of 2.5 ms on the
    # GUI thread (tests/desktop/test_responsiveness.py stalled past 100 ms).
    limit_blas()
    # The viewer decodes films through a forked worker (inference.loaders.budget): fork it
    # before Qt and the first film make this process big (tests/desktop/test_responsiveness.py).
    budget.prestart()
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(["lunglens", *(argv or [])])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    apply_dark_theme(app)
    return app


def settle_memory() -> None:
    """Move everything built so far (Qt wrappers, pyqtgraph, numpy...) out of the garbage
    collector's reach: a full collection over them stalls the GUI thread for 100+ ms in
    the middle of a batch. Call once the window exists."""
    gc.collect()
    gc.freeze()


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:  # noqa: ARG001 -- the subcommand interface
    """Show the window until it is closed (or take the screenshot); returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = make_application()

    from .controller import StudyController
    from .settings import AppSettings
    from .widgets.qt_main_window import MainWindow

    controller = StudyController(AppSettings())
    window = MainWindow(controller)
    settle_memory()
    if args.screenshot is not None:
        return _screenshot(app, window, controller, args)
    window.show()
    if args.paths:
        window.open_paths(args.paths)
    from .quit_signals import QuitOnSignals

    def close_and_quit() -> None:  # a modal dialog may be open: quit leaves its event loop too
        window.ask_before_closing = False
        window.close()
        app.quit()

    quitter = QuitOnSignals(close_and_quit)
    try:
        return app.exec()
    finally:
        quitter.uninstall()


def _screenshot(app, window, controller, args: argparse.Namespace) -> int:  # noqa: ANN001
    """Run until every result is shown, grab the window; exit 0 when the picture is saved
    and the model ran (a window full of "model unavailable" is not a successful check)."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"lunglens: --size must look like 1440x900, not {args.size!r}", file=sys.stderr)
        return 2
    window.resize(w, h)
    window.show()
    state = {"code": 1, "phase": "analysing"}
    clock = QElapsedTimer()
    clock.start()

    def tick() -> None:
        if clock.elapsed() > SCREENSHOT_TIMEOUT_S * 1000:
            print("lunglens: timed out waiting for results", file=sys.stderr)
            app.exit(1)
            return
        if not controller.idle:
            return
        if state["phase"] == "analysing":
            # Show the study at the top of the list (the most suspicious) with its result.
            state["phase"] = "showing"
            window.study_list.select_row(0)
            return
        ctx = controller.context
        if args.paths and controller.model.rowCount() and (ctx is None or ctx.key != window.study_list.current_key()):
            return
        timer.stop()
        window.viewer.fit()
        app.processEvents()
        out = args.screenshot
        out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(out)):
            print(f"lunglens: could not write {out}", file=sys.stderr)
        elif controller.engine_error or controller.manifest is None:
            # The picture exists, but it shows no results: not a success for a check.
            reason = controller.engine_error or controller.manifest_error
            print(f"screenshot saved: {out}, but the model is not available: {reason}", file=sys.stderr)
        else:
            print(f"screenshot saved: {out}")
            state["code"] = 0
        window.ask_before_closing = False
        window.close()
        app.exit(state["code"])

    timer = QTimer()
    timer.setInterval(100)
    timer.timeout.connect(tick)
    if args.paths:
        window.open_paths(args.paths)
    timer.start()
    app.exec()
    return state["code"]
