"""Real calls recorded through the gate in this process, on a ledger of either engine, for the CLI tests."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from server import Settings
from tests.conftest import call, connect
from tests.processes import WATCHDOG_S, host_env

__all__ = ["CALLS", "nothing_listening", "record", "without_psycopg"]

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "backup-restore"}),
    ("list_docs", {}),
    ("ssh", {"host": "pve01"}),
    ("read_inventory", {}),
]


def record(location: Path | str, calls: list[tuple[str, dict[str, Any]]] = CALLS, **settings: Any) -> None:
    """Make `calls` through a server of its own, in memory, on the ledger at `location`."""

    async def run() -> None:
        async with connect(Settings(ledger_path=location, **settings)) as client:
            for tool, arguments in calls:
                await call(client, tool, arguments)

    anyio.run(run)


@contextmanager
def nothing_listening() -> Iterator[int]:
    """A loopback port held bound but not listening, so a connection to it is refused at once."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def without_psycopg(ledger_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`planner-mcp ARGS` where the postgres extra is not installed: psycopg cannot be imported."""
    hidden = "import sys; sys.modules['psycopg'] = None; from server.cli.main import console; console()"
    return subprocess.run([sys.executable, "-c", hidden, *args], env=host_env(ledger_path, **env),
                          capture_output=True, text=True, timeout=WATCHDOG_S)  # fmt: skip
