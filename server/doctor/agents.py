"""`doctor`'s check of the agents file (PLANNER_MCP_AGENTS): that it can be read, who is in it, and each problem
`planner-mcp agents` would report, an error as a failure."""

from collections.abc import Iterator

from server.app.roster_report import Severity, roster_report
from server.config.settings import Settings
from server.config.urls import shown
from server.doctor.check import Check, Status
from server.governance.roster import Roster, RosterError, http_issuers, http_problem, load_roster

__all__ = ["agents_checks"]

_STATUS: dict[Severity, Status] = {"error": "fail", "warn": "warn"}


def agents_checks(settings: Settings) -> Iterator[Check]:
    try:
        roster = load_roster(settings)
    except RosterError as exc:
        fix = "Fix what it names: the agents file (PLANNER_MCP_AGENTS), or PLANNER_MCP_AGENT."
        if settings.policy_path is not None:
            fix = "Unset PLANNER_MCP_POLICY: the agents file holds every agent's policy."
        yield Check("agents", "fail", str(exc), fix)
        return
    report = roster_report(roster, settings)
    stdio = roster.pick(settings.agent)
    runs = (
        f"stdio runs as {stdio.agent_id}" if stdio else "stdio needs PLANNER_MCP_AGENT (HTTP callers act as their own)"
    )
    yield Check("agents", "ok", f"{report.census()} from {report.path}; {runs}")
    yield _http(settings, roster)
    for problem in report.problems:
        yield Check(f"agents.{problem.kind}", _STATUS[problem.severity], problem.detail, problem.fix)


def _http(settings: Settings, roster: Roster) -> Check:
    """Whether `serve --transport http` would serve the file: by the rule it starts by (`http_problem`)."""
    config = settings.http
    has_callers = any(roster.callers(agent_id) for agent_id in roster.agents)
    if not has_callers and config.token is None and not config.oauth:
        return Check("http", "ok", "no agent of the file has a caller: stdio only ([[agents.callers]] for HTTP)")
    if (problem := http_problem(config, roster)) is not None:
        return Check("http", "fail", f"`serve --transport http` would not start: {problem}", problem)
    issuers = ", ".join(shown(issuer.issuer) for issuer in http_issuers(config, roster))
    jwts = f"; JWTs from {issuers}" if issuers else ""
    return Check(
        "http", "ok", f"`serve --transport http` would serve {shown(config.resource_url)} to the file's callers{jwts}"
    )
