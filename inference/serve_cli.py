"""``lunglens serve``: LungLens as a DICOM node on the clinic LAN, without a window (no Qt).

Films come in by C-STORE (:mod:`inference.dicom_node`) or through a hot folder
(:mod:`inference.hot_folder`); each is analysed by the same code as ``lunglens classify``
into the worklist and the audit log (:mod:`inference.node_analysis`); with ``--send-to``,
its SR -- and for an in-scope film at or above the threshold the overlay's Secondary
Capture -- wait in a persistent outbox until the PACS has them (:mod:`inference.outbox`).
SIGTERM or Ctrl+C stop it within seconds: the port closes, the film being analysed is
finished, the others are parked for the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from .commands import (EXIT_FAILED, EXIT_OK, add_decision_arguments, add_profile_argument, add_provider_arguments,
                       chosen_point, load_engine, usage_error)
from .dicom_node import DEFAULT_AET, DEFAULT_PORT, BindRefused, DicomNode, NodeConfig, NodeFolders, check_bind
from .outbox import Backoff, Destination, DestinationError

log = logging.getLogger("lunglens.serve")
PREFIX = "lunglens serve: "


def stamp(at: float | None = None) -> str:
    """Local time with its UTC offset, "2026-12-02 21:10:46+0100", which every line the node
    writes starts with: an IT person reading a redirected log after a night's outage needs to
    know when a send failed, not only that it did. (From datetime: time.strftime's %z gives the
    zone's name on Windows.)"""
    when = datetime.now() if at is None else datetime.fromtimestamp(at)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


class _Stamped(logging.Formatter):
    """The log's lines, stamped as :func:`say` stamps the status lines."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 -- logging's name
        return stamp(record.created)


def say(text: str, file: TextIO | None = None) -> None:
    """One status line, stamped as the log's lines are."""
    print(f"{stamp()} {PREFIX}{text}", file=file or sys.stdout, flush=True)


def message_of(line: str) -> str:
    """What one of the node's lines says, without its time and prefix (the window reads them);
    a line not of that form (a library's warning) as it is."""
    _, found, message = line.partition(PREFIX)
    return message if found else line


EPILOG = """\
what it sends (with --send-to), for every DICOM film received or found in the hot folder:
  SR  a DICOM Comprehensive SR (TID 1500 measurement report) in the film's study: the
      probability, the result (above/below the review threshold, or not reliable), the
      threshold and operating point, the site profile (name, SHA-256), the model (name,
      version, SHA-256), whether the film is within the model's intended use and why not,
      the operating point's figures and their source, the validated population, every
      warning, and a reference to the film. It carries the film's Patient and Study modules.
  SC  for in-scope films at or above the threshold: the Secondary Capture of the heat-map
      with the result burned in (as lunglens report --dicom-sc), same study.
Both wait in a persistent outbox in the data folder until the PACS has stored them.

exit status:
  0  stopped by SIGTERM or Ctrl+C
  1  the model could not be loaded, or the port could not be opened
  2  usage error: a LAN --bind without --allow, a bad --send-to, a missing --hot-folder,
     a --profile that cannot be read or was made for another model, an --operating-point
     it does not have
"""


def _aet(text: str) -> str:
    """An argparse type: an AE title (1-16 printable characters, no backslash)."""
    value = text.strip()
    if not 0 < len(value) <= 16 or not value.isprintable() or "\\" in value:
        raise argparse.ArgumentTypeError(f"not an AE title (1 to 16 characters): {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {text}")
    return value


def _destination(text: str) -> Destination:
    try:
        return Destination.parse(text)
    except DestinationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _more_than_0(unit: str) -> Callable[[str], float]:
    """An option's parser for a number of ``unit`` above 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
        return value

    return parse


_seconds, _days = _more_than_0("seconds"), _more_than_0("days")
EXPIRY_INTERVAL_S = 3600.0  # how often --keep-received looks for films to delete


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lunglens serve``'s options (desktop/main.py)."""
    parser.description = ("Run LungLens as a DICOM node: receive chest films by C-STORE (and/or from a hot "
                          "folder), analyse each into the worklist and the audit log, and send the results "
                          "to the PACS. Decision support, not a diagnosis.")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1: this PC only; another one needs --allow)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"DICOM port (default {DEFAULT_PORT}; 0: any free port, printed at start)")
    parser.add_argument("--aet", type=_aet, default=DEFAULT_AET, help=f"this node's AE title (default {DEFAULT_AET})")
    parser.add_argument("--allow", type=_aet, nargs="+", action="extend", default=[], metavar="AET",
                        help="calling AE titles allowed to connect (required with a --bind other than loopback)")
    parser.add_argument("--send-to", type=_destination, default=None, metavar="AET@HOST:PORT",
                        help="send each result's SR (and SC) here by C-STORE")
    parser.add_argument("--hot-folder", type=Path, default=None, metavar="DIR",
                        help="also analyse every film that appears in DIR (left untouched unless --move-processed)")
    parser.add_argument("--move-processed", type=Path, default=None, metavar="DIR",
                        help="move each hot-folder file, once analysed, to the same relative place under DIR "
                             "(outside the hot folder)")
    parser.add_argument("--retry-max", type=_seconds, default=300.0, metavar="SECONDS",
                        help="longest wait between two attempts to send to a PACS that is down (default 300)")
    parser.add_argument("--keep-received", type=_days, default=None, metavar="DAYS",
                        help="delete the films received over DICOM once analysed and older than DAYS (checked at "
                             "start and hourly; default: keep them)")
    parser.add_argument("--settle", type=_seconds, default=2.0, metavar="SECONDS",
                        help="a hot-folder file is taken once unchanged for this long (default 2)")
    parser.add_argument("--no-listen", action="store_true", help="no DICOM port: the hot folder and the outbox only")
    add_provider_arguments(parser)
    add_profile_argument(parser)
    add_decision_arguments(parser)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``lunglens serve`` until SIGTERM/SIGINT; returns the exit status (see :data:`EPILOG`)."""
    try:
        check_bind(args.bind, frozenset(args.allow))
    except BindRefused as exc:
        return usage_error(parser, str(exc))
    if args.hot_folder is not None and not args.hot_folder.is_dir():
        return usage_error(parser, f"--hot-folder {args.hot_folder} is not a folder")
    if args.move_processed is not None:
        if args.hot_folder is None:
            return usage_error(parser, "--move-processed needs --hot-folder")
        hot_root, moved = args.hot_folder.resolve(), args.move_processed.resolve()
        if moved == hot_root or hot_root in moved.parents:
            return usage_error(parser, f"--move-processed {args.move_processed} is inside the hot folder: "
                                       "moved files would be analysed again")
    if args.no_listen and args.hot_folder is None:
        return usage_error(parser, "--no-listen needs --hot-folder: there would be nothing to analyse")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Stamped(f"%(asctime)s {PREFIX}%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # its own chatter; we say what matters
    logging.getLogger("highdicom").setLevel(logging.WARNING)

    from .hot_folder import ANALYSED, UNREADABLE, HotFolder
    from .node_analysis import Analyser, Job, audit_delivery
    from .outbox import Outbox
    from .presentation import point_text
    from .result_store import ResultStore
    from .userdirs import worklist_path

    stop = threading.Event()  # set by the main thread once a signal has asked (the threads wait on it)
    asked: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only a note: stop.set() here could deadlock on the lock the main thread holds inside
        # stop.wait() when the signal comes in (Event's lock is not reentrant); a SIGTERM left
        # the node running for the 30 s a CI test waited.
        asked.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        engine = load_engine(args, "lunglens serve")
        if isinstance(engine, int):
            return engine
        point = chosen_point(engine, args, parser)
        if isinstance(point, int):
            return point
        for warning in engine.warnings:
            log.warning("%s", warning)
        folders = NodeFolders.default()
        if problem := folders.unwritable():
            log.error("cannot keep received films in %s (%s): the node did not start", folders.root, problem)
            return EXIT_FAILED
        said: set[str] = set()

        def warn_once(reason: str) -> None:  # the store would say it again at every film
            if reason not in said:
                said.add(reason)
                log.warning("%s", reason)

        results = ResultStore(worklist_path(create=False), None, warn_once)
        outbox = None
        if args.send_to is not None:
            outbox = Outbox(folders.outbox, args.send_to, calling_aet=args.aet,
                            backoff=Backoff(first=min(5.0, args.retry_max), maximum=args.retry_max),
                            on_sent=audit_delivery(results.audit, args.send_to))
        analyser = Analyser(engine, results, outbox, threshold=args.threshold, operating_point=args.operating_point)
        say(f"deciding with site profile {engine.profile.name!r}, {point_text(point)}")
        threads: list[threading.Thread] = []
        node = None
        if not args.no_listen:
            node = DicomNode(NodeConfig(args.bind, args.port, args.aet, frozenset(args.allow)), folders,
                             lambda film, marker: analyser.submit(Job(film, "dicom", marker)))
            try:
                host, port = node.start()
            except OSError as exc:
                say(f"cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}", sys.stderr)
                return EXIT_FAILED
            allowed = ", ".join(sorted(args.allow)) or "any (loopback only)"
            say(f"listening on {host}:{port} as {args.aet}; calling AE titles allowed: {allowed}")
        for film, marker in folders.parked():
            log.info("analysing %s, received before the last stop", film.name)
            analyser.submit(Job(film, "dicom", marker))
        analyser.start()
        if outbox is not None:
            say(f"sending results to {args.send_to} ({len(outbox)} waiting in the outbox)")
            threads.append(threading.Thread(target=outbox.run, args=(stop,), name="lunglens-outbox", daemon=True))
        if args.hot_folder is not None:
            hot = HotFolder(args.hot_folder, lambda path, done: analyser.submit(
                Job(path, "hot-folder", done=lambda result: done(ANALYSED if result.ok else UNREADABLE))),
                settle=args.settle,
                poll=min(1.0, args.settle / 2), move_to=args.move_processed)
            threads.append(threading.Thread(target=hot.run, args=(stop,), name="lunglens-hot-folder", daemon=True))
            say(f"watching {args.hot_folder}")
        for thread in threads:
            thread.start()
        say("ready")
        next_expiry = 0.0
        while not asked:
            time.sleep(0.5)
            if args.keep_received is not None and time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + EXPIRY_INTERVAL_S
                if removed := folders.expire(args.keep_received):
                    log.info("deleted %d received film%s kept over %g days (--keep-received)", removed,
                             "" if removed == 1 else "s", args.keep_received)
        stop.set()
        say("stopping")
        if node is not None:
            node.stop()
        if outbox is not None:
            outbox.wake()
        finished = analyser.stop(timeout=6.0)  # a film still decoding after that stays parked
        for thread in threads:  # a send cut short is sent again at the next start (same SOP Instance UID)
            thread.join(timeout=3.0)
        parked = len(folders.parked())
        waiting = len(outbox) if outbox is not None else 0
        say(f"stopped ({analyser.analysed} analysed, {parked} parked for the next start, "
            f"{waiting} waiting in the outbox){'' if finished else '; the analysis did not end in time'}")
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

