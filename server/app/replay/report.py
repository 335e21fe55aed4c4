"""What `ledger replay` finds: each recorded decision a candidate agents file would change, counts per agent, and
the tools each caller's list would lose or gain. Plain values, for the command line to print as text or JSON."""

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal

__all__ = ["AgentCounts", "Change", "ChangeKind", "Changes", "Report", "ToolListChange", "spooled"]

ChangeKind = Literal["refused", "allowed", "moved", "unjudged"]
"""allowed → refused; refused → allowed; the same decision as another agent; a caller the candidate cannot judge."""

_IN_MEMORY = 8 * 2**20
"""Bytes of changes kept in memory before they go to a temporary file."""


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded call whose decision, or agent, the candidate would change."""

    kind: ChangeKind
    seq: int
    timestamp: str
    request_id: str
    caller: str
    """Who called, as `Identity.describe()` shows it; `-` for a call that names no caller (stdio, in process)."""
    action: str
    before: str
    """`allowed` or `refused`, as recorded."""
    after: str
    """`allowed`, `refused`, or `cannot be judged`."""
    agent_before: str
    tier_before: int
    agent_after: str | None
    tier_after: int | None
    rule: str | None
    """The rule that decides the change: `caller` (the caller's agent), `tools` (the tool is registered or not),
    `model`, `budget`; None for a call that only moves to another agent."""
    reason: str


@dataclass
class AgentCounts:
    """What replay found among the calls recorded as one agent's."""

    calls: int = 0
    allowed_to_refused: int = 0
    refused_to_allowed: int = 0
    budget_refusals: int = 0
    """Of `allowed_to_refused`: the candidate's daily budget would have run out."""
    callers_moved: int = 0
    """Callers whose calls would act as another agent."""
    unjudged: int = 0


@dataclass(frozen=True)
class ToolListChange:
    """What one caller's tool list would lose and gain under the candidate."""

    caller: str
    agent_before: str
    agent_after: str | None
    before: tuple[str, ...] | None
    """The tools of `agent_before` in the current configuration; None when it has no such agent."""
    after: tuple[str, ...]
    vanish: tuple[str, ...]
    appear: tuple[str, ...]
    called: tuple[str, ...]
    """Of `vanish` and `appear`: those the caller called in the range, and that ran."""
    tried: tuple[str, ...]
    """Of `vanish` and `appear`: those the caller called in the range and was refused (and never ran)."""
    as_recorded: bool | None
    """Whether `before` is the list the calls were recorded under (the digests match); None when not known."""


class Changes:
    """The changes found, in chain order: appended as they are found, read back as often as needed."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.count = 0

    def add(self, change: Change) -> None:
        self._file.seek(0, 2)
        self._file.write(json.dumps(asdict(change), ensure_ascii=False) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[Change]:
        self._file.seek(0)
        for line in self._file:
            yield Change(**json.loads(line))


@contextmanager
def spooled() -> Iterator[Changes]:
    """Changes kept in memory up to a few MB, then in a temporary file, so a candidate that would refuse millions of
    recorded calls does not need the memory to hold them; gone when the block ends."""
    with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY, mode="w+", encoding="utf-8") as file:
        yield Changes(file)


@dataclass
class Report:
    """The whole replay. `changed`: something would change (a decision, an agent, a tool list), or a call cannot
    be judged: what `ledger replay` exits 1 for."""

    candidate: str
    since: str | None
    changes: Changes
    calls: int = 0
    agents: dict[str, AgentCounts] = field(default_factory=dict)
    tool_lists: list[ToolListChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.changes.count > 0 or bool(self.tool_lists)

    def summary(self) -> dict[str, Any]:
        """Everything but the changes, as JSON values."""
        return {
            "candidate": self.candidate,
            "calls": self.calls,
            "since": self.since,
            "agents": {agent_id: asdict(counts) for agent_id, counts in self.agents.items()},
            "tool_lists": [asdict(entry) for entry in self.tool_lists],
            "notes": self.notes,
        }
