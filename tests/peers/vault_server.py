"""A fake HashiCorp Vault HTTP(S) server for tests.

Why this exists: planner-mcp reads its secrets from Vault through the real
``hvac`` client, and its tests must exercise that client over real HTTP
(headers, status-code to exception mapping, timeouts, TLS verification, the
token lifecycle) instead of mocking it. ``FakeVault`` is that peer: it binds an
ephemeral port on 127.0.0.1 and speaks the slice of Vault's API the project
uses:

* ``sys/health``, ``sys/seal-status`` and ``sys/capabilities-self``;
* token auth (``X-Vault-Token`` or ``Authorization: Bearer``) with
  ``auth/token/lookup-self`` and ``auth/token/renew-self``;
* AppRole login (``auth/<mount>/login``), which issues fresh tokens;
* KV v2 reads (``<mount>/data/<path>``, with versions) and lists
  (``LIST <mount>/metadata/<folder>``), gated by Vault-style path policies.

Faults can be set from the test thread at any time: ``sealed``, ``delay``,
:meth:`FakeVault.fail_next`, :meth:`FakeVault.age`, :meth:`FakeVault.expire`,
:meth:`FakeVault.revoke`, and :meth:`FakeVault.stop` / :meth:`FakeVault.start`
(the server goes away, then comes back on the same port with its state
intact). A hostile Vault is :meth:`FakeVault.answer_raw`: any status, headers
and bytes for a path (a redirect, a lie, an endless or dripping body). Every
request is recorded.

It uses only the standard library (the threaded server in
:mod:`tests.peers.loopback`, ``ssl`` for HTTPS). It speaks HTTP/1.1 with
keep-alive and always sends ``Content-Length``. With an ``ssl_context`` the TLS
handshake runs in the connection's own thread, so a client that rejects the
certificate neither blocks nor crashes the server.

Typical use::

    with FakeVault() as vault:
        vault.add_policy("planner", {"secret/data/docs/*": ["read"]})
        vault.add_token("t-planner")
        vault.put("docs/db", {"password": "s3cret"})
        client = hvac.Client(url=vault.addr, token="t-planner", verify=False)
        ...
        assert vault.requests_to("secret/data/docs/")[0].headers["x-vault-token"] == "t-planner"
"""

import contextlib
import json
import math
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import parse_qsl, unquote

from tests.peers.loopback import LoopbackHandler, LoopbackHTTPServer

__all__ = ["FakeVault", "Recorded"]

VAULT_VERSION: Final = "1.17.2"

# A client that connects but never finishes the TLS handshake is dropped after this.
_HANDSHAKE_TIMEOUT: Final = 5.0

_WRITE_METHODS: Final = ("POST", "PUT")
_DURATION: Final = re.compile(r"(\d+)([smh]?)")
_DURATION_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600}

# A routed answer: HTTP status and JSON body.
_Answer = tuple[int, dict[str, Any]]
_DENIED: Final[_Answer] = (403, {"errors": ["permission denied"]})
_NOT_FOUND: Final[_Answer] = (404, {"errors": []})  # Vault's answer for a missing secret or folder


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it.

    ``path`` is percent-decoded and has neither the leading ``/v1/`` nor the
    query string, which is parsed into ``query`` (a repeated name keeps its
    last value). ``headers`` has lowercased names; ``json`` is the parsed
    body, or ``None`` if the body was empty or not JSON.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None


@dataclass(frozen=True)
class _Raw:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | Callable[[], Iterable[bytes]]
    gap_s: float


@dataclass
class _Token:
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
class _Role:
    role_id: str
    secret_id: str
    policies: tuple[str, ...]
    ttl: int


@dataclass(frozen=True)
class _Version:
    data: dict[str, Any]
    created_time: str


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _errors(status: int, message: str) -> _Answer:
    return status, {"errors": [message]}


def _envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
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


def _parse_duration(value: Any) -> int:
    """``3600``, ``"3600"``, ``"3600s"``, ``"60m"`` or ``"1h"`` as seconds; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid increment {value!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _matches(pattern: str, path: str) -> bool:
    """Vault's policy path syntax: ``+`` is one (non-empty) path segment, a trailing ``*`` any remainder."""
    glob = pattern.endswith("*")
    regex = "[^/]+".join(re.escape(part) for part in pattern.removesuffix("*").split("+"))
    return re.fullmatch(regex + (".*" if glob else ""), path, re.DOTALL) is not None


def _priority(pattern: str) -> tuple[int, bool, int, int, str]:
    """Vault's order among matching rules: the later the first wildcard, then no glob, fewer ``+``, longer."""
    wildcards = [i for i in (pattern.find("+"), pattern.find("*")) if i >= 0]
    first = min(wildcards, default=sys.maxsize)
    return first, not pattern.endswith("*"), -pattern.count("+"), len(pattern), pattern


def _client_token(headers: Mapping[str, str]) -> str:
    bearer = headers.get("authorization", "")
    return headers.get("x-vault-token") or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else "")


class FakeVault:
    """A Vault-compatible server on ``127.0.0.1:<ephemeral port>``.

    Nothing listens until :meth:`start` (``__enter__`` calls it); the port is
    chosen then and reused by every later :meth:`start`. All methods are
    thread-safe; ``sealed`` and ``delay`` are plain attributes read on every
    request.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.sealed: bool = False
        self.delay: float = 0.0
        self._lock = threading.Lock()  # guards the state below; held while a request is routed
        self._kv: dict[str, dict[str, list[_Version]]] = {}  # mount -> path -> versions
        self._tokens: dict[str, _Token] = {}
        self._policies: dict[str, dict[str, tuple[str, ...]]] = {}
        self._approles: dict[str, dict[str, _Role]] = {}  # mount -> role_id -> role
        self._issued: list[str] = []
        self._records: list[Recorded] = []
        self._fail_status = 0
        self._fail_count = 0
        self._raw: dict[str, _Raw] = {}
        self._lifecycle = threading.Lock()  # serialises start/stop/close
        self._port: int | None = None
        self._httpd: _Server | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeVault has not been started; use it as a context manager or call start()")
        return self._port

    @property
    def addr(self) -> str:
        """The address to give the client, e.g. ``http://127.0.0.1:8200``."""
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Listen (again, on the same port after :meth:`stop`). A no-op while listening."""
        with self._lifecycle:
            if self._closed:
                raise RuntimeError("FakeVault is closed")
            if self._httpd is not None:
                return
            self._httpd = _Server(self, self._port or 0)
            self._port = self._httpd.port
            self._httpd.start()

    def stop(self) -> None:
        """Stop listening and drop open connections; tokens, data and recordings are kept.

        A request still in its ``delay`` gets its connection dropped unanswered.
        Returns within about two seconds.
        """
        with self._lifecycle:
            httpd, self._httpd = self._httpd, None
            if httpd is not None:
                httpd.stop()

    def close(self) -> None:
        """Stop for good. Idempotent."""
        with self._lifecycle:
            self._closed = True
        self.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- data and identities -----------------------------------------------

    def put(self, path: str, data: dict[str, Any], *, mount: str = "secret") -> int:
        """Write a new KV v2 version of ``<mount>/data/<path>``; returns its number (1, 2, ...)."""
        mount, path = mount.strip("/"), path.strip("/")
        if not mount or not path:
            raise ValueError("mount and path must not be empty")
        copied = json.loads(json.dumps(data))  # a private copy; fails early on values JSON cannot carry
        with self._lock:
            versions = self._kv.setdefault(mount, {}).setdefault(path, [])
            versions.append(_Version(copied, _iso(time.time())))
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
            self._tokens[token] = _Token(token, tuple(policies), ttl, renewable, display_name="token")

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
            self._approles.setdefault(mount.strip("/"), {})[role_id] = _Role(role_id, secret_id, tuple(policies), ttl)

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

    def _known(self, token: str) -> _Token:
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

    def answer_raw(
        self,
        path_prefix: str,
        status: int,
        body: bytes | Callable[[], Iterable[bytes]] = b"",
        *,
        headers: Mapping[str, str] | None = None,
        gap_s: float = 0.0,
    ) -> None:
        """Answer requests whose path starts with ``path_prefix`` with exactly this, whatever the request.

        ``body`` as bytes is sent with its ``Content-Length``; a callable's pieces are sent as it yields them,
        ``gap_s`` apart, and the connection is closed to end the body (so it may be as long as wanted without
        being held). The request is still recorded; ``sealed``, ``delay`` and ``fail_next`` come first.
        """
        with self._lock:
            self._raw[path_prefix] = _Raw(status, tuple((headers or {}).items()), body, gap_s)

    def _raw_for(self, path: str) -> _Raw | None:
        with self._lock:
            return next((raw for prefix, raw in self._raw.items() if path.startswith(prefix)), None)

    # -- recording ---------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._records)

    def requests_to(self, path_prefix: str) -> list[Recorded]:
        """The recorded requests whose path (without ``/v1/``) starts with ``path_prefix``."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()

    # -- routing (called by the handler; the _-methods below run under the lock) --

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self._records.append(recorded)

    def _answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> _Answer:
        """Route one request, after it was recorded and delayed."""
        sealed = self.sealed
        if path == "sys/health" and method in ("GET", "HEAD"):
            health = {"initialized": True, "sealed": sealed, "standby": False, "version": VAULT_VERSION}
            return 503 if sealed else 200, {**health, "cluster_name": "fake"}
        if path == "sys/seal-status" and method == "GET":
            seal = {"type": "shamir", "initialized": True, "sealed": sealed, "t": 1, "n": 1, "progress": 0}
            return 200, {**seal, "version": VAULT_VERSION}
        if sealed:
            return _errors(503, "Vault is sealed")
        with self._lock:
            if self._fail_count > 0 and not path.startswith(("sys/", "auth/")):
                self._fail_count -= 1
                return _errors(self._fail_status, f"FakeVault: injected failure (HTTP {self._fail_status})")
            mount = path.removeprefix("auth/").removesuffix("/login")
            if method in _WRITE_METHODS and path == f"auth/{mount}/login" and mount in self._approles:
                return self._approle_login(self._approles[mount], body)
            entry = self._tokens.get(_client_token(headers))
            if entry is None or not entry.valid():
                return _DENIED
            return self._authorized(entry, method, path, query, body)

    def _authorized(self, entry: _Token, method: str, path: str, query: dict[str, str], body: Any) -> _Answer:
        if path == "auth/token/lookup-self" and method == "GET":
            return self._lookup_self(entry)
        if path == "auth/token/renew-self" and method in _WRITE_METHODS:
            return self._renew_self(entry, body)
        if path == "sys/capabilities-self" and method in _WRITE_METHODS:
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
            return _DENIED
        return _errors(404, f'no handler for route "{path}"')

    def _capabilities(self, entry: _Token, path: str, *, list_path: bool = False) -> list[str]:
        """Vault's answer for ``path``: in each policy the most specific rule wins; policies add up; deny wins.

        With ``list_path`` the path matches with or without a trailing slash.
        """
        if "root" in entry.policies:
            return ["root"]
        candidates = {path.rstrip("/"), path.rstrip("/") + "/"} if list_path else {path}
        found: set[str] = set()
        for name in entry.policies:
            rules = self._policies.get(name, {})
            matching = [pattern for pattern in rules if any(_matches(pattern, p) for p in candidates)]
            if matching:
                found.update(rules[max(matching, key=_priority)])
        return ["deny"] if not found or "deny" in found else sorted(found)

    def _allows(self, entry: _Token, path: str, *wanted: str, list_path: bool = False) -> bool:
        caps = self._capabilities(entry, path, list_path=list_path)
        return "root" in caps or any(cap in caps for cap in wanted)

    def _approle_login(self, roles: dict[str, _Role], body: Any) -> _Answer:
        creds = body if isinstance(body, dict) else {}
        role = roles.get(str(creds.get("role_id")))
        if role is None or not secrets.compare_digest(str(creds.get("secret_id")), role.secret_id):
            return _errors(400, "invalid role or secret ID")
        token = "hvs.CAES" + secrets.token_urlsafe(24)
        entry = _Token(token, role.policies, role.ttl, True, display_name="approle", meta={"role_name": role.role_id})
        self._tokens[token] = entry
        self._issued.append(token)
        return 200, _envelope(auth=entry.auth())

    def _lookup_self(self, entry: _Token) -> _Answer:
        data = {
            "id": entry.token,
            "accessor": entry.accessor,
            "policies": entry.reported_policies(),
            "ttl": entry.remaining(),
            "creation_ttl": entry.creation_ttl,
            "renewable": entry.renewable,
            "expire_time": None if entry.expires_at is None else _iso(entry.expires_at),
            "display_name": entry.display_name,
            "meta": entry.meta,
            "type": "service",
        }
        return 200, _envelope(data=data)

    def _renew_self(self, entry: _Token, body: Any) -> _Answer:
        if not entry.renewable:
            return _errors(400, "lease is not renewable")
        increment = body.get("increment") if isinstance(body, dict) else None
        try:
            seconds = entry.creation_ttl if increment is None else _parse_duration(increment)
        except ValueError as exc:
            return _errors(400, str(exc))
        entry.expires_at = time.time() + seconds if seconds else None
        return 200, _envelope(auth=entry.auth())

    def _capabilities_self(self, entry: _Token, body: Any) -> _Answer:
        paths = body.get("paths", body.get("path")) if isinstance(body, dict) else None
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return _errors(400, "missing required 'paths' parameter")
        caps: dict[str, Any] = {p: self._capabilities(entry, p) for p in paths}
        caps["capabilities"] = caps[paths[0]]
        return 200, {**_envelope(data=caps), **caps}

    def _kv_read(self, entry: _Token, mount: str, path: str, query: dict[str, str]) -> _Answer:
        if not self._allows(entry, f"{mount}/data/{path}", "read"):
            return _DENIED
        try:
            version = max(0, int(query.get("version") or 0))  # 0 means the latest, as in Vault
        except ValueError:
            return _errors(400, "version must be an integer")
        versions = self._kv[mount].get(path.strip("/"), [])
        if not versions or version > len(versions):
            return _NOT_FOUND
        number = version or len(versions)
        stored = versions[number - 1]
        metadata = {
            "created_time": stored.created_time,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": number,
        }
        return 200, _envelope(data={"data": stored.data, "metadata": metadata})

    def _kv_list(self, entry: _Token, mount: str, folder: str) -> _Answer:
        if not self._allows(entry, f"{mount}/metadata/{folder}", "list", list_path=True):
            return _DENIED
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        keys: set[str] = set()
        for path in self._kv[mount]:
            if path.startswith(prefix):
                head, slash, _ = path.removeprefix(prefix).partition("/")
                keys.add(head + slash)
        return (200, _envelope(data={"keys": sorted(keys)})) if keys else _NOT_FOUND


class _Server(LoopbackHTTPServer):
    """The loopback server, with the TLS handshake in each connection's own thread."""

    allow_reuse_address = True  # so start() can bind the same port again right after stop()

    def __init__(self, owner: FakeVault, port: int) -> None:
        self.owner = owner
        super().__init__(port, _Handler, name="FakeVault")

    def setup_connection(self, sock: socket.socket) -> socket.socket | None:
        """Wrap an accepted socket in TLS; if the handshake fails, close it quietly and return None."""
        context = self.owner.ssl_context
        if context is None:
            return sock
        tls = self.replace_connection(
            sock, lambda plain: context.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
        )
        if tls is None:
            return None
        try:
            tls.settimeout(_HANDSHAKE_TIMEOUT)
            tls.do_handshake()
            tls.settimeout(None)
        except OSError:  # includes ssl.SSLError: the client rejected us, spoke plain HTTP, or went away
            self.forget_connection(tls)
            tls.close()
            return None
        return tls


class _Handler(LoopbackHandler):
    server_version = "FakeVault/1.0"

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send_json(*_errors(400, "FakeVault: bad Content-Length"))
            return
        raw = self.rfile.read(length) if length > 0 else b""
        target, _, query_string = self.path.partition("?")
        target = unquote(target)
        path = target.removeprefix("/v1/") if target.startswith("/v1/") else target.lstrip("/")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        headers = self.lowercase_headers()
        body: Any = None
        if raw:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        server.owner._record(Recorded(method=self.command, path=path, query=query, headers=headers, json=body))

        delay = server.owner.delay
        if delay > 0 and server.stopping.wait(delay):
            # stop() or close() during the delay: drop the connection unanswered.
            self.close_connection = True
            return
        hostile = server.owner._raw_for(path)
        if hostile is not None:
            self._send_raw(hostile, server.stopping)
            return
        status, payload = server.owner._answer(self.command, path, query, headers, body)
        self._send_json(status, payload)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_LIST = do_GET

    def _send_raw(self, raw: _Raw, stopping: threading.Event) -> None:
        if isinstance(raw.body, bytes):
            self.respond(raw.status, raw.headers, raw.body)
            return
        self.close_connection = True  # the body ends when the connection does
        try:
            self.send_response(raw.status)
            for name, value in (*raw.headers, ("Connection", "close")):
                self.send_header(name, value)
            self.end_headers()
            for piece in raw.body():
                if stopping.is_set() or (raw.gap_s and stopping.wait(raw.gap_s)):
                    return
                self.wfile.write(piece)
                self.wfile.flush()
        except OSError:
            pass  # the client stopped reading, as it should

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        # Exactly "application/json": hvac only reads the errors of a body with that Content-Type.
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        self.respond(status, headers, json.dumps(payload).encode())
