"""The server's settings, read from the environment once, at start-up, and passed in from there.

Nothing else in the project reads the environment: tests and the CLI build `Settings` directly.
"""

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from contracts.names import EntryName
from ledger.storage import is_postgres_url
from server.config.bounds import problem
from server.config.file import layered
from server.config.file_trust import UntrustedFile, require_trusted
from server.config.telemetry import TelemetryConfig, otel_requested
from server.config.urls import split
from server.config.variables import MAX_LEDGER_MB, VARIABLES, Part
from server.config.vault import VaultConfig

__all__ = [
    "BUNDLED_DATA",
    "OPENROUTER_BASE_URL",
    "PART_MODELS",
    "HTTPConfig",
    "LLMConfig",
    "Settings",
    "SettingsError",
    "default_ledger_path",
]

BUNDLED_DATA = Path(__file__).parents[1] / "data"
"""The example data set shipped with the package, so the server works with no configuration."""


OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
"""Where a key read from Vault's `api-keys/openrouter` is used when OPENAI_BASE_URL is not set, as the seed did."""


class SettingsError(Exception):
    """A setting has a value the server cannot use; the message names the setting and the fix."""


class LLMConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """The whole call, retries and waits included: past it the call fails with LLM_TIMEOUT."""
    max_retries: int = Field(default=2, ge=0, le=10)
    max_tokens: int = Field(default=2000, gt=0, le=200_000)
    structured_output: Literal["auto", "off"] = "auto"
    """auto: ask for the reply's JSON schema (response_format), and stop asking if the endpoint refuses it."""
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    """Calls in a row that found the endpoint down (unreachable, timed out, 5xx past the retries) before calls
    fail fast."""
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    """How long calls fail fast once the breaker is open; then one call tries the endpoint again."""
    progress_interval_s: float = Field(default=1.0, gt=0)
    key_from_vault: bool = False
    """OPENAI_API_KEY is unset and Vault is configured: the key is read from Vault on first use."""

    @property
    def effective_base_url(self) -> str | None:
        if self.base_url is None and self.key_from_vault:
            return OPENROUTER_BASE_URL
        return self.base_url

    def secrets(self) -> list[str]:
        """Every credential this configuration holds: the key, and the password OPENAI_BASE_URL may hold."""
        credentials = split(self.base_url)[1] if self.base_url is not None else None
        held = [] if self.api_key is None else [self.api_key.get_secret_value()]
        return held if credentials is None else [*held, credentials[1]]

    def missing(self) -> list[str]:
        """What must still be set before an LLM can be called (a local endpoint needs no key)."""
        missing = []
        if self.api_key is None and self.base_url is None and not self.key_from_vault:
            missing.append("OPENAI_API_KEY (or OPENAI_BASE_URL for a local endpoint that needs no key)")
        if self.model is None:
            missing.append("PLANNER_MCP_MODEL")
        return missing


class HTTPConfig(BaseModel):
    """`serve --transport http`: who may call, from where, and how the server is reached."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    token: SecretStr | None = None
    """A static bearer token (PLANNER_MCP_HTTP_TOKEN); the alternative is OAuth below."""
    oauth_issuer: str | None = None
    oauth_audience: str | None = None
    oauth_jwks_url: str | None = None
    public_url: str | None = None
    """The URL clients reach the MCP endpoint at: the resource tokens are issued for (default http://host:port/mcp)."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed besides the server's own; any other Origin is refused (DNS rebinding)."""
    stateless: bool = False
    """No session kept between requests, so replicas behind a load balancer can each answer any request."""
    max_connections: int = Field(default=256, ge=1, le=1_000_000)
    """Open connections at most (and at most half the process's descriptors): past it, the connection that has
    waited longest for its request is closed to make room."""
    request_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    """How long a connection may take to deliver a request whole, headers and body, before it is closed."""

    @property
    def oauth(self) -> bool:
        return any((self.oauth_issuer, self.oauth_audience, self.oauth_jwks_url))

    @property
    def resource_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}/mcp"

    def problem(self) -> str | None:
        """Why HTTP cannot be served as configured, naming the settings to fix; None when it can."""
        if self.oauth and not all((self.oauth_issuer, self.oauth_audience, self.oauth_jwks_url)):
            return (
                "OAuth needs all of PLANNER_MCP_OAUTH_ISSUER, PLANNER_MCP_OAUTH_AUDIENCE and PLANNER_MCP_OAUTH_JWKS_URL"
            )
        if self.oauth and self.token is not None:
            return "set either PLANNER_MCP_HTTP_TOKEN or the PLANNER_MCP_OAUTH_* settings, not both"
        if not self.oauth and self.token is None:
            return (
                "HTTP needs a bearer token: set PLANNER_MCP_HTTP_TOKEN (e.g. `openssl rand -hex 32`), or "
                "PLANNER_MCP_OAUTH_ISSUER, PLANNER_MCP_OAUTH_AUDIENCE and PLANNER_MCP_OAUTH_JWKS_URL"
            )
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            return "PLANNER_MCP_HTTP_TOKEN is shorter than 16 characters; use `openssl rand -hex 32`"
        return None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ledger_path: Path | str
    """The ledger: a SQLite file (a `Path`), or a `postgresql://` URL shared by a fleet (see `ledger_url`)."""
    data_dir: Path = BUNDLED_DATA
    policy_path: Path | None = None
    agents_path: Path | None = None
    """An agents file: many agents, each with its policy and callers (instead of `policy_path`'s one agent)."""
    agent: str | None = Field(default=None, min_length=1, max_length=128)
    """The agent of the agents file that calls naming no caller act as (stdio, `planner-mcp call`)."""
    llm: LLMConfig = LLMConfig()
    default_inventory: EntryName = "proxmox"
    max_document_bytes: int = Field(default=4 * 1024 * 1024, gt=0, le=2**30)
    ledger_busy_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    """How long a ledger write may wait for another process's lock before the call is refused."""
    ledger_key_file: Path | None = None
    """A file holding the key of the ledger's HMAC chain, kept outside the database (and its directory)."""
    ledger_sync: Literal["full", "normal"] = "full"
    """`normal` may lose the last calls recorded before a power failure; its use is recorded in the ledger."""
    ledger_max_bytes: int | None = Field(default=None, gt=0, le=MAX_LEDGER_MB * 2**20)
    """A size cap: once reached, calls are refused as on a full disk, rather than filling the disk."""
    vault: VaultConfig | None = None
    """When set (VAULT_ADDR), docs and inventory come from Vault and PLANNER_MCP_DATA is not used."""
    http: HTTPConfig = HTTPConfig()
    telemetry: TelemetryConfig = TelemetryConfig()

    @field_validator("ledger_path", mode="after")
    @classmethod
    def _a_path_unless_a_url(cls, value: Path | str) -> Path | str:
        return value if isinstance(value, Path) or is_postgres_url(value) else Path(value)

    @property
    def ledger_url(self) -> str | None:
        """The PostgreSQL URL of a shared ledger, or None for a SQLite file."""
        return self.ledger_path if isinstance(self.ledger_path, str) else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings from the environment, over the file PLANNER_MCP_CONFIG names (if set)."""
        read = _Reading(os.environ if env is None else env)
        vault = _vault_from_env(read)
        llm = read.part("llm")
        llm["key_from_vault"] = vault is not None and "api_key" not in llm
        values = read.part("store", "policy", "ledger")
        values.setdefault("ledger_path", default_ledger_path(read.env))
        http = read.part("http")
        telemetry = read.part("telemetry")
        # OpenTelemetry's own variables are read by its SDK from the process environment, so only that counts.
        telemetry["otel"] = otel_requested(os.environ if env is None else env)
        try:
            values["http"] = HTTPConfig(**http)
            values["telemetry"] = TelemetryConfig(**telemetry)
            values["llm"] = LLMConfig(**llm)
            return cls(**values, vault=vault)
        except ValidationError as exc:
            raise SettingsError(f"invalid settings: {_problems(exc, read.where)}") from None


class _Reading:
    """The environment over the config file, read one declared variable at a time: a bad value stops start-up
    with a SettingsError naming the variable, and the file when it was set there."""

    def __init__(self, env: Mapping[str, str]) -> None:
        try:
            self.env = layered(env)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def where(self, name: str) -> str:
        return f" (set in {self.env.file})" if self.env.sources.get(name) == "file" else ""

    def raw(self, name: str) -> str | None:
        """The variable's text, or None when it is unset or blank."""
        return self.env.get(name, "").strip() or None

    def part(self, *parts: Part) -> dict[str, object]:
        """The fields the variables of `parts` set, parsed, read part by part in the order named: of two bad
        values, the first read is the one reported."""
        values: dict[str, object] = {}
        for part in parts:
            for variable in (v for v in VARIABLES if v.part == part):
                if (raw := self.raw(variable.name)) is None:
                    continue
                try:
                    values[variable.field] = variable.parse(raw, variable.name, self.where(variable.name))
                except ValueError as exc:
                    raise SettingsError(str(exc)) from None
        return values


def _vault_from_env(read: _Reading) -> VaultConfig | None:
    """Vault's settings, read only when VAULT_ADDR is set: without it none of them is used."""
    if read.raw("VAULT_ADDR") is None:
        return None
    values = read.part("vault")
    # The Vault CLI's token file, read by the auth code (not here) only when VAULT_TOKEN is not set.
    values["token_file"] = Path(read.env.get("HOME") or Path.home()) / ".vault-token"
    try:
        config = VaultConfig(**values)
    except ValidationError as exc:
        raise SettingsError(f"invalid Vault settings: {_problems(exc, lambda name: '')}") from None
    _trust_ca(config)
    return config


def _trust_ca(config: VaultConfig) -> None:
    """Whoever can change the CA Vault's certificate is checked against can stand in for Vault, and take its
    token: the bundle, or the folder of certificates and each one in it, must be as trustworthy as the config."""
    cas = [("VAULT_CACERT", config.cacert)] if config.cacert is not None else []
    if config.capath is not None:
        cas.append(("VAULT_CAPATH", config.capath))
        with contextlib.suppress(OSError):  # a folder the server cannot list fails at the first TLS handshake
            cas += [("VAULT_CAPATH", entry) for entry in sorted(config.capath.iterdir())]
    try:
        for name, path in cas:
            require_trusted(path, name)
    except UntrustedFile as exc:
        raise SettingsError(str(exc)) from None


PART_MODELS: dict[str, type[BaseModel]] = {
    "llm": LLMConfig,
    "http": HTTPConfig,
    "vault": VaultConfig,
    "telemetry": TelemetryConfig,
}
"""The parts with a model of their own, held in the Settings field of the same name; the variables of the other
parts (ledger, store, policy) set fields of Settings itself."""

_MODELS: dict[str, type[BaseModel]] = {"Settings": Settings} | {model.__name__: model for model in PART_MODELS.values()}

_NAMES: dict[str, dict[str, str]] = {
    title: {v.field: v.name for v in VARIABLES if PART_MODELS.get(v.part, Settings) is model}
    for title, model in _MODELS.items()
}
"""Model, then field: the variable that sets it, so a validation error names what the user set, not our field."""


def _problems(exc: ValidationError, where: Callable[[str], str]) -> str:
    """Each problem by the variable the user set, a number out of range with the range accepted; no value is
    repeated (it may be a secret)."""
    names = _NAMES.get(exc.title, {})
    problems = []
    for error in exc.errors(include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = names.get(field, field or exc.title.removesuffix("Config"))
        problems.append(f"{name}{where(name)}: {problem(error, _MODELS.get(exc.title), field)}")
    return "; ".join(problems)


def default_ledger_path(env: Mapping[str, str]) -> Path:
    """A per-user data directory, by each platform's convention."""
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "planner-mcp" / "ledger.db"
