"""Serving an agents file over HTTP: whose tokens are checked, and what keeps it from being served."""

from contracts.agents import IssuerConfig
from server.config.settings import HTTPConfig
from server.governance.roster.roster import Roster

__all__ = ["http_issuers", "http_problem"]


def http_issuers(config: HTTPConfig, roster: Roster) -> list[IssuerConfig]:
    """The issuers whose tokens are checked: the agents file's, then PLANNER_MCP_OAUTH_ISSUER's if it is another."""
    issuers = list(roster.issuers.values())
    if config.oauth_issuer and config.oauth_jwks_url and config.oauth_issuer not in roster.issuers:
        issuers.append(
            IssuerConfig(issuer=config.oauth_issuer, jwks_url=config.oauth_jwks_url, audience=config.oauth_audience)
        )
    return issuers


def http_problem(config: HTTPConfig, roster: Roster) -> str | None:
    """Why an agents file cannot be served over HTTP as configured, naming the fix; None when it can."""
    if config.token is not None:
        return (
            'with an agents file, a static token is one agent\'s caller: put its SHA-256 (`printf %s "$TOKEN" | '
            "sha256sum`) under that agent's [[agents.callers]] as token_sha256, and unset PLANNER_MCP_HTTP_TOKEN"
        )
    if config.oauth and not (config.oauth_issuer and config.oauth_jwks_url):
        return "PLANNER_MCP_OAUTH_* needs at least PLANNER_MCP_OAUTH_ISSUER and PLANNER_MCP_OAUTH_JWKS_URL"
    if not any(roster.callers(agent_id) for agent_id in roster.agents):
        return f"no agent of {roster.source} has a caller, so every request would be refused: add [[agents.callers]]"
    known = {issuer.issuer for issuer in http_issuers(config, roster)}
    if unknown := [issuer for issuer in roster.oauth_issuers() if issuer not in known]:
        return (
            f"the callers of {unknown[0]} cannot be checked: add an [[issuers]] entry for it, with its jwks_url, "
            "to the agents file (or set PLANNER_MCP_OAUTH_ISSUER and PLANNER_MCP_OAUTH_JWKS_URL)"
        )
    return None
