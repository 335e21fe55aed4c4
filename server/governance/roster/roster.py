"""Which agent a caller acts as: the agent of its most specific matching entry, and nobody's on a tie."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts import AgentMetadata
from contracts.agents import MATCH_RANKS, AgentEntry, CallerRule, IssuerConfig
from server.call.callers import Identity

__all__ = ["Judgement", "Roster"]

_SHORTEST_DIGEST = 16
"""A ledger row keeps the start of a token's digest: no shorter start is taken to name a caller."""


@dataclass(frozen=True)
class Judgement:
    """The agent a caller acts as, or why it acts as none."""

    agent: AgentMetadata | None
    rule: CallerRule | None = None
    """The entry that decided (None for the one agent of a policy file, which every caller acts as)."""
    problem: str = ""
    """Why no agent: the caller matches none, or two equally."""


class Roster:
    """The agents of one configuration, by id, and the rules that map callers to them.

    Made from an agents file (`from_file`), or from a policy file, whose one agent every caller acts as (`single`).
    """

    def __init__(
        self,
        agents: Sequence[AgentMetadata],
        *,
        issuers: Sequence[IssuerConfig] = (),
        source: Path | None = None,
        everyone: bool = False,
    ) -> None:
        self.agents: dict[str, AgentMetadata] = {agent.agent_id: agent for agent in agents}
        self.issuers: dict[str, IssuerConfig] = {issuer.issuer: issuer for issuer in issuers}
        self.source = source
        """The agents file, or None for a policy file (or the seed's default agent)."""
        self._everyone = everyone
        self._rules: list[tuple[CallerRule, AgentMetadata]] = [
            (rule, agent) for agent in agents if isinstance(agent, AgentEntry) for rule in agent.callers
        ]
        self._digests: dict[str, AgentMetadata] = {
            rule.value: agent for rule, agent in self._rules if rule.kind == "token"
        }

    @classmethod
    def single(cls, agent: AgentMetadata) -> "Roster":
        """The one agent of a policy file: every caller the transport lets in acts as it."""
        return cls([agent], everyone=True)

    @property
    def from_agents_file(self) -> bool:
        return self.source is not None

    def callers(self, agent_id: str) -> tuple[CallerRule, ...]:
        agent = self.agents[agent_id]
        return agent.callers if isinstance(agent, AgentEntry) else ()

    def oauth_issuers(self) -> list[str]:
        """The issuers the callers of this file name, in the order they first appear."""
        return list(dict.fromkeys(rule.issuer for rule, _ in self._rules if rule.issuer is not None))

    def has_token(self, digest: str) -> bool:
        """Whether a static token with this SHA-256 (hex) is a caller's."""
        return digest in self._digests

    def judge(self, who: Identity | None) -> Judgement:
        """The agent `who` acts as. A caller is no one in particular (None) only over stdio or in process, where the
        server runs as its default agent: see `pick`."""
        if self._everyone:
            return Judgement(next(iter(self.agents.values())))
        if who is None:
            return Judgement(None, problem="the caller is not identified")
        matched = [(rule, agent) for rule, agent in self._rules if _matches(rule, who)]
        if not matched:
            return Judgement(None, problem=f"the caller {who.describe()} matches no agent")
        best = min(MATCH_RANKS[rule.kind] for rule, _ in matched)
        deciding = [(rule, agent) for rule, agent in matched if MATCH_RANKS[rule.kind] == best]
        agents = sorted({agent.agent_id for _, agent in deciding})
        if len(agents) > 1:
            rules = ", ".join(rule.describe() for rule, _ in deciding)
            return Judgement(
                None, problem=f"the caller {who.describe()} matches agents {' and '.join(agents)} equally ({rules})"
            )
        rule, agent = deciding[0]
        return Judgement(agent, rule)

    def pick(self, agent_id: str | None) -> AgentMetadata | None:
        """The agent of calls that name no caller (stdio, `planner-mcp call`): the one named, else the only one.
        None when the file has several and none is named. Raises KeyError for a name the file does not have."""
        if agent_id is not None:
            return self.agents[agent_id]
        return next(iter(self.agents.values())) if len(self.agents) == 1 else None


def _matches(rule: CallerRule, who: Identity) -> bool:
    if rule.kind == "token":
        # Whole when a token was presented; its start when read back from a ledger row (see Identity).
        digest = who.token_digest
        return digest is not None and len(digest) >= _SHORTEST_DIGEST and rule.value.startswith(digest)
    if who.token_digest is not None or rule.issuer != who.issuer:
        return False
    if rule.kind == "subject":
        return who.subject == rule.value
    if rule.kind == "client_id":
        return who.client_id == rule.value
    if rule.kind == "group":
        return rule.value in who.groups
    return rule.value in who.scopes
