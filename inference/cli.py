"""``lunglens classify``: classify studies headlessly (no Qt is imported on this path).

Every input gets exactly one result, in input order, as soon as it is known; one bad file
never stops the batch. Exit status (:data:`EPILOG`, shown by ``--help``): 0 all succeeded,
1 any study or any output failed (after all were tried), 2 usage error only. Results are
worded by :mod:`inference.decision`: above or below the review threshold, never "likely";
a result the input gate flags is "Not reliable" (:mod:`inference.presentation`), never either.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from . import decision, heatmap
from . import providers as prov
from .commands import (EXIT_FAILED, EXIT_OK, add_decision_arguments, add_profile_argument, add_provider_arguments,
                       chosen_point, load_engine, run_standalone, stopped, terminate_as_interrupt, usage_error)
from .decision import OperatingPoint
from .engine import Engine
from .export import CsvStream, error_row, record_row
from .imageops import encode_png
from .loaders import iter_study_files, load_study
from .overlay import ascii_text, burn_in, render_picture
from .pipeline import Analysed, BatchPipeline
from .prediction import Prediction
from .presentation import NOT_RELIABLE, figures_text, present, source_text, tone
from .result_store import ResultStore
from .study import Study
from .thumbnail import make_thumbnail
from .userdirs import open_private, worklist_path, write_private
from .worklist import WorklistRecord

log = logging.getLogger("lunglens")

PREFETCH = 3  # studies decoded ahead of inference: keeps both cores busy, memory bounded
# How long a worklist another process keeps locked is waited for before the batch goes on
# without it: a command must not sit silent for the app's full busy timeout.
WORKLIST_OPEN_TIMEOUT_S = 2.0


@dataclass
class Outcome:
    """One input's result: a prediction, or the error a person can act on."""

    path: Path
    prediction: Prediction | None = None
    error: str = ""
    read_ms: float = 0.0
    cam_path: Path | None = None  # the heat-map PNG written for it, if any
    extra_warnings: list[str] = field(default_factory=list)
    study: Study | None = field(default=None, repr=False)  # kept only until its overlay is written
    fingerprint: str = ""  # inference.hashing.pixel_sha256 of the study's pixels
    stored: WorklistRecord | None = field(default=None, repr=False)  # the worklist's answer, when cached
    unreadable: bool = False  # failed because the file could not be read (kept as such in the worklist)

    @property
    def cached(self) -> bool:
        """Answered from the worklist: no inference ran for it in this run."""
        return self.stored is not None

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    def to_json(self, cam_grid: bool = False) -> dict[str, Any]:
        """The JSON object printed for this input; ``cam_grid`` adds the native attribution map."""
        if self.prediction is None:
            return {"path": str(self.path), "ok": False, "error": self.error}
        p = self.prediction
        record: dict[str, Any] = {
            "path": str(self.path),
            "ok": True,
            "probability": p.probability,
            "label": p.label,
            # What a reader acts on: the label does not apply to an out-of-scope film.
            "result": tone(p.probability, p.threshold, p.in_scope).value,
            "threshold": p.threshold,
            "operating_point": p.operating_point,
            "warnings": [*p.warnings, *heatmap.warnings(p), *self.extra_warnings],
            "in_scope": p.in_scope,
            "scope_reasons": list(p.scope_reasons),
            "provider": p.provider,
            "model": {"name": p.model.name, "version": p.model.version, "sha256": p.model.sha256},
            "profile": {"name": p.profile.name, "sha256": p.profile.sha256} if p.profile else None,
            # A cached result's stored timings are those of the run that made it, not this one's.
            "timings_ms": {"read": round(self.read_ms, 3), **({} if self.cached else p.timings_ms)},
            "cached": self.cached,
        }
        record["cam"] = str(self.cam_path) if self.cam_path is not None else None
        if cam_grid and p.attribution is not None:
            # The native map in logit units, row-major, top row first (inference.attribution).
            record["cam_grid"] = p.attribution.to_dict()["grid"]
        return record

    def record(self) -> WorklistRecord | None:
        """The stored form of a success (what the worklist, the audit log and the CSV export
        read), at the operating point of this run."""
        if self.prediction is None or self.study is None:
            return None
        if self.stored is not None:
            return self.stored.at(self.prediction.operating)
        return WorklistRecord.from_prediction(self.study, self.prediction, self.fingerprint)


EPILOG = """\
exit status:
  0  every study was classified and every output asked for was written
  1  a study could not be classified (the batch still finishes), a folder given as PATH
     holds no study, an output could not be written (the --csv file, a --cam-dir PNG), or
     the model could not be loaded
  2  usage error: an unknown option or value, no PATH, an option without the one it needs,
     a --profile that cannot be read or was made for another model; nothing was analysed
  130, 143  interrupted by Ctrl+C or SIGTERM: what was printed is in the worklist, and the
     --csv file ends with whole rows
An output that cannot be opened at all (--csv in a missing folder, --cam-dir where a file
is) stops the run before any study is analysed, with status 1. An audit log or a worklist
that cannot be written (locked by another program, read-only) is a warning, not a failure.

worklist: every result is committed to LungLens's worklist before it is printed, and a
study whose pixels this model already analysed under this site profile is answered from it
("cached": true in the JSON, no inference), as the app does; a rerun after an interrupted
batch redoes only what was not printed. --no-worklist neither reads nor writes it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lunglens classify``'s options (desktop/main.py and :func:`main`)."""
    parser.description = ("Classify chest X-rays (PNG, JPEG, BMP, TIFF, DICOM) for pneumonia, without a window. "
                          "Decision support only, not a diagnosis.")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image or DICOM files, or folders")
    parser.add_argument("--recursive", "-r", action="store_true", help="walk folders recursively")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input, as each finishes")
    add_provider_arguments(parser)
    parser.add_argument(
        "--cam-dir", type=Path, default=None, metavar="DIR",
        help="write heat-map PNGs here, for in-scope results at or above the threshold (see --cam-all)",
    )
    parser.add_argument("--cam-all", action="store_true", help="with --cam-dir: write a PNG for every result "
                        "(muted heat-map below the threshold or out of scope)")
    parser.add_argument("--cam-grid", action="store_true", help="with --json: add cam_grid, the native "
                        "attribution map in logit units (rows top first)")
    add_decision_arguments(parser)
    add_profile_argument(parser)
    parser.add_argument("--csv", type=Path, default=None, metavar="OUT.csv", help="also write one CSV row per input")
    parser.add_argument("--no-worklist", action="store_true", help="neither answer from nor store in the worklist "
                        "(results are still audited)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log the model and execution provider used to stderr")


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.cli classify ...``; ``argv`` starts with "classify", as ``lunglens`` passes it."""
    return run_standalone(sys.modules[__name__], "classify", list(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``lunglens classify`` with parsed ``args``; returns the exit status (see :data:`EPILOG`)."""
    if args.cam_all and args.cam_dir is None:
        return usage_error(parser, "--cam-all needs --cam-dir")
    if args.cam_grid and not args.json:
        return usage_error(parser, "--cam-grid adds a field to the JSON output; use it with --json")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="lunglens: %(message)s", stream=sys.stderr
    )

    started = time.perf_counter()
    engine = load_engine(args, "lunglens classify")
    if isinstance(engine, int):
        return engine
    point = chosen_point(engine, args, parser)
    if isinstance(point, int):
        return point
    try:
        with terminate_as_interrupt(), ExitStack() as stack:
            try:
                # utf-8-sig: the same bytes as the app's worklist export, which Excel opens correctly.
                csv_file = (stack.enter_context(open_private(args.csv, encoding="utf-8-sig", newline=""))
                            if args.csv else None)
                if args.cam_dir is not None:
                    args.cam_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a valid option whose output cannot be written: nothing analysed in vain
                print(f"lunglens classify: cannot write output: {exc}", file=sys.stderr)
                return EXIT_FAILED
            counts = classify_inputs(args, engine, point, csv_file)
    except KeyboardInterrupt as stop:
        return stopped("lunglens classify", stop)
    if not args.json:
        Table.summary(counts, engine, point, time.perf_counter() - started, sys.stdout)
    return EXIT_FAILED if counts["failed"] or counts["outputs_failed"] else EXIT_OK


def classify_inputs(args: argparse.Namespace, engine: Engine, point: OperatingPoint,
                    csv_file: IO[str] | None) -> dict[str, int]:
    """Classify every input, emitting each result as it comes; return the counts. An output
    that fails (a heat-map PNG, the CSV) is counted in ``outputs_failed`` and said, and the
    batch goes on."""
    if not args.json:
        for warning in engine.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    inputs = collect_inputs(args.paths, args.recursive)
    said: set[str] = set()

    def warn_once(reason: str) -> None:  # the store says what it could not keep at every result
        if reason not in said:
            said.add(reason)
            print(f"warning: {reason}", file=sys.stderr, flush=True)

    store = ResultStore(None if args.no_worklist else worklist_path(create=False), None, warn_once,
                        open_timeout=WORKLIST_OPEN_TIMEOUT_S)
    table = None if args.json else Table(inputs, sys.stdout, shown_once=engine.warnings)
    emitter = _Emitter(args, csv_file, store, table)
    try:
        # The pipeline decodes ahead and analyses on its own threads; this one keeps each result
        # (audit line, worklist commit) and prints it, in input order, while the next is analysed.
        for outcome in classify_all(engine, inputs, point, store):
            emitter.emit(outcome)
    finally:
        store.close()
    return emitter.counts


def classify_all(engine: Engine, inputs: list[Path], point: OperatingPoint,
                 store: ResultStore) -> Iterator[Outcome]:
    """Yield one outcome per input, in order, from the shared batch pipeline
    (:class:`inference.pipeline.BatchPipeline`); a study the worklist already knows is answered
    from it, read at this run's operating point."""
    outcomes = _OutcomeQueue(inputs)
    pipeline = BatchPipeline(lambda: engine, outcomes, load_study, loader_threads=engine.threads.decoders,
                             lookahead=PREFETCH, memory=store)
    pipeline.operating = point
    try:
        pipeline.submit(enumerate(inputs))
        for _ in inputs:
            yield outcomes.get(pipeline)
    finally:
        outcomes.closed.set()  # a consumer that stopped early (an interrupt) must not block the pipeline
        pipeline.shutdown(timeout=2.0)


class _OutcomeQueue:
    """The CLI's PipelineSink: each settled study becomes an :class:`Outcome`, handed to the
    printing thread through a short queue (back-pressure: studies hold their pixels until printed)."""

    def __init__(self, inputs: list[Path]) -> None:
        self._inputs = inputs
        self._queue: queue.Queue[Outcome] = queue.Queue(maxsize=PREFETCH)
        self.closed = threading.Event()

    def get(self, pipeline: BatchPipeline) -> Outcome:
        """The next outcome in input order (the pipeline settles every input exactly once)."""
        while True:
            try:
                return self._queue.get(timeout=0.5)
            except queue.Empty:
                if not pipeline.alive:
                    raise RuntimeError("the batch pipeline stopped before every input was settled") from None

    def _put(self, outcome: Outcome) -> None:
        while not self.closed.is_set():
            try:
                self._queue.put(outcome, timeout=0.1)
                return
            except queue.Full:
                continue

    def analysed(self, r: Analysed) -> None:
        self._put(Outcome(self._inputs[r.key], prediction=r.prediction, read_ms=r.read_ms, study=r.study,
                          fingerprint=r.fingerprint, stored=r.stored))

    def failed(self, key: int, reason: str, unreadable: Path | None = None) -> None:
        self._put(Outcome(self._inputs[key], error=reason, unreadable=unreadable is not None))

    def cancelled(self, key: int) -> None:  # only at shutdown, when nothing reads any more
        pass

    def engine_ready(self, engine: Any) -> None:
        pass

    def engine_failed(self, reason: str) -> None:  # the engine is loaded before the pipeline starts
        pass

    def started(self, key: int, stage: str) -> None:
        pass

    def loaded(self, key: int, study: Study) -> None:
        pass


class _Emitter:
    """Keeps, counts and prints each outcome, in input order, on the command's own thread."""

    def __init__(self, args: argparse.Namespace, csv_file: IO[str] | None, store: ResultStore,
                 table: Table | None) -> None:
        self.args = args
        self.store = store
        self.table = table
        self.csv_out = CsvStream(csv_file) if csv_file else None
        self.counts = {"studies": 0, "above": 0, "unreliable": 0, "failed": 0, "outputs_failed": 0}
        self.cam_names: set[str] = set()

    def emit(self, outcome: Outcome) -> None:
        args, counts = self.args, self.counts
        if outcome.prediction is not None and args.cam_dir is not None and (
                args.cam_all or heatmap.applies(outcome.prediction)):
            counts["outputs_failed"] += not _write_cam(outcome, args.cam_dir, self.cam_names)
        record = outcome.record()
        # Kept before it is printed: a rerun after an interrupt answers it from the worklist.
        if outcome.stored is not None and outcome.study is not None and outcome.prediction is not None:
            self.store.reuse(outcome.path, outcome.study.metadata, outcome.stored, outcome.prediction, None)
        elif record is not None:
            if self.store.worklist is not None:  # the window lists it later without reading the file again
                record = replace(record, thumbnail=make_thumbnail(outcome.study))
            self.store.keep(record)
        elif outcome.unreadable:  # the window lists it as failed until it is analysed
            self.store.keep_failure(outcome.path, outcome.error)
        outcome.study = None
        counts["studies"] += 1
        counts["failed"] += not outcome.ok
        if outcome.prediction is not None:  # a result the gate flags is never called above or below
            counts["unreliable"] += not outcome.prediction.in_scope
            counts["above"] += outcome.prediction.in_scope and outcome.prediction.is_positive
        if self.table is None:
            print(json.dumps(outcome.to_json(cam_grid=args.cam_grid)), flush=True)
        else:
            self.table.row(outcome)
        if self.csv_out is not None:
            try:
                self.csv_out.write(record_row(record) if record is not None else error_row(outcome.path, outcome.error))
            except OSError as exc:  # e.g. the disk filled up: the results still go to the screen
                print(f"warning: {args.csv}: no further CSV rows are written: {exc}", file=sys.stderr)
                self.csv_out = None
                counts["outputs_failed"] += 1


def collect_inputs(paths: list[str], recursive: bool) -> list[Path]:
    """The files to classify, argument by argument so results follow the command line's
    order. A missing path, or a folder holding no study, is kept: loading it reports the
    error under its name and fails the run (exit 1), as a wildcard matching nothing does, so a
    script never reads "all ok" from a run that classified nothing it was pointed at."""
    out: list[Path] = []
    for arg in _expand_wildcards(paths):
        found = list(iter_study_files([arg], recursive=recursive))
        if not found and Path(arg).is_dir():
            hint = "" if recursive else " (use --recursive for subfolders)"
            print(f"lunglens classify: no image or DICOM files in {arg}{hint}", file=sys.stderr)
            found = [Path(arg)]
        out.extend(found)
    return out


def _expand_wildcards(paths: list[str]) -> list[str]:
    """Expand ``*.dcm`` ourselves: Windows shells pass wildcards through unexpanded. A pattern
    that matches nothing stays as given, so it is reported as not found."""
    out: list[str] = []
    for arg in paths:
        if any(c in arg for c in "*?[") and not Path(arg).exists():
            out.extend(sorted(glob.glob(arg)) or [arg])
        else:
            out.append(arg)
    return out


def _write_cam(outcome: Outcome, cam_dir: Path, used: set[str]) -> bool:
    """Write ``<stem>_cam.png`` (``<stem>_2_cam.png``... when names collide in this run): the
    film with its heat-map as the window draws it (muted where it does not apply), and below it
    the result and what the map means, so the picture never travels without its words. False
    (and a warning on the result) when it could not be written."""
    assert outcome.prediction is not None and outcome.study is not None
    stem, n = outcome.path.stem, 1
    name = f"{stem}_cam.png"
    while name.lower() in used:
        n += 1
        name = f"{stem}_{n}_cam.png"
    used.add(name.lower())
    picture = render_picture(outcome.study, outcome.prediction, shown=True)
    rgb = burn_in(picture.rgb, [ascii_text(present(outcome.prediction).summary), ascii_text(picture.caption)])
    target = cam_dir / name
    try:
        write_private(target, encode_png(rgb))
    except OSError as exc:
        outcome.extra_warnings.append(f"heat-map not written to {target}: {exc}")
        return False
    outcome.cam_path = target
    return True


def _one_line(text: object) -> str:
    """A file name as one table row: a newline in it (a legal name) broke the row in two."""
    return str(text).replace("\n", "\\n").replace("\r", "\\r")


def _sentence_end(note: str) -> str:
    """Notes are sentences, each ended once ("detail may be lost.; Patient age ..." read badly)."""
    return note if note.endswith((".", "!", "?")) else note + "."


_RESULT_WIDTH = len(decision.verdict_text(0.5, 0.125))  # "Above the review threshold (12.5 %)"


class Table:
    """The human-readable output: aligned rows printed as results arrive, then a summary."""

    def __init__(self, inputs: list[Path], out: IO[str], shown_once: list[str]) -> None:
        self.out = out
        self.shown_once = set(shown_once)  # engine warnings, printed once above the table
        self.width = max([len("FILE"), *(len(_one_line(p)) for p in inputs)])
        print(f"{'FILE':<{self.width}}  {'P(PNEU)':>7}  {'RESULT':<{_RESULT_WIDTH}}  NOTES", file=out, flush=True)

    def row(self, o: Outcome) -> None:
        if o.prediction is None:
            line = f"{_one_line(o.path):<{self.width}}  {'-':>7}  {'FAILED':<{_RESULT_WIDTH}}  {_one_line(o.error)}"
        else:
            p = o.prediction
            notes = [w for w in [*p.warnings, *heatmap.warnings(p), *o.extra_warnings] if w not in self.shown_once]
            if not p.in_scope:
                notes.insert(0, "OUT OF SCOPE, result not reliable: " + "; ".join(p.scope_reasons))
            result = decision.verdict_text(p.probability, p.threshold) if p.in_scope else NOT_RELIABLE
            line = (
                f"{_one_line(o.path):<{self.width}}  "
                f"{decision.probability_text(p.probability, p.threshold if p.in_scope else None):>7}  "
                f"{result:<{_RESULT_WIDTH}}  " + " ".join(_sentence_end(n) for n in notes)
            )
        print(line.rstrip(), file=self.out, flush=True)

    @staticmethod
    def summary(counts: dict[str, int], engine: Engine, op: OperatingPoint, seconds: float,
                out: IO[str]) -> None:
        """Counts, then the operating point with the figures it was measured at and their source."""
        m, profile = engine.manifest, engine.profile
        print(
            f"{counts['studies']} studies: {counts['above']} above the review threshold, "
            f"{counts['unreliable']} not reliable, {counts['failed']} failed, in {seconds:.1f} s "
            f"({prov.friendly_name(engine.provider)}, model {m.name} {m.version})",
            file=out,
            flush=True,
        )
        figures = (f"{figures_text(op)} — {source_text(op, profile.source)}" if op.sensitivity and op.specificity
                   else "its sensitivity and specificity have not been measured")
        print(f"Review threshold {decision.threshold_text(op.threshold)} ({op.display_name} operating point, "
              f"site profile {profile.name!r}); {figures}", file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
