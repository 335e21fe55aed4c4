"""One recorded call judged again under a candidate agents file, by the rules the gate applies: which agent its
caller acts as, whether that agent registers what was called, whether its tier may use the model, and whether its
daily budget would have lasted. Nothing is called: what a call did is read from its outcome row."""

from dataclasses import dataclass
from typing import Literal

from contracts import AgentMetadata, ErrorKind
from ledger.history import RecordedCall
from server.app.resources import route
from server.app.views import AgentView, views
from server.call.callers import Identity
from server.governance.gate import LLM_ACTION
from server.governance.limits import model_answered, model_refused
from server.governance.roster import Roster
from server.governance.spec import Catalogue
from server.tools import CATALOGUE_BY_NAME

__all__ = ["POLICY_RULES", "Budgets", "Caller", "Candidate", "Refusal", "is_llm_call", "method_of"]

Method = Literal["tools/call", "resources/read", "prompts/get"]
Rule = Literal["caller", "tools", "model", "budget"]

POLICY_RULES: dict[str, Rule] = {
    ErrorKind.FORBIDDEN_ACTION: "tools",
    ErrorKind.MODEL_NOT_ALLOWED: "model",
    ErrorKind.TOKEN_BUDGET_EXHAUSTED: "budget",
}
"""The recorded refusals a policy decides, by the rule that made them: a candidate may decide them otherwise. Any
other refusal (arguments that do not fit, a name that tries to leave its folder) stands under any policy."""

_METHODS: tuple[Method, ...] = ("resources/read", "prompts/get")


def method_of(notes: str) -> Method:
    """How a call arrived, as its notes say (a resource read or a prompt names its method; a tool call does not).
    Each part of the notes is the server's own words up to the caller's text, which holds no `;`."""
    parts = notes.split("; ")
    return next((method for part in parts for method in _METHODS if part.startswith(method)), "tools/call")


@dataclass(frozen=True)
class Refusal:
    """Why the candidate would refuse a call, and the rule that would."""

    rule: Rule
    reason: str


@dataclass(frozen=True)
class Caller:
    """The agent a recorded call's caller acts as under the candidate, or why none (and whether that can be said)."""

    agent: AgentMetadata | None
    problem: str = ""
    unjudged: bool = False
    """The record of the caller is not whole, so a rule of the candidate may match it unseen."""


class Candidate:
    """The candidate agents file, ready to judge: its roster and each agent's view, built once."""

    def __init__(self, roster: Roster, *, model: str | None) -> None:
        """`model` is the configured model (PLANNER_MCP_MODEL), which calls refused before the LLM answered were
        asking for: their rows record none."""
        self.roster = roster
        self.views: dict[str, AgentView] = views(roster)
        self._model = model
        self._callers: dict[Identity, Caller] = {}

    def caller(self, who: Identity | None, recorded_agent: str) -> Caller:
        """The agent `who` acts as. A call that names no caller ran as the server's own agent (stdio, in process,
        the single static token): the candidate's agent of the same id, as PLANNER_MCP_AGENT would pick it."""
        if who is None:
            agent = self.roster.agents.get(recorded_agent)
            if agent is not None:
                return Caller(agent)
            return Caller(None, f"the candidate has no agent {recorded_agent!r}, which calls that name no caller "
                                "(stdio, in process) ran as")  # fmt: skip
        if (known := self._callers.get(who)) is None:
            known = self._callers[who] = self._judge(who)
        return known

    def _judge(self, who: Identity) -> Caller:
        judgement = self.roster.judge(who)
        if judgement.agent is not None:
            return Caller(judgement.agent)
        if who.incomplete:
            return Caller(None, f"the ledger keeps only part of the caller {who.describe()} (a value cut, or groups "
                                "left out), and no rule of the candidate matches that part", unjudged=True)  # fmt: skip
        if who.token_digest is None and who.issuer is None:
            return Caller(None, f"the caller {who.describe()} was recorded without its issuer (by a server with no "
                                "agents file), and every OAuth rule names one", unjudged=True)  # fmt: skip
        return Caller(None, judgement.problem)

    def refusal(self, agent: AgentMetadata, call: RecordedCall) -> Refusal | None:
        """Why `agent` would refuse `call` before its budget is looked at: what was called is not registered for
        it, or its tier may not use the model."""
        view = self.views[agent.agent_id]
        catalogue = _catalogue(view, method_of(call.notes))
        if not _reaches(catalogue, call.action):
            return Refusal("tools", f"{call.action} is not a {catalogue.kind} of agent {_named(agent)}")
        if not is_llm_call(call):
            return None
        return self._model_refusal(agent, call)

    def _model_refusal(self, agent: AgentMetadata, call: RecordedCall) -> Refusal | None:
        """The model the call used (a dated snapshot of an allowed model is that model, as the gate takes it), or,
        for a call refused before an LLM answered, the configured one it asked for."""
        if call.llm_model is not None:
            model = f"the model {call.llm_model!r} that answered"
            refused = model_answered(agent, call.llm_model) is not None
        elif self._model is not None:
            model, refused = f"the configured model {self._model!r}", model_refused(agent, self._model) is not None
        else:
            return None
        if not refused:
            return None
        allowed = ", ".join(sorted(agent.allowed_models() or ())) or "none"
        return Refusal("model", f"{model} is not allowed for tier {agent.tier} by agent {agent.agent_id} "
                                f"(allowed: {allowed})")  # fmt: skip


def is_llm_call(call: RecordedCall) -> bool:
    spec = CATALOGUE_BY_NAME.get(call.action)
    return spec is not None and LLM_ACTION in spec.actions and method_of(call.notes) == "tools/call"


def _catalogue(view: AgentView, method: Method) -> Catalogue:
    if method == "resources/read":
        return view.resources
    if method == "prompts/get":
        return view.prompts
    return Catalogue("tool", view.tools)


def _reaches(catalogue: Catalogue, action: str) -> bool:
    """Whether `action` is reached through `catalogue`. A resource read is recorded under its tool's name when it
    was allowed, and under its URI when it was not: the URI is routed as the server routes it."""
    if action in catalogue.specs or any(spec.name == action for spec in catalogue.specs.values()):
        return True
    return catalogue.kind == "resource" and route(action, catalogue)[0] in catalogue.specs


def _named(agent: AgentMetadata) -> str:
    return f"{agent.agent_id} (tier {agent.tier})"


class Budgets:
    """Each candidate agent's UTC days replayed in chain order: the tokens its allowed LLM calls recorded, summed
    as the ledger sums them, against its daily budget. Reservations and concurrency are not replayed."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, str], int] = {}
        self._ran_out: dict[tuple[str, str], str] = {}

    def refusal(self, agent: AgentMetadata, call: RecordedCall) -> Refusal | None:
        """Why `agent`'s budget would refuse `call`: its day's sum had reached it when the call started."""
        budget = agent.daily_token_budget
        day = call.timestamp[:10]
        spent = self._spent.get((agent.agent_id, day), 0)
        if budget is None or spent < budget:
            return None
        at = self._ran_out.get((agent.agent_id, day))
        where = f" (it ran out at request {at})" if at else ""
        return Refusal(
            "budget",
            f"agent {agent.agent_id} would have spent {spent} of its {budget} LLM tokens for {day} (UTC){where}",
        )

    def spend(self, agent: AgentMetadata, call: RecordedCall) -> None:
        key = (agent.agent_id, call.timestamp[:10])
        before = self._spent.get(key, 0)
        self._spent[key] = after = before + call.tokens
        budget = agent.daily_token_budget
        if budget is not None and before < budget <= after:
            self._ran_out[key] = call.request_id
