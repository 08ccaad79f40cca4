"""The ``lunglens`` command: headless subcommands without Qt, the GUI otherwise."""

from __future__ import annotations

import sys

HEADLESS_COMMANDS = {"classify"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HEADLESS_COMMANDS:
        from inference.cli import main as cli_main  # no Qt on this path

        return cli_main(args)
    from desktop.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
