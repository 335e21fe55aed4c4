"""A real `planner-mcp serve` with PLANNER_MCP_METRICS_PORT set, over stdio and over HTTP, scraped as Prometheus
would: what a scrape counts is what was called and what the ledger holds, budgets and breakers are read at
scrape time, hostile clients of the listener hold no call, and a scrape holds no argument and no secret."""

import json
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import API_KEY, DEFAULT_TOOLS, PLAN, policy_file, rows
from tests.http_server import free_port, serving, use
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.vault_server import FakeVault
from tests.processes import server_process, stdio_params
from tests.telemetry.prometheus.scrape import Scrape, exchange, scrape
from tests.vault_seed import TOKEN

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]

_CANARY = "canary-7f3e9b2d"
"""Text sent in arguments: it must reach the ledger (scrubbed or not), and never a scrape."""
_WAIT_S = 60


@asynccontextmanager
async def _stdio(ledger_path: Path, **env: str) -> AsyncIterator[tuple[Client, tuple[str, int]]]:
    """`planner-mcp serve` over stdio with its metrics on a free loopback port: the client, and where to scrape."""
    port = free_port()
    params = stdio_params(
        {"PLANNER_MCP_LEDGER": str(ledger_path), "PLANNER_MCP_METRICS_PORT": str(port), **env}, "serve"
    )
    async with Client(params, mode="legacy") as client:
        yield client, ("127.0.0.1", port)


async def _scrape(address: tuple[str, int]) -> Scrape:
    return await anyio.to_thread.run_sync(scrape, address)


def _llm_env(llm: FakeOpenAI) -> dict[str, str]:
    return {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}


def _ledger_counts(ledger_path: Path) -> Counter[tuple[str, str, str]]:
    """The calls the ledger holds, as the metrics label them: (tool, decision, error kind)."""
    return Counter(
        (row["action"] if row["action"] in DEFAULT_TOOLS else "unknown", row["decision"], row["error_type"] or "")
        for row in rows(ledger_path)
    )


def _scraped_counts(found: Scrape) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for labels, value in found.samples("planner_mcp_calls_total"):
        counts[(labels["tool"], labels["decision"], labels["error_kind"])] += int(value)
    return +counts


async def _calls(client: Client) -> int:
    """Calls of every kind a host makes: reads, a missing entry, a bad name, a tool that is none of ours, a plan;
    each carrying the canary. Returns how many."""
    asks: list[tuple[str, dict[str, Any]]] = [
        ("read_docs", {"name": "vm-provisioning"}),
        ("read_docs", {"name": "vm-provisioning"}),
        ("list_docs", {}),
        ("read_docs", {"name": f"no-such-{_CANARY}"}),
        ("read_docs", {"name": f"../{_CANARY}"}),
        (f"exfiltrate_{_CANARY}", {"target": _CANARY}),
        ("generate_plan", {"description": f"Add a VM {_CANARY}", "context": {"api_key": API_KEY, "note": _CANARY}}),
    ]
    for tool, arguments in asks:
        await client.call_tool(tool, arguments)
    return len(asks)


def _holds_nothing_it_should_not(found: Scrape) -> None:
    for secret in (_CANARY, API_KEY, "exfiltrate", "vm-provisioning", TOKEN):
        assert secret not in found.text


async def test_over_stdio_a_scrape_counts_the_calls_made_as_the_ledger_records_them(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.default = Reply.text(json.dumps(PLAN))
    with anyio.fail_after(_WAIT_S):
        async with _stdio(ledger_path, **_llm_env(llm)) as (client, address):
            before = await _scrape(address)
            made = await _calls(client)
            after = await _scrape(address)
    assert before.value("planner_mcp_calls_total") == 0
    assert after.value("planner_mcp_calls_total") == made == len(rows(ledger_path))
    assert _scraped_counts(after) == _ledger_counts(ledger_path)
    assert after.value("planner_mcp_calls_total", tool="unknown", decision="ERROR") == 1
    assert after.value("planner_mcp_call_duration_seconds_count") == made
    assert after.value("planner_mcp_llm_tokens_total", model="test-model", type="input") == 11
    assert after.value("planner_mcp_llm_requests_total", model="test-model", outcome="replied") == 1
    assert after.value("planner_mcp_ledger_append_duration_seconds_count", table="agent_actions") >= made
    assert after.value("planner_mcp_ledger_append_failures_total") == 0
    assert after.value("planner_mcp_store_read_duration_seconds_count", store="file") >= 3
    _holds_nothing_it_should_not(after)


async def test_over_http_the_metrics_are_on_their_own_port(ledger_path: Path) -> None:
    token = "metrics-test-token-0123456789"
    metrics_port = free_port()
    env = {"PLANNER_MCP_HTTP_TOKEN": token, "PLANNER_MCP_METRICS_PORT": f"127.0.0.1:{metrics_port}"}
    with serving(ledger_path, env=env) as served:
        with anyio.fail_after(_WAIT_S):
            for _ in range(2):
                await use(served.url, token)
            found = await _scrape(("127.0.0.1", metrics_port))
        on_the_mcp_port = exchange(("127.0.0.1", served.port), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert found.value("planner_mcp_calls_total", tool="read_docs", decision="EXECUTE") == 2
    assert _scraped_counts(found) == _ledger_counts(ledger_path)
    assert on_the_mcp_port.status != 200 and b"planner_mcp_" not in on_the_mcp_port.body
    assert token not in found.text


async def test_the_budget_left_falls_with_each_llm_call(ledger_path: Path, llm: FakeOpenAI, tmp_path: Path) -> None:
    llm.default = Reply.text(json.dumps(PLAN))
    policy = policy_file(tmp_path / "policy.toml", daily_token_budget=100_000)
    with anyio.fail_after(_WAIT_S):
        async with _stdio(ledger_path, PLANNER_MCP_POLICY=str(policy), **_llm_env(llm)) as (client, address):
            left = [(await _scrape(address)).value("planner_mcp_token_budget_left")]
            for description in ("Add a VM", "Add another VM"):
                await client.call_tool("generate_plan", {"description": description})
                left.append((await _scrape(address)).value("planner_mcp_token_budget_left"))
            budget = (await _scrape(address)).value("planner_mcp_token_budget")
    spent = [row["prompt_tokens"] + row["completion_tokens"] for row in rows(ledger_path)]
    assert budget == 100_000 and spent == [18, 18]
    assert left == [100_000, 100_000 - 18, 100_000 - 36]


async def test_the_breakers_turn_open_when_vault_and_the_llm_are_down(
    ledger_path: Path, llm: FakeOpenAI, vault: FakeVault
) -> None:
    env = {
        **_llm_env(llm), "VAULT_ADDR": vault.addr, "VAULT_TOKEN": TOKEN, "PLANNER_MCP_VAULT_RETRIES": "0",
        "PLANNER_MCP_LLM_RETRIES": "0", "PLANNER_MCP_LLM_BREAKER_FAILURES": "2",
    }  # fmt: skip
    states = "planner_mcp_breaker_state"
    with anyio.fail_after(_WAIT_S):
        async with _stdio(ledger_path, **env) as (client, address):
            before = await _scrape(address)
            vault.stop()
            llm.stop()
            for _ in range(5):  # Vault's breaker opens after 5 outages in a row
                await client.call_tool("read_docs", {"name": "vm-provisioning"})
            for _ in range(2):
                await client.call_tool("analyze", {"description": "Why?"})
            after = await _scrape(address)
    assert before.value(states, dependency="vault", state="closed") == 1
    assert before.value(states, dependency="llm", state="closed") == 1
    assert after.value(states, dependency="vault", state="open") == 1
    assert after.value(states, dependency="llm", state="open") == 1
    assert after.value(states, dependency="llm", state="closed") == 0
    assert after.value("planner_mcp_calls_total", tool="analyze", error_kind="LLM_UNREACHABLE") == 2
    _holds_nothing_it_should_not(after)


async def test_hostile_clients_of_the_listener_hold_no_call(ledger_path: Path) -> None:
    with anyio.fail_after(_WAIT_S):
        async with _stdio(ledger_path) as (client, address):
            with ExitStack() as held:
                for n in range(64):  # more than the listener keeps open, each sending part of a request, or none
                    sock = held.enter_context(socket.create_connection(address, timeout=10))
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * n)
                for hostile in (b"\x00\xff" * 5000, b"POST /metrics HTTP/1.1\r\n\r\n", b"GET /../x HTTP/1.1\r\n\r\n"):
                    assert exchange(address, hostile).status in (400, 404, 405, 431)
                with anyio.fail_after(4):  # before any of those connections' own deadline (5 s)
                    result = await client.call_tool("list_docs", {})
                    found = await _scrape(address)
    assert not result.is_error
    assert found.value("planner_mcp_calls_total", tool="list_docs") == 1


async def test_a_flood_of_scrapes_holds_no_call(ledger_path: Path, tmp_path: Path) -> None:
    policy = policy_file(tmp_path / "policy.toml", daily_token_budget=100_000)  # so a scrape reads the ledger
    stop = threading.Event()
    scrapes: list[Scrape] = []

    def flood(address: tuple[str, int]) -> None:
        while not stop.is_set():
            scrapes.append(scrape(address))

    with anyio.fail_after(_WAIT_S):
        async with _stdio(ledger_path, PLANNER_MCP_POLICY=str(policy)) as (client, address):
            flooding = [threading.Thread(target=flood, args=(address,)) for _ in range(4)]
            for thread in flooding:
                thread.start()
            try:
                results = [await client.call_tool("read_docs", {"name": "vm-provisioning"}) for _ in range(20)]
            finally:
                stop.set()
                for thread in flooding:
                    thread.join(timeout=10)
            last = await _scrape(address)
    assert not any(result.is_error for result in results) and scrapes
    assert last.value("planner_mcp_calls_total", tool="read_docs") == 20
    assert last.value("planner_mcp_token_budget_left") == 100_000


def test_a_metrics_port_in_use_is_an_error_on_stderr_and_mcp_is_served(ledger_path: Path) -> None:
    messages: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_docs", "arguments": {}}},
    ]  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {"PLANNER_MCP_METRICS_PORT": str(port)}
        with server_process(ledger_path, "serve", env=env, encoding="utf-8") as proc:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
            proc.stdin.flush()
            replies = [json.loads(proc.stdout.readline()) for _ in range(2)]
            proc.stdin.close()
            stderr = proc.stderr.read()
    assert replies[1]["id"] == 2 and replies[1]["result"]["isError"] is False
    assert f"127.0.0.1:{port}" in stderr and "PLANNER_MCP_METRICS_PORT" in stderr and "in use" in stderr
