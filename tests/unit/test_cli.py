"""The command line's entry: a process loads the command it runs, not the others."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Imported by other commands, or by a Redis cache only: a server process on the disk cache
# holding them would spend memory (about 10 MiB) that counts against its fixed overhead.
NOT_FOR_A_SERVER = ("redis", "watchfiles", "isr.cli.bench", "isr.cli.dev", "isr.bench")


def _loaded_by(argv: list[str], code: str = "") -> set[str]:
    script = (
        "import sys\nfrom isr.cli import _command_modules\n"
        f"_command_modules({argv!r})\n{code}\nprint(' '.join(sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_a_server_on_the_disk_cache_loads_neither_other_commands_nor_redis() -> None:
    loaded = _loaded_by(["serve", "site"], "import isr.app, isr.http.service")
    assert "isr.cli.serve" in loaded
    assert not {module for module in loaded if module.split(".")[0] in NOT_FOR_A_SERVER or module in NOT_FOR_A_SERVER}


@pytest.mark.parametrize("argv", [[], ["--help"], ["no-such-command"]])
def test_help_and_errors_load_every_command(argv: list[str]) -> None:
    assert {f"isr.cli.{name}" for name in ("serve", "build", "routes", "revalidate", "logs", "dev", "bench")} <= _loaded_by(argv)
