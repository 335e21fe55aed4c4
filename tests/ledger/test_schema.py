"""Someone who can write the ledger file but has no key cannot silence it or quietly unprotect it.

The attacks here change the schema, not the rows: a trigger that swallows every insert, the append-only
triggers kept by name over bodies that do nothing, a view or an index of their own. None of them changes a
hash. The server must refuse such a ledger, at open and at the next write after the change, and `verify`
and `doctor` must name it.
"""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import Ledger, LedgerError, verify
from ledger.append import Head, write_row
from ledger.chain import TABLES, Hasher
from ledger.connection import SqliteConn
from ledger.migrations import MIGRATIONS, migrate
from server import Settings
from tests.conftest import call, call_once, connect, rows
from tests.processes import run_cli

pytestmark = pytest.mark.anyio

_SILENCE = "CREATE TRIGGER {table}_quiet BEFORE INSERT ON {table} BEGIN SELECT RAISE(IGNORE); END"


def _edit(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def _written_by_the_previous_version(path: Path) -> None:
    """A ledger with every migration but the newest, as the version before this one left it."""
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    old.execute("BEGIN")
    migrate(old, {fn.__name__ for fn in MIGRATIONS[:-1]})
    old.execute("COMMIT")
    old.close()


async def _one_call(settings: Settings) -> dict[str, object]:
    _, output = await call_once(settings, "read_docs", {"name": "backup-restore"})
    return output


async def test_a_trigger_that_silences_inserts_makes_the_server_refuse_every_call(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    await _one_call(make_settings())
    _edit(ledger_path, *(_SILENCE.format(table=table) for table in ("call_intents", "agent_actions")))
    before = len(rows(ledger_path))
    output = await _one_call(make_settings())
    error = output["error"]
    assert isinstance(error, dict) and error["type"] == "LEDGER_UNAVAILABLE"
    assert "schema" in error["message"] and "call_intents_quiet" in error["message"]
    assert output["decision"] == "ERROR" and output["data"] is None
    assert len(rows(ledger_path)) == before
    report = verify(ledger_path)
    assert report.status == "tampered" and "schema" in report.kinds()
    assert any("agent_actions_quiet" in f.detail for f in report.findings)
    doctor = run_cli(ledger_path, "doctor")
    assert doctor.returncode == 1 and "agent_actions_quiet" in doctor.stdout + doctor.stderr


async def test_a_trigger_added_while_the_server_runs_stops_it_at_its_next_write(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(make_settings()) as client:
        _, first = await call(client, "read_docs", {"name": "backup-restore"})
        _edit(ledger_path, _SILENCE.format(table="call_intents"), _SILENCE.format(table="agent_actions"))
        _, second = await call(client, "read_docs", {"name": "backup-restore"})
        _, third = await call(client, "list_docs")
    assert first["decision"] == "EXECUTE"
    for output in (second, third):
        assert output["decision"] == "ERROR" and output["error"]["type"] == "LEDGER_UNAVAILABLE"
        assert output["provenance"]["ledger_seq"] is None  # no call cites a row that was never written
    cited = first["provenance"]["ledger_seq"]
    assert [r["seq"] for r in rows(ledger_path, "call_intents")] == [cited]


async def test_a_trigger_that_lets_inserts_land_added_while_the_server_runs_stops_it_at_its_next_write(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # Every row still lands (the row count cannot see it): only the check of the schema can. The server skips
    # that check while no other connection has committed; adding the trigger is such a commit.
    spy = "CREATE TRIGGER call_intents_spy AFTER INSERT ON call_intents BEGIN SELECT 1; END"
    async with connect(make_settings()) as client:
        _, first = await call(client, "read_docs", {"name": "backup-restore"})
        _, second = await call(client, "read_docs", {"name": "backup-restore"})
        _edit(ledger_path, spy)
        _, third = await call(client, "read_docs", {"name": "backup-restore"})
    assert first["decision"] == second["decision"] == "EXECUTE"
    assert third["decision"] == "ERROR" and third["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "not the one planner-mcp made" in third["error"]["message"]
    assert len(rows(ledger_path, "call_intents")) == 2


async def test_append_only_triggers_emptied_under_their_own_names_are_refused_and_named_unprotected(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    await _one_call(make_settings())
    statements = []
    for table in TABLES:
        for verb in ("update", "delete"):
            statements += [
                f"DROP TRIGGER {table}_no_{verb}",
                f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} BEGIN SELECT 1; END",
            ]
    _edit(ledger_path, *statements)
    report = verify(ledger_path)
    assert report.status == "tampered" and report.kinds() == {"unprotected"}
    assert len(report.findings) == 2 * len(TABLES)
    assert all("changed" in f.detail for f in report.findings)
    output = await _one_call(make_settings())
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE"  # type: ignore[index]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE VIEW agent_actions_clean AS SELECT * FROM agent_actions WHERE success = 1",
        "CREATE INDEX agent_actions_spy ON agent_actions(arguments)",
        "CREATE TABLE notes (text TEXT)",
        "CREATE TRIGGER metrics_flattered AFTER INSERT ON agent_actions BEGIN"
        " UPDATE agent_metrics SET compliant_runs = total_runs; END",
    ],
)
async def test_any_object_the_migrations_did_not_make_is_named_and_refused(
    make_settings: Callable[..., Settings], ledger_path: Path, statement: str
) -> None:
    await _one_call(make_settings())
    _edit(ledger_path, statement)
    name = statement.split()[2]
    report = verify(ledger_path)
    assert report.kinds() == {"schema"} and name in report.findings[0].detail
    output = await _one_call(make_settings())
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE" and name in output["error"]["message"]  # type: ignore[index]


def test_a_ledger_is_verified_against_the_migrations_it_records_not_the_newest(ledger_path: Path) -> None:
    # A copy an older version wrote, handed to today's verify (which writes nothing, so upgrades nothing).
    _written_by_the_previous_version(ledger_path)
    assert verify(ledger_path).status == "ok"
    _edit(ledger_path, "INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01T00:00:00Z')")
    assert verify(ledger_path).kinds() == {"schema"}


def test_a_row_that_did_not_land_is_never_reported_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).open()
    conn = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    conn.execute(_SILENCE.format(table="ledger_events"))
    row = {"timestamp": "2026-12-05T00:00:00.000Z", "kind": "note", "detail": "swallowed"}
    with pytest.raises(LedgerError) as raised:
        write_row(conn, Hasher(), "ledger_events", row, Head(1, "v1:sha256:x", "ledger_events"), 2)
    conn.close()
    assert raised.value.reason == "tampered" and "0 rows changed" in str(raised.value)


def test_doctor_checks_the_schema_of_a_ledger_an_older_version_wrote_without_failing_it(ledger_path: Path) -> None:
    _written_by_the_previous_version(ledger_path)
    doctor = run_cli(ledger_path, "doctor")
    lines = doctor.stdout.splitlines()
    assert any(line.startswith("ok    ledger: ") and "intact" in line for line in lines), doctor.stdout
