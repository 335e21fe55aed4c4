"""The benchmark harness: planner-mcp against the bare MCP SDK and a durable floor, side by side, in one run."""
