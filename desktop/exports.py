"""What the app writes for the user: the report, the Secondary Capture, the view, the worklist.

Each export either writes its file and appends one line to the audit log, or raises
:class:`ExportError` with one sentence naming the file and the reason -- the window shows
that sentence, never a traceback. The formats themselves live in ``inference`` (DICOM,
CSV/JSON) and :mod:`desktop.report_pdf`; this module only checks there is something to
export and says what went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.audit import AuditLog
from inference.export import anonymized, error_row, record_row, write_csv, write_json
from inference.hashing import pixel_sha256
from inference.overlay import Picture, render_picture
from inference.prediction import Prediction
from inference.study import Study
from inference.userdirs import write_private

from .controller import ViewContext
from .models.study_item import Status, StudyItem

log = logging.getLogger(__name__)


class ExportError(Exception):
    """An export that did not happen; ``str()`` is the message for the user."""


def _ready(ctx: ViewContext | None, path: Path) -> tuple[Study, Prediction]:
    if ctx is None:
        raise ExportError("Nothing to export: select a study first.")
    if ctx.study is None:
        reason = ctx.problem or ctx.item.error or "the image could not be read"
        raise ExportError(f"{path.name} was not written: {ctx.item.name} cannot be shown ({reason}).")
    if ctx.prediction is None:
        raise ExportError(f"{path.name} was not written: {ctx.item.name} has no result yet.")
    return ctx.study, ctx.prediction


def _digest(ctx: ViewContext) -> str:
    record = ctx.item.record
    return record.pixel_sha256 if record is not None and record.pixel_sha256 else pixel_sha256(ctx.study)


def _write(path: Path, what: str, write: Callable[[], object]) -> None:
    """Run ``write``; any failure becomes one ExportError sentence."""
    try:
        write()
    except ExportError:
        raise
    except OSError as err:
        raise ExportError(f"{path.name} was not written: {err.strerror or err}.") from err
    except Exception as err:  # noqa: BLE001 -- e.g. a source header highdicom refuses: say so, no traceback
        log.warning("%s export to %s failed", what, path, exc_info=True)
        raise ExportError(f"{path.name} was not written: the {what} could not be made ({type(err).__name__}: {err}).") from err


def _audit(audit: AuditLog | None, path: Path, *args: object, **kwargs: object) -> None:
    """Append the export to the audit log; the file is written, so a failure here says exactly that."""
    try:
        if audit is None:
            raise OSError(0, "the data folder cannot be used")
        audit.log_export(*args, destination=path, **kwargs)
    except OSError as err:
        raise ExportError(f"{path.name} was written, but the audit log could not record it "
                          f"({err.strerror or err}).") from err


@dataclass(frozen=True)
class OnScreen:
    """How the window shows the heat-map now, so the exported picture is the same one."""

    heatmap_shown: bool
    opacity: float

    def picture(self, study: Study, prediction: Prediction) -> Picture:
        return render_picture(study, prediction, shown=self.heatmap_shown, opacity=self.opacity)


def export_report_pdf(ctx: ViewContext | None, path: Path, audit: AuditLog | None, show_identifiers: bool,
                      screen: OnScreen, anonymize: bool = False) -> None:
    """The one-page PDF report of the study on screen; identifiers only if the user shows them,
    and never when anonymized for teaching (then no study date or file name either)."""
    study, prediction = _ready(ctx, path)
    from .report_pdf import write_report_pdf

    show_identifiers = show_identifiers and not anonymize
    picture = screen.picture(study, prediction)
    _write(path, "PDF report", lambda: write_report_pdf(path, study, prediction, picture=picture,
                                                        show_identifiers=show_identifiers, anonymize=anonymize))
    _audit(audit, path, "report", "pdf", pixel_sha256=[_digest(ctx)], with_identifiers=show_identifiers,
           anonymized=anonymize)


def export_secondary_capture(ctx: ViewContext | None, path: Path, audit: AuditLog | None, screen: OnScreen,
                             anonymize: bool = False) -> None:
    """A DICOM Secondary Capture of the picture on screen with the result burned in, in the
    source's study -- or, anonymized for teaching, in a new study without identifiers."""
    study, prediction = _ready(ctx, path)
    from inference.dicom_sc import write_secondary_capture

    picture = screen.picture(study, prediction)
    _write(path, "DICOM Secondary Capture",
           lambda: write_secondary_capture(study, prediction, path, picture, anonymize=anonymize))
    # The capture carries the source's Patient module: a DICOM source's identifiers go with it.
    _audit(audit, path, "secondary_capture", "dicom", pixel_sha256=[_digest(ctx)],
           with_identifiers=study.metadata.source_format == "DICOM" and not anonymize, anonymized=anonymize)


def export_view_png(ctx: ViewContext | None, path: Path, audit: AuditLog | None,
                    png: Callable[[], bytes]) -> None:
    """The viewer as it is on screen (``png()``: its PNG bytes), written 0600."""
    if ctx is None or ctx.study is None:
        _ready(ctx, path)

    def write() -> None:
        data = png()
        if not data:
            raise OSError(0, "the view could not be drawn")
        write_private(path, data)

    _write(path, "picture of the view", write)
    _audit(audit, path, "view", "png", pixel_sha256=[_digest(ctx)], with_identifiers=False)


def export_worklist(items: Sequence[StudyItem], path: Path, audit: AuditLog | None, show_identifiers: bool,
                    anonymize: bool = False) -> int:
    """The listed studies as CSV or JSON (by ``path``'s suffix), one row per finished or failed
    study, read at the current operating point (anonymized: :func:`inference.export.anonymized`).
    Returns the row count."""
    show_identifiers = show_identifiers and not anonymize
    rows, hashes = [], []
    for item in items:
        if item.status is Status.DONE and item.record is not None and item.prediction is not None:
            record = item.record.at(item.prediction.operating)
            rows.append(record_row(record, show_identifiers))
            hashes.append(record.pixel_sha256)
        elif item.status is Status.ERROR:
            rows.append(error_row(item.path, item.error, show_identifiers))
    if anonymize:
        rows = [anonymized(row) for row in rows]
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ExportError(f"{path.name} was not written: a worklist is exported as .csv or .json.")
    if not rows:
        raise ExportError(f"{path.name} was not written: no study in the list has a result yet.")
    writer = (lambda: write_csv(rows, path, show_identifiers)) if suffix == ".csv" else (lambda: write_json(rows, path))
    _write(path, "worklist export", writer)
    _audit(audit, path, "worklist", suffix[1:], pixel_sha256=hashes, with_identifiers=show_identifiers,
           anonymized=anonymize)
    return len(rows)
