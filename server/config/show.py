"""`planner-mcp config show`: every setting's effective value and where it came from, secrets masked.

The output is TOML a user can copy into PLANNER_MCP_CONFIG (masked secrets aside): one line per setting,
its source in a comment (env, the file, or the default).
"""

import json
from pathlib import Path
from typing import Any

from server.config.file import Layered
from server.config.settings import PART_MODELS, Settings
from server.config.urls import shown
from server.config.variables import VARIABLES, Variable

__all__ = ["effective", "render"]

MASK = "********"


def _value(settings: Settings, variable: Variable) -> Any:
    """What the setting holds, in the variable's own terms, or None when unset (all of Vault's, without Vault)."""
    model = getattr(settings, variable.part) if variable.part in PART_MODELS else settings
    if model is None:
        return None
    return variable.shown(model) if variable.shown is not None else getattr(model, variable.field)


def effective(settings: Settings, env: Layered) -> list[dict[str, Any]]:
    """One entry per setting: name, value (secrets masked, paths as text, None when unset), source, meaning."""
    entries = []
    for variable in VARIABLES:
        name, value = variable.name, _value(settings, variable)
        if variable.secret and value is not None:
            value = MASK
        elif variable.url and value is not None:
            value = ",".join(shown(url) for url in str(value).split(","))
        elif isinstance(value, Path):
            value = str(value)
        source = env.sources.get(name, "default")
        if source == "file":
            source = f"file {env.file}"
        entries.append({"name": name, "value": value, "source": source, "meaning": variable.meaning})
    return entries


def render(settings: Settings, env: Layered, *, as_json: bool) -> str:
    entries = effective(settings, env)
    if as_json:
        return json.dumps({"config_file": str(env.file) if env.file else None, "settings": entries}, indent=2)
    lines = [
        "# planner-mcp: the effective configuration (environment over "
        + (f"{env.file}" if env.file else "no PLANNER_MCP_CONFIG file")
        + " over defaults; secrets masked)"
    ]
    for entry in entries:
        name, value = entry["name"], entry["value"]
        if value is None:
            line = f"# {name} (not set)"
        else:
            line = f"{name} = {str(value).lower() if isinstance(value, bool) else json.dumps(value)}"
        lines.append(f"{line:<72} # {entry['source']}: {entry['meaning']}")
    return "\n".join(lines)
