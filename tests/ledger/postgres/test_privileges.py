"""Least privilege in the database itself, not only in our code.

Servers log in as a member of planner_mcp_writer: it may read the chain and append to it, never change or remove
a row, whatever a compromised server sends. The tables' owner is refused the same by the append-only triggers.
A role with no grants gets every call refused with the privilege it lacks named, and nothing read; an auditor's
planner_mcp_reader may verify, tail and count, and write nothing.
"""

import secrets
import subprocess

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

import psycopg

from ledger import Ledger, LedgerError, verify
from ledger.chain import TABLES
from ledger.postgres.catalog import lacking
from ledger.reader import Snapshot
from server import Settings
from tests.conftest import call, call_once, connect
from tests.ledger.postgres.conftest import dbname, ledger_conn
from tests.postgres_cluster import PostgresCluster
from tests.processes import WATCHDOG_S, server_command

pytestmark = pytest.mark.anyio

_CHANGES = ("UPDATE {table} SET seq = seq", "DELETE FROM {table}", "TRUNCATE {table}")


def _role(cluster: PostgresCluster, ledger_url: str, *in_roles: str) -> str:
    """The URL of a new login role, a member of `in_roles` and nothing more, to the ledger's database."""
    name, password = f"role_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    cluster.create_role(name, password, in_roles=in_roles)
    return cluster.url(name, password, dbname(ledger_url))


async def _written(ledger_url: str) -> None:
    async with connect(Settings(ledger_path=ledger_url)) as client:
        for tool, args in (("read_docs", {"name": "backup-restore"}), ("ssh", {"host": "pve01"})):
            await call(client, tool, args)
    ledger = Ledger(ledger_url)
    ledger.record_event("note", "written by the tests")
    ledger.close()


def _refused(url: str, statement: str) -> str:
    with ledger_conn(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
        conn.execute(statement)
    return str(raised.value)


def _counts(cluster: PostgresCluster, ledger_url: str) -> list[int]:
    tables = (*TABLES, "agent_metrics")
    query = " UNION ALL ".join(f"SELECT count(*) FROM planner_mcp.{t}" for t in tables)
    return [n for (n,) in cluster.execute(query, dbname=dbname(ledger_url))]


async def test_the_writer_role_may_read_and_append_but_never_update_delete_or_truncate(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    await _written(pg_ledger)  # the server appended as the writer role
    before = _counts(pg_cluster, pg_ledger)
    assert all(before[:2]) and before[-1] == 1
    for table in TABLES:
        for change in _CHANGES:
            assert f"permission denied for table {table}" in _refused(pg_ledger, change.format(table=table))
    for change in _CHANGES[1:]:
        assert "permission denied for table agent_metrics" in _refused(pg_ledger, change.format(table="agent_metrics"))
    assert _counts(pg_cluster, pg_ledger) == before
    assert verify(pg_ledger).status == "ok"


async def test_the_tables_owner_is_refused_update_delete_and_truncate_by_the_triggers(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    await _written(pg_ledger)
    before = _counts(pg_cluster, pg_ledger)
    owner = pg_cluster.superuser_url(dbname(pg_ledger))  # `ledger init` ran as it: it owns every table
    # Row triggers fire for each row changed: UPDATE and DELETE are tried where there are rows to change.
    held = [table for table, count in zip(TABLES, before, strict=False) if count]
    assert {"call_intents", "agent_actions", "ledger_events"} <= set(held)
    for table in TABLES:
        for change in _CHANGES if table in held else _CHANGES[2:]:
            message = _refused(owner, change.format(table=table))
            assert f"the audit ledger is append-only: {table} rows cannot be changed" in message
    assert _counts(pg_cluster, pg_ledger) == before
    assert verify(owner).status == "ok"


async def test_a_login_role_without_grants_has_every_call_refused_naming_what_it_lacks(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    await _written(pg_ledger)
    before = _counts(pg_cluster, pg_ledger)
    nobody = _role(pg_cluster, pg_ledger)
    async with connect(Settings(ledger_path=nobody)) as client:
        outputs = [(await call(client, tool, args))[1] for tool, args in
                   (("read_docs", {"name": "backup-restore"}), ("list_docs", {}), ("read_inventory", {}))]  # fmt: skip
    for output in outputs:
        assert output["decision"] == "ERROR" and output["data"] is None
        assert output["error"]["type"] == "LEDGER_UNAVAILABLE"
        message = output["error"]["message"]
        assert "USAGE on schema planner_mcp" in message and "grant it planner_mcp_writer" in message
        assert "Nothing was read" in message and "no ledger" not in message
    assert _counts(pg_cluster, pg_ledger) == before
    with pytest.raises(LedgerError) as raised:
        verify(nobody)
    assert raised.value.reason == "denied" and "USAGE on schema planner_mcp" in str(raised.value)


async def test_a_role_missing_one_grant_is_told_which(pg_cluster: PostgresCluster, pg_ledger: str) -> None:
    group = f"partial_{secrets.token_hex(4)}"
    pg_cluster.execute(f"CREATE ROLE {group} NOLOGIN", dbname=dbname(pg_ledger))
    pg_cluster.execute(f"GRANT USAGE ON SCHEMA planner_mcp TO {group}", dbname=dbname(pg_ledger))
    pg_cluster.execute(
        f"GRANT SELECT ON ALL TABLES IN SCHEMA planner_mcp TO {group};"
        f" GRANT INSERT ON ALL TABLES IN SCHEMA planner_mcp TO {group}",
        dbname=dbname(pg_ledger),
    )
    url = _role(pg_cluster, pg_ledger, group)  # no UPDATE on agent_metrics
    ledger = Ledger(url)
    try:
        with pytest.raises(LedgerError) as raised:
            ledger.open()  # at once: not after an intent is recorded and the call has read, at its outcome
    finally:
        ledger.close()
    assert raised.value.reason == "denied"
    assert "privileges it needs: UPDATE on agent_metrics (grant it planner_mcp_writer)" in str(raised.value)
    pg_cluster.execute(f"DROP OWNED BY {group}; DROP ROLE {group}", dbname=dbname(pg_ledger))


async def test_a_reader_role_can_verify_tail_and_count_but_not_write(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    await _written(pg_ledger)
    before = _counts(pg_cluster, pg_ledger)
    reader = _role(pg_cluster, pg_ledger, "planner_mcp_reader")
    report = verify(reader)
    assert report.status == "ok" and report.rows == 4  # read_docs's intent and outcome, ssh's refusal, a note
    assert [row["action"] for row in Snapshot(reader).tail()] == ["read_docs", "ssh"]
    [stats] = Snapshot(reader).stats()
    assert stats["total_runs"] == 2 and stats["refused_runs"] == 1
    env = {"PLANNER_MCP_LEDGER": reader, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    cli = subprocess.run(
        server_command("ledger", "verify"), env=env, capture_output=True, text=True, timeout=WATCHDOG_S
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    _, output = await call_once(Settings(ledger_path=reader), "read_docs", {"name": "backup-restore"})
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE" and output["data"] is None
    assert "call_intents" in output["error"]["message"] and "planner_mcp_writer" in output["error"]["message"]
    for table in TABLES:
        for change in ("INSERT INTO {table} SELECT * FROM {table}", *_CHANGES):
            assert "permission denied" in _refused(reader, change.format(table=table))
    assert _counts(pg_cluster, pg_ledger) == before


def test_the_privileges_each_role_lacks_are_read_from_the_catalog(pg_cluster: PostgresCluster, pg_ledger: str) -> None:
    def lacks(url: str, *, write: bool) -> list[str]:
        with ledger_conn(url) as conn:
            return lacking(conn, write=write)

    assert lacks(pg_ledger, write=True) == []
    reader = _role(pg_cluster, pg_ledger, "planner_mcp_reader")
    assert lacks(reader, write=False) == []
    assert lacks(reader, write=True) == [
        *(f"INSERT on {table}" for table in (*TABLES, "agent_metrics")),
        "UPDATE on agent_metrics",
    ]
    nobody = lacks(_role(pg_cluster, pg_ledger), write=False)
    assert nobody == ["USAGE on schema planner_mcp", *(f"SELECT on {table}" for table in (*TABLES, "agent_metrics"))]
