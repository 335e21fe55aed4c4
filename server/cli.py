"""The `planner-mcp` command: serve, list the tools, run one call through the gate, read the ledger.

stdout carries only what the command is for (protocol messages when serving, JSON or tables otherwise);
logs and diagnostics go to stderr.
"""

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from contracts import Decision
from ledger import Ledger, LedgerError
from server.app import build_server, open_runtime, server_version
from server.audit import ledger_key
from server.checks import run_checks
from server.policy import PolicyError, load_policy
from server.settings import Settings, SettingsError
from server.tools import registered_tools
from server.vault.paths import policy_hcl

__all__ = ["console", "main"]

logger = logging.getLogger("planner-mcp")

_EXIT_ERROR = 1
_EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="planner-mcp",
        description="Governed, audited, read-only planning tools for AI assistants, over MCP.",
    )
    parser.add_argument("--version", action="version", version=f"planner-mcp {server_version()}")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve MCP (stdio; the default command)")
    serve.add_argument("--transport", choices=["stdio"], default="stdio")

    tools = commands.add_parser("tools", help="list the tools this configuration registers")
    tools.add_argument("--json", action="store_true", help="print the tools as MCP sees them")

    call = commands.add_parser("call", help="run one tool through the gate and ledger; print its AgentOutput")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="the tool's arguments as a JSON object")

    commands.add_parser("doctor", help="check the configuration, the store, the LLM settings and the ledger")
    commands.add_parser(
        "vault-policy", help="print the Vault policy (HCL) the server's token needs, for the configured mount"
    )

    ledger = commands.add_parser("ledger", help="read the audit ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", metavar="LEDGER_COMMAND", required=True)
    tail = ledger_commands.add_parser("tail", help="the newest recorded calls")
    tail.add_argument("-n", "--lines", type=int, default=20)
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _serve(settings: Settings) -> int:
    server = build_server(settings)
    if sys.stdin.isatty():
        print(
            "planner-mcp: serving MCP on stdio, waiting for a host's JSON-RPC messages on stdin. "
            "To use it, add it to an MCP host (see mcp.json and the README); Ctrl-C stops it.",
            file=sys.stderr,
        )
    with contextlib.suppress(KeyboardInterrupt):
        server.run(transport="stdio")
    return 0


def _tools(settings: Settings, as_json: bool) -> int:
    tools = registered_tools(load_policy(settings.policy_path))
    if as_json:
        payload = [spec.mcp_tool.model_dump(mode="json", by_alias=True, exclude_none=True) for spec in tools.values()]
        print(json.dumps(payload, indent=2))
        return 0
    for spec in tools.values():
        hints = spec.hints
        flags = [
            "read-only" if hints.read_only else "writes",
            "destructive" if hints.destructive else "non-destructive",
            "idempotent" if hints.idempotent else "non-idempotent",
            "open-world" if hints.open_world else "closed-world",
        ]
        print(f"{spec.name:<16} {spec.title:<36} actions={','.join(spec.actions):<38} {' '.join(flags)}")
    return 0


def _call(settings: Settings, tool: str, raw_arguments: str) -> int:
    try:
        arguments: Any = json.loads(raw_arguments)
    except json.JSONDecodeError as exc:
        print(f"planner-mcp: the arguments are not valid JSON: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    if not isinstance(arguments, dict):
        print("planner-mcp: the arguments must be a JSON object", file=sys.stderr)
        return _EXIT_USAGE
    agent = load_policy(settings.policy_path)
    key = ledger_key(settings)

    async def run() -> int:
        async with open_runtime(settings, agent, registered_tools(agent), ledger_key=key) as runtime:
            output = await runtime.gate.call(tool, arguments)
        print(output.model_dump_json(indent=2))
        return _EXIT_ERROR if output.decision is Decision.ERROR else 0

    return anyio.run(run)


def _ledger_tail(settings: Settings, lines: int, as_json: bool) -> int:
    if not settings.ledger_path.exists():
        print(f"planner-mcp: there is no ledger at {settings.ledger_path} (PLANNER_MCP_LEDGER)", file=sys.stderr)
        return _EXIT_ERROR
    ledger = Ledger(settings.ledger_path, busy_timeout_s=settings.ledger_busy_timeout_s)
    try:
        rows = ledger.tail(lines)
    finally:
        ledger.close()
    for row in rows:
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            error = f" {row['error_type']}: {row['error_message']}" if row["error_type"] else ""
            print(
                f"{row['id']:>6} {row['timestamp']} {row['agent_id']} {row['action']:<16} "
                f"{row['decision']:<9} conf={row['confidence']:.2f} {row['duration_ms'] or 0:.1f}ms{error}"
            )
    return 0


_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _doctor(settings: Settings) -> int:
    failed = False
    for check in run_checks(settings):
        failed = failed or check.status == "fail"
        fix = f"\n      fix: {check.fix}" if check.fix and check.status != "ok" else ""
        print(f"{_MARKS[check.status]}  {check.name}: {check.detail}{fix}", flush=True)
    return _EXIT_ERROR if failed else 0


def _vault_policy(settings: Settings) -> int:
    mount = settings.vault.mount if settings.vault else "secret"
    key_name = settings.vault.llm_key_name if settings.vault else "openrouter"
    print(policy_hcl(mount, llm_key_name=key_name if settings.llm.api_key is None else None), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        match args.command:
            case None | "serve":
                return _serve(settings)
            case "tools":
                return _tools(settings, args.json)
            case "call":
                return _call(settings, args.tool, args.arguments)
            case "doctor":
                return _doctor(settings)
            case "vault-policy":
                return _vault_policy(settings)
            case "ledger":
                return _ledger_tail(settings, args.lines, args.json)
    except (SettingsError, PolicyError, LedgerError) as exc:
        print(f"planner-mcp: {exc}", file=sys.stderr)
        return _EXIT_USAGE if not isinstance(exc, LedgerError) else _EXIT_ERROR
    raise AssertionError(f"unhandled command {args.command!r}")


def console() -> None:
    """The console script's entry point."""
    sys.exit(main())
