"""Over HTTP with an agents file, a caller the file gives to no agent, or to two equally, is refused (403) on every
request, logged and recorded; a token of an issuer the file does not name, or not signed by its issuer's key, is no
caller at all (401); and a session is its opener's only. A real server process, the loopback OAuth issuers."""

import json
from pathlib import Path

import httpx2
import pytest

from tests.conftest import rows
from tests.http_server import JSON_LOGS, free_port, refusals, serving
from tests.peers.jwks_server import Issuer
from tests.server.agents.conftest import agent, agents_file, digest

pytestmark = pytest.mark.subprocess

ALPHA = "alpha-static-token-0123456789abcdef"
_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def _request(method: str, url: str, token: str, session: str | None = None, body: object = None) -> httpx2.Response:
    headers = {**_HEADERS, "authorization": f"Bearer {token}", **({"mcp-session-id": session} if session else {})}
    if method == "GET":  # the session's stream: only its headers are read
        with httpx2.stream("GET", url, headers={**headers, "accept": "text/event-stream"}, timeout=30) as response:
            return response
    return httpx2.request(method, url, json=body, headers=headers, timeout=30)


def _opened(url: str, token: str) -> str:
    """A session opened by `token`'s caller, initialized; its id."""
    response = _request("POST", url, token, body=_INIT)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert _request("POST", url, token, session, done).status_code == 202
    return session


def _every_method(url: str, token: str, session: str) -> list[int]:
    """What `token`'s caller gets when it opens a session, and uses, listens on and closes another's."""
    return [
        _request("POST", url, token, body=_INIT).status_code,
        _request("POST", url, token, session, _LIST).status_code,
        _request("GET", url, token, session).status_code,
        _request("DELETE", url, token, session).status_code,
    ]


def test_a_caller_of_no_agent_or_of_two_is_refused_on_every_request_logged_and_recorded_and_a_session_is_its_openers(
    tmp_path: Path, ledger_path: Path
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with Issuer(audience=resource) as known, Issuer(audience=resource) as foreign:
        path = agents_file(tmp_path / "agents.toml", [
            agent("alpha", 0, ["read_docs"], {"issuer": known.url, "group": "ops"}, {"token_sha256": digest(ALPHA)}),
            agent("beta", 1, ["read_inventory"], {"issuer": known.url, "group": "sre"}),
        ], [{"issuer": known.url, "jwks_url": known.jwks_url}])  # fmt: skip
        nobody = known.token(client_id="desk", sub="nobody", groups=["dev"])
        both = known.token(client_id="desk", sub="both", groups=["ops", "sre"])
        stranger = foreign.token(client_id="desk", sub="alpha-of-another", groups=["ops"])
        forged = known.token(key=known.stranger_key, client_id="desk", sub="al", groups=["ops"])  # not its key
        alpha_by_group = known.token(client_id="desk", sub="al", groups=["ops"])
        beta = known.token(client_id="desk", sub="bea", groups=["sre"])
        with serving(ledger_path, port=port, env={"PLANNER_MCP_AGENTS": str(path)}, options=JSON_LOGS) as served:
            url = served.url
            session = _opened(url, ALPHA)
            refused = {"nobody": _every_method(url, nobody, session), "both": _every_method(url, both, session)}
            not_callers = [_request("POST", url, token, body=_INIT).status_code for token in (stranger, forged)]
            # Another caller, of the same agent or another, cannot use the session: to the SDK it is not there.
            borrowed = [_request("POST", url, token, session, _LIST).status_code for token in (alpha_by_group, beta)]
            own = _request("POST", url, ALPHA, session, _LIST)
    assert refused == {"nobody": [403] * 4, "both": [403] * 4}
    assert not_callers == [401, 401] and borrowed == [404, 404]
    assert own.status_code == 200 and '"read_docs"' in own.text  # the refused DELETEs closed nothing
    logged, unlogged = refusals(served.stderr)
    assert [(line["status"], line["reason"]) for line in logged] == [(403, "no_agent")] * 8 + [
        (401, "invalid_token")
    ] * 2
    assert unlogged == 0
    events = [e["detail"] for e in rows(ledger_path, "ledger_events") if e["kind"] == "caller-refused"]
    iss = f"iss={known.url}"
    assert [(e.split(":")[0], e.split(": ", 1)[1]) for e in events] == [
        *((f"{method} /mcp", f"the caller client=desk sub=nobody {iss} matches no agent")
          for method in ("POST", "POST", "GET", "DELETE")),
        *((f"{method} /mcp", f"the caller client=desk sub=both {iss} matches agents alpha and beta equally "
          f"({known.url} group=ops, {known.url} group=sre)") for method in ("POST", "POST", "GET", "DELETE")),
    ]  # fmt: skip
    assert rows(ledger_path) == []  # no call was made: only the owner listed tools
    everything = json.dumps(rows(ledger_path, "ledger_events")) + served.stderr
    assert not any(token in everything for token in (ALPHA, nobody, both, stranger, forged, alpha_by_group, beta))
