"""Loading the agent's policy: the seed's tier-0 planner, or a TOML file named by PLANNER_MCP_POLICY.

The file decides what the agent may do, so it is refused when anyone but its user or root could change it.
"""

import tomllib
from pathlib import Path

from pydantic import ValidationError

from contracts import AgentMetadata, default_agent
from server.config.bounds import problem
from server.config.file_trust import UntrustedFile, require_trusted

__all__ = ["PolicyError", "load_policy"]


class PolicyError(Exception):
    """The policy file cannot be used; the server refuses to start rather than guess."""


def load_policy(path: Path | None) -> AgentMetadata:
    """Read agent metadata from a TOML file (the seed's field names, at the top level)."""
    if path is None:
        return default_agent()
    try:
        require_trusted(path, "PLANNER_MCP_POLICY")
    except UntrustedFile as exc:
        raise PolicyError(str(exc)) from None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file {path} (PLANNER_MCP_POLICY): {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"the policy file {path} is not valid TOML: {exc}") from exc
    try:
        return AgentMetadata.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(file)'}: "
            f"{problem(e, AgentMetadata, e['loc'][0] if len(e['loc']) == 1 else None)}"
            for e in exc.errors()
        )
        raise PolicyError(f"the policy file {path} is invalid: {problems}") from None
