"""A loopback reverse proxy that adds `Authorization: Bearer <token>` to every request, for clients that cannot.

Why this exists: the MCP conformance suite's server scenarios connect with no way to send a header, and
`planner-mcp serve --transport http` answers nothing without a bearer token. Turning authentication off for the
suite would test a server nobody runs; this proxy stands where a gateway would, in front of the real server, and
changes one thing: the token. Everything else passes as sent, the Host and Origin headers included (the
server's DNS-rebinding checks see what the suite sent), and answers stream back as they come (SSE), so a
held-open stream is not turned into a buffered one.
"""

import contextlib
import http.client
from types import TracebackType
from typing import Final, Self

from tests.peers.loopback import LoopbackHandler, LoopbackHTTPServer

__all__ = ["BearerProxy"]

_HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "authorization",
})  # fmt: skip
"""Headers that belong to one connection (RFC 9110 §7.6.1), and those the proxy sets itself."""

_UPSTREAM_TIMEOUT_S: Final = 120.0
"""How long the proxy waits on the server for any one read: a held-open SSE stream's pause is shorter."""

_CHUNK: Final = 65536


class _Forward(LoopbackHandler):
    """One client's requests, each forwarded on its own upstream connection with the token added."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy: _ProxyServer = self.server  # type: ignore[assignment]
        body = self.read_body()
        upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Authorization", f"Bearer {proxy.token}")
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            self._relay(upstream.getresponse())
        except OSError:  # the server or the client went away: the client sees its connection end
            self.close_connection = True
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse) -> None:
        """The server's answer with its own headers (no Date or Server of the proxy's): a body of known length
        whole, any other chunk by chunk as it arrives."""
        whole = answer.read() if answer.getheader("Content-Length") is not None else None
        self.send_response_only(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if whole is not None:
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := answer.read1(_CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")


class _ProxyServer(LoopbackHTTPServer):
    def __init__(self, upstream_port: int, token: str) -> None:
        self.upstream_port = upstream_port
        self.token = token
        super().__init__(0, _Forward, name="BearerProxy")


class BearerProxy:
    """Listens on 127.0.0.1 (`url`) from construction, serves once entered, and forwards to the server on
    `upstream_port` with `token`. Leave it after the server has stopped, so no stream it relays is still open."""

    def __init__(self, upstream_port: int, token: str) -> None:
        self._server = _ProxyServer(upstream_port, token)

    @property
    def url(self) -> str:
        """The MCP endpoint as clients of the proxy reach it."""
        return f"http://127.0.0.1:{self._server.port}/mcp"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self._server.stop()
