"""`ledger replay`: the recorded calls, in chain order, judged again under a candidate agents file.

Before is what the ledger recorded: the call's decision (refused, or refused by the budget once its intent was in),
and the agent and tier it ran as. After is the candidate's: the agent the caller would act as, and that agent's
rules. Nothing is called and nothing is written: a call's cost is the tokens its outcome records.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ledger.history import RecordedCall
from server.app.replay.judge import POLICY_RULES, Budgets, Caller, Candidate, Refusal, is_llm_call
from server.app.replay.lists import ToolLists
from server.app.replay.report import AgentCounts, Change, ChangeKind, Report, spooled
from server.call.callers import Identity, recorded_identity
from server.governance.roster import Roster

__all__ = ["replay"]

_NOTES = (
    "Reservations and concurrency are not replayed: each LLM call is counted at the tokens its outcome records, in "
    "chain order, against the daily budget (UTC) of the agent the candidate makes its caller.",
    "A refusal the candidate would allow is judged by the candidate's rules only: its arguments are not checked "
    "again, and what it would have cost is not known (it is counted as nothing).",
)


@dataclass(frozen=True)
class _After:
    """The candidate's decision on one call."""

    caller: Caller
    refusal: Refusal | None
    kept: bool
    """The recorded refusal is not a policy's (its arguments did not fit, ...): it stands under any candidate."""


class _Replay:
    """One pass over the calls: each judged, its budget spent, its change and its caller's list noted."""

    def __init__(self, candidate: Candidate, current: Roster | None, report: Report, report_from: str | None) -> None:
        self._candidate = candidate
        self._budgets = Budgets()
        self._lists = ToolLists(candidate, current)
        self._report = report
        self._from = report_from
        self._moved: set[tuple[str, str]] = set()

    def add(self, call: RecordedCall) -> None:
        who = recorded_identity(call.notes)
        after = self._judge(call, who)
        if after.refusal is None and after.caller.agent is not None and not after.kept:
            self._budgets.spend(after.caller.agent, call)
        if self._from is not None and call.timestamp < self._from:
            return  # read only for its day's budget
        report = self._report
        report.calls += 1
        counts = report.agents.setdefault(call.agent_id, AgentCounts())
        counts.calls += 1
        self._lists.add(who, call, after.caller, refused=_refused(call))
        change = _change(call, who, after)
        if change is None:
            return
        report.changes.add(change)
        counts.allowed_to_refused += change.kind == "refused"
        counts.budget_refusals += change.kind == "refused" and change.rule == "budget"
        counts.refused_to_allowed += change.kind == "allowed"
        counts.unjudged += change.kind == "unjudged"
        if change.agent_after is not None and change.agent_after != call.agent_id:
            self._moved.add((call.agent_id, change.caller if who is not None else f"agent {call.agent_id}"))

    def _judge(self, call: RecordedCall, who: Identity | None) -> _After:
        caller = self._candidate.caller(who, call.agent_id)
        kept = _refused(call) and call.error_type not in POLICY_RULES
        agent = caller.agent
        if agent is None:
            return _After(caller, Refusal("caller", caller.problem), kept)
        if kept:
            return _After(caller, None, kept)
        refusal = self._candidate.refusal(agent, call)
        if refusal is None and is_llm_call(call):
            refusal = self._budgets.refusal(agent, call)
        return _After(caller, refusal, kept)

    def finish(self) -> Report:
        report = self._report
        for agent_id, _ in self._moved:
            report.agents[agent_id].callers_moved += 1
        report.tool_lists, notes = self._lists.changes()
        report.notes += [*_NOTES, *notes]
        return report


def _refused(call: RecordedCall) -> bool:
    """The recorded decision: refused before any work, or by the budget once the intent was in (its prompt's
    reservation), which ends as an error rather than a refusal but is the budget's decision all the same."""
    return call.refused or call.error_type == "TOKEN_BUDGET_EXHAUSTED"


def _kind(call: RecordedCall, after: _After) -> tuple[ChangeKind, str] | None:
    """What changes for `call`, and its decision after, or None when nothing does."""
    refused_before = _refused(call)
    agent = after.caller.agent
    if after.caller.unjudged and not after.kept:
        return "unjudged", "cannot be judged"
    if not refused_before and after.refusal is not None:
        return "refused", "refused"
    if refused_before and not after.kept and after.refusal is None:
        return "allowed", "allowed"
    if agent is not None and agent.agent_id != call.agent_id:
        return "moved", "refused" if refused_before else "allowed"
    return None


def _change(call: RecordedCall, who: Identity | None, after: _After) -> Change | None:
    if (found := _kind(call, after)) is None:
        return None
    kind, outcome = found
    agent = after.caller.agent
    refusal = after.refusal if kind in ("refused", "unjudged") else None
    return Change(
        kind=kind,
        seq=call.seq,
        timestamp=call.timestamp,
        request_id=call.request_id,
        caller=who.describe() if who is not None else "-",
        action=call.action,
        before="refused" if _refused(call) else "allowed",
        after=outcome,
        agent_before=call.agent_id,
        tier_before=call.tier,
        agent_after=None if agent is None else agent.agent_id,
        tier_after=None if agent is None else agent.tier,
        rule=refusal.rule if refusal is not None else _allowed_rule(call, kind),
        reason=refusal.reason if refusal is not None else _allowed_reason(call, kind, after),
    )


def _allowed_rule(call: RecordedCall, kind: str) -> str | None:
    return POLICY_RULES.get(call.error_type or "") if kind == "allowed" else None


def _allowed_reason(call: RecordedCall, kind: str, after: _After) -> str:
    agent = after.caller.agent
    assert agent is not None  # an allowed or moved call has an agent
    if kind == "allowed":
        return f"recorded as {call.error_type}; agent {agent.agent_id} (tier {agent.tier}) of the candidate allows it"
    return f"acts as {agent.agent_id} (tier {agent.tier}) instead of {call.agent_id} (tier {call.tier})"


@contextmanager
def replay(
    calls: Iterable[RecordedCall],
    candidate: Roster,
    *,
    current: Roster | None,
    model: str | None,
    since: str | None = None,
    candidate_name: str = "",
) -> Iterator[Report]:
    """Judge `calls` (chain order) under `candidate`; the report's changes can be read until the block ends.

    `current` is the configuration's own roster (None when it cannot be read), whose lists stand for the ones
    recorded; `model` the configured model (PLANNER_MCP_MODEL), which refused LLM calls asked for; calls before
    `since` are read only to count their day's budget."""
    with spooled() as changes:
        report = Report(candidate=candidate_name, since=since, changes=changes)
        run = _Replay(Candidate(candidate, model=model), current, report, since)
        for call in calls:
            run.add(call)
        if since is not None:
            report.notes.append(f"The budget of the day --since falls in counts that day's calls before {since} too.")
        if model is None:
            report.notes.append("No model is configured (PLANNER_MCP_MODEL): the model of an LLM call is judged "
                                "only when its row records one.")  # fmt: skip
        yield run.finish()
