"""``lunglens audit verify [PATH]``: check the audit log's chain (no Qt on this path).

Prints whether every line is still linked to the one before it (:mod:`inference.audit`),
or the first line where the chain breaks, and the SHA-256 of the last line -- note it
elsewhere, and a later check proves that nothing up to that line has changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .audit import AuditLog
from .commands import EXIT_FAILED, EXIT_OK, run_standalone

EPILOG = """\
exit status:
  0  every chained line is linked to the one before it (lines written before the log was
     chained are reported as unchained, not as broken)
  1  the chain is broken (the first broken line is named), or the log cannot be read
  2  usage error
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``lunglens audit``'s actions: ``verify`` (the only one so far)."""
    parser.description = "The audit log: every analysis and export, one chained JSON line each."
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check that no line was changed, removed or inserted",
                                description="Check the audit log's chain: each line carries the SHA-256 of the "
                                "line before it.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("path", nargs="?", type=Path, default=None, metavar="PATH",
                        help="the log to check (default: this user's, in the LungLens data folder)")


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.audit_cli audit verify ...``; ``argv`` starts with "audit"."""
    return run_standalone(sys.modules[__name__], "audit", list(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:  # noqa: ARG001 -- the subcommand interface
    """Verify the log and print what was found; the exit status says whether the chain holds."""
    log = AuditLog(args.path)
    try:
        if args.path is not None and not args.path.is_file():  # the user's own log has none until first use
            raise FileNotFoundError(2, "no such file")
        report = log.verify()
    except OSError as exc:
        print(f"lunglens audit: cannot read {log.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{log.path}: {report.summary()}")
    if report.head:
        print(f"SHA-256 of the last line (line {report.lines}): {report.head}")
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
