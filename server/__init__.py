"""planner-mcp's MCP server: governed, audited, read-only planning tools."""

from server.app import GovernedServer, build_server
from server.settings import Settings

__all__ = ["GovernedServer", "Settings", "build_server"]
