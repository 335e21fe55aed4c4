"""The agents file (PLANNER_MCP_AGENTS): many agents on one server, each with its policy and the callers that act as
it. A caller is an OAuth identity (issuer plus subject, client id, group or scope) or a static bearer token, kept
only as its SHA-256 digest.

A caller's agent is the one whose most specific entry matches it: a token first, then a subject, a client id, and
last a group or a scope. The same entry under two agents is refused when the file is read; a caller whose most
specific matches name two agents is refused when it calls (it is nobody's).
"""

import re
from typing import Literal

from pydantic import Field, model_validator

from contracts._base import Contract
from contracts.agent import AgentMetadata

__all__ = ["MATCH_RANKS", "AgentEntry", "AgentsFile", "CallerRule", "IssuerConfig", "MatchKind"]

MatchKind = Literal["token", "subject", "client_id", "group", "scope"]

MATCH_RANKS: dict[MatchKind, int] = {"token": 0, "subject": 1, "client_id": 2, "group": 3, "scope": 3}
"""How specific each kind of entry is (lower is more specific): the most specific match decides a caller's agent."""

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CLAIMS: tuple[MatchKind, ...] = ("subject", "client_id", "group", "scope")


class CallerRule(Contract):
    """One caller that acts as the agent: `token_sha256` alone, or `issuer` with one of subject, client_id, group,
    scope."""

    name: str | None = Field(default=None, min_length=1, max_length=64, description="A label for people and logs.")
    token_sha256: str | None = Field(
        default=None, description="The SHA-256 of a static bearer token, in hex (`printf %s TOKEN | sha256sum`)."
    )
    issuer: str | None = Field(default=None, min_length=1, max_length=512)
    subject: str | None = Field(default=None, min_length=1, max_length=512)
    client_id: str | None = Field(default=None, min_length=1, max_length=512)
    group: str | None = Field(default=None, min_length=1, max_length=512)
    scope: str | None = Field(default=None, min_length=1, max_length=512)

    @model_validator(mode="after")
    def _one_way_to_match(self) -> "CallerRule":
        claims = [kind for kind in _CLAIMS if getattr(self, kind) is not None]
        if self.token_sha256 is not None:
            if self.issuer is not None or claims:
                raise ValueError("a caller is a token_sha256 alone, or an issuer with one claim: not both")
            if not _DIGEST.match(self.token_sha256.lower()):
                raise ValueError(
                    "token_sha256 must be 64 hexadecimal digits: the SHA-256 of the token, never the token itself"
                )
            self.token_sha256 = self.token_sha256.lower()
            return self
        if self.issuer is None:
            raise ValueError("a caller needs token_sha256, or issuer with subject, client_id, group or scope")
        if len(claims) != 1:
            raise ValueError(
                f"a caller of issuer {self.issuer!r} needs exactly one of subject, client_id, group, scope"
            )
        return self

    @property
    def kind(self) -> MatchKind:
        if self.token_sha256 is not None:
            return "token"
        return next(kind for kind in _CLAIMS if getattr(self, kind) is not None)

    @property
    def value(self) -> str:
        """What the entry matches: the digest, or the claim's value."""
        found = self.token_sha256 if self.token_sha256 is not None else getattr(self, self.kind)
        assert isinstance(found, str)
        return found

    @property
    def key(self) -> tuple[str, str, str]:
        """Two entries with the same key match the same callers."""
        return (self.kind, self.issuer or "", self.value)

    def describe(self) -> str:
        """The entry for people: a token by the start of its digest only."""
        label = f" ({self.name})" if self.name else ""
        if self.token_sha256 is not None:
            return f"token sha256:{self.token_sha256[:12]}…{label}"
        return f"{self.issuer} {self.kind}={self.value}{label}"


class AgentEntry(AgentMetadata):
    """An agent of the file: every field of a policy file, and its callers."""

    callers: tuple[CallerRule, ...] = ()


class IssuerConfig(Contract):
    """An OAuth issuer whose access tokens (JWT) callers may present: where its keys are, and what the tokens must
    be for."""

    issuer: str = Field(min_length=1, max_length=512)
    jwks_url: str = Field(min_length=1, max_length=2048)
    audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The `aud` tokens must carry; default: the server's URL.",
    )
    groups_claim: str = Field(default="groups", min_length=1, max_length=64)
    """The claim that lists a caller's groups (Keycloak and Okta say `groups`; Entra ID may say `roles`)."""


class AgentsFile(Contract):
    """The whole file: the agents, and the OAuth issuers their callers come from (besides PLANNER_MCP_OAUTH_*)."""

    agents: tuple[AgentEntry, ...] = Field(min_length=1)
    issuers: tuple[IssuerConfig, ...] = ()

    @model_validator(mode="after")
    def _each_name_once(self) -> "AgentsFile":
        seen: dict[str, str] = {}
        for agent in self.agents:
            if agent.agent_id in seen:
                raise ValueError(f"agent_id {agent.agent_id!r} is given to two agents")
            seen[agent.agent_id] = agent.agent_id
        owners: dict[tuple[str, str, str], str] = {}
        for agent in self.agents:
            for caller in agent.callers:
                other = owners.setdefault(caller.key, agent.agent_id)
                if other != agent.agent_id:
                    raise ValueError(
                        f"the caller {caller.describe()} matches two agents, {other} and {agent.agent_id}: "
                        "give it to one"
                    )
        issuers = [issuer.issuer for issuer in self.issuers]
        if len(set(issuers)) != len(issuers):
            raise ValueError("an issuer is listed twice under [[issuers]]")
        return self
