"""`ledger replay`: how a candidate agents file would have judged the calls a ledger records."""

from server.app.replay.report import AgentCounts, Change, Report, ToolListChange
from server.app.replay.run import replay

__all__ = ["AgentCounts", "Change", "Report", "ToolListChange", "replay"]
