"""Loading the agent's policy: the seed's tier-0 planner, or a TOML file named by PLANNER_MCP_POLICY.

The file decides what the agent may do, so it is refused when anyone but its user or root could change it.
"""

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import AgentMetadata, default_agent
from server.config.bounds import problem
from server.config.file_trust import UntrustedFile, require_trusted

__all__ = ["PolicyError", "load_policy", "read_trusted_toml"]


class PolicyError(Exception):
    """The policy file cannot be used; the server refuses to start rather than guess."""


def read_trusted_toml(path: Path, variable: str, what: str, error: type[PolicyError] = PolicyError) -> dict[str, Any]:
    """The TOML `path` holds, once the file is shown to be one only its user or root can change; `error` names
    `what` file it is (and `variable`, which named it) when it cannot be read."""
    try:
        require_trusted(path, variable)
    except UntrustedFile as exc:
        raise error(str(exc)) from None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read the {what} {path} ({variable}): {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"the {what} {path} is not valid TOML: {exc}") from exc


def load_policy(path: Path | None) -> AgentMetadata:
    """Read agent metadata from a TOML file (the seed's field names, at the top level)."""
    if path is None:
        return default_agent()
    raw = read_trusted_toml(path, "PLANNER_MCP_POLICY", "policy file")
    try:
        return AgentMetadata.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(file)'}: "
            f"{problem(e, AgentMetadata, e['loc'][0] if len(e['loc']) == 1 else None)}"
            for e in exc.errors()
        )
        raise PolicyError(f"the policy file {path} is invalid: {problems}") from None
