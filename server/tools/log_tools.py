"""read_logs: the calling agent's own recent ledger entries, so an assistant can see what it did.

Over HTTP with OAuth or an agents file many people may act as one agent: each then sees only the calls its ledger
rows say it made (`server.call.callers`), never another's calls or the `context` it sent.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts import Decision, ErrorKind, SideEffect
from contracts.names import EntryName
from ledger import LedgerError
from server.call.callers import caller
from server.call.failures import ToolFailure
from server.call.intent_first import run_blocking
from server.governance.spec import LOCAL_READ, Args, Deps, Returns, ToolResult, ToolSpec

__all__ = ["READ_LOGS"]


class ReadLogsArgs(Args):
    limit: int = Field(
        default=20, ge=1, le=100, strict=True, description="How many entries, newest first (at most 100)."
    )
    action: EntryName | None = Field(default=None, description="Only calls of this tool, e.g. generate_plan.")


# What read_logs returns in `data`, for its output schema: the ledger's columns, as `Ledger.agent_log` reads them.
class LogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int | None
    timestamp: str
    request_id: str | None
    action: str
    decision: str
    confidence: float
    success: bool
    refused: bool
    error_type: str | None
    error_message: str | None
    duration_ms: float | None
    arguments: Any = Field(description="As recorded, secrets scrubbed.")
    llm_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


class LogData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str
    entries: list[LogEntry] = Field(description="Newest first.")


async def _read_logs(args: ReadLogsArgs, deps: Deps) -> ToolResult:
    agent_id = deps.agent.agent_id
    who = caller()
    if who is not None and deps.scrubber.text(who) != who:
        # The record of this caller was scrubbed in its rows (its identity looks like a secret), so they cannot be
        # told apart from another's: show none rather than someone else's.
        raise ToolFailure(
            ErrorKind.CALLER_UNRECORDED,
            "This caller's identity cannot be told apart in the ledger, so its calls cannot be shown.",
            recommended_action="Ask the operator to read the ledger with `planner-mcp ledger tail`.",
        )
    try:
        entries = await run_blocking(lambda: deps.ledger.agent_log(agent_id, args.limit, args.action, who))
    except LedgerError as exc:
        raise ToolFailure(
            ErrorKind.LEDGER_UNAVAILABLE,
            f"The ledger cannot be read: {exc}.",
            recommended_action="Ask the operator to run `planner-mcp doctor` and `planner-mcp ledger verify`.",
        ) from exc
    whose = f"{who.removeprefix('caller: ')}, of agent {agent_id}" if who else f"agent {agent_id}"
    return ToolResult(
        decision=Decision.EXECUTE,
        confidence=1.0,
        data={"agent_id": agent_id, "entries": entries},
        side_effects=[SideEffect(type="read_logs", target="ledger/agent_actions", reversible=True)],
        notes_for_humans=f"{len(entries)} ledger entries of {whose}, newest first.",
    )


READ_LOGS = ToolSpec(
    name="read_logs",
    title="Read your own audit log",
    description=(
        "Read the most recent audit-ledger entries of this agent (newest first): which tool was called, with "
        "which arguments (secrets scrubbed), its decision, error and duration. Use it to see what you already "
        "did or why a call was refused. Shows only this agent's calls (over HTTP, when your token names you, only "
        "your own); this call itself is recorded too."
    ),
    actions=("read_logs",),
    args=ReadLogsArgs,
    capability=_read_logs,
    hints=LOCAL_READ,
    returns=Returns(data=LogData),
)
