"""The ledger on PostgreSQL: appends per second from 1 and from 8 writer processes, and `read_docs` against SQLite.

The section starts its own PostgreSQL the way the tests do (`tests.postgres_cluster`: `initdb` in a temporary
folder, loopback only, PostgreSQL's default durability: fsync and synchronous_commit on), applies the ledger's
schema as the owner, and writes as a role that is only a member of `planner_mcp_writer`, as a fleet's servers do.

Appends are counted as `bench.ledger_load` counts them on SQLite: one chained row each, writers recording calls
as the server does (an intent committed without waiting for the disk, then its outcome and the agent's metrics
committed and synced), all through `ledger.Ledger`; the ledger is then verified and its rows counted, so a lost
row is a figure, not a guess. The reads are the `reads` section's harness: two planner-mcp servers taking turns,
one on a SQLite file at synchronous=FULL and one on this PostgreSQL, timed on the same calls in the same run.
"""

import secrets
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from bench.ledger_load import shared_file
from bench.processes import planner
from bench.sessions import interleave, open_session
from bench.stats import ratio, summarize
from bench.workspace import READS, Workspace

if TYPE_CHECKING:
    from tests.postgres_cluster import PostgresCluster

__all__ = ["postgres_ledger"]

_SETTINGS = {"max_connections": "50"}


async def postgres_ledger(
    ws: Workspace, calls: int, batch: int, writers: int, writer_calls: int, errlog: TextIO
) -> dict[str, Any]:
    """Every figure of the section, or `{"skipped": why}` where PostgreSQL or psycopg cannot be had here."""
    cluster = _cluster()
    if isinstance(cluster, str):
        return {"skipped": cluster}
    with cluster:
        appends = {}
        for name, processes in (("one_writer", 1), ("writers", writers)):
            url = _ledger(cluster)
            appends[name] = await anyio.to_thread.run_sync(shared_file, url, processes, writer_calls // processes)
        result: dict[str, Any] = {"appends": appends}
        result["read_docs"] = await _reads(ws, _ledger(cluster), calls, batch, errlog)
        result["settings"] = _durability(cluster)
    return result


def _cluster() -> "PostgresCluster | str":
    """A running PostgreSQL of the section's own, or why there cannot be one (the tests' own skip message)."""
    import pytest

    try:
        from tests.postgres_cluster import PostgresCluster

        return PostgresCluster(settings=_SETTINGS)
    except pytest.skip.Exception as skipped:
        return str(skipped.msg)


def _ledger(cluster: "PostgresCluster") -> str:
    """A fresh database holding an empty ledger; the URL of a writer role on it."""
    from ledger.postgres.init import initialise

    name = f"bench_{secrets.token_hex(4)}"
    cluster.create_database(name)
    initialise(cluster.superuser_url(name))
    role, password = f"writer_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    cluster.create_role(role, password, in_roles=("planner_mcp_writer",))
    return cluster.url(role, password, name)


async def _reads(ws: Workspace, url: str, calls: int, batch: int, errlog: TextIO) -> dict[str, Any]:
    """`read_docs` round trips on planner-mcp with a SQLite ledger and with this PostgreSQL one, interleaved."""
    launches = [
        planner("sqlite", ledger=ws.root / "pg-section-sqlite" / "ledger.db", data_dir=ws.data, **ws.llm_env()),
        planner("postgres", ledger=url, data_dir=ws.data, **ws.llm_env()),
    ]
    async with AsyncExitStack() as stack:
        sessions = [await open_session(stack, launch, errlog) for launch in launches]
        samples = await interleave(sessions, [READS["read_docs"]], rounds=max(1, calls // batch), batch=batch)
    figures: dict[str, Any] = {name: summarize(times).as_dict() for name, times in samples.times_ms.items()}
    figures["ratio_p50_to_sqlite"] = ratio(figures["postgres"]["p50"], figures["sqlite"]["p50"])
    figures["ratio_p95_to_sqlite"] = ratio(figures["postgres"]["p95"], figures["sqlite"]["p95"])
    return figures


def _durability(cluster: "PostgresCluster") -> dict[str, str]:
    """The settings the appends were measured at, read back from the server, not assumed."""
    names = ("fsync", "synchronous_commit", "wal_sync_method", "server_version")
    found = cluster.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)])
    return {str(name): str(setting) for name, setting in found}
