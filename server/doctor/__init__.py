"""`planner-mcp doctor`: one line per check of the configuration, the store, the LLM endpoint and the ledger."""

from server.doctor.check import Check
from server.doctor.run import run_checks

__all__ = ["Check", "run_checks"]
