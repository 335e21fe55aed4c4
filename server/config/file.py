"""The configuration file named by PLANNER_MCP_CONFIG: the environment's own names, in TOML; the environment wins.

    # /etc/planner-mcp.toml
    PLANNER_MCP_LEDGER = "/var/lib/planner-mcp/ledger.db"
    OPENAI_BASE_URL = "http://localhost:11434/v1"
    PLANNER_MCP_MODEL = "llama3.1"
    PLANNER_MCP_LLM_TIMEOUT = 60

One set of names for both places, declared once (`server.config.variables`), means a value moves from a host's
`env` block to the file (or back) unchanged. A name the server does not know is an error, with the nearest
known name, so a typo is not silently ignored. The file decides where secrets are sent, so it is refused,
whatever it holds, when anyone but its user or root could change it (`server.config.file_trust`).
"""

import difflib
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from server.config.file_trust import require_trusted
from server.config.variables import VARIABLES

__all__ = ["CONFIG_VARIABLE", "Layered", "layered"]

CONFIG_VARIABLE = "PLANNER_MCP_CONFIG"

_NAMES = tuple(variable.name for variable in VARIABLES)
"""The names a file may set: every declared setting's, and no other."""
_SECRETS = frozenset(variable.name for variable in VARIABLES if variable.secret)


class Layered(dict[str, str]):
    """The environment with the file's values beneath it, and where each value came from."""

    def __init__(self, values: Mapping[str, str], sources: Mapping[str, str], file: Path | None) -> None:
        super().__init__(values)
        self.sources = dict(sources)
        self.file = file


def layered(env: Mapping[str, str]) -> Layered:
    """`env` over the file PLANNER_MCP_CONFIG names (if any). Raises ValueError naming the file and the fix."""
    sources = {name: "env" for name in _NAMES if env.get(name, "").strip()}
    raw = env.get(CONFIG_VARIABLE, "").strip()
    if not raw:
        return Layered(env, sources, None)
    path = Path(raw).expanduser()
    from_file = _read(path)
    merged = dict(env)
    for name, value in from_file.items():
        if not env.get(name, "").strip():
            merged[name] = value
            sources[name] = "file"
    return Layered(merged, sources, path)


def _read(path: Path) -> dict[str, str]:
    where = f"{CONFIG_VARIABLE}: {path}"
    require_trusted(path, CONFIG_VARIABLE)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"{where} cannot be read ({exc.strerror}); fix the path or unset {CONFIG_VARIABLE}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} is not valid TOML: {exc}.") from None
    values = {}
    for name, value in data.items():
        if name not in _NAMES:
            near = difflib.get_close_matches(name.upper(), _NAMES, n=1)
            hint = f"; did you mean {near[0]}?" if near else "; the settings are listed by `planner-mcp config show`."
            raise ValueError(f"{where}: {name} is not a setting{hint}")
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            raise ValueError(f"{where}: {name} must be a string, a number or a boolean, not a {type(value).__name__}.")
    if _SECRETS & values.keys() and mode & (stat.S_IRWXG | stat.S_IRWXO):
        secrets = ", ".join(sorted(_SECRETS & values.keys()))
        raise ValueError(f"{where} holds {secrets} and other users can read it; `chmod 600 {path}`.")
    return values
