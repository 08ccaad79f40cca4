"""Settings → DICOM node, and the status-bar line that says how the node is doing.

The node the window runs is ``lunglens serve`` itself, started as a child process with the
options set here: the very code a headless install runs, and an analysis that never competes
with the window's own thread. It writes into the same worklist and audit log. The page's
"Test connection" sends a C-ECHO to the destination on a worker thread, so a PACS that does not
answer never freezes the window. The status line counts the outbox folder, off the GUI thread, every 2 s.

Settings live under ``dicom_node/`` in the app's QSettings (:class:`NodeSettings`).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QProcess, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inference.dicom_node import DEFAULT_AET, DEFAULT_PORT, EchoResult, NodeFolders, echo
from inference.outbox import Destination, DestinationError
from inference.serve_cli import message_of

from ..settings import AppSettings

log = logging.getLogger(__name__)

LAN = "0.0.0.0"
LOOPBACK = "127.0.0.1"


@dataclass
class NodeOptions:
    """What the node is started with."""

    enabled: bool = False
    port: int = DEFAULT_PORT
    aet: str = DEFAULT_AET
    lan: bool = False  # listen on every interface (needs ``allowed``), else this PC only
    allowed: list[str] = field(default_factory=list)
    destination: str = ""  # AET@HOST:PORT, or "" to keep the results in the app

    def problem(self) -> str:
        """Why these options cannot be used ("" when they can)."""
        if not 0 < len(self.aet) <= 16:
            return "The AE title must have 1 to 16 characters."
        if any(len(a) > 16 for a in self.allowed):
            return "An allowed AE title has more than 16 characters."
        if self.lan and not self.allowed:
            return "To accept films from other machines, list the AE titles allowed to send them."
        if self.destination:
            try:
                Destination.parse(self.destination)
            except DestinationError as exc:
                return f"Destination: {exc}."
        return ""

    def serve_arguments(self) -> list[str]:
        """``lunglens serve``'s arguments for these options."""
        args = ["serve", "--bind", LAN if self.lan else LOOPBACK, "--port", str(self.port), "--aet", self.aet]
        if self.allowed:
            args += ["--allow", *self.allowed]
        if self.destination:
            args += ["--send-to", self.destination]
        return args


class NodeSettings:
    """:class:`NodeOptions` kept in the app's QSettings."""

    def __init__(self, settings: AppSettings) -> None:
        self.q = settings.q

    def load(self) -> NodeOptions:
        d = NodeOptions()
        try:
            port = int(self.q.value("dicom_node/port", d.port))
        except (TypeError, ValueError):
            port = d.port
        allowed = self.q.value("dicom_node/allowed", "")
        return NodeOptions(
            enabled=str(self.q.value("dicom_node/enabled", "false")).lower() in ("1", "true"),
            port=port if 0 < port < 65536 else d.port,
            aet=str(self.q.value("dicom_node/aet", d.aet)) or d.aet,
            lan=str(self.q.value("dicom_node/lan", "false")).lower() in ("1", "true"),
            allowed=_titles(" ".join(allowed) if isinstance(allowed, list) else str(allowed or "")),
            destination=str(self.q.value("dicom_node/destination", "")),
        )

    def save(self, options: NodeOptions) -> None:
        self.q.setValue("dicom_node/enabled", options.enabled)
        self.q.setValue("dicom_node/port", options.port)
        self.q.setValue("dicom_node/aet", options.aet)
        self.q.setValue("dicom_node/lan", options.lan)
        self.q.setValue("dicom_node/allowed", " ".join(options.allowed))
        self.q.setValue("dicom_node/destination", options.destination)
        self.q.sync()


def _titles(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


class _EchoSignals(QObject):
    done = Signal(object)  # EchoResult


class _EchoJob(QRunnable):
    """One C-ECHO on the thread pool; the answer comes back as a queued signal."""

    def __init__(self, destination: Destination, calling: str) -> None:
        super().__init__()
        self.destination, self.calling = destination, calling
        self.signals = _EchoSignals()

    def run(self) -> None:
        d = self.destination
        try:
            result = echo(d.host, d.port, d.aet, self.calling)
        except Exception as exc:  # noqa: BLE001 - whatever the network does, say it
            result = EchoResult(False, f"the C-ECHO failed: {exc}", 0.0)
        self.signals.done.emit(result)


class DicomNodePage(QWidget):
    """The Settings page; :meth:`apply` saves it (True when something changed)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = NodeSettings(settings)
        o = self.store.load()
        self.enabled = QCheckBox("Run the DICOM node while LungLens is open")
        self.enabled.setChecked(o.enabled)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(o.port)
        self.aet = QLineEdit(o.aet)
        self.aet.setMaxLength(16)
        self.lan = QCheckBox("Accept films from other machines (otherwise this PC only)")
        self.lan.setChecked(o.lan)
        self.allowed = QLineEdit(" ".join(o.allowed))
        self.allowed.setPlaceholderText("e.g. XRAY_ROOM1 PACS (separated by spaces)")
        self.destination = QLineEdit(o.destination)
        self.destination.setPlaceholderText("AET@HOST:PORT, e.g. PACS@192.168.1.10:104")
        self.test_button = QPushButton("Test connection")
        self.test_button.setToolTip("Send a C-ECHO to the destination")
        self.test_button.clicked.connect(self.test_connection)
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #d08000")

        box = QGroupBox("DICOM node")
        form = QFormLayout(box)
        form.addRow(self.enabled)
        form.addRow("Port", self.port)
        form.addRow("AE title", self.aet)
        form.addRow(self.lan)
        form.addRow("Allowed calling AE titles", self.allowed)
        dest = QHBoxLayout()
        dest.addWidget(self.destination, 1)
        dest.addWidget(self.test_button)
        form.addRow("Send results to", dest)
        form.addRow(self.test_result)
        note = QLabel("Films received are analysed into the worklist and audited. With a destination, each "
                      "result's DICOM SR (and for flagged films the heat-map's Secondary Capture) is sent "
                      "there, and waits in the outbox while the PACS cannot be reached.")
        note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addWidget(note)
        lay.addWidget(self.problem)
        lay.addStretch(1)
        for w in (self.aet, self.allowed, self.destination):
            w.textChanged.connect(self._check)
        self.lan.toggled.connect(self._check)
        self._job: _EchoJob | None = None
        self._check()

    def options(self) -> NodeOptions:
        return NodeOptions(self.enabled.isChecked(), self.port.value(), self.aet.text().strip(), self.lan.isChecked(),
                           _titles(self.allowed.text()), self.destination.text().strip())

    def _check(self) -> str:
        problem = self.options().problem()
        self.problem.setText(problem)
        return problem

    def test_connection(self) -> None:
        """C-ECHO the destination on the thread pool; the answer lands in :attr:`test_result`."""
        try:
            destination = Destination.parse(self.destination.text())
        except DestinationError as exc:
            self.test_result.setText(f"Cannot test: {exc}")
            return
        self.test_button.setEnabled(False)
        self.test_result.setText(f"Testing {destination}…")
        self._job = _EchoJob(destination, self.aet.text().strip() or DEFAULT_AET)
        self._job.signals.done.connect(self._tested)
        QThreadPool.globalInstance().start(self._job)

    def _tested(self, result: EchoResult) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setText(("Connected: " if result.ok else "Failed: ") + result.message)

    def apply(self) -> bool:
        """Save the options (refused while :meth:`options` has a problem); True when they changed."""
        new = self.options()
        if new.problem():
            return False
        if new == self.store.load():
            return False
        self.store.save(new)
        return True


class NodeStatus(QLabel):
    """The status bar's node line; it runs ``lunglens serve`` while the node is enabled."""

    state_changed = Signal(str)
    arrived = Signal()  # the node put a film's result (or failure) in the worklist: the list can show it
    _counted = Signal(int)  # the outbox's length, counted off the GUI thread

    def __init__(self, settings: AppSettings, parent: QWidget | None = None, poll_ms: int = 2000,
                 decision: Callable[[], list[str]] = list) -> None:
        """``decision``: the arguments that make the node decide as the window does (its site
        profile and operating point: :meth:`desktop.controller.StudyController.node_arguments`)."""
        super().__init__(parent)
        self.store = NodeSettings(settings)
        self.decision = decision
        self.process: QProcess | None = None
        self.state = "off"
        self.detail = ""
        self._last_log = ""
        self._send_problem = ""  # the outbox's last failure to send, while results wait
        self.waiting = 0  # results in the outbox, as last counted
        self._counting = False
        self._counted.connect(self._show_count)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._stopping: QProcess | None = None  # a node told to stop, not yet gone
        self._start_when_stopped = False
        self.restart()

    def restart(self) -> None:
        """Stop the node if it runs, and start it again when the settings enable it -- without
        waiting on the GUI thread: a node finishes the film in hand before it exits, so the new
        one starts when the old one has gone (and let go of its port)."""
        if self._stopping is not None:
            self._start_when_stopped = True  # with the settings of that moment
            return
        proc, self.process = self.process, None
        if proc is None:
            self._start()
            return
        self._stopping, self._start_when_stopped = proc, True
        proc.finished.disconnect(self._finished)
        proc.finished.connect(self._stopped)
        proc.terminate()
        QTimer.singleShot(10000, proc, proc.kill)  # one that has not stopped by then is killed
        self._set("restarting", "")

    def _stopped(self, *_: object) -> None:
        if self._stopping is not None:
            self._stopping.deleteLater()
        self._stopping = None
        if self._start_when_stopped:
            self._start_when_stopped = False
            self._start()

    def _start(self) -> None:
        self._send_problem = ""  # a new node, perhaps to another PACS: the old failure is not its own
        options = self.store.load()
        if not options.enabled or options.problem():
            self._set("off", options.problem())
            return
        proc = QProcess(self)
        program, *prefix = serve_command()
        proc.setProgram(program)
        proc.setArguments([*prefix, *options.serve_arguments(), *self.decision()])
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.readyReadStandardError.connect(self._read_log)
        proc.finished.connect(self._finished)
        self.process = proc
        self._set("starting", f"port {options.port}")
        proc.start()

    def _read(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if "listening on" in line:
                self._set("listening", line.split("listening on", 1)[1].split(";")[0].strip())

    def _read_log(self) -> None:
        """The node's log: a film analysed, or one it could not analyse, means a new row in the
        worklist (a result or a failure); the last line is kept to say why the node stopped."""
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        lines = [message_of(line) for line in text.splitlines() if line.strip()]
        if lines:
            self._last_log = lines[-1]
        for line in lines:  # why results wait: the outbox's count alone had said nothing of it
            if line.startswith("could not send "):  # without "(attempt n, next in s)", soon stale
                self._send_problem = re.sub(r" \(attempt \d+, next in [^)]*\)", "", line)
            elif line.startswith("sent "):
                self._send_problem = ""
        if any(line.startswith(("analysed ", "could not analyse ")) for line in lines):
            self.arrived.emit()

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_log()
        self.process = None
        self._set("stopped" if code == 0 else "failed", self._last_log)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """SIGTERM the node and wait for it (it parks unfinished work for the next start): when
        the window closes, and nothing is started after."""
        self._start_when_stopped = False
        for proc, slot in ((self.process, self._finished), (self._stopping, self._stopped)):
            if proc is None:
                continue
            proc.finished.disconnect(slot)
            proc.terminate()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(2000)
        self.process = self._stopping = None
        self._set("off", "")

    @staticmethod
    def outbox_length() -> int:
        try:  # an unusable data folder is said elsewhere; the status line just shows no outbox
            return sum(1 for _ in (NodeFolders.default().root / "outbox").glob("*.dcm"))
        except OSError:
            return 0

    def refresh(self) -> None:
        """Count the outbox on a short-lived thread (a folder on a slow disk must not hold the
        window); the line is redrawn when the count comes back."""
        if self._counting:
            return
        self._counting = True
        threading.Thread(target=self._count, name="lunglens-outbox-count", daemon=True).start()

    def _count(self) -> None:
        try:
            waiting = self.outbox_length()
        except Exception:  # noqa: BLE001 -- an answer must come back, or the count would freeze
            log.warning("could not count the DICOM node's outbox", exc_info=True)
            waiting = 0
        try:
            self._counted.emit(waiting)  # queued to the GUI thread
        except RuntimeError:  # the window closed while counting: nobody to tell
            pass

    def _show_count(self, waiting: int) -> None:
        self._counting = False
        self.waiting = waiting
        self._set(self.state, self.detail)

    def _set(self, state: str, detail: str) -> None:
        changed = state != self.state
        self.state, self.detail = state, detail
        waiting = self.waiting
        words = {"off": "off", "starting": "starting", "restarting": "restarting",
                 "listening": f"listening on {detail}",
                 "stopped": "stopped", "failed": "stopped with an error"}[state]
        self.setText(f"DICOM node: {words}" + (f" · outbox {waiting}" if waiting or state == "listening" else ""))
        problem = f"\nLast try: {self._send_problem}" if waiting and self._send_problem else ""
        self.setToolTip(detail if state in ("failed", "off") and detail else
                        f"{waiting} result{'s' if waiting != 1 else ''} waiting to be sent{problem}")
        if changed:
            self.state_changed.emit(state)


def serve_command() -> list[str]:
    """How to start ``lunglens``: the frozen app's own binary, or this interpreter with the package."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "desktop.main"]
