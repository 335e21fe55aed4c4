"""The `planner-mcp` command: serve, list the tools, run one call through the gate, read the ledger.

stdout carries only what the command is for (protocol messages when serving, JSON or tables otherwise);
logs and diagnostics go to stderr.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from contracts import Decision
from ledger import EXIT_CODES, LedgerError
from server.app import build_server
from server.app.runtime import call_once, server_version
from server.app.telemetry import start_telemetry
from server.app.views import AgentView
from server.cli.agents import run_agents
from server.cli.ledger import add_ledger_commands, run_ledger
from server.cli.plan import add_plan_commands, run_plan
from server.config.file import layered
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.governance.policy import PolicyError
from server.governance.roster import Roster, RosterError, load_roster
from server.support.logs import configure as configure_logs
from server.support.terminal import say, say_json
from server.transports.stdio import serve_stdio

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
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="stderr logs as text, or one JSON object a line"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve MCP (stdio; the default command)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", help="HTTP: the address to bind (default 127.0.0.1; PLANNER_MCP_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="HTTP: the port (default 8765; PLANNER_MCP_HTTP_PORT)")
    serve.add_argument(
        "--stateless", action="store_true", help="HTTP: keep no session, for replicas behind a load balancer"
    )

    tools = commands.add_parser("tools", help="list the tools this configuration registers")
    tools.add_argument("--json", action="store_true", help="print the tools as MCP sees them")

    call = commands.add_parser("call", help="run one tool through the gate and ledger; print its AgentOutput")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="the tool's arguments as a JSON object")

    add_plan_commands(commands)

    agents = commands.add_parser("agents", help="each agent, the tools it gets, its callers, and problems found")
    agents.add_argument("--json", action="store_true", help="print the report as one JSON object")

    commands.add_parser("doctor", help="check the configuration, the store, the LLM settings and the ledger")
    commands.add_parser(
        "vault-policy", help="print the Vault policy (HCL) the server's token needs, for the configured mount"
    )

    add_ledger_commands(commands)

    config = commands.add_parser("config", help="the effective configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="CONFIG_COMMAND", required=True)
    show = config_commands.add_parser(
        "show", help="every setting's value and source (environment, PLANNER_MCP_CONFIG file, default), secrets masked"
    )
    show.add_argument("--json", action="store_true")
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    if getattr(args, "transport", "stdio") == "http":
        from server.transports.http.serve import serve_http

        changes = {"host": args.host, "port": args.port, "stateless": args.stateless or None}
        http = settings.http.model_copy(update={k: v for k, v in changes.items() if v is not None})
        return serve_http(settings.model_copy(update={"http": http}))
    roster = load_roster(settings)  # read once, for the check below and the server
    _stdio_agent(settings, roster)  # a file of several agents needs PLANNER_MCP_AGENT: said before the host waits
    if sys.stdin.isatty():
        print(
            "planner-mcp: serving MCP on stdio, waiting for a host's JSON-RPC messages on stdin. "
            "To use it, add it to an MCP host (see mcp.json and the README); Ctrl-C stops it.",
            file=sys.stderr,
        )
    with start_telemetry(settings) as signals, contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve_stdio, build_server(settings, roster=roster, signals=signals))
    return 0


def _stdio_agent(settings: Settings, roster: Roster | None = None) -> AgentView:
    """The agent that stdio, `tools`, `call`, `plan` and `analyze` run as: the policy file's, or the agents file's
    one named by PLANNER_MCP_AGENT (or its only one)."""
    roster = roster or load_roster(settings)
    agent = roster.pick(settings.agent)
    if agent is None:
        raise RosterError(
            f"{settings.agents_path} has {len(roster.agents)} agents ({', '.join(roster.agents)}): set "
            "PLANNER_MCP_AGENT to the one to run as (over HTTP each caller acts as its own; `planner-mcp agents` "
            "lists them)"
        )
    return AgentView.of(agent)


def _tools(settings: Settings, as_json: bool) -> int:
    tools = _stdio_agent(settings).tools
    if as_json:
        payload = [spec.mcp_tool.model_dump(mode="json", by_alias=True, exclude_none=True) for spec in tools.values()]
        say_json(json.dumps(payload, indent=2))
        return 0
    for spec in tools.values():
        hints = spec.hints
        flags = [
            "read-only" if hints.read_only else "writes",
            "destructive" if hints.destructive else "non-destructive",
            "idempotent" if hints.idempotent else "non-idempotent",
            "open-world" if hints.open_world else "closed-world",
        ]
        say(f"{spec.name:<16} {spec.title:<36} actions={','.join(spec.actions):<38} {' '.join(flags)}")
    return 0


def _call(settings: Settings, tool: str, raw_arguments: str) -> int:
    try:
        arguments: Any = json.loads(raw_arguments)
    except json.JSONDecodeError as exc:
        say(f"planner-mcp: the arguments are not valid JSON: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    if not isinstance(arguments, dict):
        say("planner-mcp: the arguments must be a JSON object", file=sys.stderr)
        return _EXIT_USAGE
    view = _stdio_agent(settings)
    key = ledger_key(settings)

    async def run() -> int:
        output = await call_once(settings, view, tool, arguments, chain_key=key)
        say_json(output.model_dump_json(indent=2))
        return _EXIT_ERROR if output.decision is Decision.ERROR else 0

    return anyio.run(run)


_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _doctor(settings: Settings) -> int:
    from server.doctor.run import run_checks  # the checks import what serving never needs: not at start-up

    failed = False
    for check in run_checks(settings):
        failed = failed or check.status == "fail"
        fix = [f"      fix: {check.fix}"] if check.fix and check.status != "ok" else []
        say(f"{_MARKS[check.status]}  {check.name}: {check.detail}", *fix)
        sys.stdout.flush()  # each check as it ends: the next may wait on a slow upstream
    return _EXIT_ERROR if failed else 0


def _vault_policy(settings: Settings) -> int:
    from server.vault.paths import policy_hcl

    mount = settings.vault.mount if settings.vault else "secret"
    key_name = settings.vault.llm_key_name if settings.vault else "openrouter"
    say(*policy_hcl(mount, llm_key_name=key_name if settings.llm.api_key is None else None).splitlines())
    return 0


def _config_show(settings: Settings, *, as_json: bool) -> int:
    from server.config.show import render

    text = render(settings, layered(os.environ), as_json=as_json)
    if as_json:
        say_json(text)
    else:
        say(*text.split("\n"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logs(args.log_level, args.log_format)
    try:
        return _run(Settings.from_env(), args)
    except (SettingsError, PolicyError) as exc:
        say(f"planner-mcp: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except LedgerError as exc:
        say(f"planner-mcp: {exc}", file=sys.stderr)
        # For verify this means the ledger could not be read, so it was not verified: not the same as tampered.
        verifying = args.command == "ledger" and args.ledger_command in ("verify", "checkpoint", "report")
        return EXIT_CODES["unverified"] if verifying else _EXIT_ERROR


def _run(settings: Settings, args: argparse.Namespace) -> int:
    match args.command:
        case None | "serve":
            return _serve(settings, args)
        case "tools":
            return _tools(settings, args.json)
        case "call":
            return _call(settings, args.tool, args.arguments)
        case "plan" | "analyze":
            return run_plan(settings, args, _stdio_agent(settings))
        case "agents":
            return run_agents(settings, as_json=args.json)
        case "doctor":
            return _doctor(settings)
        case "vault-policy":
            return _vault_policy(settings)
        case "ledger":
            return run_ledger(settings, args)
        case "config":
            return _config_show(settings, as_json=args.json)
    raise AssertionError(f"unhandled command {args.command!r}")


def console() -> None:
    """The console script's entry point."""
    sys.exit(main())
