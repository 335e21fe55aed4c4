"""`planner-mcp` as a separate process, started the one way the tests start it.

A host starts the server with a near-empty environment and talks to it over pipes; these helpers do the
same, with this interpreter (so the editable install under test), and every wait bounded: a watchdog kills a
process that outlives its test's patience, which ends any read still waiting on its pipes.
"""

import contextlib
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters

__all__ = [
    "HANDSHAKE", "WATCHDOG_S", "host_env", "on_a_terminal", "run_cli", "run_server", "server_command", "server_process",
    "stdio_params",
]  # fmt: skip

HANDSHAKE: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "host", "version": "1"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]
"""What a host sends first on stdio, before its first request (id 2 onwards)."""

WATCHDOG_S = 60.0
"""How long a server process may live in a test before it is killed."""


def server_command(*args: str) -> list[str]:
    """`planner-mcp ARGS` as a command line: `python -m server ARGS`, with this interpreter."""
    return [sys.executable, "-m", "server", *args]


def host_env(ledger_path: Path, **extra: str) -> dict[str, str]:
    """The near-empty environment a host starts a server with, plus the ledger under test."""
    return {"PLANNER_MCP_LEDGER": str(ledger_path), "PATH": "/usr/bin:/bin", "HOME": str(ledger_path.parent), **extra}


def stdio_params(env: Mapping[str, str], *args: str) -> StdioServerParameters:
    """`planner-mcp ARGS` for the SDK's stdio client, which adds its own few variables to `env`."""
    command, *rest = server_command(*args)
    return StdioServerParameters(command=command, args=rest, env=dict(env))


def run_cli(ledger_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `planner-mcp ARGS` as a separate process, as a user or a host would, with a bounded wait."""
    return run_server(ledger_path, *args, env=env)


def on_a_terminal(ledger_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """`planner-mcp ARGS` with its stderr on a terminal (a pty), as a person runs it, its stdout captured: the
    process, and all it wrote to the terminal."""
    main, other = pty.openpty()
    try:
        try:
            proc = subprocess.run(server_command(*args), env=host_env(ledger_path, **env), stderr=other,
                                  stdout=subprocess.PIPE, text=True, timeout=WATCHDOG_S)  # fmt: skip
        finally:
            os.close(other)
        return proc, os.read(main, 4096).decode()
    finally:
        os.close(main)


def run_server(
    ledger_path: Path, *args: str, env: Mapping[str, str] | None = None, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`planner-mcp ARGS` run to its end in a host's environment (plus `env`), its output captured as text;
    `options` go to `subprocess.run` (`cwd`, `stdin`, another `timeout`)."""
    settings: dict[str, Any] = {"capture_output": True, "text": True, "timeout": WATCHDOG_S, **options}
    return subprocess.run(server_command(*args), env=host_env(ledger_path, **(env or {})), **settings)


@contextmanager
def server_process(
    ledger_path: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    watchdog_s: float = WATCHDOG_S,
    **options: Any,
) -> Iterator["subprocess.Popen[Any]"]:
    """`planner-mcp ARGS` running in a host's environment (plus `env`), its three streams piped unless
    `options` say otherwise (`stdin`, `stderr`, `text`, `encoding`, ...). Killed after `watchdog_s` at the
    latest, and on leaving; its pipes are closed once it has ended."""
    proc = subprocess.Popen(
        server_command(*args),
        env=host_env(ledger_path, **(env or {})),
        **{"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **options},
    )
    watchdog = threading.Timer(watchdog_s, proc.kill)
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        proc.kill()
        with contextlib.suppress(BrokenPipeError), proc:  # closing stdin flushes what the server never read
            pass
