"""The server processes under test: how each is started, which pid it got, and how much memory it peaked at."""

import compileall
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mcp import StdioServerParameters
from mcp.client.stdio import get_default_environment

__all__ = ["Launch", "children", "compile_bytecode", "floor", "free_port", "peak_rss_kib", "planner"]

# Both servers are started from the checkout, so `server` and `bench` import from it whatever is installed.
ROOT = Path(__file__).resolve().parents[1]
_PACKAGES = ("server", "ledger", "contracts", "bench")


@dataclass(frozen=True)
class Launch:
    """A named way to start a server: on stdio, or, with `http_port`, over Streamable HTTP on that loopback port
    (with `token`, the bearer token its callers must send)."""

    name: str
    params: StdioServerParameters
    http_port: int | None = None
    token: str | None = None

    @property
    def argv(self) -> list[str]:
        return [self.params.command, *self.params.args]

    def environment(self) -> dict[str, str]:
        """What the process is started with: the SDK's safe defaults (PATH, HOME, ...) and the launch's own, as
        the SDK's stdio client starts it."""
        return {**get_default_environment(), **(self.params.env or {})}


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    # The child sees only what is set here (and the SDK's safe defaults such as PATH and HOME): the bench
    # must not pick up the operator's Vault or LLM settings from the shell.
    return {"PYTHONDONTWRITEBYTECODE": "1", **extra}


def planner(name: str, *, ledger: Path | str, data_dir: Path, http: str | None = None, **env: str) -> Launch:
    """planner-mcp as a host starts it (`python -m server serve`), on the embedded file store; `ledger` is a
    SQLite file or a `postgresql://` URL. With `http` (a bearer token), `serve --transport http` on a free
    loopback port, that token required."""
    settings = {"PLANNER_MCP_LEDGER": str(ledger), "PLANNER_MCP_DATA": str(data_dir), **env}
    args, port = ["-m", "server", "serve"], None
    if http is not None:
        port = free_port()
        args += ["--transport", "http", "--port", str(port)]
        settings["PLANNER_MCP_HTTP_TOKEN"] = http
    params = StdioServerParameters(command=sys.executable, args=args, env=_env(settings), cwd=ROOT)
    return Launch(name, params, port, http)


def floor(
    name: str,
    *,
    fixture: Path,
    data_dir: Path,
    audit: Path | None = None,
    intent: bool = False,
    strict: bool = False,
    http: bool = False,
) -> Launch:
    """The bare floor; with `audit` the durable floor, and with `intent` too the intent floor; with `strict`, the
    sdk floor, and with `audit` too the strict floor (see `bench.floor_server`). With `http`, over Streamable
    HTTP on a free loopback port."""
    args = ["-m", "bench.floor_server", str(fixture), str(data_dir)]
    if audit is not None:
        args += ["--audit", str(audit), *(["--intent"] if intent else [])]
    if strict:
        args.append("--strict")
    port = free_port() if http else None
    if port is not None:
        args += ["--http", str(port)]
    return Launch(name, StdioServerParameters(command=sys.executable, args=args, env=_env({}), cwd=ROOT), port)


def free_port() -> int:
    """A loopback port free now (another process may take it before the server binds it; rare enough here)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def compile_bytecode() -> None:
    """Compile the checkout's modules, as installing a package does, before any server is timed.

    The servers run with PYTHONDONTWRITEBYTECODE (they leave nothing behind), so in a fresh clone every start
    would compile planner-mcp's ~70 modules from source (~200 ms) while the floor, whose code is the SDK's and
    compiled when it was installed, compiles nothing: a cost no host that starts an installed server pays.
    """
    for package in _PACKAGES:
        if not compileall.compile_dir(ROOT / package, quiet=1):
            raise RuntimeError(f"could not compile {ROOT / package}")


def children(parent: int | None = None) -> set[int]:
    """The pids whose parent is `parent` (this process by default), from /proc."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the process ended while we looked
        # Field 4 is the parent's pid; the command name (field 2) may hold spaces but ends at the last ')'.
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.add(int(entry))
    return found


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError(f"no VmHWM for process {pid}")
