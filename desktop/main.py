"""The ``lunglens`` command: one argparse parser with a subcommand per job.

``lunglens [PATHS...]`` opens the window (``open`` is the command when none is named:
argparse cannot tell a path from a command name, so a first argument that is not a command
name goes to the window). Each subcommand lives in its own module with ``add_arguments``
and ``run`` (:mod:`inference.commands`), and only the module that runs is imported: so
``classify``, ``calibrate`` and ``audit`` never import Qt, and ``lunglens --help`` lists
every command without loading any of them. ``--self-test`` and ``--screenshot`` keep
their old spellings.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from types import ModuleType

from inference import __version__
from inference.commands import stdout_reader_may_leave


# Each command and its line in `lunglens --help`.
COMMANDS: dict[str, str] = {
    "open": "open studies or folders in the window (the default: lunglens [PATHS...])",
    "classify": "classify studies without a window: a table, JSON lines, CSV, heat-map PNGs",
    "report": "write one study's PDF report and/or DICOM Secondary Capture",
    "calibrate": "fit a site profile on this site's labelled films",
    "audit": "check that the audit log has not been edited (lunglens audit verify)",
    "serve": "run as a DICOM node: receive films, analyse them, send SR results to the PACS",
    "self-test": "check this installation: model, samples, every DICOM codec, the window",
}

USAGE = """lunglens [-h] [--version] COMMAND [OPTIONS]
       lunglens [PATHS ...] [--screenshot OUT.png [--size WxH]]"""
DESCRIPTION = ("LungLens: offline chest X-ray pneumonia triage. Decision support, not a diagnostic device. "
               "Each command has its own --help.")
EPILOG = """\
without a command, lunglens opens the window: lunglens [PATHS...] [--screenshot OUT.png [--size WxH]]
(see lunglens open --help); lunglens --self-test is lunglens self-test.
exit status: 0 everything asked for was done, 1 something was tried and failed (a study, the
model, an output), 2 usage error; each command's --help says exactly when.
"""


def _module(name: str) -> ModuleType:
    """The module of command ``name``, imported now. Literal imports: PyInstaller bundles
    what it can see imported, and only the command that runs pays for its imports."""
    if name == "open":
        from desktop import app as module
    elif name == "classify":
        from inference import cli as module
    elif name == "report":
        from desktop import report_cli as module
    elif name == "calibrate":
        from inference import calibrate_cli as module
    elif name == "audit":
        from inference import audit_cli as module
    elif name == "serve":
        from inference import serve_cli as module
    elif name == "self-test":
        from desktop import selftest as module
    else:
        raise KeyError(name)
    return module


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    """The ``lunglens`` parser and the subparser of ``command``: only that command's options are
    defined (importing its module); the others are listed with their one-line summaries."""
    parser = argparse.ArgumentParser(prog="lunglens", usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"LungLens {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    chosen = None
    for name, summary in COMMANDS.items():
        sub = commands.add_parser(name, prog=f"lunglens {name}", help=summary, description=summary)
        if name == command:
            _module(name).add_arguments(sub)
            chosen = sub
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    # The GUI analyses batches in a spawned child process; a frozen build must let the
    # child run its own code instead of starting another app.
    multiprocessing.freeze_support()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        # The window -- or the self-test in its old spelling, `lunglens --self-test [OPTIONS]`.
        args = ["self-test", *(a for a in args if a != "--self-test")] if "--self-test" in args else ["open", *args]
    parser, sub = build_parser(args[0] if args[0] in COMMANDS else None)
    try:
        namespace, unknown = parser.parse_known_args(args)
        if unknown:  # said by the command's own parser, with its own usage line
            assert sub is not None
            sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # argparse: 0 after --help or --version, 2 for a usage error
        return int(exc.code or 0)
    assert sub is not None  # a command was named: -h and --version exit inside parse_args
    with stdout_reader_may_leave():
        return int(_module(namespace.command).run(namespace, sub))


if __name__ == "__main__":
    sys.exit(main())
