"""`planner-mcp ledger report`: the ledger as one self-contained HTML page an auditor can read."""

from server.report.page import CSP, render
from server.report.sections import Context

__all__ = ["CSP", "Context", "render"]
