"""The configuration file named by PLANNER_MCP_CONFIG: the environment's own names, in TOML; the environment wins.

    # /etc/planner-mcp.toml
    PLANNER_MCP_LEDGER = "/var/lib/planner-mcp/ledger.db"
    OPENAI_BASE_URL = "http://localhost:11434/v1"
    PLANNER_MCP_MODEL = "llama3.1"
    PLANNER_MCP_LLM_TIMEOUT = 60

One set of names for both places means a setting is documented once, and a value moves from a host's `env`
block to the file (or back) unchanged. A name the server does not know is an error, with the nearest
known name, so a typo is not silently ignored. The file decides where secrets are sent, so it is refused,
whatever it holds, when anyone but its user or root could change it (`server.config.file_trust`).
"""

import difflib
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from server.config.file_trust import require_trusted

__all__ = ["CONFIG_VARIABLE", "SECRETS", "VARIABLES", "Layered", "layered"]

CONFIG_VARIABLE = "PLANNER_MCP_CONFIG"

VARIABLES: dict[str, str] = {
    "PLANNER_MCP_LEDGER": "the audit ledger (SQLite file)",
    "PLANNER_MCP_LEDGER_KEY_FILE": "a file holding the ledger chain's HMAC key",
    "PLANNER_MCP_LEDGER_SYNC": "full, or normal (may lose the last calls on a power failure)",
    "PLANNER_MCP_LEDGER_BUSY_TIMEOUT": "seconds a ledger write waits for another process's lock",
    "PLANNER_MCP_LEDGER_MAX_MB": "a size cap for the ledger, in MB",
    "PLANNER_MCP_DATA": "the file store: a directory with docs/ and inventory/",
    "PLANNER_MCP_INVENTORY": "the default inventory",
    "PLANNER_MCP_POLICY": "the policy file (TOML)",
    "PLANNER_MCP_MAX_DOCUMENT_BYTES": "the largest store entry served",
    "OPENAI_API_KEY": "the LLM endpoint's key",
    "OPENAI_BASE_URL": "an OpenAI-compatible endpoint",
    "PLANNER_MCP_MODEL": "the model to ask",
    "PLANNER_MCP_LLM_TIMEOUT": "seconds for a whole LLM call",
    "PLANNER_MCP_LLM_RETRIES": "retries after a 429, a 5xx or a dropped connection",
    "PLANNER_MCP_LLM_MAX_TOKENS": "the most tokens a reply may have",
    "PLANNER_MCP_LLM_STRUCTURED": "auto or off: ask for the reply's JSON schema",
    "VAULT_ADDR": "Vault's address; when set, docs and inventory come from Vault",
    "VAULT_TOKEN": "a Vault token",
    "VAULT_ROLE_ID": "AppRole role id",
    "VAULT_SECRET_ID": "AppRole secret id",
    "VAULT_NAMESPACE": "Vault Enterprise namespace",
    "VAULT_CACERT": "a CA bundle for Vault's TLS certificate",
    "VAULT_CAPATH": "a directory of CA certificates",
    "VAULT_SKIP_VERIFY": "true turns TLS verification off (recorded in every ledger row)",
    "PLANNER_MCP_VAULT_MOUNT": "the KV v2 mount",
    "PLANNER_MCP_VAULT_APPROLE_MOUNT": "the AppRole auth mount",
    "PLANNER_MCP_VAULT_TIMEOUT": "seconds per Vault request",
    "PLANNER_MCP_VAULT_RETRIES": "retries after a Vault 5xx or timeout",
    "PLANNER_MCP_VAULT_CACHE_TTL": "seconds an entry is served from memory",
    "PLANNER_MCP_HTTP_HOST": "the address `serve --transport http` binds",
    "PLANNER_MCP_HTTP_PORT": "the port `serve --transport http` listens on",
    "PLANNER_MCP_HTTP_TOKEN": "the static bearer token HTTP clients must send",
    "PLANNER_MCP_OAUTH_ISSUER": "OAuth: the issuer (iss) access tokens must come from",
    "PLANNER_MCP_OAUTH_AUDIENCE": "OAuth: the audience (aud) access tokens must be for",
    "PLANNER_MCP_OAUTH_JWKS_URL": "OAuth: where the issuer's signing keys (JWKS) are published",
    "PLANNER_MCP_HTTP_PUBLIC_URL": "the URL clients reach the MCP endpoint at (the token's resource)",
    "PLANNER_MCP_HTTP_ALLOWED_ORIGINS": "browser origins allowed besides the server's own, comma-separated",
    "PLANNER_MCP_HTTP_STATELESS": "true: keep no session between requests (replicas behind a load balancer)",
    "PLANNER_MCP_HTTP_MAX_CONNECTIONS": "HTTP connections open at most (and at most half of `ulimit -n`)",
    "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "seconds an HTTP connection may take to send a whole request",
}
"""Every setting, by the name both the environment and the file use."""

SECRETS = frozenset({"OPENAI_API_KEY", "VAULT_TOKEN", "VAULT_SECRET_ID", "PLANNER_MCP_HTTP_TOKEN"})


class Layered(dict[str, str]):
    """The environment with the file's values beneath it, and where each value came from."""

    def __init__(self, values: Mapping[str, str], sources: Mapping[str, str], file: Path | None) -> None:
        super().__init__(values)
        self.sources = dict(sources)
        self.file = file


def layered(env: Mapping[str, str]) -> Layered:
    """`env` over the file PLANNER_MCP_CONFIG names (if any). Raises ValueError naming the file and the fix."""
    sources = {name: "env" for name in VARIABLES if env.get(name, "").strip()}
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
        if name not in VARIABLES:
            near = difflib.get_close_matches(name.upper(), VARIABLES, n=1)
            hint = f"; did you mean {near[0]}?" if near else "; the settings are listed by `planner-mcp config show`."
            raise ValueError(f"{where}: {name} is not a setting{hint}")
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            raise ValueError(f"{where}: {name} must be a string, a number or a boolean, not a {type(value).__name__}.")
    if SECRETS & values.keys() and mode & (stat.S_IRWXG | stat.S_IRWXO):
        secrets = ", ".join(sorted(SECRETS & values.keys()))
        raise ValueError(f"{where} holds {secrets} and other users can read it; `chmod 600 {path}`.")
    return values
