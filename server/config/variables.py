"""Every setting, declared once: its variable, how its text is read, what it means, and what it configures.

The environment reading (`Settings.from_env`), the names the config file accepts (`server.config.file`), the
rows `planner-mcp config show` prints and the README's tables of variables (by a test) all come from
`VARIABLES`. Adding a setting is one `Variable` here and the field it sets on its part's model; the tests then
ask for its row in the README and a value in the round trip through `config show` (tests/server/test_variables.py).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ledger.storage import describe, is_postgres_url
from server.config.telemetry import listen_address

__all__ = [
    "MAX_LEDGER_MB",
    "VARIABLES",
    "Parse",
    "Part",
    "Variable",
    "integer",
    "lowered",
    "megabytes",
    "number",
    "origins",
    "switch",
    "text",
]

Part = Literal["ledger", "store", "policy", "llm", "vault", "http", "telemetry"]
"""The part of the server a setting configures. llm, vault, http and telemetry each have a model of their own
(`Settings.llm`, `.vault`, `.http`, `.telemetry`); the others set fields of `Settings` itself."""

Parse = Callable[[str, str, str], object]
"""(text, variable, where it was set) -> the value its field takes; raises ValueError with the message a user reads.
The text is stripped and never empty: an empty variable is an unset one."""

MAX_LEDGER_MB = 16 * 2**20
"""16 TiB: SQLite's own limit at its default page size; a bigger cap is no cap, and a typo."""

_TRUE = frozenset({"1", "true", "t", "yes"})
_FALSE = frozenset({"0", "false", "f", "no"})


def text(raw: str, name: str, where: str) -> str:
    return raw


def lowered(raw: str, name: str, where: str) -> str:
    """A choice, in any case (`OFF` is `off`); the field's Literal says which words are choices."""
    return raw.lower()


def _finite(raw: str, name: str, where: str, kind: type[int] | type[float]) -> float:
    what = "an integer" if kind is int else "a finite number"
    try:
        value = kind(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{name}={raw!r}{where} is not {what}; set it to one or unset it.")
    return value


def integer(raw: str, name: str, where: str) -> int:
    return int(_finite(raw, name, where, int))


def number(raw: str, name: str, where: str) -> float:
    """Finite: NaN and infinity parse as floats, and would pass any bound a field declares."""
    return _finite(raw, name, where, float)


def switch(fix: str, *, name_the_file: bool = True) -> Parse:
    """A boolean written as true/false, yes/no, t/f or 1/0, refused otherwise with `fix`. VAULT_SKIP_VERIFY's
    message has never named the config file (`name_the_file=False` keeps it as it was)."""

    def parse(raw: str, name: str, where: str) -> bool:
        value = raw.lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"{name}={value!r}{where if name_the_file else ''} is not a boolean; {fix}.")
        return value in _TRUE

    return parse


def origins(raw: str, name: str, where: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip())


def megabytes(raw: str, name: str, where: str) -> int:
    """Bytes, checked in the unit the user wrote (MB), where the field's own bound would be in bytes."""
    cap_mb = number(raw, name, where)
    if not 0 < cap_mb <= MAX_LEDGER_MB:
        raise ValueError(f"{name}{where}: out of range: accepted more than 0 and at most {MAX_LEDGER_MB}")
    return max(1, int(cap_mb * 2**20))


def ledger_location(raw: str, name: str, where: str) -> Path | str:
    """A SQLite file's path, or a PostgreSQL URL (libpq's: `postgresql://` or `postgres://`)."""
    if is_postgres_url(raw):
        return raw
    scheme, sep, _ = raw.partition("://")
    if sep and scheme.isalnum():
        raise ValueError(
            f"{name}{where}: {scheme}:// is not a ledger this server can use; give a file path or a postgresql:// URL."
        )
    return Path(raw)


@dataclass(frozen=True)
class Variable:
    name: str
    """The environment variable, and the same name in the config file."""
    part: Part
    field: str
    """The field it sets on its part's model (a field's range and default are declared there, once)."""
    meaning: str
    """One line, as `config show` prints it."""
    parse: Parse = text
    secret: bool = False
    """Masked by `config show`; a config file holding it must be private to its owner."""
    url: bool = False
    """A URL (or comma-separated URLs): `config show` prints it without the user and password it may hold."""
    shown: Callable[[Any], object] | None = None
    """What `config show` prints, from the part's model, when not the field itself."""


_LEDGER: tuple[Variable, ...] = (
    Variable("PLANNER_MCP_LEDGER", "ledger", "ledger_path", "the audit ledger: a SQLite file, or a postgresql:// URL",
        ledger_location, shown=lambda s: describe(s.ledger_path)),
    Variable("PLANNER_MCP_LEDGER_KEY_FILE", "ledger", "ledger_key_file", "a file holding the ledger chain's HMAC key"),
    Variable("PLANNER_MCP_LEDGER_SYNC", "ledger", "ledger_sync",
        "full, or normal (may lose the last calls on a power failure)", lowered),
    Variable("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "ledger", "ledger_busy_timeout_s",
        "seconds a ledger write waits for another process's lock", number),
    Variable("PLANNER_MCP_LEDGER_MAX_MB", "ledger", "ledger_max_bytes", "a size cap for the ledger, in MB", megabytes,
        shown=lambda s: None if s.ledger_max_bytes is None else s.ledger_max_bytes / 2**20),
)  # fmt: skip
_STORE: tuple[Variable, ...] = (
    Variable("PLANNER_MCP_DATA", "store", "data_dir", "the file store: a directory with docs/ and inventory/",
        shown=lambda s: s.data_dir if s.vault is None else None),
    Variable("PLANNER_MCP_INVENTORY", "store", "default_inventory", "the default inventory"),
    Variable("PLANNER_MCP_POLICY", "policy", "policy_path", "the policy file (TOML)"),
    Variable("PLANNER_MCP_AGENTS", "policy", "agents_path",
        "the agents file (TOML): many agents, each with its policy and the callers that act as it"),
    Variable("PLANNER_MCP_AGENT", "policy", "agent", "the agent of the agents file that stdio and `call` run as"),
    Variable("PLANNER_MCP_MAX_DOCUMENT_BYTES", "store", "max_document_bytes", "the largest store entry served",
        integer),
)  # fmt: skip
_LLM: tuple[Variable, ...] = (
    Variable("OPENAI_API_KEY", "llm", "api_key", "the LLM endpoint's key", secret=True),
    Variable("OPENAI_BASE_URL", "llm", "base_url", "an OpenAI-compatible endpoint", url=True,
        shown=lambda llm: llm.effective_base_url),
    Variable("PLANNER_MCP_MODEL", "llm", "model", "the model to ask"),
    Variable("PLANNER_MCP_LLM_TIMEOUT", "llm", "timeout_s", "seconds for a whole LLM call", number),
    Variable("PLANNER_MCP_LLM_RETRIES", "llm", "max_retries", "retries after a 429, a 5xx or a dropped connection",
        integer),
    Variable("PLANNER_MCP_LLM_MAX_TOKENS", "llm", "max_tokens", "the most tokens a reply may have", integer),
    Variable("PLANNER_MCP_LLM_STRUCTURED", "llm", "structured_output", "auto or off: ask for the reply's JSON schema",
        lowered),
    Variable("PLANNER_MCP_LLM_BREAKER_FAILURES", "llm", "breaker_failures",
        "LLM calls in a row that find the endpoint down before calls fail fast", integer),
    Variable("PLANNER_MCP_LLM_BREAKER_COOLDOWN", "llm", "breaker_cooldown_s",
        "seconds calls fail fast once the LLM breaker is open", number),
)  # fmt: skip
_VAULT: tuple[Variable, ...] = (
    Variable("VAULT_ADDR", "vault", "addr", "Vault's address; when set, docs and inventory come from Vault", url=True),
    Variable("VAULT_TOKEN", "vault", "token", "a Vault token", secret=True),
    Variable("VAULT_ROLE_ID", "vault", "role_id", "AppRole role id"),
    Variable("VAULT_SECRET_ID", "vault", "secret_id", "AppRole secret id", secret=True),
    Variable("VAULT_NAMESPACE", "vault", "namespace", "Vault Enterprise namespace"),
    Variable("VAULT_CACERT", "vault", "cacert", "a CA bundle for Vault's TLS certificate"),
    Variable("VAULT_CAPATH", "vault", "capath", "a directory of CA certificates"),
    Variable("VAULT_SKIP_VERIFY", "vault", "skip_verify",
        "true turns TLS verification off (recorded in every ledger row)",
        switch("set it to true or false, or unset it", name_the_file=False)),
    Variable("PLANNER_MCP_VAULT_MOUNT", "vault", "mount", "the KV v2 mount"),
    Variable("PLANNER_MCP_VAULT_APPROLE_MOUNT", "vault", "approle_mount", "the AppRole auth mount"),
    Variable("PLANNER_MCP_VAULT_TIMEOUT", "vault", "timeout_s", "seconds per Vault request", number),
    Variable("PLANNER_MCP_VAULT_RETRIES", "vault", "retries", "retries after a Vault 5xx or timeout", integer),
    Variable("PLANNER_MCP_VAULT_CACHE_TTL", "vault", "cache_ttl_s", "seconds an entry is served from memory", number),
)  # fmt: skip
_HTTP: tuple[Variable, ...] = (
    Variable("PLANNER_MCP_HTTP_HOST", "http", "host", "the address `serve --transport http` binds"),
    Variable("PLANNER_MCP_HTTP_PORT", "http", "port", "the port `serve --transport http` listens on", integer),
    Variable("PLANNER_MCP_HTTP_TOKEN", "http", "token", "the static bearer token HTTP clients must send", secret=True),
    Variable("PLANNER_MCP_OAUTH_ISSUER", "http", "oauth_issuer", "OAuth: the issuer (iss) access tokens must come from",
        url=True),
    Variable("PLANNER_MCP_OAUTH_AUDIENCE", "http", "oauth_audience",
        "OAuth: the audience (aud) access tokens must be for"),
    Variable("PLANNER_MCP_OAUTH_JWKS_URL", "http", "oauth_jwks_url",
        "OAuth: where the issuer's signing keys (JWKS) are published", url=True),
    Variable("PLANNER_MCP_HTTP_PUBLIC_URL", "http", "public_url",
        "the URL clients reach the MCP endpoint at (the token's resource)", url=True,
        shown=lambda http: http.resource_url),
    Variable("PLANNER_MCP_HTTP_ALLOWED_ORIGINS", "http", "allowed_origins",
        "browser origins allowed besides the server's own, comma-separated", origins, url=True,
        shown=lambda http: ",".join(http.allowed_origins) or None),
    Variable("PLANNER_MCP_HTTP_STATELESS", "http", "stateless",
        "true: keep no session between requests (replicas behind a load balancer)",
        switch("set it to true or false")),
    Variable("PLANNER_MCP_HTTP_MAX_CONNECTIONS", "http", "max_connections",
        "HTTP connections open at most (and at most half of `ulimit -n`)", integer),
    Variable("PLANNER_MCP_HTTP_REQUEST_TIMEOUT", "http", "request_timeout_s",
        "seconds an HTTP connection may take to send a whole request", number),
)  # fmt: skip

_TELEMETRY: tuple[Variable, ...] = (
    Variable("PLANNER_MCP_METRICS_PORT", "telemetry", "metrics",
        "Prometheus metrics at /metrics on this port (loopback), or HOST:PORT", listen_address,
        shown=lambda t: None if t.metrics is None else f"{t.metrics[0]}:{t.metrics[1]}"),
)  # fmt: skip

VARIABLES: tuple[Variable, ...] = (*_LEDGER, *_STORE, *_LLM, *_VAULT, *_HTTP, *_TELEMETRY)
"""Every setting, in the order `config show` prints them."""
