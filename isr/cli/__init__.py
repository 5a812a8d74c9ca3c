"""The `isr` command line: one sub-command per module, `main(argv)` for tests."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from isr import __version__
from isr.errors import IsrError

COMMANDS = ("serve", "build", "routes", "revalidate", "logs", "dev", "bench")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="isr", description="Incremental Static Regeneration for Python sites.")
    parser.add_argument("--version", action="version", version=f"isr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = _command_modules(argv)
    for module in modules.values():
        module.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args))
    except IsrError as exc:
        print(f"isr: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _command_modules(argv: list[str]) -> dict[str, ModuleType]:
    """The module of the command named, or of them all (for help and errors). A server
    process then does not hold what other commands import: file watching, progress bars
    and the load generator took about 3 MiB of every server's memory."""
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    return {name: importlib.import_module(f"isr.cli.{name}") for name in ((named,) if named in COMMANDS else COMMANDS)}
