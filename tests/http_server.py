"""`planner-mcp serve --transport http` as a real process on a free loopback port, for the tests that need it."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import host_env

__all__ = ["free_port", "http_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(ledger_path: Path, *args: str, port: int = 0, **env: str) -> Iterator[str]:
    """`planner-mcp serve --transport http` in its own process; yields its MCP endpoint once it accepts."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port), *args],
        env=host_env(ledger_path, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start within 30 s"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # also closes the pipes
