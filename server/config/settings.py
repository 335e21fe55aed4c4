"""The server's settings, read from the environment once, at start-up, and passed in from there.

Nothing else in the project reads the environment: tests and the CLI build `Settings` directly.
"""

import contextlib
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from contracts.names import EntryName
from server.config.bounds import problem
from server.config.file import layered
from server.config.file_trust import UntrustedFile, require_trusted
from server.config.urls import split
from server.config.vault import VaultConfig

__all__ = [
    "BUNDLED_DATA",
    "OPENROUTER_BASE_URL",
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

_ENV_NAMES = {
    "ledger_path": "PLANNER_MCP_LEDGER",
    "data_dir": "PLANNER_MCP_DATA",
    "policy_path": "PLANNER_MCP_POLICY",
    "default_inventory": "PLANNER_MCP_INVENTORY",
    "max_document_bytes": "PLANNER_MCP_MAX_DOCUMENT_BYTES",
    "timeout_s": "PLANNER_MCP_LLM_TIMEOUT",
    "max_retries": "PLANNER_MCP_LLM_RETRIES",
    "max_tokens": "PLANNER_MCP_LLM_MAX_TOKENS",
    "structured_output": "PLANNER_MCP_LLM_STRUCTURED",
    "ledger_busy_timeout_s": "PLANNER_MCP_LEDGER_BUSY_TIMEOUT",
    "ledger_key_file": "PLANNER_MCP_LEDGER_KEY_FILE",
    "ledger_sync": "PLANNER_MCP_LEDGER_SYNC",
    "ledger_max_bytes": "PLANNER_MCP_LEDGER_MAX_MB",
    "host": "PLANNER_MCP_HTTP_HOST",
    "port": "PLANNER_MCP_HTTP_PORT",
    "max_connections": "PLANNER_MCP_HTTP_MAX_CONNECTIONS",
    "request_timeout_s": "PLANNER_MCP_HTTP_REQUEST_TIMEOUT",
}
"""So a validation error names the variable the user set, not our field."""

_VAULT_ENV = {
    "addr": "VAULT_ADDR",
    "token": "VAULT_TOKEN",
    "role_id": "VAULT_ROLE_ID",
    "secret_id": "VAULT_SECRET_ID",
    "approle_mount": "PLANNER_MCP_VAULT_APPROLE_MOUNT",
    "namespace": "VAULT_NAMESPACE",
    "cacert": "VAULT_CACERT",
    "capath": "VAULT_CAPATH",
    "mount": "PLANNER_MCP_VAULT_MOUNT",
    "timeout_s": "PLANNER_MCP_VAULT_TIMEOUT",
    "retries": "PLANNER_MCP_VAULT_RETRIES",
    "cache_ttl_s": "PLANNER_MCP_VAULT_CACHE_TTL",
}
_MAX_LEDGER_MB = 16 * 2**20
"""16 TiB: SQLite's own limit at its default page size; a bigger cap is no cap, and a typo."""
_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


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

    ledger_path: Path
    data_dir: Path = BUNDLED_DATA
    policy_path: Path | None = None
    llm: LLMConfig = LLMConfig()
    default_inventory: EntryName = "proxmox"
    max_document_bytes: int = Field(default=4 * 1024 * 1024, gt=0, le=2**30)
    ledger_busy_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    """How long a ledger write may wait for another process's lock before the call is refused."""
    ledger_key_file: Path | None = None
    """A file holding the key of the ledger's HMAC chain, kept outside the database (and its directory)."""
    ledger_sync: Literal["full", "normal"] = "full"
    """`normal` may lose the last calls recorded before a power failure; its use is recorded in the ledger."""
    ledger_max_bytes: int | None = Field(default=None, gt=0, le=_MAX_LEDGER_MB * 2**20)
    """A size cap: once reached, calls are refused as on a full disk, rather than filling the disk."""
    vault: VaultConfig | None = None
    """When set (VAULT_ADDR), docs and inventory come from Vault and PLANNER_MCP_DATA is not used."""
    http: HTTPConfig = HTTPConfig()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings from the environment, over the file PLANNER_MCP_CONFIG names (if set)."""
        try:
            env = layered(os.environ if env is None else env)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        in_file = f" (set in {env.file})" if env.file else ""

        def where(name: str) -> str:
            return in_file if env.sources.get(name) == "file" else ""

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, kind: type[int] | type[float]) -> int | float | None:
            raw = get(name)
            if raw is None:
                return None
            what = "an integer" if kind is int else "a finite number"
            try:
                value = kind(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise SettingsError(f"{name}={raw!r}{where(name)} is not {what}; set it to one or unset it.")
            return value

        vault = _vault_from_env(get, number, env)
        llm: dict[str, object] = {
            "key_from_vault": vault is not None and get("OPENAI_API_KEY") is None,
            "api_key": get("OPENAI_API_KEY"),
            "base_url": get("OPENAI_BASE_URL"),
            "model": get("PLANNER_MCP_MODEL"),
            "timeout_s": number("PLANNER_MCP_LLM_TIMEOUT", float),
            "max_retries": number("PLANNER_MCP_LLM_RETRIES", int),
            "max_tokens": number("PLANNER_MCP_LLM_MAX_TOKENS", int),
            "structured_output": (get("PLANNER_MCP_LLM_STRUCTURED") or "auto").lower(),
        }
        values: dict[str, object] = {
            "ledger_path": get("PLANNER_MCP_LEDGER") or default_ledger_path(env),
            "data_dir": get("PLANNER_MCP_DATA"),
            "policy_path": get("PLANNER_MCP_POLICY"),
            "default_inventory": get("PLANNER_MCP_INVENTORY"),
            "max_document_bytes": number("PLANNER_MCP_MAX_DOCUMENT_BYTES", int),
            "ledger_busy_timeout_s": number("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", float),
            "ledger_key_file": get("PLANNER_MCP_LEDGER_KEY_FILE"),
            "ledger_sync": (get("PLANNER_MCP_LEDGER_SYNC") or "full").lower(),
            "ledger_max_bytes": _megabytes(
                number("PLANNER_MCP_LEDGER_MAX_MB", float), where("PLANNER_MCP_LEDGER_MAX_MB")
            ),
            "vault": vault,
        }
        origins = get("PLANNER_MCP_HTTP_ALLOWED_ORIGINS")
        stateless = (get("PLANNER_MCP_HTTP_STATELESS") or "false").lower()
        if stateless not in _TRUE | _FALSE:
            raise SettingsError(f"PLANNER_MCP_HTTP_STATELESS={stateless!r}{where('PLANNER_MCP_HTTP_STATELESS')} is "
                                "not a boolean; set it to true or false.")  # fmt: skip
        http: dict[str, object] = {
            "host": get("PLANNER_MCP_HTTP_HOST"),
            "port": number("PLANNER_MCP_HTTP_PORT", int),
            "token": get("PLANNER_MCP_HTTP_TOKEN"),
            "oauth_issuer": get("PLANNER_MCP_OAUTH_ISSUER"),
            "oauth_audience": get("PLANNER_MCP_OAUTH_AUDIENCE"),
            "oauth_jwks_url": get("PLANNER_MCP_OAUTH_JWKS_URL"),
            "public_url": get("PLANNER_MCP_HTTP_PUBLIC_URL"),
            "allowed_origins": tuple(o.strip() for o in origins.split(",") if o.strip()) if origins else None,
            "stateless": stateless in _TRUE,
            "max_connections": number("PLANNER_MCP_HTTP_MAX_CONNECTIONS", int),
            "request_timeout_s": number("PLANNER_MCP_HTTP_REQUEST_TIMEOUT", float),
        }
        try:
            values["http"] = HTTPConfig(**{k: v for k, v in http.items() if v is not None})
            values["llm"] = LLMConfig(**{k: v for k, v in llm.items() if v is not None})
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise SettingsError(f"invalid settings: {_problems(exc, _ENV_NAMES, where)}") from None


def _vault_from_env(
    get: Callable[[str], str | None],
    number: Callable[[str, type[int] | type[float]], int | float | None],
    env: Mapping[str, str],
) -> VaultConfig | None:
    addr = get("VAULT_ADDR")
    if addr is None:
        return None
    skip = (get("VAULT_SKIP_VERIFY") or "false").lower()
    if skip not in _TRUE | _FALSE:
        raise SettingsError(f"VAULT_SKIP_VERIFY={skip!r} is not a boolean; set it to true or false, or unset it.")
    # The Vault CLI's token file, read by the auth code (not here) only when VAULT_TOKEN is not set.
    token_file = Path(env.get("HOME") or Path.home()) / ".vault-token"
    values: dict[str, object] = {
        "addr": addr,
        "token": get("VAULT_TOKEN"),
        "token_file": token_file,
        "role_id": get("VAULT_ROLE_ID"),
        "secret_id": get("VAULT_SECRET_ID"),
        "approle_mount": get("PLANNER_MCP_VAULT_APPROLE_MOUNT"),
        "namespace": get("VAULT_NAMESPACE"),
        "cacert": get("VAULT_CACERT"),
        "capath": get("VAULT_CAPATH"),
        "skip_verify": skip in _TRUE,
        "mount": get("PLANNER_MCP_VAULT_MOUNT"),
        "timeout_s": number("PLANNER_MCP_VAULT_TIMEOUT", float),
        "retries": number("PLANNER_MCP_VAULT_RETRIES", int),
        "cache_ttl_s": number("PLANNER_MCP_VAULT_CACHE_TTL", float),
    }
    try:
        config = VaultConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(f"invalid Vault settings: {_problems(exc, _VAULT_ENV, lambda name: '')}") from None
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


_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (Settings, LLMConfig, HTTPConfig, VaultConfig)
}


def _problems(exc: ValidationError, names: Mapping[str, str], where: Callable[[str], str]) -> str:
    """Each problem by the variable the user set, a number out of range with the range accepted; no value is
    repeated (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = names.get(field, field or exc.title.removesuffix("Config"))
        problems.append(f"{name}{where(name)}: {problem(error, _MODELS.get(exc.title), field)}")
    return "; ".join(problems)


def _megabytes(cap_mb: float | None, where: str) -> int | None:
    """PLANNER_MCP_LEDGER_MAX_MB in bytes, checked in the unit the user wrote."""
    if cap_mb is None:
        return None
    if not 0 < cap_mb <= _MAX_LEDGER_MB:
        raise SettingsError(
            f"PLANNER_MCP_LEDGER_MAX_MB{where}: out of range: accepted more than 0 and at most {_MAX_LEDGER_MB}"
        )
    return max(1, int(cap_mb * 2**20))


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
