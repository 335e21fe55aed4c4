"""The `planner-mcp` command: serve, tools, call, ledger, config, doctor."""

from server.cli.main import console, main

__all__ = ["console", "main"]
