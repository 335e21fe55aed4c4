"""`planner-mcp config show`: every setting's effective value and where it came from, secrets masked.

The output is TOML a user can copy into PLANNER_MCP_CONFIG (masked secrets aside): one line per setting,
its source in a comment (env, the file, or the default).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.config.file import SECRETS, VARIABLES, Layered
from server.config.settings import Settings
from server.config.urls import shown

__all__ = ["effective", "render"]

MASK = "********"

_URLS = frozenset({
    "OPENAI_BASE_URL", "VAULT_ADDR", "PLANNER_MCP_OAUTH_ISSUER", "PLANNER_MCP_OAUTH_JWKS_URL",
    "PLANNER_MCP_HTTP_PUBLIC_URL", "PLANNER_MCP_HTTP_ALLOWED_ORIGINS",
})  # fmt: skip
"""Settings holding URLs (the origins, a comma-separated list of them): shown without a user or password."""


def _vault(attribute: str) -> Callable[[Settings], Any]:
    return lambda s: getattr(s.vault, attribute) if s.vault is not None else None


_VALUES: dict[str, Callable[[Settings], Any]] = {
    "PLANNER_MCP_LEDGER": lambda s: s.ledger_path,
    "PLANNER_MCP_LEDGER_KEY_FILE": lambda s: s.ledger_key_file,
    "PLANNER_MCP_LEDGER_SYNC": lambda s: s.ledger_sync,
    "PLANNER_MCP_LEDGER_BUSY_TIMEOUT": lambda s: s.ledger_busy_timeout_s,
    "PLANNER_MCP_LEDGER_MAX_MB": lambda s: None if s.ledger_max_bytes is None else s.ledger_max_bytes / 2**20,
    "PLANNER_MCP_DATA": lambda s: s.data_dir if s.vault is None else None,
    "PLANNER_MCP_INVENTORY": lambda s: s.default_inventory,
    "PLANNER_MCP_POLICY": lambda s: s.policy_path,
    "PLANNER_MCP_MAX_DOCUMENT_BYTES": lambda s: s.max_document_bytes,
    "OPENAI_API_KEY": lambda s: s.llm.api_key,
    "OPENAI_BASE_URL": lambda s: s.llm.effective_base_url,
    "PLANNER_MCP_MODEL": lambda s: s.llm.model,
    "PLANNER_MCP_LLM_TIMEOUT": lambda s: s.llm.timeout_s,
    "PLANNER_MCP_LLM_RETRIES": lambda s: s.llm.max_retries,
    "PLANNER_MCP_LLM_MAX_TOKENS": lambda s: s.llm.max_tokens,
    "PLANNER_MCP_LLM_STRUCTURED": lambda s: s.llm.structured_output,
    "VAULT_ADDR": _vault("addr"),
    "VAULT_TOKEN": _vault("token"),
    "VAULT_ROLE_ID": _vault("role_id"),
    "VAULT_SECRET_ID": _vault("secret_id"),
    "VAULT_NAMESPACE": _vault("namespace"),
    "VAULT_CACERT": _vault("cacert"),
    "VAULT_CAPATH": _vault("capath"),
    "VAULT_SKIP_VERIFY": _vault("skip_verify"),
    "PLANNER_MCP_VAULT_MOUNT": _vault("mount"),
    "PLANNER_MCP_VAULT_APPROLE_MOUNT": _vault("approle_mount"),
    "PLANNER_MCP_VAULT_TIMEOUT": _vault("timeout_s"),
    "PLANNER_MCP_VAULT_RETRIES": _vault("retries"),
    "PLANNER_MCP_VAULT_CACHE_TTL": _vault("cache_ttl_s"),
    "PLANNER_MCP_HTTP_HOST": lambda s: s.http.host,
    "PLANNER_MCP_HTTP_PORT": lambda s: s.http.port,
    "PLANNER_MCP_HTTP_TOKEN": lambda s: s.http.token,
    "PLANNER_MCP_OAUTH_ISSUER": lambda s: s.http.oauth_issuer,
    "PLANNER_MCP_OAUTH_AUDIENCE": lambda s: s.http.oauth_audience,
    "PLANNER_MCP_OAUTH_JWKS_URL": lambda s: s.http.oauth_jwks_url,
    "PLANNER_MCP_HTTP_PUBLIC_URL": lambda s: s.http.resource_url,
    "PLANNER_MCP_HTTP_ALLOWED_ORIGINS": lambda s: ",".join(s.http.allowed_origins) or None,
    "PLANNER_MCP_HTTP_STATELESS": lambda s: s.http.stateless,
    "PLANNER_MCP_HTTP_MAX_CONNECTIONS": lambda s: s.http.max_connections,
    "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": lambda s: s.http.request_timeout_s,
}


def effective(settings: Settings, env: Layered) -> list[dict[str, Any]]:
    """One entry per setting: name, value (secrets masked, paths as text, None when unset), source, meaning."""
    entries = []
    for name, meaning in VARIABLES.items():
        value = _VALUES[name](settings)
        if name in SECRETS and value is not None:
            value = MASK
        elif name in _URLS and value is not None:
            value = ",".join(shown(url) for url in str(value).split(","))
        elif isinstance(value, Path):
            value = str(value)
        source = env.sources.get(name, "default")
        if source == "file":
            source = f"file {env.file}"
        entries.append({"name": name, "value": value, "source": source, "meaning": meaning})
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
