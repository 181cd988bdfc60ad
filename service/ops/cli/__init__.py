"""``tsprov``: serve, migrate, callers, keys, audit; ``dev`` and ``sandbox`` for local runs.

``parser`` declares the subcommands, ``commands`` does their work, ``errors`` turns a
failure into one line.
"""

from __future__ import annotations

import sys

from service.ops.cli.errors import REPORTED, describe
from service.ops.cli.parser import build_parser

__all__ = ["build_parser", "describe", "main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except REPORTED as exc:
        print(f"tsprov: {describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
