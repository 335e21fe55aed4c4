"""The data contracts of planner-mcp: plain pydantic models, no I/O."""

from contracts.agent import SEED_FORBIDDEN_ACTIONS, AgentMetadata, default_agent
from contracts.errors import ErrorKind
from contracts.outputs import AgentOutput, Decision, ErrorInfo, Provenance, SideEffect, SourceRef, TokenUsage
from contracts.plans import Analysis, Plan, PlanStep
from contracts.tasks import TaskRequest

__all__ = [
    "SEED_FORBIDDEN_ACTIONS",
    "AgentMetadata",
    "AgentOutput",
    "Analysis",
    "Decision",
    "ErrorInfo",
    "ErrorKind",
    "Plan",
    "PlanStep",
    "Provenance",
    "SideEffect",
    "SourceRef",
    "TaskRequest",
    "TokenUsage",
    "default_agent",
]
