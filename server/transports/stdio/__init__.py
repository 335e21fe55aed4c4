"""`planner-mcp serve` on stdio: lines in, lines out, stopped by the host or a signal."""

from server.transports.stdio.serve import serve_stdio

__all__ = ["serve_stdio"]
