"""What the ``lunglens`` subcommands share: exit statuses, argument types, and running one on
its own (``python -m inference.cli classify ...``, the tests) as ``lunglens`` runs it.

A subcommand is a module with ``add_arguments(parser)`` and ``run(args, parser) -> int``;
``desktop/main.py`` puts them under one argparse parser and imports only the one that runs,
so ``classify``, ``calibrate`` and ``audit`` never import Qt. No Qt and no ONNX Runtime here.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

EXIT_OK = 0  # everything asked for was done
EXIT_FAILED = 1  # a study, the model or an output failed (after everything else was tried)
EXIT_USAGE = 2  # the command line itself is wrong: nothing was attempted
EXIT_INTERRUPTED = 130  # Ctrl+C, as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM, as a shell reports it


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it stops the way Ctrl+C stops it."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt).

    Its default action ends the process on the spot, with outputs unflushed (a CSV cut in the
    middle of a row); raised as an exception it unwinds like Ctrl+C, closing every file whole.
    Only the main thread may set a handler: elsewhere the block runs unchanged.
    """
    def raise_terminated(signum: int, frame: object) -> None:  # noqa: ARG001 -- the handler signature
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _ReaderMayLeave:
    """Standard output that a reader may stop reading (``lunglens classify … | head``): once
    the pipe is closed, what is printed is dropped and the command does the rest of its work
    -- the worklist, the audit log, the CSV, the SR -- instead of dying half-way with a
    BrokenPipeError traceback. Output goes to the null device from then on, so that the
    interpreter's last flush finds a file to write to."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.reader_left = False

    def write(self, text: str) -> int:
        if not self.reader_left:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._left()
        return len(text)

    def flush(self) -> None:
        if not self.reader_left:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._left()

    def _left(self) -> None:
        self.reader_left = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file (a test's capture): nothing to redirect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def stdout_reader_may_leave() -> Iterator[None]:
    """Within the block, ``sys.stdout`` is a :class:`_ReaderMayLeave`."""
    original = sys.stdout
    guarded = _ReaderMayLeave(original)
    sys.stdout = guarded
    try:
        yield
    finally:
        guarded.flush()  # what is still buffered, while a closed pipe is still caught
        sys.stdout = original


def stopped(prog: str, stop: KeyboardInterrupt, detail: str = "") -> int:
    """Say on stderr how ``prog`` was stopped (Ctrl+C or SIGTERM, see :func:`terminate_as_interrupt`),
    ``detail`` after it, and return the status a shell gives that signal."""
    terminated = isinstance(stop, Terminated)
    print(f"{prog}: {'terminated' if terminated else 'interrupted'}{detail}", file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def parsed_number(text: str, kind: type[int] | type[float]) -> int | float:
    """``text`` as ``kind`` for an argparse type, or the error saying what it is not; each
    type then checks its own range."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a {'whole number' if kind is int else 'number'}: {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(parsed_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def probability(text: str) -> float:
    """An argparse type: a threshold above 0 and below 1 (at 0 every film is flagged, at 1
    none can be, and neither may read "0 %" or "100 %")."""
    value = parsed_number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 1: {text}")
    return value


def add_provider_arguments(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--provider`` (refused unless known: a typo must not silently run on the CPU) and ``--threads``."""
    from .providers import CHOICES  # ONNX Runtime: only for the commands that run the model

    parser.add_argument("--provider", default="auto", choices=["auto", *CHOICES],
                        help="execution provider (default: auto, the fastest that starts)")
    if threads:
        parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                            help="inference threads (default: one per core)")


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    """``--profile``: every command that analyses films decides with the same site profile."""
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="PROFILE.json",
        help="site profile (from `lunglens calibrate`) to calibrate and threshold with (default: the shipped one)",
    )


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--operating-point`` or ``--threshold``: ``classify``, ``report`` and ``serve`` decide
    alike (``classify`` had only ``--threshold``, so a batch at the balanced point carried no
    figures while its PDF and SR did)."""
    point = parser.add_mutually_exclusive_group()
    point.add_argument("--operating-point", default=None, metavar="NAME",
                       help="an operating point of the site profile, e.g. high_sensitivity or balanced "
                       "(default: the profile's default)")
    point.add_argument("--threshold", type=probability, default=None, metavar="T",
                       help="a custom review threshold on the probability (above 0, below 1), whose sensitivity and "
                       "specificity nobody measured")


def chosen_point(engine: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The :class:`~inference.decision.OperatingPoint` ``args`` ask for, or the exit status of
    the usage error for a name the profile does not have -- said before any study is read."""
    try:
        return engine.profile.operating_point(args.operating_point, args.threshold)
    except ValueError as exc:
        return usage_error(parser, str(exc))


def load_engine(args: argparse.Namespace, prog: str) -> Any:
    """The engine for ``args`` (``--profile``, ``--provider``, ``--threads``; ``--models-dir``
    where a command has it), or the exit status after saying on stderr why there is none: a
    profile that cannot be read or was made for another model is a usage error (nothing was
    analysed), a model that cannot be loaded a failure."""
    from .engine import Engine
    from .errors import LungLensError
    from .profile import ProfileError, SiteProfile

    try:
        profile = SiteProfile.load(args.profile) if args.profile is not None else None
    except ProfileError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return Engine.load(getattr(args, "models_dir", None), provider=args.provider,
                           threads=getattr(args, "threads", None), profile=profile)
    except ProfileError as exc:  # made for another model
        print(f"{prog}: {args.profile}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LungLensError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """Print the usage and ``message`` as argparse does, and return :data:`EXIT_USAGE`."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_standalone(command: ModuleType, name: str, argv: list[str]) -> int:
    """Run one subcommand module as ``lunglens NAME``; ``argv`` starts with NAME, as
    ``lunglens`` passes it. argparse's own exits become return values (0 for --help, 2)."""
    parser = argparse.ArgumentParser(prog=f"lunglens {name}")
    command.add_arguments(parser)
    if argv[:1] != [name]:
        return usage_error(parser, f"expected the command {name!r} first")
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(command.run(args, parser))
