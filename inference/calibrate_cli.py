"""``lunglens calibrate``: a clinic fits its own site profile on its own labelled films.

Figures and thresholds do not travel between hospitals, equipment and software versions, so
a site measures LungLens on films whose diagnosis it knows and sets its own calibration and
operating points -- offline, with the very code that made the shipped profile
(:mod:`inference.site_calibration`). The labels come from one source:

* folders named ``NORMAL``/``PNEUMONIA`` at any depth under each DIR;
* ``--labels CSV`` of ``path,label`` rows;
* ``--from-worklist``: the reader verdicts stored in the worklist ("unsure" left out) with the
  logits stored beside them, so the model is not run again (rows without a logit, from
  LungLens 1 or another model, are skipped and counted).

It writes the profile and, beside it, ``<stem>.roc.png`` and ``<stem>.reliability.png``, and
prints what the profile says and which films it says it of. Exit status (:data:`EPILOG`):
0 written; 1 some films could not be analysed (they are listed), or none could, the model
is broken, the worklist cannot be read or an output cannot be written; 2 usage error,
including labelled films that cannot support a calibration; 130 or 143 stopped by Ctrl+C or
SIGTERM, nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from .calibration import DEFAULT_TARGET, CalibrationDataError, check_counts
from .commands import (
    EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_provider_arguments, parsed_number, run_standalone, stopped,
    terminate_as_interrupt,
)
from .engine import Engine
from .errors import LungLensError, ModelError
from .plots import PlotPaths, plot_paths, profile_stem, write_plots
from .prediction import ModelInfo
from .decision import threshold_text
from .presentation import calibration_note, target_note
from .profile import FORMAT as PROFILE_FORMAT
from .profile import UNCALIBRATED, SiteProfile
from .site_calibration import (VERDICTS_SOURCE, Measured, WorklistFilms, calibrate, films_text, folders_source,
                               label_check_note, measure, verdict_films)
from .sitefilms import LABELS, LabelError, LabelledFilm, from_csv, from_folders
from .userdirs import worklist_path
from .worklist import Worklist

PROG = "lunglens calibrate"


EPILOG = """\
exit status:
  0  the profile and its plots were written
  1  written, but some films could not be analysed (they are listed); or none could be, the
     model could not be loaded, the worklist could not be read, or the profile or a plot
     could not be written
  2  usage error: the labelled films given one way too many or not at all, or films that
     cannot support a calibration (one class, fewer than 20 films of a class, unreadable
     labels, no labelled films), or an --out that is not a .json file or would overwrite
     something that is not a site profile; nothing was written
  130, 143  stopped by Ctrl+C or SIGTERM before the profile was written; nothing was written
"""


class UsageError(Exception):
    """A refusal the user can fix: printed as one line, exit status 2."""


class Failure(Exception):
    """Something that was tried and failed (the worklist, an output): one line, exit status 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lunglens calibrate``'s options (desktop/main.py and :func:`main`)."""
    parser.description = (
        "Fit a site profile (calibration and operating points) on this site's labelled chest "
        "X-rays. Labels come from NORMAL/PNEUMONIA folders under each DIR, a path,label CSV, or the "
        "reader verdicts in the worklist.")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dirs", nargs="*", type=Path, metavar="DIR",
                        help="folders holding NORMAL and PNEUMONIA folders (at any depth)")
    parser.add_argument("--out", type=Path, required=True, metavar="PROFILE.json", help="the profile to write")
    parser.add_argument("--name", default=None, help="the profile's name (default: the file's name)")
    parser.add_argument("--description", default=None, metavar="TEXT",
                        help="where the films come from, shown with every figure (never a patient identifier)")
    parser.add_argument("--target-sensitivity", type=_target, default=DEFAULT_TARGET, metavar="S",
                        help="sensitivity the high-sensitivity point must reach with 95 %% confidence "
                             f"(default {DEFAULT_TARGET:g})")
    parser.add_argument("--labels", type=Path, default=None, metavar="CSV", help="path,label rows instead of folders")
    parser.add_argument("--from-worklist", action="store_true",
                        help="use the reader verdicts stored in the worklist (no model run)")
    add_provider_arguments(parser, threads=False)
    parser.add_argument("--bootstrap", type=_resamples, default=1000, metavar="N",
                        help="bootstrap resamples for the 95 %% intervals (default 1000)")


def _target(text: str) -> float:
    value = parsed_number(text, float)
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0.5 and below 1: {text}")
    return value


def _resamples(text: str) -> int:
    value = int(parsed_number(text, int))
    if value < 100:
        raise argparse.ArgumentTypeError(f"at least 100 resamples are needed for a 95 % interval: {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.calibrate_cli calibrate ...``; ``argv`` starts with "calibrate", as ``lunglens`` passes it."""
    return run_standalone(sys.modules[__name__], "calibrate", list(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:  # noqa: ARG001 -- the subcommand interface
    """Run ``lunglens calibrate`` with parsed ``args``; returns the exit status (see :data:`EPILOG`)."""
    try:
        with terminate_as_interrupt():
            return _calibrate(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as stop:  # the profile is written whole or not at all (SiteProfile.save)
        return stopped(PROG, stop, "; no profile written")


def check_out(out: Path) -> None:
    """Refuse, before any film is analysed, an --out that would overwrite something that is not
    a site profile (a film, a folder) or that cannot be written: never throw away what a user
    keeps, and never make them wait for a run whose result cannot be kept."""
    if out.suffix.lower() != ".json":
        raise UsageError(f"--out {out}: a site profile is a .json file")
    plots = plot_paths(out)
    for path in (out, plots.roc, plots.reliability):
        if path.is_dir():
            raise UsageError(f"--out {out}: {path} is a folder")
    if out.exists():
        try:
            is_profile = json.loads(out.read_text(encoding="utf-8")).get("format") == PROFILE_FORMAT
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            is_profile = False
        if not is_profile:
            raise UsageError(f"--out {out}: the file exists and is not a LungLens site profile; not overwritten")
    folder = next((p for p in out.resolve().parents if p.exists()), None)
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise Failure(f"cannot write {out}: {folder} is not a folder this user can write to; nothing was analysed")


def _calibrate(args: argparse.Namespace) -> int:
    """Collect the labelled films, measure them, fit, write, summarize."""
    check_out(args.out)
    films = labelled_films(args)  # refusals before the model is even loaded
    try:
        engine = Engine.load(provider=args.provider, profile=UNCALIBRATED)
    except ModelError as exc:
        raise Failure(str(exc)) from None
    for warning in engine.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    skipped: Counter[str] = Counter()
    if films is None:
        from_list = worklist_films(engine.model_info)
        measured, skipped = from_list.measured, from_list.skipped
        if not measured.labels:
            raise UsageError(f"no usable reader verdicts in the worklist {worklist_path(create=False)} ({_counts_text(skipped)})")
        source = VERDICTS_SOURCE
    else:
        measured = measure(engine, films, progress=_progress if sys.stderr.isatty() else None)
        for error in measured.errors:
            print(f"skipped {error}", file=sys.stderr)
        for path, reasons in measured.outside.items():
            print(f"left out (not reliable: outside the model's intended use) {path}: {reasons}", file=sys.stderr)
        for path, original in measured.duplicates.items():
            print(f"left out (the same image as {original}) {path}", file=sys.stderr)
        if not measured.labels:
            raise Failure(f"none of the {len(films)} labelled films could be analysed; no profile written")
        source = f"labels from {args.labels.name}" if args.labels else folders_source(args.dirs)
    name = args.name or profile_stem(args.out)
    try:
        profile = calibrate(engine, measured, name=name, description=args.description or source,
                            target_sensitivity=args.target_sensitivity, n_boot=args.bootstrap)
    except CalibrationDataError as exc:
        left_out = f" ({measured.left_out()})" if measured.left_out() else ""
        raise UsageError(f"{exc}{left_out}; no profile written") from None
    try:
        profile.save(args.out)
        plots = write_plots(profile, args.out)
    except OSError as exc:
        raise Failure(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from None
    print("\n".join(summary_lines(profile, args.out, plots, measured, skipped, args.bootstrap)))
    return EXIT_FAILED if measured.errors else EXIT_OK


def labelled_films(args: argparse.Namespace) -> list[LabelledFilm] | None:
    """The films named by DIRs or ``--labels`` (None for ``--from-worklist``); refuses a source
    that is ambiguous, unreadable, empty, or already short of a class."""
    sources = [bool(args.dirs), args.labels is not None, args.from_worklist]
    if sum(sources) != 1:
        raise UsageError("give the labelled films one way: folders (DIR...), --labels CSV, or --from-worklist")
    if args.from_worklist:
        if not worklist_path(create=False).is_file():
            raise UsageError(f"no worklist at {worklist_path(create=False)}: analyse studies and give reader verdicts "
                             f"in the app first")
        return None
    try:
        films = from_csv(args.labels) if args.labels is not None else from_folders(args.dirs)
    except LabelError as exc:
        raise UsageError(str(exc)) from None
    if not films:
        where = ", ".join(str(d) for d in args.dirs)
        raise UsageError(f"no labelled films found under {where}: put them in folders named "
                         f"{' and '.join(LABELS)} (at any depth), or give --labels CSV")
    try:
        check_counts(np.asarray([f.label for f in films]))
    except CalibrationDataError as exc:
        raise UsageError(f"{exc}; no profile written") from None
    return films


def worklist_films(model: ModelInfo) -> WorklistFilms:
    """The worklist's reader verdicts on this model's results (see :func:`verdict_films`).
    Only read: another LungLens writing to it does not block this, and a list this cannot
    read is left as it is, whatever the reason."""
    try:
        with Worklist(read_only=True) as worklist:
            records = worklist.with_verdicts()
    except LungLensError as exc:
        raise Failure(str(exc)) from None
    return verdict_films(records, model)


def summary_lines(profile: SiteProfile, out: Path, plots: PlotPaths, measured: Measured,
                  skipped: Counter[str], n_boot: int) -> list[str]:
    """What was written, on which films, and every figure with its interval and its data."""
    m = profile.metrics
    method = profile.calibration.method
    cv = ", ".join(f"{k} {v:.3f}" for k, v in profile.cv_ece.items())
    lines = [
        f"Wrote {out} (profile {profile.name!r}, model {profile.model.name} {profile.model.version})",
        f"  plots: {plots.roc}, {plots.reliability}",
        f"Films: {profile.source}; {profile.n_groups} {'patients' if profile.grouping == 'patient' else 'films'} "
        f"for the bootstrap",
        f"Calibration: {method} (slope {profile.calibration.slope:.4f}, intercept {profile.calibration.intercept:.4f}), "
        f"chosen by cross-validated ECE ({cv})",
        f"AUC {m['auc'].plain()}",
        f"ECE {m['ece_before'].plain()} before calibration, {m['ece_after'].plain()} after",
        f"Operating points (target sensitivity {profile.target_sensitivity * 100:.0f} % at the 95 % lower bound):",
    ]
    for op in profile.operating_points.values():
        default = " (default)" if op.name == profile.default_operating_point else ""
        lines.append(f"  {op.display_name}{default}: threshold {threshold_text(op.threshold)}, "
                     f"sensitivity {op.sensitivity.percent()}, specificity {op.specificity.percent()}")
    if shortfall := target_note(profile):
        lines.append(f"  {shortfall}")
    if check := label_check_note(measured, profile):
        lines.append(f"  {check}")
    if tempered := calibration_note(profile):
        lines.append(tempered)
    lines.append(
        f"All figures are measured on the {len(measured.labels)} films above, the same the profile was fitted on: "
        f"95 % intervals by bootstrap over {profile.grouping}s ({n_boot} resamples). Expect somewhat lower "
        f"figures on new films."
    )
    if note := measured.resampled().note:
        lines.append(f"Note: {note}.")
    if measured.errors:
        lines.append(f"Skipped: {films_text(len(measured.errors))} could not be used (listed above, on standard error).")
    if measured.duplicates:
        lines.append(f"Left out: {films_text(len(measured.duplicates))} holding the same image as another film here "
                     f"(listed above, on standard error), each image counted once.")
    if measured.outside:
        lines.append(f"Left out: {films_text(len(measured.outside))} the input gate called not reliable, outside the "
                     f"model's intended use (listed above, on standard error): no threshold is applied to such films, so they do not "
                     f"set one. Check that they belong with these films.")
    if skipped:
        lines.append(f"Left out of the worklist: {_counts_text(skipped)}.")
    return lines


def _counts_text(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "no verdicts given"


def _progress(done: int, total: int) -> None:
    print(f"\ranalysed {done}/{total} films", end="\n" if done == total else "", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
