"""`planner-mcp ledger migrate --to postgresql://...`: a SQLite ledger's chain copied as stored into an empty
PostgreSQL ledger, verified there unchanged, then extended by the fleet's servers; and every refusal."""

import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from contracts import default_agent
from ledger import Intent, Ledger
from ledger.records import utc_now
from tests.postgres_cluster import PostgresCluster
from tests.processes import on_a_terminal, run_cli
from tests.server.postgres.calls import CALLS, record

pytestmark = pytest.mark.subprocess

KEY = b"0123456789abcdef0123456789abcdef-migrate-test-key"


def _exported(ledger_path: Path, **env: str) -> list[dict[str, Any]]:
    proc = run_cli(ledger_path, "ledger", "export", **env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _verified(ledger_path: Path, **env: str) -> dict[str, Any]:
    proc = run_cli(ledger_path, "ledger", "verify", "--json", **env)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _metrics(cluster: PostgresCluster, url: str) -> list[tuple[Any, ...]]:
    return cluster.execute("SELECT * FROM planner_mcp.agent_metrics ORDER BY agent_id", dbname=url.rsplit("/", 1)[1])


def _rows_in(cluster: PostgresCluster, url: str) -> int:
    tables = ("call_intents", "agent_actions", "ledger_events", "token_reservations", "agent_metrics")
    counts = (cluster.execute(f"SELECT count(*) FROM planner_mcp.{t}", dbname=url.rsplit("/", 1)[1]) for t in tables)
    return sum(found[0][0] for found in counts)


def test_a_migrated_chain_verifies_unchanged_and_the_fleet_extends_it(
    pg_cluster: PostgresCluster, pg_ledger: str, ledger_path: Path
) -> None:
    record(ledger_path)
    before = _verified(ledger_path)
    moved = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert moved.returncode == 0, moved.stderr
    assert moved.stderr == ""  # not a terminal: no progress
    assert f"migrated 8 chained rows (head seq 8 {before['head']['hash']}) and 1 agent_metrics rows" in moved.stdout
    assert moved.stdout.splitlines()[-1] == "OK" and pg_ledger.split(":")[2].split("@")[0] not in moved.stdout
    on_pg = {"PLANNER_MCP_LEDGER": pg_ledger}
    after = _verified(ledger_path, **on_pg)
    assert (after["status"], after["rows"], after["head"]) == ("ok", 8, before["head"])
    assert _exported(ledger_path, **on_pg) == _exported(ledger_path)
    assert [row[1:8] for row in _metrics(pg_cluster, pg_ledger)] == [
        tuple(r[1:8]) for r in sqlite3.connect(ledger_path).execute("SELECT * FROM agent_metrics")
    ]
    record(pg_ledger, CALLS[:1])
    extended = _verified(ledger_path, **on_pg)
    assert (extended["status"], extended["head"]["seq"]) == ("ok", 10)
    assert _exported(ledger_path, **on_pg)[8]["prev_hash"] == before["head"]["hash"]


def test_a_keyed_chain_migrates_as_stored_and_verifies_with_its_key(
    pg_ledger: str, ledger_path: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "ledger.key"
    key_file.parent.mkdir()
    key_file.write_bytes(KEY)
    key_file.chmod(0o600)
    record(ledger_path, ledger_key_file=key_file)
    keyed = {"PLANNER_MCP_LEDGER_KEY_FILE": str(key_file)}
    unkeyed = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert unkeyed.returncode == 1 and "cannot be verified without the key" in unkeyed.stderr
    moved = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger, **keyed)
    assert moved.returncode == 0, moved.stderr
    before, after = _verified(ledger_path, **keyed), _verified(ledger_path, PLANNER_MCP_LEDGER=pg_ledger, **keyed)
    assert (after["status"], after["keyed_rows"], after["head"]) == ("ok", 8, before["head"])
    assert _verified(ledger_path, PLANNER_MCP_LEDGER=pg_ledger)["status"] == "unverified"


def test_only_an_initialised_empty_ledger_is_a_target(
    pg_cluster: PostgresCluster, pg_ledger: str, ledger_path: Path, tmp_path: Path
) -> None:
    record(ledger_path, CALLS[:1])
    name = f"bare_{secrets.token_hex(4)}"
    bare = run_cli(ledger_path, "ledger", "migrate", "--to", pg_cluster.create_database(name))
    pg_cluster.drop_database(name)
    assert bare.returncode == 1 and "has no ledger: run `planner-mcp ledger init`" in bare.stderr
    record(pg_ledger, CALLS[:1])
    held = _rows_in(pg_cluster, pg_ledger)
    used = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert used.returncode == 1 and "is not empty: it holds rows in call_intents (1), agent_actions (1)" in used.stderr
    assert _rows_in(pg_cluster, pg_ledger) == held
    sqlite = run_cli(ledger_path, "ledger", "migrate", "--to", str(tmp_path / "other.db"))
    assert sqlite.returncode == 2 and "--to must be a postgresql:// URL" in sqlite.stderr
    for proc in (bare, used, sqlite):
        assert pg_cluster.password not in proc.stderr and "Traceback" not in proc.stderr


def test_a_tampered_source_is_refused_naming_what_verify_found(
    pg_cluster: PostgresCluster, pg_ledger: str, ledger_path: Path
) -> None:
    record(ledger_path)
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    (trigger,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_actions_no_update'").fetchone()
    conn.execute("DROP TRIGGER agent_actions_no_update")
    conn.execute("UPDATE agent_actions SET decision = 'ALLOWED' WHERE action = 'ssh'")
    conn.execute(trigger)
    conn.close()
    proc = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert proc.returncode == 1 and "is not intact, so it is not migrated: altered     seq 6:" in proc.stderr
    assert _rows_in(pg_cluster, pg_ledger) == 0


def test_a_row_postgresql_cannot_store_is_named_and_nothing_is_migrated(
    pg_cluster: PostgresCluster, pg_ledger: str, ledger_path: Path
) -> None:
    record(ledger_path)
    ledger = Ledger(ledger_path)
    try:
        agent = default_agent()
        intent = Intent(
            request_id="nul", timestamp=utc_now(), agent_id=agent.agent_id, agent_version=agent.version,
            tier=agent.tier, action="read_docs", arguments={}, tools_digest="", notes="a NUL \x00 here",
        )  # fmt: skip
        ledger.record_intent(intent)
    finally:
        ledger.close()
    proc = run_cli(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert proc.returncode == 1, proc.stdout
    assert "seq 9 (call_intents id 4) holds a value the target cannot store as it is" in proc.stderr
    assert "NUL" in proc.stderr and _rows_in(pg_cluster, pg_ledger) == 0


def test_progress_is_shown_on_a_terminal(pg_ledger: str, ledger_path: Path) -> None:
    record(ledger_path)
    proc, shown = on_a_terminal(ledger_path, "ledger", "migrate", "--to", pg_ledger)
    assert proc.returncode == 0, shown
    assert shown == "\rplanner-mcp: copied 8 of 8 rows\r\n"
