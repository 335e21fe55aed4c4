"""What a roster gives each agent, and what in it no caller would notice until it bit: the report behind
`planner-mcp agents` and `doctor`'s agents-file check.

The file's validation already refuses what cannot work at all (two agents with one id, one caller given to two
agents); what is left here is valid TOML that does something its writer probably did not mean: an agent nobody
can reach, an entry that never decides, two agents a caller could both match, an action no tool knows, an issuer
no token can come from, a tier that may use no model.
"""

import difflib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from contracts import SEED_FORBIDDEN_ACTIONS, AgentMetadata
from contracts.agents import MATCH_RANKS, CallerRule
from server.app.views import AgentView
from server.config.settings import Settings
from server.governance.gate import LLM_ACTION
from server.governance.roster import Roster, http_issuers
from server.tools import CATALOGUE

__all__ = [
    "KNOWN_ACTIONS",
    "AgentSummary",
    "Problem",
    "RosterReport",
    "Severity",
    "counted",
    "roster_report",
    "shown_caller",
]

Severity = Literal["error", "warn"]
Source = Literal["agents-file", "policy-file", "default"]
ProblemKind = Literal[
    "no-caller", "duplicate-caller", "overlap", "unknown-action", "unknown-issuer", "no-model", "model-refused"
]

KNOWN_ACTIONS: frozenset[str] = frozenset(
    {action for spec in CATALOGUE for action in spec.actions} | set(SEED_FORBIDDEN_ACTIONS) | {LLM_ACTION}
)
"""Every action a policy can usefully name: the ones the tools need, and the ones the seed forbids."""

_SHOWN_DIGEST = 12  # as CallerRule.describe shows it
_SHOWN_CLAIMS = 3


@dataclass(frozen=True)
class Problem:
    """One thing the roster does that its writer probably did not mean, and how to mend it."""

    severity: Severity
    agents: tuple[str, ...]
    """The agents it concerns: one, or the two an overlap is between."""
    kind: ProblemKind
    detail: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "agents": list(self.agents)}


@dataclass(frozen=True)
class AgentSummary:
    """One agent as its callers meet it: the view the server builds for it, and the entries that lead to it."""

    view: AgentView
    callers: tuple[CallerRule, ...]

    @property
    def agent(self) -> AgentMetadata:
        return self.view.agent

    @property
    def models(self) -> list[str] | None:
        """The models its tier may use, or None for any."""
        allowed = self.agent.allowed_models()
        return None if allowed is None else sorted(allowed)

    def to_json(self) -> dict[str, Any]:
        agent = self.agent
        return {
            "agent_id": agent.agent_id,
            "role": agent.agent_role,
            "owner": agent.owner,
            "tier": agent.tier,
            "tools": list(self.view.tools),
            "resources": list(self.view.resources.specs),
            "prompts": list(self.view.prompts.specs),
            "models": self.models,
            "daily_token_budget": agent.daily_token_budget,
            "callers": [
                {"kind": rule.kind, "issuer": rule.issuer, "value": shown_caller(rule), "name": rule.name}
                for rule in self.callers
            ],
        }


@dataclass(frozen=True)
class RosterReport:
    """Where the agents come from, each agent, and the problems found."""

    source: Source
    path: Path | None
    agents: tuple[AgentSummary, ...]
    problems: tuple[Problem, ...]

    @property
    def everyone(self) -> str | None:
        """The agent every authenticated caller acts as (a policy file, or the seed's default), else None."""
        return None if self.source == "agents-file" else self.agents[0].agent.agent_id

    @property
    def errors(self) -> int:
        return sum(problem.severity == "error" for problem in self.problems)

    @property
    def callers(self) -> int:
        return sum(len(summary.callers) for summary in self.agents)

    def census(self) -> str:
        """Who is in it, in a few words: `2 agents (ci-reader, planner), 3 callers`."""
        ids = ", ".join(summary.agent.agent_id for summary in self.agents)
        return f"{counted(len(self.agents), 'agent')} ({ids}), {counted(self.callers, 'caller')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"kind": self.source, "path": str(self.path) if self.path else None},
            "every_caller_acts_as": self.everyone,
            "agents": [summary.to_json() for summary in self.agents],
            "problems": [problem.to_json() for problem in self.problems],
        }


def counted(n: int, noun: str) -> str:
    """`1 agent`, `2 agents`."""
    return f"{n} {noun}{'s' * (n != 1)}"


def shown_caller(rule: CallerRule) -> str:
    """What an entry matches, as people may see it: a token only by the start of its digest."""
    if rule.token_sha256 is not None:
        return f"sha256:{rule.token_sha256[:_SHOWN_DIGEST]}"
    return rule.value


_Check = Callable[[Sequence[AgentSummary], Roster, Settings], Iterator[Problem]]


def roster_report(roster: Roster, settings: Settings) -> RosterReport:
    """The report on `roster`, read from `settings` (which also say which issuers and model the server uses)."""
    summaries = tuple(AgentSummary(AgentView.of(agent), roster.callers(agent_id))
                      for agent_id, agent in roster.agents.items())  # fmt: skip
    if roster.from_agents_file:
        source: Source = "agents-file"
        path = roster.source
    else:
        source, path = ("policy-file", settings.policy_path) if settings.policy_path else ("default", None)
    checks: list[_Check] = [_unknown_actions, _no_model]
    if roster.from_agents_file:
        checks = [_no_callers, _duplicates, _overlaps, _unknown_issuers, *checks]
    found = [problem for check in checks for problem in check(summaries, roster, settings)]
    problems = tuple(sorted(found, key=lambda problem: problem.severity != "error"))  # errors first
    return RosterReport(source, path, summaries, problems)


def _no_callers(summaries: Sequence[AgentSummary], _roster: Roster, _settings: Settings) -> Iterator[Problem]:
    for summary in summaries:
        if not summary.callers:
            agent_id = summary.agent.agent_id
            yield Problem(
                "warn",
                (agent_id,),
                "no-caller",
                f"agent {agent_id} has no callers: no HTTP caller can act as it, only stdio with "
                f"PLANNER_MCP_AGENT={agent_id}",
                f"Add an [[agents.callers]] entry under {agent_id}, or remove the agent if stdio is not meant.",
            )


def _duplicates(summaries: Sequence[AgentSummary], _roster: Roster, _settings: Settings) -> Iterator[Problem]:
    for summary in summaries:
        first: dict[tuple[str, str, str], int] = {}
        for index, rule in enumerate(summary.callers):
            earlier = first.setdefault(rule.key, index)
            if earlier != index:
                agent_id = summary.agent.agent_id
                yield Problem(
                    "warn",
                    (agent_id,),
                    "duplicate-caller",
                    f"agent {agent_id}: callers[{index}] ({rule.describe()}) repeats callers[{earlier}], so it never "
                    "decides anything",
                    f"Remove callers[{index}] from {agent_id}.",
                )


def _overlaps(summaries: Sequence[AgentSummary], _roster: Roster, _settings: Settings) -> Iterator[Problem]:
    """Two agents with group or scope entries under one issuer: a caller carrying one claim of each matches both
    at the same rank, and is refused as nobody's. (Subjects and client ids cannot overlap: a caller has one of
    each, and one entry under two agents is refused when the file is read.)"""
    widest = max(MATCH_RANKS.values())
    claims: dict[str, dict[str, dict[tuple[str, str, str], CallerRule]]] = {}  # issuer -> agent id -> its entries
    for summary in summaries:
        for rule in summary.callers:
            if rule.issuer is not None and MATCH_RANKS[rule.kind] == widest:
                claims.setdefault(rule.issuer, {}).setdefault(summary.agent.agent_id, {}).setdefault(rule.key, rule)
    for issuer, by_agent in claims.items():
        agent_ids = list(by_agent)
        for i, first in enumerate(agent_ids):
            for second in agent_ids[i + 1 :]:
                yield Problem(
                    "warn",
                    (first, second),
                    "overlap",
                    f"agents {first} and {second} both take callers of {issuer} by a claim: one carrying "
                    f"{_claims(by_agent[first].values())} and {_claims(by_agent[second].values())} matches both "
                    "equally and is refused as nobody's",
                    "Make sure no caller carries both, or give such callers a subject or client_id entry under the "
                    "agent they should act as (the more specific entry decides).",
                )


def _claims(entries: Iterable[CallerRule]) -> str:
    rules = list(entries)
    shown = " or ".join(f"{rule.kind}={rule.value}" for rule in rules[:_SHOWN_CLAIMS])
    return shown + (f" (or {len(rules) - _SHOWN_CLAIMS} more)" if len(rules) > _SHOWN_CLAIMS else "")


def _unknown_issuers(summaries: Sequence[AgentSummary], roster: Roster, settings: Settings) -> Iterator[Problem]:
    configured = [issuer.issuer for issuer in http_issuers(settings.http, roster)]
    for summary in summaries:
        agent_id = summary.agent.agent_id
        named = Counter(rule.issuer for rule in summary.callers if rule.issuer is not None)
        for issuer, count in named.items():
            if issuer in configured:
                continue
            callers = "1 caller" if count == 1 else f"{count} callers"
            yield Problem(
                "error",
                (agent_id,),
                "unknown-issuer",
                f"agent {agent_id}: {callers} of issuer {issuer}, which is neither under [[issuers]] nor "
                "PLANNER_MCP_OAUTH_ISSUER (with its JWKS_URL): no token of it can be checked, so `serve --transport "
                f"http` refuses to start{_close(issuer, configured)}",
                f"Add an [[issuers]] entry for {issuer} with its jwks_url, or correct the callers' issuer.",
            )


def _unknown_actions(summaries: Sequence[AgentSummary], _roster: Roster, _settings: Settings) -> Iterator[Problem]:
    for summary in summaries:
        agent = summary.agent
        for field, actions in (("allowed_side_effects", agent.allowed_side_effects),
                               ("forbidden_actions", agent.forbidden_actions)):  # fmt: skip
            for action in sorted(actions - KNOWN_ACTIONS):
                effect = "allows nothing" if field == "allowed_side_effects" else "forbids nothing any tool does"
                yield Problem(
                    "warn",
                    (agent.agent_id,),
                    "unknown-action",
                    f"agent {agent.agent_id}: {field} names {action!r}, which no tool needs and the seed does not "
                    f"forbid, so it {effect}{_close(action, sorted(KNOWN_ACTIONS))}",
                    f"Correct or remove {action!r} in {agent.agent_id}'s {field}.",
                )


def _no_model(summaries: Sequence[AgentSummary], _roster: Roster, settings: Settings) -> Iterator[Problem]:
    model = settings.llm.model
    for summary in summaries:
        agent, models = summary.agent, summary.models
        llm_tools = [name for name, spec in summary.view.tools.items() if LLM_ACTION in spec.actions]
        if not llm_tools or models is None:
            continue
        tools = " and ".join(llm_tools)
        if not models:
            yield Problem(
                "warn",
                (agent.agent_id,),
                "no-model",
                f"agent {agent.agent_id} is given {tools}, but models_by_tier lists no model for its tier "
                f"{agent.tier}: every call of them is refused",
                f'List models under "{agent.tier}" in {agent.agent_id}\'s models_by_tier, or remove llm_inference '
                "from its allowed_side_effects.",
            )
        elif model is not None and model not in models:
            yield Problem(
                "warn",
                (agent.agent_id,),
                "model-refused",
                f"agent {agent.agent_id} is given {tools}, but PLANNER_MCP_MODEL={model} is not among the models "
                f"of its tier {agent.tier} ({', '.join(models)}): every call of them is refused",
                f'Add {model} under "{agent.tier}" in {agent.agent_id}\'s models_by_tier, or set PLANNER_MCP_MODEL '
                "to a model it lists.",
            )


def _close(word: str, known: Sequence[str]) -> str:
    """`; did you mean X?` when `word` looks like a mistyped `X`."""
    match = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {match[0]!r}?" if match else ""
