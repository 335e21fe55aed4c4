"""`planner-mcp serve --transport http`: where a call enters over the network.

`serve` builds the ASGI app and runs it; `auth` says who may call; `connections` bounds how many connections
are open and how long a request may take to arrive; `sessions` bounds how many sessions each caller holds;
`cancels` matches a cancel to its request exactly; `replay` answers a request to resume a stream; `refusals` puts
every refusal on the record, at a bounded rate.
"""
