"""Streamable HTTP, as a real server process on loopback: no token, a wrong or expired one, a token for someone
else and a foreign Origin are refused; a good one is served, through the same gate and ledger as stdio."""

import json
import socket
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import API_KEY, DEFAULT_TOOLS, PLAN, rows
from tests.http_server import free_port, http_server, initialize, use
from tests.peers.jwks_server import Issuer
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import run_cli

pytestmark = pytest.mark.subprocess

TOKEN = "test-http-token-0123456789abcdef"


def test_a_static_token_is_required_and_a_foreign_origin_refused(ledger_path: Path) -> None:
    port = free_port()
    with http_server(ledger_path, port=port, PLANNER_MCP_HTTP_TOKEN=TOKEN) as url:
        missing = initialize(url)
        wrong = initialize(url, authorization="Bearer not-the-token-at-all")
        origins = {
            origin: initialize(url, authorization=f"Bearer {TOKEN}", origin=origin).status_code
            for origin in [
                "http://evil.example",
                f"http://localhost:{port + 1}",  # a page another program serves on this machine
                f"http://127.0.0.1:{port}",  # this server's own
                f"http://localhost:{port}",  # the same, by name
            ]
        }
        tools, request_id = anyio.run(use, url, TOKEN)
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in missing.text + wrong.text
    assert list(origins.values()) == [403, 403, 200, 200]
    assert tools == DEFAULT_TOOLS
    assert [r["request_id"] for r in rows(ledger_path)] == [request_id]  # the refusals never reached the gate


def test_http_will_not_start_without_a_way_to_check_callers(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "serve", "--transport", "http", "--port", str(free_port()))
    assert (
        proc.returncode == 2 and "PLANNER_MCP_HTTP_TOKEN" in proc.stderr and "PLANNER_MCP_OAUTH_ISSUER" in proc.stderr
    )
    assert not ledger_path.exists()


def test_oauth_access_tokens_are_checked_for_signature_issuer_audience_and_expiry(ledger_path: Path) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with Issuer(audience=resource) as issuer:
        env = {
            "PLANNER_MCP_OAUTH_ISSUER": issuer.url,
            "PLANNER_MCP_OAUTH_AUDIENCE": resource,
            "PLANNER_MCP_OAUTH_JWKS_URL": issuer.jwks_url,
        }
        with http_server(ledger_path, port=port, **env) as url:
            refused = {
                "none": initialize(url),
                "expired": initialize(url, authorization=f"Bearer {issuer.token(exp=int(time.time()) - 60)}"),
                "audience": initialize(url, authorization=f"Bearer {issuer.token(aud='https://other.example/mcp')}"),
                "issuer": initialize(url, authorization=f"Bearer {issuer.token(iss='https://evil.example')}"),
                "signature": initialize(url, authorization=f"Bearer {issuer.token(key=issuer.stranger_key)}"),
                "no expiry": initialize(url, authorization=f"Bearer {issuer.token(exp=None)}"),
                "garbage": initialize(url, authorization="Bearer not.a.jwt"),
            }
            metadata = httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", timeout=10)
            tools, request_id = anyio.run(use, url, issuer.token())
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 401)
    assert "resource_metadata=" in refused["none"].headers["www-authenticate"]
    assert metadata.status_code == 200
    assert metadata.json()["resource"] == resource and metadata.json()["authorization_servers"] == [issuer.url]
    assert tools == DEFAULT_TOOLS and [r["request_id"] for r in rows(ledger_path)] == [request_id]
    [row] = rows(ledger_path)
    assert row["notes"] == "caller: client=test-client sub=alice"  # the record says who called


def test_a_stateless_server_answers_without_a_session(ledger_path: Path) -> None:
    with http_server(ledger_path, "--stateless", PLANNER_MCP_HTTP_TOKEN=TOKEN) as url:
        first = initialize(url, authorization=f"Bearer {TOKEN}")
        _, request_id = anyio.run(use, url, TOKEN)
    assert first.status_code == 200 and "mcp-session-id" not in first.headers
    assert [r["request_id"] for r in rows(ledger_path)] == [request_id]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PLANNER_MCP_OAUTH_ISSUER": "https://issuer.example"}, "OAuth needs all of"),
        (
            {
                "PLANNER_MCP_HTTP_TOKEN": TOKEN,
                "PLANNER_MCP_OAUTH_ISSUER": "https://i.example",
                "PLANNER_MCP_OAUTH_AUDIENCE": "a",
                "PLANNER_MCP_OAUTH_JWKS_URL": "https://i.example/jwks",
            },
            "not both",
        ),
        ({"PLANNER_MCP_HTTP_TOKEN": "short"}, "shorter than 16"),
    ],
)
def test_an_http_configuration_that_cannot_check_callers_names_the_fix(env: dict[str, str], says: str) -> None:
    from server import Settings
    from server.config.settings import SettingsError
    from server.transports.http.serve import http_app

    with pytest.raises(SettingsError, match=says):
        http_app(Settings.from_env({"HOME": "/nonexistent", **env}))


def _non_loopback_address() -> str | None:
    """This machine's address toward other hosts (a UDP connect sends nothing), or None without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routed, never answered, and nothing is sent
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_http_listens_on_loopback_only_unless_told_otherwise(ledger_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback to try")
    port = free_port()
    with http_server(ledger_path, port=port, PLANNER_MCP_HTTP_TOKEN=TOKEN):
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_callers_token_is_not_what_the_llm_endpoint_receives(ledger_path: Path, llm: FakeOpenAI) -> None:
    llm.enqueue(Reply(content=json.dumps(PLAN)))

    async def plan(url: str) -> None:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            result = await client.call_tool("generate_plan", {"description": "Add a VM"})
        assert not result.is_error, result.structured_content

    with http_server(ledger_path, PLANNER_MCP_HTTP_TOKEN=TOKEN, OPENAI_BASE_URL=llm.base_url,
                     OPENAI_API_KEY=API_KEY, PLANNER_MCP_MODEL="test-model") as url:  # fmt: skip
        anyio.run(plan, url)
    [request] = llm.requests
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert TOKEN not in json.dumps(request.headers) and TOKEN.encode() not in request.body
