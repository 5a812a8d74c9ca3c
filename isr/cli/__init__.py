"""The `isr` command line: one sub-command per module, `main(argv)` for tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from isr import __version__
from isr.cli import bench, build, dev, logs, revalidate, routes, serve
from isr.errors import IsrError

COMMANDS = {"serve": serve, "build": build, "routes": routes, "revalidate": revalidate, "logs": logs, "dev": dev, "bench": bench}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="isr", description="Incremental Static Regeneration for Python sites.")
    parser.add_argument("--version", action="version", version=f"isr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args))
    except IsrError as exc:
        print(f"isr: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
