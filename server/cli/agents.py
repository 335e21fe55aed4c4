"""`planner-mcp agents [--json]`: each agent of this configuration, what its callers are shown, who they are (a
token only by the start of its digest), and the problems found in the file. Exit 1 when one is an error."""

import json

from server.app.roster_report import AgentSummary, RosterReport, counted, roster_report
from server.config.settings import Settings
from server.governance.roster import load_roster
from server.support.terminal import say, say_json

__all__ = ["run_agents"]

_EXIT_ERROR = 1
_SEVERITY = {"error": "ERROR", "warn": "WARN "}


def run_agents(settings: Settings, *, as_json: bool) -> int:
    report = roster_report(load_roster(settings), settings)
    if as_json:
        say_json(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        say(*_text(report))
    return _EXIT_ERROR if report.errors else 0


def _text(report: RosterReport) -> list[str]:
    lines = [_heading(report), ""]
    for summary in report.agents:
        lines += [*_agent(summary, report.everyone is not None), ""]
    if not report.problems:
        return [*lines, "no problems found"]
    warnings = len(report.problems) - report.errors
    lines.append(f"problems: {counted(report.errors, 'error')}, {counted(warnings, 'warning')}")
    for problem in report.problems:
        lines += [f"{_SEVERITY[problem.severity]}  {problem.kind}: {problem.detail}", f"       fix: {problem.fix}"]
    return lines


def _heading(report: RosterReport) -> str:
    if report.source == "agents-file":
        return f"agents file {report.path}: {report.census()}"
    where = f"the policy file {report.path}" if report.path else "the seed's default (no PLANNER_MCP_POLICY)"
    return f"one agent, from {where}: every authenticated caller acts as it (no PLANNER_MCP_AGENTS)"


def _agent(summary: AgentSummary, everyone: bool) -> list[str]:
    agent = summary.agent
    models = summary.models
    budget = agent.daily_token_budget
    callers = [rule.describe() for rule in summary.callers] or ["none"]
    if everyone:
        callers = ["every authenticated caller"]
    return [
        f"{agent.agent_id}  tier {agent.tier}  role {agent.agent_role}  owner {agent.owner}",
        f"  tools      {', '.join(summary.view.tools) or 'none'}",
        f"  resources  {', '.join(summary.view.resources.specs)}",
        f"  prompts    {', '.join(summary.view.prompts.specs) or 'none'}",
        f"  models     {'any' if models is None else ', '.join(models) or 'none'}",
        f"  budget     {f'{budget} tokens a day' if budget else 'no daily token budget'}",
        f"  callers    {callers[0]}",
        *(f"             {caller}" for caller in callers[1:]),
    ]
