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

It uses only the standard library (the threaded server and the peer's life in
:mod:`tests.peers.loopback`, ``ssl`` for HTTPS); what Vault answers is in
:mod:`tests.peers.vault_api`, by the rules in :mod:`tests.peers.vault_rules`. It speaks HTTP/1.1 with
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

import json
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

from tests.peers.loopback import LoopbackHandler, LoopbackPeer
from tests.peers.vault_api import VaultApi
from tests.peers.vault_rules import errors

__all__ = ["FakeVault", "Recorded"]


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


class FakeVault(LoopbackPeer["Recorded"], VaultApi):
    """A Vault-compatible server on ``127.0.0.1:<ephemeral port>``.

    Nothing listens until :meth:`start` (``__enter__`` calls it); the port is
    chosen then and reused by every later :meth:`start`. All methods are
    thread-safe; ``sealed`` and ``delay`` are plain attributes read on every
    request. The life around the server and the recorded requests are
    :class:`tests.peers.loopback.LoopbackPeer`'s; Vault's answers are
    :class:`tests.peers.vault_api.VaultApi`'s.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        LoopbackPeer.__init__(self, ssl_context=ssl_context)
        VaultApi.__init__(self)
        self.delay: float = 0.0
        self._raw: dict[str, _Raw] = {}

    @classmethod
    def over_https(cls, ca: Any) -> "FakeVault":
        """A peer (not yet started) that serves HTTPS with a certificate for 127.0.0.1 and localhost issued by
        ``ca`` (a ``trustme.CA``): what a client verifies against that CA's certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return cls(ssl_context=context)

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

    def requests_to(self, path_prefix: str) -> list[Recorded]:
        """The recorded requests whose path (without ``/v1/``) starts with ``path_prefix``."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()


class _Handler(LoopbackHandler):
    server_version = "FakeVault/1.0"

    def do_GET(self) -> None:
        vault = cast(FakeVault, self.peer)
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            self._send_json(*errors(400, "FakeVault: bad Content-Length"))
            return
        target, _, query_string = self.path.partition("?")
        target = unquote(target)
        path = target.removeprefix("/v1/") if target.startswith("/v1/") else target.lstrip("/")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        headers = self.lowercase_headers()
        body = self.json_or_none(raw)
        vault._record(Recorded(method=self.command, path=path, query=query, headers=headers, json=body))
        if vault.delay > 0 and self.pause(vault.delay) != "elapsed":
            # stop() or close() during the delay, or the client gave up: drop the connection unanswered.
            self.close_connection = True
            return
        hostile = vault._raw_for(path)
        if hostile is not None:
            self._send_raw(hostile, self.stopping)
            return
        status, payload = vault._answer(self.command, path, query, headers, body)
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


FakeVault.handler = _Handler
