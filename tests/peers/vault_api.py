"""What a Vault peer answers, by Vault's rules: its data and identities, and the routing of one request.

:class:`VaultApi` holds the state (KV versions, tokens, policies, AppRoles, an injected failure) and answers a
request already read off the wire; :class:`tests.peers.vault_server.FakeVault` serves it over HTTP.
"""

import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tests.peers.vault_rules import (
    DENIED,
    NOT_FOUND,
    VAULT_VERSION,
    WRITE_METHODS,
    Answer,
    Role,
    Token,
    Version,
    client_token,
    envelope,
    errors,
    iso,
    matches,
    parse_duration,
    priority,
)  # fmt: skip

__all__ = ["VaultApi"]


class VaultApi:
    """Vault's state and routing. ``sealed`` is a plain attribute read on every request; every other change goes
    through a method, under ``_lock`` (which the peer that serves this API provides)."""

    _lock: threading.Condition

    def __init__(self) -> None:
        self.sealed: bool = False
        self._kv: dict[str, dict[str, list[Version]]] = {}  # mount -> path -> versions
        self._tokens: dict[str, Token] = {}
        self._policies: dict[str, dict[str, tuple[str, ...]]] = {}
        self._approles: dict[str, dict[str, Role]] = {}  # mount -> role_id -> role
        self._issued: list[str] = []
        self._fail_status = 0
        self._fail_count = 0

    # -- data and identities -----------------------------------------------

    def put(self, path: str, data: dict[str, Any], *, mount: str = "secret") -> int:
        """Write a new KV v2 version of ``<mount>/data/<path>``; returns its number (1, 2, ...)."""
        mount, path = mount.strip("/"), path.strip("/")
        if not mount or not path:
            raise ValueError("mount and path must not be empty")
        copied = json.loads(json.dumps(data))  # a private copy; fails early on values JSON cannot carry
        with self._lock:
            versions = self._kv.setdefault(mount, {}).setdefault(path, [])
            versions.append(Version(copied, iso(time.time())))
            return len(versions)

    def delete_metadata(self, path: str, *, mount: str = "secret") -> None:
        """``vault kv metadata delete``: every version of ``path`` goes, and the next :meth:`put` is version 1."""
        with self._lock:
            self._kv.get(mount.strip("/"), {}).pop(path.strip("/"), None)

    def add_policy(self, name: str, rules: Mapping[str, Sequence[str]]) -> None:
        """Define (or replace) policy ``name``: Vault path pattern to capabilities.

        A pattern is an exact path, may hold ``+`` for any one segment, and may end in ``*`` for any
        remainder; as in Vault, the most specific matching rule of a policy applies.
        """
        if name == "root":
            raise ValueError("the root policy is built in")
        if any(isinstance(caps, str) for caps in rules.values()):
            raise TypeError("each path maps to a sequence of capabilities, e.g. {'secret/data/*': ['read']}")
        with self._lock:
            self._policies[name] = {path: tuple(caps) for path, caps in rules.items()}

    def add_token(
        self, token: str, *, policies: Sequence[str] = ("planner",), ttl: int = 3600, renewable: bool = True
    ) -> None:
        """Register a service token; ``ttl`` 0 never expires, policy ``"root"`` allows everything."""
        if not token or ttl < 0:
            raise ValueError("token must not be empty and ttl must be >= 0")
        with self._lock:
            self._tokens[token] = Token(token, tuple(policies), ttl, renewable, display_name="token")

    def add_approle(
        self,
        role_id: str,
        secret_id: str,
        *,
        policies: Sequence[str] = ("planner",),
        ttl: int = 3600,
        mount: str = "approle",
    ) -> None:
        """Let ``POST auth/<mount>/login`` with these credentials issue tokens (the role is named ``role_id``)."""
        if not role_id or ttl < 0:
            raise ValueError("role_id must not be empty and ttl must be >= 0")
        with self._lock:
            self._approles.setdefault(mount.strip("/"), {})[role_id] = Role(role_id, secret_id, tuple(policies), ttl)

    def expire(self, token: str) -> None:
        """Make ``token`` expired now, as if its TTL had run out."""
        with self._lock:
            self._known(token).expires_at = time.time() - 1

    def age(self, token: str, seconds: float) -> None:
        """Let ``seconds`` of ``token``'s TTL pass without sleeping (a token that never expires is unchanged)."""
        with self._lock:
            entry = self._known(token)
            if entry.expires_at is not None:
                entry.expires_at -= seconds

    def revoke(self, token: str) -> None:
        with self._lock:
            self._known(token).revoked = True

    @property
    def issued_tokens(self) -> list[str]:
        """Tokens handed out by AppRole logins, oldest first."""
        with self._lock:
            return list(self._issued)

    def _known(self, token: str) -> Token:
        try:
            return self._tokens[token]
        except KeyError:
            raise KeyError(f"FakeVault: unknown token {token!r}") from None

    # -- faults ------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` requests to paths outside ``sys/`` and ``auth/`` with ``status``.

        A sealed vault answers 503 first; the injected failure comes before any token check.
        """
        if not 400 <= status <= 599 or count < 0:
            raise ValueError(f"need an error status and a count >= 0, got {status} and {count}")
        with self._lock:
            self._fail_status, self._fail_count = status, count

    # -- routing (the _-methods below run under the lock) -------------------

    def _answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Answer:
        """Route one request, after it was recorded and delayed."""
        sealed = self.sealed
        if path == "sys/health" and method in ("GET", "HEAD"):
            health = {"initialized": True, "sealed": sealed, "standby": False, "version": VAULT_VERSION}
            return 503 if sealed else 200, {**health, "cluster_name": "fake"}
        if path == "sys/seal-status" and method == "GET":
            seal = {"type": "shamir", "initialized": True, "sealed": sealed, "t": 1, "n": 1, "progress": 0}
            return 200, {**seal, "version": VAULT_VERSION}
        if sealed:
            return errors(503, "Vault is sealed")
        with self._lock:
            if self._fail_count > 0 and not path.startswith(("sys/", "auth/")):
                self._fail_count -= 1
                return errors(self._fail_status, f"FakeVault: injected failure (HTTP {self._fail_status})")
            mount = path.removeprefix("auth/").removesuffix("/login")
            if method in WRITE_METHODS and path == f"auth/{mount}/login" and mount in self._approles:
                return self._approle_login(self._approles[mount], body)
            entry = self._tokens.get(client_token(headers))
            if entry is None or not entry.valid():
                return DENIED
            return self._authorized(entry, method, path, query, body)

    def _authorized(self, entry: Token, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        if path == "auth/token/lookup-self" and method == "GET":
            return self._lookup_self(entry)
        if path == "auth/token/renew-self" and method in WRITE_METHODS:
            return self._renew_self(entry, body)
        if path == "sys/capabilities-self" and method in WRITE_METHODS:
            return self._capabilities_self(entry, body)
        listing = method == "LIST" or (method == "GET" and query.get("list") == "true")
        mount = max((m for m in self._kv if path.startswith(m + "/")), key=len, default=None)
        if mount is not None:
            section, _, rest = path[len(mount) + 1 :].partition("/")
            if section == "data" and rest and method == "GET" and not listing:
                return self._kv_read(entry, mount, rest, query)
            if section == "metadata" and listing:  # hvac drops the slash of "secret/metadata/"
                return self._kv_list(entry, mount, rest)
        # An unknown route: as in Vault, a token without the capability learns nothing about it.
        if listing:
            wanted: tuple[str, ...] = ("list",)
        else:
            wanted = {"GET": ("read",), "HEAD": ("read",), "DELETE": ("delete",)}.get(method, ("create", "update"))
        if not self._allows(entry, path, *wanted, list_path=listing):
            return DENIED
        return errors(404, f'no handler for route "{path}"')

    def _capabilities(self, entry: Token, path: str, *, list_path: bool = False) -> list[str]:
        """Vault's answer for ``path``: in each policy the most specific rule wins; policies add up; deny wins.

        With ``list_path`` the path matches with or without a trailing slash.
        """
        if "root" in entry.policies:
            return ["root"]
        candidates = {path.rstrip("/"), path.rstrip("/") + "/"} if list_path else {path}
        found: set[str] = set()
        for name in entry.policies:
            rules = self._policies.get(name, {})
            matching = [pattern for pattern in rules if any(matches(pattern, p) for p in candidates)]
            if matching:
                found.update(rules[max(matching, key=priority)])
        return ["deny"] if not found or "deny" in found else sorted(found)

    def _allows(self, entry: Token, path: str, *wanted: str, list_path: bool = False) -> bool:
        caps = self._capabilities(entry, path, list_path=list_path)
        return "root" in caps or any(cap in caps for cap in wanted)

    def _approle_login(self, roles: dict[str, Role], body: Any) -> Answer:
        creds = body if isinstance(body, dict) else {}
        role = roles.get(str(creds.get("role_id")))
        if role is None or not secrets.compare_digest(str(creds.get("secret_id")), role.secret_id):
            return errors(400, "invalid role or secret ID")
        token = "hvs.CAES" + secrets.token_urlsafe(24)
        entry = Token(token, role.policies, role.ttl, True, display_name="approle", meta={"role_name": role.role_id})
        self._tokens[token] = entry
        self._issued.append(token)
        return 200, envelope(auth=entry.auth())

    def _lookup_self(self, entry: Token) -> Answer:
        data = {
            "id": entry.token,
            "accessor": entry.accessor,
            "policies": entry.reported_policies(),
            "ttl": entry.remaining(),
            "creation_ttl": entry.creation_ttl,
            "renewable": entry.renewable,
            "expire_time": None if entry.expires_at is None else iso(entry.expires_at),
            "display_name": entry.display_name,
            "meta": entry.meta,
            "type": "service",
        }
        return 200, envelope(data=data)

    def _renew_self(self, entry: Token, body: Any) -> Answer:
        if not entry.renewable:
            return errors(400, "lease is not renewable")
        increment = body.get("increment") if isinstance(body, dict) else None
        try:
            seconds = entry.creation_ttl if increment is None else parse_duration(increment)
        except ValueError as exc:
            return errors(400, str(exc))
        entry.expires_at = time.time() + seconds if seconds else None
        return 200, envelope(auth=entry.auth())

    def _capabilities_self(self, entry: Token, body: Any) -> Answer:
        paths = body.get("paths", body.get("path")) if isinstance(body, dict) else None
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return errors(400, "missing required 'paths' parameter")
        caps: dict[str, Any] = {p: self._capabilities(entry, p) for p in paths}
        caps["capabilities"] = caps[paths[0]]
        return 200, {**envelope(data=caps), **caps}

    def _kv_read(self, entry: Token, mount: str, path: str, query: dict[str, str]) -> Answer:
        if not self._allows(entry, f"{mount}/data/{path}", "read"):
            return DENIED
        try:
            version = max(0, int(query.get("version") or 0))  # 0 means the latest, as in Vault
        except ValueError:
            return errors(400, "version must be an integer")
        versions = self._kv[mount].get(path.strip("/"), [])
        if not versions or version > len(versions):
            return NOT_FOUND
        number = version or len(versions)
        stored = versions[number - 1]
        metadata = {
            "created_time": stored.created_time,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": number,
        }
        return 200, envelope(data={"data": stored.data, "metadata": metadata})

    def _kv_list(self, entry: Token, mount: str, folder: str) -> Answer:
        if not self._allows(entry, f"{mount}/metadata/{folder}", "list", list_path=True):
            return DENIED
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        keys: set[str] = set()
        for path in self._kv[mount]:
            if path.startswith(prefix):
                head, slash, _ = path.removeprefix(prefix).partition("/")
                keys.add(head + slash)
        return (200, envelope(data={"keys": sorted(keys)})) if keys else NOT_FOUND
