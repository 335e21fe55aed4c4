"""`planner-mcp serve --transport http`: where a call enters over the network.

`serve` builds the ASGI app and runs it; `auth` says who may call.
"""
