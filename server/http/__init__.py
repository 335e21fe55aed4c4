"""`planner-mcp serve --transport http`: where a call enters over the network.

`serve` builds the ASGI app and runs it; `auth` says who may call; `connections` bounds how many connections
are open and how long a request may take to arrive; `refusals` puts every refusal on the record, at a bounded
rate.
"""
