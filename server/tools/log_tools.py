"""read_logs: the calling agent's own recent ledger entries, so an assistant can see what it did."""

from pydantic import Field

from contracts import Decision, SideEffect
from ledger import LedgerError
from server.failures import ToolFailure
from server.names import EntryName
from server.offload import run_blocking
from server.tools.spec import LOCAL_READ, Args, Deps, ToolResult, ToolSpec

__all__ = ["READ_LOGS"]


class ReadLogsArgs(Args):
    limit: int = Field(
        default=20, ge=1, le=100, strict=True, description="How many entries, newest first (at most 100)."
    )
    action: EntryName | None = Field(default=None, description="Only calls of this tool, e.g. generate_plan.")


async def _read_logs(args: ReadLogsArgs, deps: Deps) -> ToolResult:
    agent_id = deps.agent.agent_id
    try:
        entries = await run_blocking(lambda: deps.ledger.agent_log(agent_id, args.limit, args.action))
    except LedgerError as exc:
        raise ToolFailure(
            "LEDGER_UNAVAILABLE",
            f"The ledger cannot be read: {exc}.",
            recommended_action="Ask the operator to run `planner-mcp doctor` and `planner-mcp ledger verify`.",
        ) from exc
    return ToolResult(
        decision=Decision.EXECUTE,
        confidence=1.0,
        data={"agent_id": agent_id, "entries": entries},
        side_effects=[SideEffect(type="read_logs", target="ledger/agent_actions", reversible=True)],
        notes_for_humans=f"{len(entries)} ledger entries of agent {agent_id}, newest first.",
    )


READ_LOGS = ToolSpec(
    name="read_logs",
    title="Read your own audit log",
    description=(
        "Read the most recent audit-ledger entries of this agent (newest first): which tool was called, with "
        "which arguments (secrets scrubbed), its decision, error and duration. Use it to see what you already "
        "did or why a call was refused. Shows only this agent's calls; this call itself is recorded too."
    ),
    actions=("read_logs",),
    args=ReadLogsArgs,
    capability=_read_logs,
    hints=LOCAL_READ,
)
