"""HTTP sessions are bounded per caller, and odd requests to a session get a 4xx, never a 500. Against a real server
process on loopback: a caller past `SESSIONS_PER_CALLER` sessions loses its own session idle the longest, never
another caller's, and is refused (429) when every one of its sessions is busy; a GET asking to resume a stream is
told that this server cannot, and the server keeps serving."""

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest

from server.transports.http.sessions import SESSIONS_PER_CALLER
from tests.http_server import JSON_LOGS, free_port, http_server, initialize, refusals, serving
from tests.peers.jwks_server import Issuer

pytestmark = pytest.mark.subprocess

TOKEN = "test-http-token-0123456789abcdef"
_VERSION = "2025-11-25"


def _open(url: str, token: str) -> str:
    """A new session for the holder of `token`: its id."""
    answer = initialize(url, authorization=f"Bearer {token}")
    assert answer.status_code == 200, answer.text
    return answer.headers["mcp-session-id"]


def _headers(token: str, session: str, **more: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "mcp-session-id": session,
        "mcp-protocol-version": _VERSION,
        "accept": "application/json, text/event-stream",
        **more,
    }


def _alive(url: str, token: str, session: str) -> bool:
    """Whether the session still answers (a ping): 200, or 404 once it has ended."""
    ping: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    status = httpx2.post(url, json=ping, headers=_headers(token, session), timeout=30).status_code
    assert status in (200, 404), status
    return status == 200


def test_a_caller_past_its_session_limit_loses_its_own_sessions_idle_the_longest(ledger_path: Path) -> None:
    extra = 3
    with http_server(ledger_path, PLANNER_MCP_HTTP_TOKEN=TOKEN) as url:
        sessions = [_open(url, TOKEN) for _ in range(SESSIONS_PER_CALLER + extra)]
        alive = [_alive(url, TOKEN, session) for session in sessions]
    assert alive == [False] * extra + [True] * SESSIONS_PER_CALLER


def test_one_callers_sessions_never_make_room_for_anothers(ledger_path: Path) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with Issuer(audience=resource) as issuer:
        alice, bob = issuer.token(client_id="desk", sub="alice"), issuer.token(client_id="desk", sub="bob")
        env = {
            "PLANNER_MCP_OAUTH_ISSUER": issuer.url,
            "PLANNER_MCP_OAUTH_AUDIENCE": resource,
            "PLANNER_MCP_OAUTH_JWKS_URL": issuer.jwks_url,
        }
        with http_server(ledger_path, port=port, **env) as url:
            bobs = _open(url, bob)
            alices = [_open(url, alice) for _ in range(SESSIONS_PER_CALLER + 1)]
            assert _alive(url, bob, bobs)  # alice's sessions took the place of her own
            assert [_alive(url, alice, s) for s in alices] == [False] + [True] * SESSIONS_PER_CALLER
            assert not _alive(url, alice, bobs)  # nor can she use (or end) his
            assert _alive(url, bob, bobs)


def test_a_caller_whose_sessions_are_all_busy_is_refused_another_and_the_refusal_is_logged(ledger_path: Path) -> None:
    env = {"PLANNER_MCP_HTTP_TOKEN": TOKEN}
    with (
        serving(ledger_path, env=env, options=JSON_LOGS) as served,
        httpx2.Client(timeout=30) as http,
        ExitStack() as streams,
    ):
        for _ in range(SESSIONS_PER_CALLER):  # each holds a GET stream open: busy, as a connected host's session is
            headers = _headers(TOKEN, _open(served.url, TOKEN), accept="text/event-stream")
            assert streams.enter_context(http.stream("GET", served.url, headers=headers)).status_code == 200
        refused = initialize(served.url, authorization=f"Bearer {TOKEN}")
    assert refused.status_code == 429 and "Too many open sessions" in refused.json()["error"]["message"]
    logged, _ = refusals(served.stderr)
    assert [(e["status"], e["reason"]) for e in logged] == [(429, "session_limit")]


@pytest.mark.parametrize("stateless", [False, True], ids=["with sessions", "stateless"])
def test_a_get_asking_to_resume_a_stream_is_told_this_server_cannot_and_the_server_keeps_serving(
    ledger_path: Path, stateless: bool
) -> None:
    args = ("--stateless",) if stateless else ()
    with serving(ledger_path, *args, env={"PLANNER_MCP_HTTP_TOKEN": TOKEN}) as served:
        opened = initialize(served.url, authorization=f"Bearer {TOKEN}")
        session = opened.headers.get("mcp-session-id", "")
        headers = _headers(TOKEN, session, accept="text/event-stream", **{"last-event-id": "0"})
        if stateless:
            del headers["mcp-session-id"]
        resumed = httpx2.get(served.url, headers=headers, timeout=30)
        again = initialize(served.url, authorization=f"Bearer {TOKEN}")
    assert resumed.status_code == 400, resumed.text
    assert "cannot be resumed" in resumed.json()["error"]["message"]
    assert again.status_code == 200
    assert "ASGI callable returned without starting response" not in served.stderr


def test_a_request_the_server_refuses_makes_no_room_and_the_limit_holds(ledger_path: Path) -> None:
    with http_server(ledger_path, PLANNER_MCP_HTTP_TOKEN=TOKEN) as url:
        sessions = [_open(url, TOKEN) for _ in range(SESSIONS_PER_CALLER)]
        foreign = initialize(url, authorization=f"Bearer {TOKEN}", origin="http://evil.example")
        sessions += [_open(url, TOKEN) for _ in range(2)]
        alive = [_alive(url, TOKEN, session) for session in sessions]
    assert foreign.status_code == 403
    assert alive == [False] * 2 + [True] * SESSIONS_PER_CALLER
