"""The MCP server: its handlers for tools, resources and prompts, and the runtime its lifespan opens."""

from server.app.runtime import Runtime, open_runtime
from server.app.server import GovernedServer, build_server

__all__ = ["GovernedServer", "Runtime", "build_server", "open_runtime"]
