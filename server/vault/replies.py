"""Vault's answers, checked for the shape this server relies on before any of it is used.

Whatever answers at VAULT_ADDR may be a proxy, another service or a Vault that lies: a body that is not JSON,
`data: null`, a version that is a string carrying the token, a TTL of NaN or a list of keys that holds objects.
Each is a VAULT_ERROR that says what was wrong, never echoing the value (it may be a secret), instead of a
crash deep inside a tool. Numbers are bounded and strings kept only in a bounded, printable form.
"""

import re
from dataclasses import dataclass
from typing import Any

from contracts import ErrorKind
from server.config.vault import VaultConfig
from server.vault.errors import VaultFailure

__all__ = [
    "TokenInfo",
    "capabilities",
    "kv_keys",
    "kv_secret",
    "login_auth",
    "malformed",
    "renewed_lease",
    "seal_status",
    "token_info",
]

_MAX_VERSION = 2**53 - 1
_MAX_TTL_S = 100 * 365 * 86400
"""Longer than any lease Vault grants; a larger TTL is a lie, not a lease."""
_MAX_POLICIES = 64
_NOT_SHOWN = re.compile(r"[^A-Za-z0-9_.:/@+-]")
_WORD_CHARS = 64


@dataclass(frozen=True)
class TokenInfo:
    policies: list[str]
    ttl_s: float
    lifetime_s: float
    renewable: bool


def malformed(config: VaultConfig, what: str, problem: str) -> VaultFailure:
    return VaultFailure(
        ErrorKind.VAULT_ERROR,
        f"Vault at {config.host} sent a malformed answer for {what}: {problem}.",
        recommended_action="Check that VAULT_ADDR points at Vault itself (not a proxy or another service) and that "
        "PLANNER_MCP_VAULT_MOUNT is a KV version 2 mount; Vault's server log may say more.",
    )


def kv_secret(reply: Any, config: VaultConfig, what: str) -> tuple[dict[str, Any], int]:
    """The entry's fields and its KV version, from a KV v2 read."""
    data = _object(reply.get("data") if isinstance(reply, dict) else None, config, what, "`data`")
    fields = _object(data.get("data"), config, what, "`data.data`")
    metadata = _object(data.get("metadata"), config, what, "`data.metadata`")
    version = metadata.get("version")
    if type(version) is not int or not 1 <= version <= _MAX_VERSION:
        raise malformed(config, what, "`data.metadata.version` is not a whole number from 1 up")
    return fields, version


def kv_keys(reply: Any, config: VaultConfig, what: str) -> list[str]:
    """The names in a KV v2 list."""
    data = _object(reply.get("data") if isinstance(reply, dict) else None, config, what, "`data`")
    keys = data.get("keys")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise malformed(config, what, "`data.keys` is not a list of names")
    return keys


def token_info(reply: Any, config: VaultConfig) -> TokenInfo:
    """The token's policies and lifetime, from `auth/token/lookup-self`."""
    what = "auth/token/lookup-self"
    data = _object(reply.get("data") if isinstance(reply, dict) else None, config, what, "`data`")
    ttl = _duration(data.get("ttl"), config, what, "ttl")
    lifetime = _duration(data.get("creation_ttl"), config, what, "creation_ttl") or ttl
    return TokenInfo(_policies(data.get("policies"), config, what), ttl, lifetime, data.get("renewable") is True)


def login_auth(reply: Any, config: VaultConfig) -> tuple[str, TokenInfo]:
    """The token an AppRole login issued, and what it is."""
    what = "the AppRole login"
    auth = _object(reply.get("auth") if isinstance(reply, dict) else None, config, what, "`auth`")
    token = auth.get("client_token")
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise malformed(config, what, "`auth.client_token` is not a token")
    ttl = _duration(auth.get("lease_duration"), config, what, "lease_duration")
    return token, TokenInfo(_policies(auth.get("policies"), config, what), ttl, ttl, auth.get("renewable") is True)


def renewed_lease(reply: Any, config: VaultConfig) -> float:
    """The seconds a renewal granted (0: the token does not expire)."""
    what = "auth/token/renew-self"
    auth = _object(reply.get("auth") if isinstance(reply, dict) else None, config, what, "`auth`")
    return _duration(auth.get("lease_duration"), config, what, "lease_duration")


def _object(value: Any, config: VaultConfig, what: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(config, what, f"{name} is not a JSON object")
    return value


def _duration(value: Any, config: VaultConfig, what: str, name: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_TTL_S:
        raise malformed(config, what, f"`{name}` is not a number of seconds from 0 to 100 years")
    return float(value)  # NaN and infinities fail the range check above


def _policies(value: Any, config: VaultConfig, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > _MAX_POLICIES or not all(isinstance(p, str) for p in value):
        raise malformed(config, what, f"`policies` is not a list of at most {_MAX_POLICIES} names")
    # "root" is judged on the name as sent; what is kept (and shown by `doctor`) is printable and short.
    return [p if p == "root" else _word(p) for p in value]


def seal_status(reply: Any, config: VaultConfig) -> tuple[str, bool]:
    """Vault's version (printable, short) and whether it is sealed, from `sys/seal-status`."""
    status = _object(reply, config, "sys/seal-status", "the answer")
    sealed, version = status.get("sealed"), status.get("version")
    if not isinstance(sealed, bool):
        raise malformed(config, "sys/seal-status", "`sealed` is not true or false")
    return (_word(version) if isinstance(version, str) else "?"), sealed


def capabilities(reply: Any, config: VaultConfig, paths: list[str]) -> dict[str, set[str]]:
    """What the token may do on each of `paths`, from `sys/capabilities-self`."""
    what = "sys/capabilities-self"
    answer = _object(reply, config, what, "the answer")
    granted: dict[str, set[str]] = {}
    for path in paths:
        value = answer.get(path) or []
        if not isinstance(value, list) or len(value) > _MAX_POLICIES or not all(isinstance(c, str) for c in value):
            raise malformed(config, what, "a path's capabilities are not a list of names")
        granted[path] = {_word(c) for c in value}
    return granted


def _word(value: str) -> str:
    """An upstream name as this server keeps and prints it: short, and nothing a terminal would act on."""
    return _NOT_SHOWN.sub("?", value[:_WORD_CHARS])
