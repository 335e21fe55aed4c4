"""read_logs against a PostgreSQL ledger shared by two agents' servers: each reads its own calls, and only those,
as on SQLite (tests/server/test_read_logs.py)."""

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import verify
from server import Settings
from tests.conftest import call, connect, policy_file
from tests.ledger.postgres.conftest import dbname
from tests.postgres_cluster import PostgresCluster

pytestmark = pytest.mark.anyio


def _entries(output: dict[str, Any]) -> list[dict[str, Any]]:
    assert output["decision"] == "EXECUTE", output["error"]
    entries: list[dict[str, Any]] = output["data"]["entries"]
    return entries


async def test_read_logs_on_a_shared_postgresql_ledger_returns_the_callers_own_calls_newest_first(
    pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    mine = Settings(ledger_path=pg_ledger)
    theirs = Settings(ledger_path=pg_ledger, policy_path=policy_file(tmp_path / "other.toml",
                                                                    agent_id="other-planner-002"))  # fmt: skip
    async with connect(mine) as me, connect(theirs) as them:
        _, docs = await call(me, "read_docs", {"name": "backup-restore"})
        _, their_call = await call(them, "list_docs")
        _, ssh = await call(me, "ssh", {"host": "pve01"})
        _, my_log = await call(me, "read_logs", {})
        _, their_log = await call(them, "read_logs", {"action": "list_docs"})
    entries = _entries(my_log)
    assert my_log["data"]["agent_id"] == "llm-planner-001"
    assert [e["request_id"] for e in entries] == [ssh["request_id"], docs["request_id"]]
    assert [(e["action"], e["success"], e["refused"]) for e in entries] == [
        ("ssh", False, True),
        ("read_docs", True, False),
    ]
    assert [e["arguments"] for e in entries] == [{"host": "pve01"}, {"name": "backup-restore"}]
    recorded = dict(
        pg_cluster.execute("SELECT request_id, seq FROM planner_mcp.agent_actions", dbname=dbname(pg_ledger))
    )
    assert [e["seq"] for e in entries] == [recorded[ssh["request_id"]], recorded[docs["request_id"]]]
    assert [e["request_id"] for e in _entries(their_log)] == [their_call["request_id"]]
    assert their_call["request_id"] not in json.dumps(my_log)
    assert verify(pg_ledger).status == "ok"
