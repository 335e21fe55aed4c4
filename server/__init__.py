"""planner-mcp's MCP server: governed, audited, read-only planning tools.

Importing the server (the MCP SDK, pydantic and our models) allocates a great many objects that live as long as
the process. The cyclic garbage collector would scan them over and over while they are created (a share of the
start that `python -m bench --only cold` measures) and again in every full collection while serving, and would
find nothing to free. So it is paused for the imports, and what they built is frozen (`gc.freeze`: kept out of
later collections) before it resumes.
"""

import gc

_collecting = gc.isenabled()
gc.disable()
try:
    from server.app.server import GovernedServer, build_server
    from server.config.settings import Settings
finally:
    if _collecting:  # a program that turned the collector off itself keeps it off, and nothing is frozen
        gc.freeze()
        gc.enable()

__all__ = ["GovernedServer", "Settings", "build_server"]
