"""`planner-mcp serve --transport http` as a real process on a free loopback port, for the tests that need it."""

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.processes import server_process

__all__ = ["JSON_LOGS", "Served", "free_port", "http_server", "initialize", "refusals", "serving", "use"]

JSON_LOGS = ("--log-format", "json")
"""`serving(options=JSON_LOGS)`: stderr as a log collector reads it, one JSON object a line."""

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
_LIFETIME_S = 600
"""How long an HTTP server may serve one test (the longest load tests) before it is killed."""
_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refusals(stderr: str) -> tuple[list[dict[str, Any]], int]:
    """The refusal log's lines in a JSON stderr, and how many refusals its counts add (those without a line)."""
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    mine = [entry for entry in logged if entry["logger"] == "server.http.refusals"]
    return [e for e in mine if "reason" in e], sum(e.get("suppressed", 0) for e in mine)


@dataclass
class Served:
    url: str
    port: int
    stderr: str = ""
    """What the server wrote to stderr, once it has stopped."""


def _descriptors(limit: int | None) -> Callable[[], None] | None:
    if limit is None:
        return None
    import resource  # POSIX only, like the tests that limit descriptors

    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@contextmanager
def serving(
    ledger_path: Path,
    *args: str,
    port: int = 0,
    env: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    descriptors: int | None = None,
) -> Iterator[Served]:
    """The server in its own process (`options` before `serve`, `args` after it; at most `descriptors` open
    files): yields where it serves once it accepts, and holds its stderr once it has stopped."""
    port = port or free_port()
    command = [*options, "serve", "--transport", "http", "--port", str(port), *args]
    with server_process(
        ledger_path, *command, env=env, watchdog_s=_LIFETIME_S, stdin=None, text=True,
        preexec_fn=_descriptors(descriptors),
    ) as proc:  # fmt: skip
        served = Served(f"http://127.0.0.1:{port}/mcp", port)
        try:
            _until_it_accepts(proc, port)
            yield served
        finally:
            proc.terminate()
            served.stderr = proc.communicate(timeout=30)[1]


def _until_it_accepts(proc: "subprocess.Popen[str]", port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the HTTP server did not start within 30 s"
            time.sleep(0.05)


@contextmanager
def http_server(ledger_path: Path, *args: str, port: int = 0, **env: str) -> Iterator[str]:
    """`planner-mcp serve --transport http` in its own process; yields its MCP endpoint once it accepts."""
    with serving(ledger_path, *args, port=port, env=env) as served:
        yield served.url


def initialize(url: str, **headers: str) -> httpx2.Response:
    """An `initialize` POST with these headers besides the required ones (`authorization=…`, `origin=…`)."""
    return httpx2.post(url, json=_INIT, headers={**_HEADERS, **headers}, timeout=30)


async def use(url: str, token: str) -> tuple[list[str], str]:
    """What a caller with `token` does: list the tools and read a document. Returns the tools' names and the
    read's request id."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("read_docs", {"name": "backup-restore"})
    assert not result.is_error and result.structured_content is not None
    return tools, str(result.structured_content["request_id"])
