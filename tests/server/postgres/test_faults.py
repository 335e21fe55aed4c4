"""A PostgreSQL ledger that cannot record refuses every call, names why, and serves again once it can.

Each fault is real: a cluster of the test's own stopped, restarted or crashed; a network path that accepts and
never answers; a database set read-only; a data disk filled to its last page; a lock held by another session;
the server's backend terminated. While it lasts every call is refused with LEDGER_UNAVAILABLE in words that name
the cause (and never the URL's password), nothing is read and no LLM is asked; once it ends the same server,
not restarted, records again, and every call it acknowledged is in the ledger.
"""

import contextlib
import json
from collections.abc import Callable, Collection, Iterator
from typing import Any

import anyio
import pytest
from mcp import Client

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import verify
from server import Settings
from server.config.settings import BUNDLED_DATA, LLMConfig
from tests.conftest import API_KEY, PLAN, call, connect, init_ledger, until
from tests.file_access import file_accesses_under
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.postgres_cluster import PostgresCluster
from tests.processes import stdio_params
from tests.server.postgres.network import Route
from tests.server.test_ledger_faults import _EVERY_TOOL
from tests.small_disk import full_disk

pytestmark = pytest.mark.anyio

_A_READ_AND_AN_LLM_CALL = [_EVERY_TOOL[0], _EVERY_TOOL[3]]
"""For the faults each call waits out (a connect timeout): enough to show nothing is read and no LLM is asked."""
_CAUSES = ["is down", "connect timeout", "is read-only", "out of disk", "lock timeout", "statement timeout",
           "lost the connection"]  # fmt: skip
"""How each cause reads: an operator must tell them apart."""


def _settings(url: str, llm: FakeOpenAI, **overrides: Any) -> Settings:
    config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=5, max_retries=0)
    return Settings(ledger_path=url, llm=config, **overrides)


def _password(url: str) -> str:
    from ledger.postgres.urls import password_of

    password = password_of(url)
    assert password, url
    return password


async def _every_call_is_refused(
    client: Client, llm: FakeOpenAI, url: str, says: str, tools: list[tuple[str, dict[str, Any]]] = _EVERY_TOOL
) -> None:
    """Every tool is refused with LEDGER_UNAVAILABLE naming the cause `says` (and no other), never the password;
    no store file is opened, no LLM asked."""
    messages = []
    with file_accesses_under(BUNDLED_DATA) as seen:
        for tool, args in tools:
            result, output = await call(client, tool, args)
            assert result.is_error and output["error"]["type"] == "LEDGER_UNAVAILABLE", (tool, output)
            messages.append(output["error"]["message"])
    assert seen == []
    assert llm.requests == []
    for message in messages:
        assert [cause for cause in _CAUSES if cause in message] == [says], message
        assert _password(url) not in message, message


async def _serves(client: Client) -> None:
    result, output = await call(client, "read_docs", {"name": "backup-restore"})
    assert not result.is_error, output["error"]


def _unbroken(url: str, *, refused: Collection[str] = ()) -> None:
    """The chain verifies: nothing altered, no gap; the only findings are intents of calls whose outcome could not
    be written (each one refused to its client, among `refused`), which `verify` reports as incomplete."""
    report = verify(url)
    assert report.kinds() <= {"incomplete"}, [str(f) for f in report.findings]
    for finding in report.findings:
        assert any(request_id in finding.detail for request_id in refused), str(finding)


def _own_ledger(cluster: PostgresCluster) -> str:
    cluster.create_database("ledger")
    return init_ledger(cluster, "ledger")


@pytest.fixture
def own_ledger(pg_cluster_factory: Callable[..., PostgresCluster]) -> tuple[PostgresCluster, str]:
    """A cluster of the test's own, to stop, restart or crash, holding a fresh ledger; and the writer's URL."""
    cluster = pg_cluster_factory()
    return cluster, _own_ledger(cluster)


def _backend(cluster: PostgresCluster, url: str) -> int:
    """The process id of the server's session (the only one of the URL's role)."""
    user = url.split("//", 1)[1].split(":", 1)[0]
    (pid,) = cluster.execute(
        "SELECT pid FROM pg_stat_activity WHERE usename = %s AND application_name = 'planner-mcp'", [user]
    )[0]
    return int(pid)


# --- the database down, and back ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_stopped_database_refuses_every_call_as_down_and_serves_again_once_started(
    own_ledger: tuple[PostgresCluster, str], llm: FakeOpenAI
) -> None:
    cluster, url = own_ledger
    async with connect(_settings(url, llm, ledger_busy_timeout_s=1)) as client:
        await _serves(client)
        cluster.stop()
        await _every_call_is_refused(client, llm, url, "is down")
        cluster.start()
        await _serves(client)
    assert verify(url).status == "ok"


@pytest.mark.slow
@pytest.mark.subprocess
async def test_a_stdio_server_refuses_calls_while_its_database_is_down_and_serves_again_once_started(
    own_ledger: tuple[PostgresCluster, str], llm: FakeOpenAI
) -> None:
    cluster, url = own_ledger
    env = {"PLANNER_MCP_LEDGER": url, "PLANNER_MCP_LEDGER_BUSY_TIMEOUT": "1", "OPENAI_BASE_URL": llm.base_url,
           "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model", "PATH": "/usr/bin:/bin"}  # fmt: skip
    with anyio.fail_after(60):
        async with Client(stdio_params(env, "serve"), mode="legacy") as client:
            await _serves(client)
            cluster.stop()
            refused = await client.call_tool("generate_plan", {"description": "Add a VM"})
            cluster.start()
            await _serves(client)
    assert refused.is_error and refused.structured_content is not None
    assert refused.structured_content["error"]["type"] == "LEDGER_UNAVAILABLE"
    message = refused.structured_content["error"]["message"]
    assert "is down" in message and _password(url) not in message, message
    assert llm.requests == []
    assert verify(url).status == "ok"


@pytest.mark.slow
async def test_a_database_restarted_between_calls_costs_no_call(
    own_ledger: tuple[PostgresCluster, str], llm: FakeOpenAI
) -> None:
    cluster, url = own_ledger
    async with connect(_settings(url, llm)) as client:
        await _serves(client)
        cluster.restart()  # the server's session is ended under it, while it is idle
        await _serves(client)
        cluster.stop("immediate")  # a crash: the session's socket just closes
        cluster.start()
        await _serves(client)
    assert verify(url).status == "ok"


@pytest.mark.slow
async def test_no_acknowledged_call_is_lost_when_the_database_crashes_under_load(
    own_ledger: tuple[PostgresCluster, str], llm: FakeOpenAI
) -> None:
    cluster, url = own_ledger
    acknowledged: list[str] = []
    refused: list[str] = []
    stop = anyio.Event()

    async def caller(client: Client) -> None:
        while not stop.is_set():
            result, output = await call(client, "read_docs", {"name": "backup-restore"})
            (refused if result.is_error else acknowledged).append(output["request_id"])

    async with connect(_settings(url, llm, ledger_busy_timeout_s=1)) as client, anyio.create_task_group() as callers:
        for _ in range(4):
            callers.start_soon(caller, client)
        for crash in ("immediate", "fast", "immediate"):
            await until(lambda: len(acknowledged) >= 20, timeout_s=30)
            at_crash = len(acknowledged)
            await anyio.to_thread.run_sync(lambda: cluster.stop(crash))  # noqa: B023
            await anyio.to_thread.run_sync(cluster.start)
            await until(lambda: len(acknowledged) >= at_crash + 20, timeout_s=30)  # noqa: B023
        stop.set()
    recorded = {
        request_id
        for (request_id,) in cluster.execute(
            "SELECT request_id FROM planner_mcp.agent_actions WHERE error_type IS NULL", dbname="ledger"
        )
    }
    assert set(acknowledged) <= recorded
    _unbroken(url, refused=refused)


# --- unreachable, read-only, out of disk ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_database_that_never_answers_refuses_calls_at_the_connect_timeout_and_serves_again_once_it_does(
    pg_cluster: PostgresCluster, pg_ledger: str, llm: FakeOpenAI
) -> None:
    with Route(pg_cluster.port) as route:
        url = pg_ledger.replace(f":{pg_cluster.port}/", f":{route.port}/")
        route.silent = True  # packets dropped: the server connects, and nothing ever comes back
        async with connect(_settings(url, llm, ledger_busy_timeout_s=1)) as client:
            await _every_call_is_refused(client, llm, url, "connect timeout", _A_READ_AND_AN_LLM_CALL)
            route.silent = False
            await _serves(client)
    assert verify(pg_ledger).status == "ok"


@pytest.mark.parametrize("scope", ["DATABASE {db}", "ROLE {role}"])
async def test_a_read_only_database_refuses_every_call_and_serves_again_once_writable(
    pg_cluster: PostgresCluster, pg_ledger: str, llm: FakeOpenAI, scope: str
) -> None:
    db = pg_ledger.rsplit("/", 1)[1]
    target = scope.format(db=db, role=pg_ledger.split("//", 1)[1].split(":", 1)[0])
    pg_cluster.execute(f"ALTER {target} SET default_transaction_read_only = on")
    async with connect(_settings(pg_ledger, llm)) as client:
        await _every_call_is_refused(client, llm, pg_ledger, "is read-only")
        pg_cluster.execute(f"ALTER {target} RESET default_transaction_read_only")
        await _serves(client)
    assert verify(pg_ledger).status == "ok"


@pytest.mark.slow
async def test_a_database_out_of_disk_refuses_every_call_and_serves_again_once_space_is_freed(
    pg_cluster_factory: Callable[..., PostgresCluster], llm: FakeOpenAI
) -> None:
    cluster = pg_cluster_factory(disk_mb=64)
    url = _own_ledger(cluster)
    async with connect(_settings(url, llm)) as client:
        await _serves(client)
        with full_disk(cluster.data_dir.parent):
            withheld = []  # the pages already made take rows until full: an outcome may find no room first
            for _ in range(500):
                result, output = await call(client, "read_docs", {"name": "backup-restore"})
                if result.is_error and "Nothing was read" in output["error"]["message"]:
                    break
                if result.is_error:
                    withheld.append(output["request_id"])
            assert "out of disk" in output["error"]["message"], output
            await _every_call_is_refused(client, llm, url, "out of disk")
        await _serves(client)
    _unbroken(url, refused=withheld)


# --- locks, timeouts, a connection lost -------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(cluster: PostgresCluster, url: str) -> Iterator[None]:
    """The ledger's tables locked by the superuser in a transaction of its own, for the block."""
    with cluster.connect(url.rsplit("/", 1)[1]) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE planner_mcp.call_intents, planner_mcp.agent_actions IN ACCESS EXCLUSIVE MODE")
        yield
        holder.execute("ROLLBACK")


async def test_a_lock_held_past_the_busy_timeout_refuses_every_call_and_serves_again_once_released(
    pg_cluster: PostgresCluster, pg_ledger: str, llm: FakeOpenAI
) -> None:
    async with connect(_settings(pg_ledger, llm, ledger_busy_timeout_s=0.3)) as client:
        with _locked(pg_cluster, pg_ledger):
            await _every_call_is_refused(client, llm, pg_ledger, "lock timeout")
        await _serves(client)
    assert verify(pg_ledger).status == "ok"


async def test_a_connection_lost_while_a_statement_runs_refuses_that_call_and_the_next_one_reconnects(
    pg_cluster: PostgresCluster, pg_ledger: str, llm: FakeOpenAI
) -> None:
    waiting = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
    async with connect(_settings(pg_ledger, llm, ledger_busy_timeout_s=10)) as client:
        await _serves(client)
        pid = _backend(pg_cluster, pg_ledger)
        with _locked(pg_cluster, pg_ledger), file_accesses_under(BUNDLED_DATA) as seen:
            async with anyio.create_task_group() as group:
                replies: list[dict[str, Any]] = []

                async def plan() -> None:
                    replies.append((await call(client, "generate_plan", {"description": "Add a VM"}))[1])

                group.start_soon(plan)
                await until(lambda: bool(pg_cluster.execute(waiting, [pid])), timeout_s=10)
                pg_cluster.execute("SELECT pg_terminate_backend(%s)", [pid])
        (output,) = replies
        assert output["error"]["type"] == "LEDGER_UNAVAILABLE", output
        assert "lost the connection" in output["error"]["message"], output
        assert seen == [] and llm.requests == []
        await _serves(client)
    assert verify(pg_ledger).status == "ok"


async def test_a_connection_lost_between_intent_and_outcome_is_replaced_and_the_call_is_recorded(
    pg_cluster: PostgresCluster, pg_ledger: str, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN), delay=1.0))  # the intent is in; the outcome waits for the reply
    async with connect(_settings(pg_ledger, llm)) as client:
        async with anyio.create_task_group() as group:
            outcome: list[Any] = []

            async def plan() -> None:
                outcome.append(await call(client, "generate_plan", {"description": "Add a VM"}))

            group.start_soon(plan)
            await until(lambda: bool(llm.chat_requests))
            pg_cluster.execute("SELECT pg_terminate_backend(%s)", [_backend(pg_cluster, pg_ledger)])
        ((result, output),) = outcome
    assert not result.is_error, output["error"]
    assert verify(pg_ledger).status == "ok"


def test_a_statement_past_the_statement_timeout_is_named_apart_from_a_cancel(pg_database: str) -> None:
    import psycopg

    from ledger.postgres.errors import from_postgres

    errors = []
    with psycopg.connect(pg_database, autocommit=True) as conn:
        for sql in ("SET statement_timeout = 50; SELECT pg_sleep(5)",
                    "SET statement_timeout = 0; SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5)"):  # fmt: skip
            with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
                conn.execute(sql)
            errors.append(from_postgres("L", cancelled.value))
    timed_out, by_request = errors
    assert timed_out.reason == "timeout" and "statement timeout" in str(timed_out).split("(")[0], timed_out
    assert by_request.reason == "unavailable" and "cancelled the statement" in str(by_request), by_request


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://planner:s3cret-Pass@[::1:5432/db",  # libpq quotes the whole URL back
        "postgresql://planner:s%zz3cret-Pass@127.0.0.1:5432/db",  # ... or the token it cannot decode
        "postgresql://planner:s3cret-Pass@127.0.0.1:5432/db?nonsense=1",
    ],
)
async def test_a_url_libpq_cannot_read_refuses_every_call_without_repeating_it(llm: FakeOpenAI, url: str) -> None:
    async with connect(_settings(url, llm)) as client:
        for tool, args in _EVERY_TOOL:
            _, output = await call(client, tool, args)
            assert output["error"]["type"] == "LEDGER_UNAVAILABLE", output
            assert "not a PostgreSQL URL libpq can read" in output["error"]["message"], output
            assert "3cret" not in json.dumps(output), output
    assert llm.requests == []
