"""The tool list each caller seen in the range was shown, against the one the candidate would show it.

Before is the list of the agent its calls were recorded as, in the current configuration: the ledger keeps only
a digest of the list each call was made under, so the current one stands in for it, and a digest that differs
says the current configuration is not the one that was in force. After is the list of the agent the candidate
would make it.
"""

from dataclasses import dataclass, field

from contracts import AgentMetadata
from ledger.history import RecordedCall
from server.app.replay.judge import Caller, Candidate
from server.app.replay.report import ToolListChange
from server.app.runtime import tools_digest
from server.app.views import AgentView
from server.call.callers import Identity
from server.governance.roster import Roster
from server.tools import CATALOGUE

__all__ = ["ToolLists"]

_NO_CALLER = "-"


@dataclass
class _Seen:
    """What the range says of one caller: the agent and list its newest call was recorded under, the tools it called
    (and ran), and those it was refused."""

    caller: str
    agent: str = ""
    digest: str = ""
    after: Caller = field(default_factory=lambda: Caller(None))
    called: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)


class ToolLists:
    """The callers seen, and each one's list before and after."""

    def __init__(self, candidate: Candidate, current: Roster | None) -> None:
        self._candidate = candidate
        self._current = current
        self._seen: dict[str, _Seen] = {}

    def add(self, who: Identity | None, call: RecordedCall, after: Caller, *, refused: bool) -> None:
        # A call that names no caller stands for its agent's: one entry per agent for those.
        key = who.record() if who is not None else f"agent {call.agent_id}"
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen(caller=who.describe() if who is not None else _NO_CALLER)
        seen.agent, seen.digest, seen.after = call.agent_id, call.tools_digest, after
        if call.action in _TOOL_NAMES:
            (seen.tried if refused else seen.called).add(call.action)

    def changes(self) -> tuple[list[ToolListChange], list[str]]:
        """Each caller whose list would change, and what the reader must know about them (a list that is not the
        one recorded; callers the candidate cannot judge)."""
        found, unjudged = [], 0
        for seen in self._seen.values():
            if seen.after.unjudged:
                unjudged += 1
                continue
            if (entry := self._change(seen)) is not None:
                found.append(entry)
        notes = []
        if any(entry.as_recorded is False for entry in found):
            notes.append(
                "For some callers the current configuration's tool list is not the one their calls were recorded "
                "under (its digest differs): their `before` is today's list, not the one then in force."
            )
        if unjudged:
            notes.append(f"{unjudged} caller(s) cannot be judged by the candidate: their tool lists are not compared.")
        return found, notes

    def _change(self, seen: _Seen) -> ToolListChange | None:
        after_agent = seen.after.agent
        after = self._names(self._candidate.views[after_agent.agent_id]) if after_agent is not None else ()
        before_agent = self._current.agents.get(seen.agent) if self._current is not None else None
        before: tuple[str, ...] | None = None
        as_recorded: bool | None = None
        if before_agent is not None:
            view = AgentView.of(before_agent)
            before, as_recorded = self._names(view), tools_digest(view.mcp_tools) == seen.digest
            vanish, appear = _minus(before, after), _minus(after, before)
        else:  # the tools it had are not known: only those it called can be seen to go
            vanish, appear = tuple(sorted(seen.called - set(after), key=_ORDER.__getitem__)), ()
        if not vanish and not appear:
            return None
        return ToolListChange(
            caller=seen.caller,
            agent_before=seen.agent,
            agent_after=_id(after_agent),
            before=before,
            after=after,
            vanish=vanish,
            appear=appear,
            called=tuple(name for name in (*vanish, *appear) if name in seen.called),
            tried=tuple(name for name in (*vanish, *appear) if name in seen.tried - seen.called),
            as_recorded=as_recorded,
        )

    @staticmethod
    def _names(view: AgentView) -> tuple[str, ...]:
        return tuple(view.tools)


_TOOL_NAMES = frozenset(spec.name for spec in CATALOGUE)
_ORDER = {spec.name: index for index, spec in enumerate(CATALOGUE)}


def _minus(these: tuple[str, ...], those: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in these if name not in those)


def _id(agent: AgentMetadata | None) -> str | None:
    return None if agent is None else agent.agent_id
