"""The ``lunglens`` command: headless subcommands without Qt, the GUI otherwise."""

from __future__ import annotations

import multiprocessing
import sys


def main(argv: list[str] | None = None) -> int:
    # The GUI analyses batches in a spawned child process; a frozen build must let the
    # child run its own code instead of starting another app.
    multiprocessing.freeze_support()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "classify":
        from inference.cli import main as cli_main  # no Qt on this path

        return cli_main(args)
    if args and args[0] == "calibrate":
        from inference.calibrate_cli import main as calibrate_main  # no Qt on this path

        return calibrate_main(args)
    if args and args[0] == "report":
        from desktop.report_cli import main as report_main  # PDF needs Qt (QPdfWriter), offscreen

        return report_main(args[1:])
    if "--self-test" in args:
        from desktop.selftest import main as selftest_main

        return selftest_main([a for a in args if a != "--self-test"])
    from desktop.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
