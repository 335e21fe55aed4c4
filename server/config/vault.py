"""How to reach Vault and prove who we are, by Vault's own conventions (VAULT_ADDR, VAULT_TOKEN, ...)."""

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from server.config.urls import shown, split

__all__ = ["AuthMethod", "VaultConfig"]

AuthMethod = Literal["token", "token-file", "approle"]

_MOUNT = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$")


class VaultConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    addr: str
    token: SecretStr | None = None
    token_file: Path | None = None
    """The Vault CLI's token file (`~/.vault-token`), used when VAULT_TOKEN is not set."""
    role_id: str | None = None
    secret_id: SecretStr | None = None
    approle_mount: str = "approle"
    namespace: str | None = None
    cacert: Path | None = None
    capath: Path | None = None
    skip_verify: bool = False
    mount: str = "secret"
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    """Per request to Vault; a call makes at most `retries + 1` attempts."""
    retries: int = Field(default=2, ge=0, le=10)
    cache_ttl_s: float = Field(default=30.0, ge=0, le=86400)
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown_s: float = Field(default=10.0, gt=0, le=3600)
    llm_key_name: str = "openrouter"
    """The entry under `api-keys/` holding the LLM key (field `api_key`), read when OPENAI_API_KEY is unset."""

    @field_validator("addr")
    @classmethod
    def _addr_is_a_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must be a URL such as https://vault.example.com:8200")
        return value.rstrip("/")

    @field_validator("mount", "approle_mount")
    @classmethod
    def _mount_is_a_plain_path(cls, value: str) -> str:
        value = value.strip("/")
        if not _MOUNT.fullmatch(value):
            raise ValueError("must be a mount path such as `secret` (letters, digits, '-', '_' and '/')")
        return value

    @field_validator("cacert", "capath")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError(f"{value} does not exist")
        return value

    @model_validator(mode="after")
    def _approle_is_complete(self) -> "VaultConfig":
        if (self.role_id is None) != (self.secret_id is None):
            raise ValueError("AppRole needs both VAULT_ROLE_ID and VAULT_SECRET_ID")
        return self

    @property
    def verify(self) -> bool | str:
        """What `requests` verifies against: Vault's rule is that VAULT_CACERT wins over VAULT_CAPATH."""
        if self.skip_verify:
            return False
        if self.cacert is not None:
            return str(self.cacert)
        if self.capath is not None:
            return str(self.capath)
        return True

    @property
    def attempt_s(self) -> float:
        """The most one attempt may take, every request in it (a login, a renewal, the read) sent and read."""
        return self.timeout_s * 3 + 1

    @property
    def host(self) -> str:
        """Vault's host and port, as messages name it (never the user and password VAULT_ADDR may hold)."""
        return urlparse(shown(self.addr)).netloc

    def auth_methods(self) -> list[AuthMethod]:
        """The ways to authenticate, in Vault's order of precedence."""
        methods: list[AuthMethod] = []
        if self.token is not None:
            methods.append("token")
        elif self.token_file is not None:
            methods.append("token-file")
        if self.role_id is not None:
            methods.append("approle")
        return methods

    def secrets(self) -> list[str]:
        """Every credential this configuration holds, the password in VAULT_ADDR included."""
        _, credentials = split(self.addr)
        held = [s.get_secret_value() for s in (self.token, self.secret_id) if s is not None]
        return held if credentials is None else [*held, credentials[1]]
