"""The owner of a PostgreSQL ledger's tables cannot quietly unprotect or silence it.

An owner (or a superuser) can change the schema in ways no hash shows: drop, disable or empty an append-only
trigger, turn inserts into nothing with a rule or a trigger, hide rows behind row-level security, make a table
unlogged, change a column. The server must refuse such a ledger when it opens it, and `verify` must name each
change. The schema a fresh `ledger init` makes is pinned in `ledger/postgres/expected_schema.json`; after a
deliberate change to `schema.sql`, `PLANNER_MCP_UPDATE_SNAPSHOT=1` rewrites it (review its diff).
"""

import json
import os

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import Ledger, LedgerError, verify
from ledger.chain import TABLES
from ledger.postgres import storage as postgres_storage
from ledger.postgres.catalog import EXPECTED, EXPECTED_FILE, describe
from ledger.postgres.init import initialise
from ledger.postgres.storage import PostgresStorage
from ledger.storage import APPEND_ONLY
from server import Settings
from tests.conftest import call, call_once, connect
from tests.ledger.postgres.conftest import dbname
from tests.postgres_cluster import PostgresCluster

UPDATE = "PLANNER_MCP_UPDATE_SNAPSHOT"
_QUIET = "CREATE FUNCTION public.quiet() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'"
_RECREATED = (
    "DROP TRIGGER {name} ON planner_mcp.{table}; CREATE TRIGGER {name} BEFORE {verb} {how} ON planner_mcp.{table}"
    " FOR EACH ROW {when} EXECUTE FUNCTION planner_mcp.refuse_change()"
)


def _tamper(cluster: PostgresCluster, ledger_url: str, *statements: str) -> None:
    """Run `statements` as the tables' owner (here the superuser that ran `ledger init`)."""
    with cluster.connect(dbname(ledger_url)) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _auditor(cluster: PostgresCluster, ledger_url: str) -> str:
    return cluster.superuser_url(dbname(ledger_url))


def _rendered(objects: dict[str, str]) -> str:
    return json.dumps(objects, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_a_fresh_ledger_init_is_exactly_the_expected_schema(pg_cluster: PostgresCluster, pg_database: str) -> None:
    initialise(pg_database)
    with PostgresStorage(pg_database).snapshot() as conn:
        found = describe(conn)
    if os.environ.get(UPDATE) == "1":
        EXPECTED_FILE.write_text(_rendered(found), encoding="utf-8")
        return
    how = f"If schema.sql changed on purpose, run `{UPDATE}=1 python -m pytest {__file__}` and review the diff."
    assert found == EXPECTED, how
    assert EXPECTED_FILE.read_text(encoding="utf-8") == _rendered(found), how
    assert verify(pg_database).status == "ok"


def test_the_expected_schema_pins_every_append_only_trigger_including_truncate() -> None:
    assert {f"trigger {name}" for name in APPEND_ONLY} <= EXPECTED.keys()
    assert sum(1 for name in APPEND_ONLY if name.endswith("_no_truncate")) == len(TABLES)


# Each change an owner could make: the statements, the kinds verify must name, and a name its findings must hold.
_CHANGES: dict[str, tuple[list[str], set[str], str]] = {
    "an append-only trigger dropped": (
        ["DROP TRIGGER agent_actions_no_delete ON planner_mcp.agent_actions"],
        {"unprotected"},
        "agent_actions_no_delete",
    ),
    "a truncate trigger dropped": (
        ["DROP TRIGGER call_intents_no_truncate ON planner_mcp.call_intents"],
        {"unprotected"},
        "call_intents_no_truncate",
    ),
    "a trigger disabled": (
        ["ALTER TABLE planner_mcp.call_intents DISABLE TRIGGER call_intents_no_update"],
        {"unprotected"},
        "call_intents_no_update",
    ),
    "a trigger set to fire only on replicas": (
        ["ALTER TABLE planner_mcp.ledger_events ENABLE REPLICA TRIGGER ledger_events_no_delete"],
        {"unprotected"},
        "ledger_events_no_delete",
    ),
    "a trigger recreated with WHEN (false)": (
        [
            _RECREATED.format(
                name="call_intents_no_delete", table="call_intents", verb="DELETE", how="", when="WHEN (false)"
            )
        ],
        {"unprotected"},
        "call_intents_no_delete",
    ),
    "a trigger recreated for one column only": (
        [
            _RECREATED.format(
                name="agent_actions_no_update", table="agent_actions", verb="UPDATE", how="OF notes", when=""
            )
        ],
        {"unprotected"},
        "agent_actions_no_update",
    ),
    "a trigger's name taken on another table": (
        [
            "CREATE TRIGGER call_intents_no_update BEFORE INSERT ON planner_mcp.agent_metrics FOR EACH ROW"
            " EXECUTE FUNCTION planner_mcp.refuse_change()"
        ],
        {"unprotected"},
        "call_intents_no_update",
    ),
    "the triggers' function body replaced": (
        [
            "CREATE OR REPLACE FUNCTION planner_mcp.refuse_change() RETURNS trigger LANGUAGE plpgsql"
            " AS 'BEGIN RETURN coalesce(NEW, OLD); END'"
        ],
        {"unprotected", "schema"},
        "refuse_change",
    ),
    "a rule that turns inserts into nothing": (
        ["CREATE RULE quiet AS ON INSERT TO planner_mcp.agent_actions DO INSTEAD NOTHING"],
        {"schema"},
        "quiet",
    ),
    "a trigger that silences inserts": (
        [
            _QUIET,
            "CREATE TRIGGER hush BEFORE INSERT ON planner_mcp.call_intents FOR EACH ROW"
            " EXECUTE FUNCTION public.quiet()",
        ],
        {"schema"},
        "hush",
    ),
    "row-level security hiding rows": (
        [
            "ALTER TABLE planner_mcp.agent_actions ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY hide_ssh ON planner_mcp.agent_actions FOR SELECT USING (action <> 'ssh')",
            "CREATE POLICY writes ON planner_mcp.agent_actions FOR INSERT WITH CHECK (true)",
        ],
        {"schema"},
        "hide_ssh",
    ),
    "a table made unlogged": (["ALTER TABLE planner_mcp.ledger_events SET UNLOGGED"], {"schema"}, "ledger_events"),
    "a column's type changed": (
        ["ALTER TABLE planner_mcp.agent_actions ALTER COLUMN confidence TYPE real"],
        {"schema"},
        "agent_actions.confidence",
    ),
    "a column's collation changed": (
        ['ALTER TABLE planner_mcp.call_intents ALTER COLUMN request_id TYPE text COLLATE "C"'],
        {"schema"},
        "call_intents.request_id",
    ),
    "an index added": (
        ["CREATE INDEX agent_actions_spy ON planner_mcp.agent_actions (arguments)"],
        {"schema"},
        "agent_actions_spy",
    ),
    "a check constraint added": (
        ["ALTER TABLE planner_mcp.call_intents ADD CONSTRAINT no_ssh CHECK (action <> 'ssh') NOT VALID"],
        {"schema"},
        "no_ssh",
    ),
    "an extra table": (["CREATE TABLE planner_mcp.notes (body text)"], {"schema"}, "notes"),
    "a table outside the schema inheriting a ledger table": (
        ["CREATE TABLE public.more_actions () INHERITS (planner_mcp.agent_actions)"],
        {"schema"},
        "more_actions",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("change", list(_CHANGES))
async def test_each_change_an_owner_can_make_is_refused_by_the_server_and_named_by_verify(
    pg_cluster: PostgresCluster, pg_ledger: str, change: str
) -> None:
    statements, kinds, name = _CHANGES[change]
    _, before = await call_once(Settings(ledger_path=pg_ledger), "read_docs", {"name": "backup-restore"})
    assert before["decision"] == "EXECUTE"
    _tamper(pg_cluster, pg_ledger, *statements)

    _, output = await call_once(Settings(ledger_path=pg_ledger), "read_docs", {"name": "backup-restore"})
    assert output["decision"] == "ERROR" and output["data"] is None
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "is not the one planner-mcp made" in output["error"]["message"]
    with pytest.raises(LedgerError) as raised:
        Ledger(pg_ledger).open()
    assert raised.value.reason == "tampered"

    report = verify(_auditor(pg_cluster, pg_ledger))
    assert report.status == "tampered" and report.kinds() == kinds, report.findings
    assert any(name in f.detail for f in report.findings), report.findings
    assert report.rows == 2  # the call before the change, intent and outcome: nothing after it


def test_verify_names_each_append_only_trigger_a_replaced_function_empties(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    _tamper(pg_cluster, pg_ledger, *_CHANGES["the triggers' function body replaced"][0])
    report = verify(_auditor(pg_cluster, pg_ledger))
    unprotected = [f.detail for f in report.findings if f.kind == "unprotected"]
    assert len(unprotected) == len(APPEND_ONLY) == 3 * len(TABLES)
    for table in TABLES:
        for verb in ("UPDATE", "DELETE", "TRUNCATE"):
            assert any(f"refuses {verb} on {table} " in detail for detail in unprotected), (table, verb)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "statements",
    [
        [_QUIET, "CREATE TRIGGER hush BEFORE INSERT ON planner_mcp.call_intents FOR EACH ROW"
         " EXECUTE FUNCTION public.quiet()"],
        ["CREATE RULE quiet AS ON INSERT TO planner_mcp.call_intents DO INSTEAD NOTHING"],
    ],
    ids=["trigger returning NULL", "rule doing nothing"],
)  # fmt: skip
async def test_inserts_silenced_while_the_server_runs_are_caught_at_the_next_write(
    pg_cluster: PostgresCluster, pg_ledger: str, statements: list[str]
) -> None:
    async with connect(Settings(ledger_path=pg_ledger)) as client:
        _, first = await call(client, "read_docs", {"name": "backup-restore"})
        _tamper(pg_cluster, pg_ledger, *statements)
        _, second = await call(client, "read_docs", {"name": "backup-restore"})
        _, third = await call(client, "list_docs")
    assert first["decision"] == "EXECUTE"
    assert "did not land" in second["error"]["message"]
    for output in (second, third):
        assert output["decision"] == "ERROR" and output["error"]["type"] == "LEDGER_UNAVAILABLE"
        assert output["data"] is None
        assert output["provenance"]["ledger_seq"] is None  # no call cites a row that was never written
    assert "is not the one planner-mcp made" in third["error"]["message"]  # the reconnect compares the schema
    cited = first["provenance"]["ledger_seq"]
    intents = pg_cluster.execute("SELECT seq FROM planner_mcp.call_intents", dbname=dbname(pg_ledger))
    assert intents == [(cited,)]


def test_row_level_security_hides_rows_from_a_writer_but_not_from_the_owner(
    pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    ledger = Ledger(pg_ledger)
    for _ in range(3):
        ledger.record_event("note", "seen")
    ledger.close()
    _tamper(
        pg_cluster, pg_ledger, "ALTER TABLE planner_mcp.ledger_events ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY hide ON planner_mcp.ledger_events FOR SELECT USING (seq <> 2)",
    )  # fmt: skip
    as_writer = verify(pg_ledger)
    assert {"schema", "missing"} <= as_writer.kinds()  # the writer's view of the chain has a hole
    assert verify(_auditor(pg_cluster, pg_ledger)).kinds() == {"schema"}


@pytest.mark.anyio
async def test_a_trigger_disabled_while_the_server_runs_stops_it_at_the_next_catalog_check(
    pg_cluster: PostgresCluster, pg_ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL has no schema cookie: a running server compares the catalog every SCHEMA_RECHECK_S seconds
    (here every write), so a change that silences nothing is still caught without waiting for a reconnect."""
    monkeypatch.setattr(postgres_storage, "SCHEMA_RECHECK_S", 0.0)
    async with connect(Settings(ledger_path=pg_ledger)) as client:
        _, first = await call(client, "read_docs", {"name": "backup-restore"})
        _tamper(pg_cluster, pg_ledger, "ALTER TABLE planner_mcp.agent_actions DISABLE TRIGGER agent_actions_no_delete")
        _, second = await call(client, "read_docs", {"name": "backup-restore"})
    assert first["decision"] == "EXECUTE"
    assert second["decision"] == "ERROR" and second["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "agent_actions_no_delete" in second["error"]["message"] and second["data"] is None
