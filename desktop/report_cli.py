"""``lunglens report STUDY --pdf OUT.pdf --dicom-sc OUT.dcm``: one study's outputs, headless.

Exit status (:data:`EPILOG`): 0 everything asked for was written; 1 the study, the model or
an output failed (the message names the file and the reason; every output is still tried);
2 a usage error, refused before anything runs, exactly as ``lunglens classify`` refuses
them. Every analysis and every output is appended to the audit log; a log that cannot be
written is a warning, never a traceback. The PDF needs Qt's painter, so a QGuiApplication
is made -- offscreen when there is no display.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from inference.audit import AuditLog
from inference.commands import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_decision_arguments, add_profile_argument,
                               add_provider_arguments, chosen_point, load_engine, usage_error)
from inference.errors import LungLensError
from inference.hashing import pixel_sha256
from inference.presentation import present
from inference.worklist import WorklistRecord

EPILOG = """\
what the outputs carry:
  PDF  no patient identifiers unless --show-identifiers (name, ID, sex/age, accession,
       institution, file name); --anonymize also leaves out the study date
  SC   a DICOM source's patient and study (name, ID, birth date, accession...), so the
       PACS files it with the films -- whatever --show-identifiers says; --anonymize gives
       it a new study with new UIDs and only the patient's sex and age
  SR   (--sr) the result as a DICOM structured report in the study's own study: it
       carries the patient and study as the SC does; it cannot be anonymized
  Neither removes text the modality burned into the pixels.

exit status:
  0  every output asked for was written
  1  the study could not be read, the model could not be loaded, or an output could not
     be written (the others are still tried)
  2  usage error: an unknown option or value (--provider, --threads, --threshold,
     --operating-point), a --profile that cannot be read or was made for another model,
     no output asked for; nothing was analysed
An audit log that cannot be written is a warning, not a failure.
"""


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``lunglens report``'s options (desktop/main.py)."""
    ap.description = ("Analyse one study and write a PDF report and/or a DICOM Secondary Capture. "
                      "Decision support, not a diagnosis.")
    ap.epilog = EPILOG
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.add_argument("study", type=Path, help="a DICOM, PNG or JPEG chest X-ray")
    ap.add_argument("--pdf", type=Path, metavar="OUT.pdf", help="write the one-page PDF report here")
    ap.add_argument("--dicom-sc", type=Path, metavar="OUT.dcm", help="write a DICOM Secondary Capture of the film, heat-map and result here")
    ap.add_argument("--sr", type=Path, metavar="OUT.dcm", help="write the result as a DICOM SR (TID 1500) in the "
                    "study's own study, as lunglens serve sends it (a DICOM study only)")
    privacy = ap.add_mutually_exclusive_group()
    privacy.add_argument("--show-identifiers", action="store_true", help="print patient name, ID and file name in the PDF")
    privacy.add_argument("--anonymize", action="store_true",
                         help="for teaching or demonstrations: no patient name, ID, birth date, accession number, "
                         "institution or dates in the PDF or the SC, and new UIDs in the SC")
    add_provider_arguments(ap)
    add_profile_argument(ap)
    add_decision_arguments(ap)
    ap.add_argument("--models-dir", type=Path, default=None, help=argparse.SUPPRESS)


def ensure_gui_application() -> object:
    """The running QGuiApplication, or a new one (offscreen when no display is available)."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is not None:
        return app
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return QGuiApplication(["lunglens"])


def _error(message: str) -> None:
    print(f"lunglens report: error: {message}", file=sys.stderr)


class _Audit:
    """The audit log for one run: an entry that cannot be written is said once, then skipped."""

    def __init__(self) -> None:
        self._log: AuditLog | None = AuditLog()

    def __call__(self, write: Callable[[AuditLog], object]) -> None:
        if self._log is None:
            return
        try:
            write(self._log)
        except OSError as exc:
            print(f"lunglens report: warning: the audit log {self._log.path} cannot be written "
                  f"({exc.strerror or exc}); nothing more is audited in this run", file=sys.stderr)
            self._log = None


def run(args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    """Run ``lunglens report`` with parsed ``args``; returns the exit status (see :data:`EPILOG`)."""
    if args.pdf is None and args.dicom_sc is None and args.sr is None:
        return usage_error(ap, "nothing to write: give --pdf OUT.pdf, --dicom-sc OUT.dcm and/or --sr OUT.dcm")
    if args.sr is not None and args.anonymize:
        return usage_error(ap, "--sr joins the study's own study and patient; it cannot be anonymized")

    from inference.loaders import load_study
    from inference.overlay import render_picture

    engine = load_engine(args, "lunglens report: error")
    if isinstance(engine, int):
        return engine
    if isinstance(chosen_point(engine, args, ap), int):  # refused before the study is even read
        return EXIT_USAGE
    try:
        study = load_study(Path(os.path.abspath(args.study)))  # named whole, as every other command does
        prediction = engine.predict(study, threshold=args.threshold, operating_point=args.operating_point)
    except LungLensError as exc:
        _error(str(exc))
        return EXIT_FAILED

    digest = pixel_sha256(study)
    audit = _Audit()
    audit(lambda log: log.log_analysis(WorklistRecord.from_prediction(study, prediction, digest)))
    words = present(prediction)
    print(f"{study.path.name}: {words.summary}")
    print(f"  operating point: {words.operating_point}")
    print(f"  site profile: {words.profile}")
    print(f"  {words.population}")
    for warning in words.warnings:
        print(f"  warning: {warning}")

    picture = render_picture(study, prediction)
    failed = False
    if args.pdf is not None:
        ensure_gui_application()
        from desktop.report_pdf import write_report_pdf

        try:
            _check_folder(args.pdf)
            write_report_pdf(args.pdf, study, prediction, picture=picture, show_identifiers=args.show_identifiers,
                             anonymize=args.anonymize)
        except OSError as exc:
            _error(f"{args.pdf}: cannot write the PDF ({exc})")
            failed = True
        else:
            audit(lambda log: log.log_export("report", "pdf", args.pdf, [digest], with_identifiers=args.show_identifiers,
                                             anonymized=args.anonymize))
            print(f"wrote {args.pdf}")
    if args.dicom_sc is not None:
        from inference.dicom_sc import write_secondary_capture

        try:
            _check_folder(args.dicom_sc)
            write_secondary_capture(study, prediction, args.dicom_sc, picture, anonymize=args.anonymize)
        except OSError as exc:
            _error(f"{args.dicom_sc}: cannot write the DICOM file ({exc})")
            failed = True
        except (LungLensError, ValueError, TypeError, AttributeError) as exc:  # a source header highdicom refuses
            _error(f"{args.dicom_sc}: cannot build a Secondary Capture from {study.path.name} ({exc})")
            failed = True
        else:
            # The capture carries a DICOM source's Patient module unless anonymized.
            audit(lambda log: log.log_export(
                "secondary_capture", "dicom", args.dicom_sc, [digest],
                with_identifiers=study.metadata.source_format == "DICOM" and not args.anonymize,
                anonymized=args.anonymize))
            print(f"wrote {args.dicom_sc}")
    if args.sr is not None:
        failed = not _write_sr(study, prediction, args.sr, digest, audit) or failed
    return EXIT_FAILED if failed else EXIT_OK


def _write_sr(study: object, prediction: object, out: Path, digest: str, audit: _Audit) -> bool:
    """``--sr``: the SR that ``lunglens serve`` sends (inference/dicom_sr.py); False when not written."""
    from inference.dicom_sr import write_sr

    try:
        _check_folder(out)
        write_sr(study, prediction, out)  # type: ignore[arg-type]
    except OSError as exc:
        _error(f"{out}: cannot write the DICOM SR ({exc})")
        return False
    except (LungLensError, ValueError, TypeError, AttributeError) as exc:  # a raster, or a header highdicom refuses
        _error(f"{out}: cannot build a DICOM SR ({exc})")
        return False
    audit(lambda log: log.log_export("structured_report", "dicom", out, [digest], with_identifiers=True))
    print(f"wrote {out}")
    return True


def _check_folder(out: Path) -> None:
    """Say "the folder does not exist" rather than what the writer would make of it."""
    if not out.parent.is_dir():
        raise OSError(f"the folder {out.parent} does not exist")

