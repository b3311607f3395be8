"""The ``whyrec`` command line. Every user mistake ends in one line on stderr and exit code 2."""

from __future__ import annotations

import sys

from whyrec.cli.commands import COMMANDS
from whyrec.cli.output import configure_output
from whyrec.cli.parser import build_parser
from whyrec.errors import WhyrecError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_output(args.quiet)
    try:
        return COMMANDS[args.command](args)
    except WhyrecError as exc:
        print(f"whyrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("whyrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


__all__ = ["build_parser", "main"]
