"""Reading the agents a server runs as: the agents file (PLANNER_MCP_AGENTS), or the one agent of a policy file.

The file decides what every caller may do, so it is refused when anyone but its user or root could change it.
"""

from pathlib import Path

from pydantic import ValidationError

from contracts.agents import AgentEntry, AgentsFile
from server.config.bounds import problem
from server.config.settings import Settings
from server.governance.policy import PolicyError, load_policy, read_trusted_toml
from server.governance.roster.roster import Roster

__all__ = ["RosterError", "load_agents_file", "load_roster"]


class RosterError(PolicyError):
    """The agents file cannot be used; the server refuses to start rather than guess."""


def load_agents_file(path: Path, variable: str = "PLANNER_MCP_AGENTS") -> AgentsFile:
    """The agents file at `path`, checked whole: a problem anywhere in it is an error naming where."""
    raw = read_trusted_toml(path, variable, "agents file", RosterError)
    try:
        return AgentsFile.model_validate(raw)
    except ValidationError as exc:
        raise RosterError(f"the agents file {path} is invalid: {_problems(exc, raw)}") from None


def _problems(exc: ValidationError, raw: object) -> str:
    found = []
    for error in exc.errors(include_input=False):
        loc = error["loc"]
        # A number of an agent's out of its range: the range the agent's policy declares for it.
        field = loc[2] if len(loc) == 3 and loc[0] == "agents" else None
        said = problem(error, AgentEntry, field)
        where = _where(loc, raw)
        found.append(f"{where}: {said}" if where else said)
    return "; ".join(found)


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """A location people can find: `agents[1] (ci-reader).tier`, not `agents.1.tier`."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int) and parts:
            parts[-1] += f"[{step}]"
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("agent_id"), str):
                parts[-1] += f" ({node['agent_id']})"
            continue
        parts.append(str(step))
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)


def load_roster(settings: Settings) -> Roster:
    """The agents of this configuration: the agents file's, else the policy file's one agent (or the seed's)."""
    if settings.agents_path is None:
        return Roster.single(load_policy(settings.policy_path))
    if settings.policy_path is not None:
        raise RosterError(
            "PLANNER_MCP_POLICY and PLANNER_MCP_AGENTS are both set: an agents file holds every agent's policy, so "
            "set one of them"
        )
    file = load_agents_file(settings.agents_path)
    roster = Roster(file.agents, issuers=file.issuers, source=settings.agents_path)
    if settings.agent is not None and settings.agent not in roster.agents:
        known = ", ".join(roster.agents)
        raise RosterError(
            f"PLANNER_MCP_AGENT={settings.agent!r} is no agent of {settings.agents_path} (it has {known})"
        )
    return roster
