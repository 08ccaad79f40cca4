"""Close the window on SIGTERM and SIGINT, as if the user had closed it.

Without this, Ctrl-C in the terminal that ran ``make run`` does nothing until some event calls
into Python, and SIGTERM (a session logging out, ``kill``, a service manager) ends the process
on the spot: the window's settings are not saved, the analysis process is not stopped, and
multiprocessing complains of leaked semaphores. Qt's event loop runs in C++, so a Python
signal handler only runs when Qt next calls Python; :func:`signal.set_wakeup_fd` makes the
signal itself wake Qt: the C-level handler writes the signal's number to a socket that a
:class:`QSocketNotifier` watches, and the notifier's slot closes the window through its
ordinary ``closeEvent`` (settings saved, analysis stopped, worklist closed) and quits.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class QuitOnSignals(QObject):
    """Calls ``close`` once when SIGINT or SIGTERM arrives; :meth:`uninstall` puts back what was there.

    Install it on the main thread (Python delivers signals only there) while the event loop
    is about to run.
    """

    def __init__(self, close: Callable[[], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._close = close
        self._closing = False
        self._read, self._write = socket.socketpair()
        for sock in (self._read, self._write):
            sock.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        # A Python handler must be installed for the C handler to write the wake-up byte; the
        # work itself is done by the notifier, inside Qt's event loop.
        self._previous = {sig: signal.signal(sig, lambda *_: None) for sig in SIGNALS}
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_wakeup)

    def _on_wakeup(self) -> None:
        try:
            received = self._read.recv(64)
        except BlockingIOError:
            return
        if self._closing or not any(n in received for n in SIGNALS):
            return
        self._closing = True
        self._close()

    def uninstall(self) -> None:
        """Restore the previous handlers and wake-up descriptor and close the socket pair."""
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._read.close()
        self._write.close()
