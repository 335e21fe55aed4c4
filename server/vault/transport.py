"""The one HTTP session every request to Vault goes through: no redirect followed, no answer read past a cap.

hvac sends the token in a header and AppRole's secret in a body, and `requests` follows a redirect with both
(to another host, even from https to http). Vault itself only redirects a standby's clients to the active
node, so a redirect is refused here, as an answer that names the fix (VAULT_ADDR at the address it points to),
and nothing is sent twice. Answers are asked for uncompressed and one that comes compressed anyway is refused
unread, so no small body can become a large one. An answer is read a piece at a time (each piece what one read
of the socket brings), and the reading stops at a cap and at the attempt's deadline: an endless or dripping
body is never held whole and never keeps a worker thread reading after its call has given up.
"""

import time
from typing import Any

import requests
import urllib3.exceptions

from contracts import ErrorKind
from server.config.urls import Credentials
from server.config.vault import VaultConfig
from server.vault.deadline import current_deadline
from server.vault.errors import VaultFailure, timed_out

__all__ = ["VaultHTTP"]

_CHUNK = 64 * 1024
_ENVELOPE_BYTES = 64 * 1024
"""Room for what wraps an entry in Vault's answer (request id, metadata, warnings)."""
_ESCAPING = 6
"""Vault's JSON writes `<`, `>`, `&` and control characters as six-byte escapes: the most an entry can grow."""


class VaultHTTP(requests.Session):
    """A requests session for hvac that never follows a redirect and reads at most `cap_bytes` of an answer."""

    def __init__(self, config: VaultConfig, *, max_entry_bytes: int, credentials: Credentials | None) -> None:
        super().__init__()
        self.auth, self.verify = credentials, config.verify  # hvac takes `verify` from a session it is given
        self.headers["Accept-Encoding"] = "identity"
        self._config = config
        self.cap_bytes = max_entry_bytes * _ESCAPING + _ENVELOPE_BYTES

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        deadline = current_deadline() or time.monotonic() + self._config.attempt_s
        kwargs.update(allow_redirects=False, stream=True)
        response = super().send(request, **kwargs)
        try:
            if 300 <= response.status_code < 400:
                raise self._redirected(response.status_code)
            if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
                raise VaultFailure(
                    ErrorKind.VAULT_ERROR,
                    f"Vault at {self._config.host} sent a compressed answer, which was not asked for; it was not read.",
                    recommended_action="Check that VAULT_ADDR points at Vault itself, not at a proxy that "
                    "compresses what it forwards.",
                )
            response._content = self._body(response, deadline)  # what `.json()` and `.text` read from now on
        except BaseException:
            response.close()  # the connection is dropped, not reused: what is left on it is not read
            raise
        return response

    def _body(self, response: requests.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := self._piece(response):
            size += len(chunk)
            if size > self.cap_bytes:
                raise VaultFailure(
                    ErrorKind.TOO_LARGE,
                    f"Vault at {self._config.host} answered with more than {self.cap_bytes} bytes; reading stopped "
                    "there.",
                    recommended_action="Ask an operator to split the entry or raise PLANNER_MCP_MAX_DOCUMENT_BYTES.",
                )
            if time.monotonic() > deadline:
                raise timed_out(self._config, self._config.attempt_s)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _piece(response: requests.Response) -> bytes:
        """What one read of the socket brings (not a full chunk: a drip must reach the deadline check)."""
        try:
            return response.raw.read1(_CHUNK)  # type: ignore[no-any-return]
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from None
        except urllib3.exceptions.HTTPError as exc:  # the connection broke off mid-answer
            raise requests.exceptions.ChunkedEncodingError(exc) from None

    def _redirected(self, status: int) -> VaultFailure:
        return VaultFailure(
            ErrorKind.VAULT_ERROR,
            f"Vault at {self._config.host} answered HTTP {status}, a redirect; planner-mcp does not follow "
            "redirects, which would send its token (or AppRole credentials) to wherever they point.",
            recommended_action="Point VAULT_ADDR at the active Vault node (the address the redirect names), not "
            "at a standby or a proxy that redirects, and restart the server.",
        )
