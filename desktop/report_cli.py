"""``lunglens report STUDY --pdf OUT.pdf --dicom-sc OUT.dcm``: one study's outputs, headless.

Exit codes: 0 written, 1 the study, the model or an output failed (the message names the
file and the reason), 2 a usage error. Every analysis and every output is appended to the
audit log. The PDF needs Qt's painter, so a QGuiApplication is made -- offscreen when
there is no display.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inference.audit import AuditLog
from inference.errors import LungLensError
from inference.hashing import pixel_sha256
from inference.presentation import present
from inference.worklist import WorklistRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="lunglens report",
        description="Analyse one study and write a PDF report and/or a DICOM Secondary Capture. "
        "Decision support, not a diagnosis.",
    )
    ap.add_argument("study", type=Path, help="a DICOM, PNG or JPEG chest X-ray")
    ap.add_argument("--pdf", type=Path, metavar="OUT.pdf", help="write the one-page PDF report here")
    ap.add_argument("--dicom-sc", type=Path, metavar="OUT.dcm", help="write a DICOM Secondary Capture of the film, heat-map and result here")
    ap.add_argument("--show-identifiers", action="store_true", help="print patient name, ID and file name in the PDF")
    ap.add_argument("--provider", default="auto", help="execution provider: auto (default), cpu, cuda, directml, coreml")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: one per core)")
    point = ap.add_mutually_exclusive_group()
    point.add_argument("--operating-point", default=None, help="an operating point of the model (default: the model's)")
    point.add_argument("--threshold", type=float, default=None, help="a custom decision threshold (probability 0..1)")
    ap.add_argument("--models-dir", type=Path, default=None, help=argparse.SUPPRESS)
    return ap


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


def _fail(message: str) -> int:
    print(f"lunglens report: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def main(argv: list[str]) -> int:
    """Run ``lunglens report`` with ``argv`` (the arguments after ``report``)."""
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for a usage error
        return int(exc.code or 0)
    if args.pdf is None and args.dicom_sc is None:
        ap.print_usage(sys.stderr)
        print("lunglens report: error: nothing to write: give --pdf OUT.pdf and/or --dicom-sc OUT.dcm", file=sys.stderr)
        return EXIT_USAGE
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print(f"lunglens report: error: --threshold must be between 0 and 1, got {args.threshold}", file=sys.stderr)
        return EXIT_USAGE
    for out in (args.pdf, args.dicom_sc):
        if out is not None and not out.parent.is_dir():
            return _fail(f"{out}: the folder {out.parent} does not exist")

    from inference.engine import Engine
    from inference.loaders import load_study
    from inference.overlay import render_picture

    try:
        study = load_study(args.study)
        engine = Engine.load(args.models_dir, provider=args.provider, threads=args.threads)
        prediction = engine.predict(study, threshold=args.threshold, operating_point=args.operating_point)
    except LungLensError as exc:
        return _fail(str(exc))
    except ValueError as exc:  # an unknown operating point, a bad --threads
        print(f"lunglens report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    digest = pixel_sha256(study)
    audit = AuditLog()
    audit.log_analysis(WorklistRecord.from_prediction(study, prediction, digest))
    words = present(prediction)
    print(f"{study.path.name}: {words.summary}")
    print(f"  operating point: {words.operating_point}")
    print(f"  site profile: {words.profile}")
    print(f"  {words.population}")
    for warning in words.warnings:
        print(f"  warning: {warning}")

    picture = render_picture(study, prediction)
    if args.pdf is not None:
        ensure_gui_application()
        from desktop.report_pdf import write_report_pdf

        try:
            write_report_pdf(args.pdf, study, prediction, picture=picture, show_identifiers=args.show_identifiers)
        except OSError as exc:
            return _fail(f"{args.pdf}: cannot write the PDF ({exc})")
        audit.log_export("report", "pdf", args.pdf, [digest], with_identifiers=args.show_identifiers)
        print(f"wrote {args.pdf}")
    if args.dicom_sc is not None:
        from inference.dicom_sc import write_secondary_capture

        try:
            write_secondary_capture(study, prediction, args.dicom_sc, picture)
        except OSError as exc:
            return _fail(f"{args.dicom_sc}: cannot write the DICOM file ({exc})")
        except (ValueError, TypeError, AttributeError) as exc:  # a source header highdicom refuses
            return _fail(f"{args.dicom_sc}: cannot build a Secondary Capture from {study.path.name} ({exc})")
        # The capture carries the source's Patient module: identifiers go with a DICOM source.
        audit.log_export(
            "secondary_capture", "dicom", args.dicom_sc, [digest],
            with_identifiers=study.metadata.source_format == "DICOM",
        )
        print(f"wrote {args.dicom_sc}")
    return EXIT_OK
