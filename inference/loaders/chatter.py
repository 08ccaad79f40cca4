"""Decoder chatter goes to the debug log, never to the terminal or the app's log window.

pydicom logs every failed decoder attempt with a full traceback (``LOGGER.exception``)
before it tries the next plugin, and warns when a plugin changes mid-file; the file still
ends in a clean error or a study, which says what matters. Native decoders' own printing
(a Rust panic message, a libjpeg warning) is captured by the decode worker (budget.py).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class _ToDebug(logging.Handler):
    """Re-logs a pydicom record at DEBUG level on this module's logger."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)


def keep_pydicom_quiet() -> None:
    """Route the "pydicom" logger's records to the debug log, once per process."""
    logger = logging.getLogger("pydicom")
    if not any(isinstance(h, _ToDebug) for h in logger.handlers):
        logger.addHandler(_ToDebug())
    logger.propagate = False
