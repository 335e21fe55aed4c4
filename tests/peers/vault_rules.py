"""The rules a Vault peer keeps: tokens and their lifetimes, AppRoles, KV versions, Vault's policy path matching,
and the shapes of its answers. No HTTP here: :mod:`tests.peers.vault_api` routes requests by these rules.
"""

import math
import re
import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "DENIED", "NOT_FOUND", "VAULT_VERSION", "WRITE_METHODS", "Answer", "Role", "Token", "Version", "client_token",
    "envelope", "errors", "iso", "matches", "parse_duration", "priority",
]  # fmt: skip

VAULT_VERSION: Final = "1.17.2"

WRITE_METHODS: Final = ("POST", "PUT")
_DURATION: Final = re.compile(r"(\d+)([smh]?)")
_DURATION_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600}

# A routed answer: HTTP status and JSON body.
Answer = tuple[int, dict[str, Any]]
DENIED: Final[Answer] = (403, {"errors": ["permission denied"]})
NOT_FOUND: Final[Answer] = (404, {"errors": []})  # Vault's answer for a missing secret or folder


@dataclass
class Token:
    token: str
    policies: tuple[str, ...]
    creation_ttl: int
    renewable: bool
    display_name: str
    meta: dict[str, str] | None = None
    accessor: str = field(init=False, default_factory=lambda: "acc-" + secrets.token_urlsafe(16))
    expires_at: float | None = field(init=False, default=None)  # wall-clock seconds; None never expires
    revoked: bool = False

    def __post_init__(self) -> None:
        if self.creation_ttl:
            self.expires_at = time.time() + self.creation_ttl

    def valid(self) -> bool:
        return not self.revoked and (self.expires_at is None or time.time() < self.expires_at)

    def remaining(self) -> int:
        return 0 if self.expires_at is None else max(0, math.ceil(self.expires_at - time.time()))

    def reported_policies(self) -> list[str]:
        """What Vault reports: ``["root"]`` for a root token, else ``default`` plus the token's own."""
        if "root" in self.policies:
            return ["root"]
        return ["default", *(p for p in self.policies if p != "default")]

    def auth(self) -> dict[str, Any]:
        """The ``auth`` block of a login or renewal answer."""
        return {
            "client_token": self.token,
            "accessor": self.accessor,
            "policies": self.reported_policies(),
            "token_policies": self.reported_policies(),
            "metadata": self.meta,
            "lease_duration": self.remaining(),
            "renewable": self.renewable,
            "token_type": "service",
        }


@dataclass(frozen=True)
class Role:
    role_id: str
    secret_id: str
    policies: tuple[str, ...]
    ttl: int


@dataclass(frozen=True)
class Version:
    data: dict[str, Any]
    created_time: str


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def errors(status: int, message: str) -> Answer:
    return status, {"errors": [message]}


def envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
    """Vault's standard response wrapper."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }


def parse_duration(value: Any) -> int:
    """``3600``, ``"3600"``, ``"3600s"``, ``"60m"`` or ``"1h"`` as seconds; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid increment {value!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def matches(pattern: str, path: str) -> bool:
    """Vault's policy path syntax: ``+`` is one (non-empty) path segment, a trailing ``*`` any remainder."""
    glob = pattern.endswith("*")
    regex = "[^/]+".join(re.escape(part) for part in pattern.removesuffix("*").split("+"))
    return re.fullmatch(regex + (".*" if glob else ""), path, re.DOTALL) is not None


def priority(pattern: str) -> tuple[int, bool, int, int, str]:
    """Vault's order among matching rules: the later the first wildcard, then no glob, fewer ``+``, longer."""
    wildcards = [i for i in (pattern.find("+"), pattern.find("*")) if i >= 0]
    first = min(wildcards, default=sys.maxsize)
    return first, not pattern.endswith("*"), -pattern.count("+"), len(pattern), pattern


def client_token(headers: Mapping[str, str]) -> str:
    bearer = headers.get("authorization", "")
    return headers.get("x-vault-token") or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else "")
