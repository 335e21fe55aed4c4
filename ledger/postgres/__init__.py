"""The ledger on PostgreSQL: one chain for a fleet of servers on many hosts.

Imported only when `PLANNER_MCP_LEDGER` is a `postgresql://` URL, so the driver (psycopg 3, the
`planner-mcp[postgres]` extra) is needed only there.
"""
