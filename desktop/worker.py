"""The Qt side of the background work: analysis reports reach the GUI thread as one queued signal.

Batch analysis runs in a child process (:mod:`desktop.analysis_process`), which also
decodes the study on screen (newest request wins), so no file is decoded in the window's
process; folders are listed by a thread here. The GUI thread only receives ready values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from inference.decision import OperatingPoint
from inference.profile import SiteProfile

from .analysis_messages import Report, Viewed, ViewFailed
from .analysis_process import AnalysisProcess


CHUNK = 100  # studies listed per update: each chunk is one short step for the GUI thread


class StudyWorker(QObject):
    """Owns the analysis process, and through it the Engine and the decoding of every file."""

    report = Signal(object)  # every desktop.analysis_messages.Report except the answers to views, which are:
    view_loaded = Signal(int, object, bool)  # token, Study (at most DISPLAY_MAX_SIDE pixels), Viewed.same_pixels
    view_failed = Signal(int, str)  # token, reason
    discovered = Signal(object)  # list[Path], in chunks, in a stable order
    discovery_done = Signal()

    def __init__(self, provider: str = "auto", threads: int | None = None, profile: SiteProfile | None = None,
                 loader_threads: int | None = None, parent: QObject | None = None,
                 worklist_path: Path | None = None, audit_path: Path | None = None) -> None:
        """``profile``: the site profile the engine calibrates with (None: the shipped one).
        With ``audit_path`` every result is audited as it arrives; with ``worklist_path`` too it
        is stored, and studies already analysed by this model are answered from the worklist."""
        super().__init__(parent)
        self._stopping = False
        self._discoverers: list[threading.Thread] = []
        # Reports arrive on the analysis process's reader thread; Qt queues them to the GUI thread.
        self._analysis = AnalysisProcess(self._dispatch, provider=provider, threads=threads, profile=profile,
                                         loader_threads=loader_threads, worklist_path=worklist_path,
                                         audit_path=audit_path)

    def _dispatch(self, r: Report) -> None:
        if isinstance(r, Viewed):
            self.view_loaded.emit(r.token, r.study, r.same_pixels)
        elif isinstance(r, ViewFailed):
            self.view_failed.emit(r.token, r.reason)
        else:
            self.report.emit(r)

    def set_operating_point(self, operating: OperatingPoint | None) -> None:
        """Results from now on are read at ``operating`` (None: the profile's default)."""
        self._analysis.set_operating_point(operating)

    def submit(self, jobs: list[tuple[int, Path]]) -> None:
        self._analysis.submit(jobs)

    def cancel(self) -> None:
        self._analysis.cancel()

    def discover(self, paths: Sequence[str | Path]) -> None:
        """List the files under ``paths`` (folders recursively) off the GUI thread.

        Emits them in chunks so a folder of a thousand studies appears at once and a slow
        network share does not freeze the window.
        """
        t = threading.Thread(target=self._discover, args=(list(paths),), name="lunglens-discover", daemon=True)
        self._discoverers = [d for d in self._discoverers if d.is_alive()] + [t]
        t.start()

    def _discover(self, paths: list[str | Path]) -> None:
        from inference.loaders import iter_study_files

        chunk: list[Path] = []
        last = time.monotonic()
        try:
            for path in iter_study_files(paths, recursive=True):
                if self._stopping:
                    return
                chunk.append(path)
                if len(chunk) >= CHUNK or time.monotonic() - last > 0.1:
                    self.discovered.emit(chunk)
                    chunk, last = [], time.monotonic()
            if chunk:
                self.discovered.emit(chunk)
        finally:
            self.discovery_done.emit()

    def load_for_view(self, token: int, path: Path, fingerprint: str | None = None,
                      ahead: Path | None = None) -> None:
        """Decode ``path`` for the screen, then ``ahead`` (the study likely next) into the
        cache; answered by ``view_loaded`` (which says whether the file still holds the
        pixels of ``fingerprint``, when given) or ``view_failed``."""
        self._analysis.view(token, path, fingerprint, ahead)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the child process and every thread (called when the window closes); True when all ended."""
        self._stopping = True
        for d in self._discoverers:
            d.join(timeout)
        return self._analysis.shutdown(timeout)

    @property
    def alive(self) -> bool:
        return self._analysis.alive or any(d.is_alive() for d in self._discoverers)
